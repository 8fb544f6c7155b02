"""Shared fixtures: the scripted backend, the tiny random Llama, the real default model's cache, and the
set a default `synthesize` run writes from the default model's recorded outputs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.default_set import RECORDED, Replay, write_points
from tests.scripted import HashEmbedder, ScriptedModel

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of the converted default model for the whole run (BIFORGET_CACHE), unless one is set."""
    existing = os.environ.get("BIFORGET_CACHE")
    if existing:
        return Path(existing)
    path = tmp_path_factory.mktemp("biforget-cache")
    os.environ["BIFORGET_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def default_model_dir(model_cache: Path) -> Path:
    from biforget.models.sources import ensure_default_model

    return ensure_default_model()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, default_model_dir: Path) -> Path:
    """A randomly initialised 2-layer Llama with the SmolLM2 tokenizer and chat template, as a folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(default_model_dir))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture(autouse=True)
def _reset_quiet() -> Iterator[None]:
    """--quiet is process-wide state; a test that set it must not silence the next one."""
    yield
    from biforget import console

    console.set_quiet(False)


@pytest.fixture
def use_model(monkeypatch: pytest.MonkeyPatch) -> Callable[[ScriptedModel], None]:
    """Make `biforget.api.load_models` return `model` and the hash embedder."""
    import biforget.api

    def install(model: ScriptedModel) -> None:
        monkeypatch.setattr(biforget.api, "load_models", lambda options: (model, HashEmbedder()))

    return install


@pytest.fixture
def default_set(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Path:
    """`biforget synthesize -i points.jsonl --topic "Harry Potter" --samples 1 --rounds 1 -o hp.jsonl`,
    default templates and temperatures, on the recorded outputs."""
    from biforget import cli

    points = write_points(tmp_path / "points.jsonl")
    model = Replay()
    use_model(model)
    path = tmp_path / "hp.jsonl"
    code = cli.run(
        [
            *("synthesize", "-i", str(points), "--topic", "Harry Potter"),
            *("--samples", "1", "--rounds", "1", "-o", str(path)),
        ]
    )
    _, err = capsys.readouterr()
    assert code == 0, err
    # 8 templates x 3 points x 4 temperatures; 24 info/ and 12 qa/ outputs recorded for those requests.
    assert len(model.requests) == 96
    answered = [r for r in model.requests if (r.prompt, r.temperature, r.reply_start) in RECORDED]
    assert len(answered) == 36
    return path
