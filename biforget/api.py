"""The public library API: one function per command, usable without the CLI."""

from __future__ import annotations

from collections.abc import Iterator

from biforget import console
from biforget.config import ModelOptions, SeedsConfig
from biforget.console import Tracker
from biforget.models import load_embedder, load_text_model
from biforget.models.base import Embedder, TextModel
from biforget.records import Record


def load_models(options: ModelOptions) -> tuple[TextModel, Embedder]:
    """The target model and the embedder, loaded once and shared by a command's stages."""
    console.info(f"loading model {options.model!r}")
    model = load_text_model(options)
    embedder = load_embedder(options, target=model)
    console.info(f"model {model.name}, embedder {embedder.name}")
    return model, embedder


def seeds(
    config: SeedsConfig,
    options: ModelOptions | None = None,
    *,
    model: TextModel | None = None,
    embedder: Embedder | None = None,
    tracker: Tracker | None = None,
) -> Iterator[Record]:
    """Key points of `config.topic` as `point` records. Pass `model`/`embedder` to reuse loaded ones."""
    from biforget.pipelines.seeds import generate_points, load_seed_templates

    load_seed_templates()  # template errors surface before a model is loaded
    if model is None or embedder is None:
        loaded_model, loaded_embedder = load_models(options or ModelOptions())
        model = model or loaded_model
        embedder = embedder or loaded_embedder
    yield from generate_points(model, embedder, config, tracker)
