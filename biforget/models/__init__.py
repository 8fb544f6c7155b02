"""The model layer: one place that loads target models, their tokenizers and embedders.

Backends are named (`--model hf:ID`, `fake:NAME`); a plain id, a path, a `.gguf` file or `default` means
hf. Each backend is one module with a `load(target, options)` function (and optionally
`load_tokenizer(target, options)`), listed in `BACKENDS` and imported on first use, so nothing here
imports torch until a model is actually loaded. Adding a backend is one module and one line below.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from biforget.config import ModelOptions
from biforget.errors import ModelError, UsageError
from biforget.models.base import (
    Capability,
    Embedder,
    GenerationRequest,
    TextModel,
    Tokenizer,
    TokenLogprobs,
    require,
)

BACKENDS: dict[str, str] = {
    "hf": "biforget.models.hf",
    "fake": "biforget.models.fake",
    "vllm": "biforget.models.vllm",
    "openai": "biforget.models.openai_compat",
}
DEFAULT_BACKEND = "hf"
# A scheme-like prefix that names no backend is a mistake, not a hub id (hub ids have no colon).
_PREFIX = re.compile(r"^([a-z][a-z0-9_-]+):")


def split_model_spec(spec: str) -> tuple[str, str]:
    """`--model` as (backend, target): `fake:echo` -> ("fake", "echo"), `org/name` -> ("hf", "org/name")."""
    match = _PREFIX.match(spec)
    if match is None:
        return DEFAULT_BACKEND, spec
    backend = match.group(1)
    if backend not in BACKENDS:
        known = ", ".join(f"{name}:" for name in BACKENDS)
        raise UsageError(f"--model {spec}: unknown backend {backend!r} (known: {known})")
    target = spec[match.end() :]
    if not target:
        raise UsageError(f"--model {spec}: name a model after {backend}:")
    return backend, target


def _backend(name: str) -> Any:
    return importlib.import_module(BACKENDS[name])


def parse_model_args(
    options: ModelOptions, backend: str, accepted: Mapping[str, Callable[[str], Any]]
) -> dict[str, Any]:
    """`--model-arg KEY=VALUE` settings as typed values; a key the backend does not read is a usage error."""
    values: dict[str, Any] = {}
    for item in options.model_args:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--model-arg {item!r}: expected KEY=VALUE")
        if key not in accepted:
            known = ", ".join(sorted(accepted)) or "none"
            raise UsageError(f"--model-arg {key}: the {backend} backend does not read it (it reads: {known})")
        try:
            values[key] = accepted[key](raw.strip())
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--model-arg {item!r}: {exc}") from None
    return values


def load_text_model(options: ModelOptions | None = None) -> TextModel:
    """Load the target model `options.model` names (the built-in default when not given)."""
    options = options or ModelOptions()
    backend, target = split_model_spec(options.model)
    model: TextModel = _backend(backend).load(target, options)
    return model


def load_tokenizer(options: ModelOptions | None = None) -> Tokenizer:
    """The target model's tokenizer, without its weights where the backend can give it alone."""
    options = options or ModelOptions()
    backend, target = split_model_spec(options.model)
    module = _backend(backend)
    loader = getattr(module, "load_tokenizer", None)
    if loader is not None:
        tokenizer: Tokenizer = loader(target, options)
        return tokenizer
    model = module.load(target, options)
    require(model, Capability.TOKENIZER, "counting tokens")
    return model.tokenizer


def load_embedder(options: ModelOptions | None = None, target: TextModel | None = None) -> Embedder:
    """Load `options.embedder`: the packaged default, a sentence-transformers model, or `target`."""
    options = options or ModelOptions()
    if options.embedder == "target":
        if target is None:
            target = load_text_model(options)
        require(target, Capability.HIDDEN_STATES, "--embedder target")
        from biforget.models.embedders import TargetEmbedder

        return TargetEmbedder(target)
    from biforget.models.embedders import SentenceTransformerEmbedder

    if split_model_spec(options.model)[0] == "fake" and options.embedder == "default":
        # A dry run loads nothing heavy: the fake backend's own hashed embedding stands in.
        from biforget.models.fake import HashEmbedder

        return HashEmbedder()
    return SentenceTransformerEmbedder.load(options.embedder, options.device)


__all__ = [
    "BACKENDS",
    "Capability",
    "Embedder",
    "GenerationRequest",
    "ModelError",
    "TextModel",
    "TokenLogprobs",
    "Tokenizer",
    "load_embedder",
    "load_text_model",
    "load_tokenizer",
    "parse_model_args",
    "require",
    "split_model_spec",
]
