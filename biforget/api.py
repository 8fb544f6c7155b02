"""The public library API: one function per command, usable without the CLI."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biforget import console
from biforget.config import (
    EvaluateConfig,
    ExportConfig,
    ModelOptions,
    ProbeConfig,
    RewriteConfig,
    SeedsConfig,
    SynthesizeConfig,
)
from biforget.console import Tracker
from biforget.errors import InputError, UsageError
from biforget.io.export import ExportResult
from biforget.io.facts import Fact
from biforget.io.jsonl import InputSource
from biforget.models import load_embedder, load_text_model
from biforget.models.base import Capability, Embedder, TextModel, require
from biforget.records import Record

if TYPE_CHECKING:
    from biforget.models.base import Tokenizer


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
    yield from synthesize_samples(
        model, embedder, points, config, existing=existing, trace=trace, tracker=tracker
    )


def rewrite(
    config: RewriteConfig,
    facts: Iterable[Fact],
    options: ModelOptions | None = None,
    *,
    existing: Iterable[Record] = (),
    keep_rejected: Path | None = None,
    model: TextModel | None = None,
    embedder: Embedder | None = None,
    tracker: Tracker | None = None,
) -> Iterator[Record]:
    """Each fact as a `fact` record followed by its accepted `variant` records.

    `facts` come from `biforget.io.facts.read_facts` (or `parse_facts`); `keep_rejected` writes every
    rejected rewrite with its reason as JSONL, for inspection.
    """
    from biforget.pipelines.rewrite import load_rewrite_templates, rewrite_facts

    load_rewrite_templates()  # template errors surface before a model is loaded
    facts = list(facts)
    if not facts:
        raise InputError("no facts to rewrite")
    with contextlib.ExitStack() as stack:
        reject: Callable[[dict[str, Any]], None] | None = None
        if keep_rejected is not None:
            # Opened before the model loads, so a bad path costs no loading time.
            try:
                handle = stack.enter_context(keep_rejected.open("w", encoding="utf-8"))
            except OSError as exc:
                raise InputError(f"cannot write: {exc.strerror or exc}", source=str(keep_rejected)) from None

            def write_rejected(entry: dict[str, Any]) -> None:
                handle.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
                handle.flush()

            reject = write_rejected

        if model is None or embedder is None:
            loaded_model, loaded_embedder = load_models(options or ModelOptions())
            model = model or loaded_model
            embedder = embedder or loaded_embedder
        yield from rewrite_facts(
            model, embedder, facts, config, existing=existing, reject=reject, tracker=tracker
        )


def probe(
    config: ProbeConfig,
    options: ModelOptions | None = None,
    *,
    records: Iterable[Record] = (),
    points_file: Path | None = None,
    existing: Iterable[Record] = (),
    model: TextModel | None = None,
    embedder: Embedder | None = None,
    tracker: Tracker | None = None,
) -> Iterator[Record]:
    """Stage II: every input record first, unchanged, then new samples from jailbreak and MIA probing.

    The domain's points are the point records of `points_file`, else the distinct `gen.point` of the
    input samples, else the topic alone. No input is not an error.
    """
    from biforget.io.jsonl import read_all
    from biforget.io.reference import read_reference_texts
    from biforget.pipelines.probe import domain_points, load_probe_templates, probe_samples

    # Templates, points and reference texts are checked before any record is written or model loaded.
    load_probe_templates()
    points = domain_points((), read_all(points_file, allow_empty=False)) if points_file is not None else None
    references = None
    if config.mia and config.mia_calibrate is not None:
        references = read_reference_texts(config.mia_calibrate)
    inputs: list[Record] = []
    for record in records:
        inputs.append(record)
        yield record
    if not config.jailbreak and not config.mia:
        return
    if model is None or embedder is None:
        loaded_model, loaded_embedder = load_models(options or ModelOptions())
        model = model or loaded_model
        embedder = embedder or loaded_embedder
    if config.mia:
        require(model, Capability.LOGPROBS, "--mia (Min-K% scoring)")
        if config.mia_score == "mink++":
            require(model, Capability.DISTRIBUTION, "--mia-score mink++")
    yield from probe_samples(
        model,
        embedder,
        inputs,
        config,
        points=points,
        references=references,
        existing=existing,
        tracker=tracker,
    )


def export(
    config: ExportConfig, records: Iterable[Record], *, source: InputSource | None = None
) -> ExportResult:
    """Write the records the filters keep in `config.format` under `config.out`, all or nothing.

    `source` is the InputSource `records` are read from (`iter_records(source, required=())`); errors then
    name its file and line, and its --on-error skip applies. Loads no model and imports no torch.
    """
    from biforget.io.export import check_destination, export_items, no_records_message, select

    check_destination(config.out, config.force)  # before any input is read

    def where(number: int) -> str:
        return f"{source.name}:{source.line}" if source is not None else f"record {number}"

    items, read = select(
        records, config, where=where, skip_bad=source is not None and source.on_error == "skip"
    )
    if not items:
        raise InputError(no_records_message(read, config), source=source.name if source else None)
    result = export_items(items, config)
    for note in result.notes:
        console.info(note)
    return result


def evaluate(
    config: EvaluateConfig,
    sets: Sequence[Path],
    against: Sequence[Path] = (),
    options: ModelOptions | None = None,
    *,
    embedder: Embedder | None = None,
    tokenizer: Tokenizer | None = None,
    tracker: Tracker | None = None,
) -> dict[str, Any]:
    """Score `sets` and the `against` baselines side by side; the JSON-ready report.

    Loads the target model's tokenizer (the whole model only for `--embedder target`) and the embedder
    unless given. With `config.plots` the figures are written there and listed under `plots`; with
    `config.drop_overlap` the set without its overlapping records is written to `config.output`.
    """
    from biforget.io.jsonl import RecordWriter
    from biforget.io.sets import read_set, read_trace
    from biforget.models import load_tokenizer
    from biforget.pipelines.evaluate import check_names, evaluate_sets

    paths = [*sets, *against]
    if not sets:
        raise UsageError("give at least one SET to evaluate")
    if config.names and len(config.names) != len(paths):
        raise UsageError(
            f"--name given {len(config.names)} time(s) for {len(paths)} set(s); name every set "
            "(SETs first, then --against files, in order) or none"
        )
    if config.drop_overlap and len(sets) != 1:
        raise UsageError("--drop-overlap works on exactly one SET (baselines go in --against)")
    # Every input is read and checked before a model is loaded.
    names = config.names or (None,) * len(paths)
    data = [read_set(Path(p), name=n, lines=config.lines) for p, n in zip(paths, names, strict=True)]
    check_names(data)
    roles = ["set"] * len(sets) + ["against"] * len(against)
    retain = read_set(config.retain, name="retain", lines=config.lines) if config.retain else None
    trace = read_trace(config.trace) if config.trace else None
    options = options or ModelOptions()
    if embedder is None and options.embedder == "target":
        console.info(f"loading model {options.model!r} (--embedder target)")
        model = load_text_model(options)
        embedder = load_embedder(options, target=model)
        if tokenizer is None:
            require(model, Capability.TOKENIZER, "evaluate's chunk counts")
            tokenizer = model.tokenizer
    if tokenizer is None:
        tokenizer = load_tokenizer(options)
    if embedder is None:
        embedder = load_embedder(options)
    console.info(f"tokenizer {tokenizer.name}, embedder {embedder.name}")
    result = evaluate_sets(
        data,
        roles,
        config,
        embedder=embedder,
        tokenizer=tokenizer,
        retain=retain,
        trace=trace,
        tracker=tracker,
    )
    if config.drop_overlap and config.output is not None and result.kept is not None:
        with RecordWriter(config.output) as writer:
            writer.write_all(result.kept)
        dropped = len(data[0]) - len(result.kept)
        console.info(f"wrote {len(result.kept)} record(s) to {config.output} ({dropped} overlapping dropped)")
    if config.plots is not None:
        from biforget.plots import write_plots

        written = write_plots(result.plots, config.plots, embedder.name)
        result.report["plots"] = [str(path) for path in written]
    return result.report
