"""The public library API: one function per command, usable without the CLI."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from biforget import console
from biforget.config import ModelOptions, SeedsConfig, SynthesizeConfig
from biforget.errors import UsageError
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


def synthesize(
    config: SynthesizeConfig,
    options: ModelOptions | None = None,
    *,
    records: Iterable[Record] = (),
    seeds_config: SeedsConfig | None = None,
    existing: Iterable[Record] = (),
    trace: Path | None = None,
    model: TextModel | None = None,
    embedder: Embedder | None = None,
    tracker: Tracker | None = None,
) -> Iterator[Record]:
    """Stage I text from `point` records; other input records pass through first, unchanged.

    With no points in `records`, `seeds_config` (a topic) lists the points first with the same model.
    """
    from biforget.pipelines.seeds import generate_points, load_seed_templates
    from biforget.pipelines.synthesize import select_templates, synthesize_samples

    select_templates(config.templates, config.template_dir)  # template errors before any model loads
    points: list[Record] = []
    for record in records:
        if record.get("kind") == "point":
            points.append(record)
        else:
            yield record
    if not points and seeds_config is None:
        raise UsageError("no point records on input; pipe `biforget seeds` in, or pass --topic")
    if not points:
        load_seed_templates()
    if model is None or embedder is None:
        loaded_model, loaded_embedder = load_models(options or ModelOptions())
        model = model or loaded_model
        embedder = embedder or loaded_embedder
    if not points and seeds_config is not None:
        points = list(generate_points(model, embedder, seeds_config, tracker))
        console.info(f"synthesize: listed {len(points)} point(s) for {seeds_config.topic!r}")
    yield from synthesize_samples(model, embedder, points, config, existing=existing, trace=trace,
                                  tracker=tracker)
