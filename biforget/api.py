"""The public library API: one function per command, usable without the CLI."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from biforget.errors import InputError, OutputError, UsageError
from biforget.io.facts import Fact
from biforget.io.jsonl import InputSource, RecordWriter
from biforget.io.paths import check_paths, folder_lock, make_folder
from biforget.models import load_embedder, load_text_model
from biforget.models.base import Capability, Embedder, TextModel, require
from biforget.pipelines.export import ExportResult
from biforget.records import Record, unique_ids

if TYPE_CHECKING:
    from biforget.models.base import Tokenizer

RunConfig = SeedsConfig | SynthesizeConfig | ProbeConfig | RewriteConfig


def load_models(options: ModelOptions) -> tuple[TextModel, Embedder]:
    """The target model and the embedder, loaded once and shared by a command's stages."""
    console.info(f"loading model {options.model!r}")
    model = load_text_model(options)
    embedder = load_embedder(options, target=model)
    console.info(f"model {model.name}, embedder {embedder.name}")
    return model, embedder


def _models(
    options: ModelOptions | None, model: TextModel | None, embedder: Embedder | None
) -> tuple[TextModel, Embedder]:
    """The caller's model and embedder, loading (together, once) whichever was not passed."""
    if model is not None and embedder is not None:
        return model, embedder
    loaded_model, loaded_embedder = load_models(options or ModelOptions())
    return model or loaded_model, embedder or loaded_embedder


def seeds(
    config: SeedsConfig,
    options: ModelOptions | None = None,
    *,
    existing: Iterable[Record] = (),
    model: TextModel | None = None,
    embedder: Embedder | None = None,
    tracker: Tracker | None = None,
) -> Iterator[Record]:
    """Key points of `config.topic` as `point` records. Pass `model`/`embedder` to reuse loaded ones;
    `existing` (records of a run to resume) are checked to come from the same model."""
    from biforget.pipelines.seeds import generate_points, load_seed_templates

    templates = load_seed_templates()  # template errors surface before a model is loaded
    model, embedder = _models(options, model, embedder)
    check_resume_sources(existing, config.STAGE, model, embedder)
    yield from generate_points(model, embedder, config, tracker, templates=templates)


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

    templates = select_templates(config.templates, config.template_dir)  # errors before any model loads
    points: list[Record] = []
    passthrough: list[Record] = []
    for record in records:
        (points if record.get("kind") == "point" else passthrough).append(record)
    if not points and seeds_config is None:
        raise UsageError("no point records on input; pipe `biforget seeds` in, or pass --topic")
    for point in points:
        if not (point.get("topic") or config.topic):
            raise UsageError(f"point {point.get('id') or point.get('text')!r} has no topic; pass --topic")
    seed_templates = load_seed_templates() if not points else None
    model, embedder = _models(options, model, embedder)
    if not points and seeds_config is not None:
        points = list(generate_points(model, embedder, seeds_config, tracker, templates=seed_templates))
        console.info(f"synthesize: listed {len(points)} point(s) for {seeds_config.topic!r}")
    check_resume_sources(existing, SynthesizeConfig.STAGE, model, embedder, points)
    yield from held_until_first(
        passthrough,
        synthesize_samples(
            model,
            embedder,
            points,
            config,
            existing=existing,
            trace=trace,
            tracker=tracker,
            templates=templates,
        ),
    )


def held_until_first(held: Iterable[Record], produced: Iterable[Record]) -> Iterator[Record]:
    """`held`, then `produced`, but nothing before `produced` has yielded its first record or ended well.

    Passthrough records wait for the run's first own record, so a run that fails before making one (a
    model or server that cannot be reached, a capability it lacks) leaves its output file as it was."""
    made = iter(produced)
    try:
        first = next(made)
    except StopIteration:
        yield from held
        return
    yield from held
    yield first
    yield from made


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

    templates = load_rewrite_templates()  # template errors surface before a model is loaded
    facts = list(facts)
    if not facts:
        raise InputError("no facts to rewrite")
    check_fact_sizes(facts)
    with contextlib.ExitStack() as stack:
        reject: Callable[[dict[str, Any]], None] | None = None
        if keep_rejected is not None:
            # Taken (and checked) before the model loads, emptied only once the run writes to it.
            reject = stack.enter_context(
                RecordWriter(keep_rejected, make_parents=False, flag="--keep-rejected")
            ).write
        model, embedder = _models(options, model, embedder)
        check_resume_sources(existing, config.STAGE, model, embedder)
        yield from rewrite_facts(
            model,
            embedder,
            facts,
            config,
            existing=existing,
            reject=reject,
            tracker=tracker,
            templates=templates,
        )


def check_fact_sizes(facts: Iterable[Fact]) -> None:
    """Every fact's record fits on a line the readers take (a QA fact's record holds its text twice,
    as `text` and as `question` and `answer`), checked before any model loads."""
    from biforget.io.jsonl import MAX_LINE_BYTES, line_too_long
    from biforget.pipelines.rewrite_plan import fact_record

    for fact in facts:
        line = json.dumps(fact_record(fact), ensure_ascii=False, separators=(",", ":")) + "\n"
        size = len(line.encode("utf-8"))
        if size > MAX_LINE_BYTES:
            raise line_too_long(size, MAX_LINE_BYTES, fact.source, fact.line, "fact whose record is a line")


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
    templates = load_probe_templates()
    points = domain_points((), read_all(points_file, allow_empty=False)) if points_file is not None else None
    references = None
    if config.mia and config.mia_calibrate is not None:
        references = read_reference_texts(config.mia_calibrate)
    inputs = list(records)
    if not config.jailbreak and not config.mia:
        yield from inputs
        return
    model, embedder = _models(options, model, embedder)
    if config.mia:
        require(model, Capability.LOGPROBS, "--mia (Min-K% scoring)")
        if config.mia_score == "mink++":
            require(model, Capability.DISTRIBUTION, "--mia-score mink++")
    check_resume_sources(existing, ProbeConfig.STAGE, model, embedder)
    yield from held_until_first(
        inputs,
        probe_samples(
            model,
            embedder,
            inputs,
            config,
            points=points,
            references=references,
            existing=existing,
            tracker=tracker,
            templates=templates,
        ),
    )


def write_records(
    produce: Callable[[list[Record]], Iterable[Record]],
    output: Path | None = None,
    *,
    resume: bool = False,
    config: RunConfig | None = None,
    reads: Mapping[str, str | Path | None] | None = None,
    writes: Mapping[str, Path | None] | None = None,
) -> RecordWriter:
    """Stream what `produce(existing)` yields to `output` (stdout when None), one flushed line each.

    Every record leaves with a unique string id; with `resume` the records already in `output` are
    passed to `produce` and the ids among them are not written again, after `config` is checked to be
    the run that wrote them. `reads` and `writes` are the run's other files by flag, which `output` must
    not overwrite. Returns the closed writer (its `written` and `existing`)."""
    check_paths(dict(reads or {}), {"-o": output, **(writes or {})}, stdout=output is None)
    with RecordWriter(output, resume=resume) as writer:
        if config is not None:
            check_resume(writer.existing, config, writer.name)
        done = writer.existing_ids
        for record in unique_ids(produce(writer.existing)):
            if record["id"] not in done:
                writer.write(record)
    return writer


def check_resume(existing: Iterable[Record], config: RunConfig, name: str = "the output") -> None:
    """A resumed run must be the run that wrote `existing`: the same seed, topic and settings (but for
    the ones `config.RESUME_MAY_CHANGE`), or its records and the new ones would form no one set."""
    current = json.loads(json.dumps(config.settings(), default=str))
    topic = getattr(config, "topic", None)
    for record in existing:
        if not _could_have_written(config.STAGE, record):
            raise UsageError(
                f"{name}: --resume onto a file `{config.STAGE}` did not write (it holds a "
                f"{record.get('kind') or 'record'} of stage {record.get('stage') or 'none'}); resume with "
                "the command that wrote it or write a new file"
            )
        stage, gen = record.get("stage"), record.get("gen")
        if not isinstance(stage, str) or stage.partition("/")[0] != config.STAGE:
            continue
        previous = gen.get("settings") if isinstance(gen, dict) else None
        differ = []
        if topic and isinstance(record.get("topic"), str) and record["topic"] != topic:
            differ.append("topic")
        if isinstance(previous, dict):
            keys = (current.keys() | previous.keys()) - set(config.RESUME_MAY_CHANGE)
            differ += sorted(key for key in keys if current.get(key) != previous.get(key))
        if differ:
            flags = ", ".join("--" + key.replace("_", "-") for key in differ)
            raise UsageError(
                f"{name}: --resume with other settings than the run that wrote it ({flags}); "
                "repeat that run's settings or write a new file"
            )


def _could_have_written(stage: str, record: Record) -> bool:
    """Whether a run of `stage` could have written `record`: its own records, and what it passes through
    (seeds and rewrite pass nothing through, synthesize every input record but the points it reads,
    probe every input record)."""
    written = record.get("stage")
    own = written.partition("/")[0] if isinstance(written, str) else None
    if own == stage or (stage == "rewrite" and own == "input" and record.get("kind") == "fact"):
        return True
    if stage in ("seeds", "rewrite"):
        return False
    return stage != "synthesize" or record.get("kind") != "point"


def check_resume_sources(
    existing: Iterable[Record],
    stage: str,
    model: TextModel,
    embedder: Embedder,
    points: Sequence[Record] | None = None,
) -> None:
    """A resumed run must also use the model and embedder that wrote `existing` (the names the loaded
    backends give, which records carry as `gen.model` and `gen.embedder`) and, for synthesize, the
    points its samples came from; otherwise the new records would join another run's."""
    known = {str(point.get("id")) for point in points} if points is not None else None
    for record in existing:
        written = record.get("stage")
        if not isinstance(written, str) or written.partition("/")[0] != stage:
            continue
        gen = record.get("gen")
        if not isinstance(gen, dict):
            gen = {}
        for flag, used, current in (
            ("--model", gen.get("model"), model.name),
            ("--embedder", gen.get("embedder"), embedder.name),
        ):
            if used is not None and used != current:
                raise UsageError(
                    f"--resume with another {flag[2:]} than the run that wrote the output ({used!r}, now "
                    f"{current!r}); repeat that run's {flag} or write a new file"
                )
        if known is not None and record.get("kind") == "sample" and str(record.get("parent")) not in known:
            raise UsageError(
                "--resume with other points than the run that wrote the output (its record "
                f"{record.get('id')} comes from point {record.get('parent')}); repeat that run's input "
                "or seeds settings, or write a new file"
            )


def export(
    config: ExportConfig, records: Iterable[Record], *, source: InputSource | None = None
) -> ExportResult:
    """Write the records the filters keep in `config.format` under `config.out`, all or nothing.

    `source` is the InputSource `records` are read from (`iter_records(source, required=())`); errors then
    name its file and line, and its --on-error skip applies. Loads no model and imports no torch.
    """
    from biforget.io.export import check_destination

    check_destination(config.out, config.force)  # before any input is read
    with folder_lock(config.out):
        return _export_locked(config, records, source)


def _export_locked(
    config: ExportConfig, records: Iterable[Record], source: InputSource | None
) -> ExportResult:
    from biforget.pipelines.export import export_items, select

    def where(number: int) -> str:
        return f"{source.name}:{source.line}" if source is not None else f"record {number}"

    selection = select(
        records, config, where=where, skip_bad=source is not None and source.on_error == "skip"
    )
    if not selection.items:
        raise InputError(selection.empty_message(), source=source.name if source else None)
    result = export_items(selection.items, config)
    left_out = selection.dropped_note()
    if left_out:
        result.notes.insert(0, left_out)
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
    reads = {**{str(path): path for path in paths}, "--retain": config.retain, "--trace": config.trace}
    check_paths(reads, {"-o": config.output}, stdout=True)
    with contextlib.ExitStack() as stack:
        # Where the results go is checked before anything is scored, so a bad path costs no time.
        kept = stack.enter_context(RecordWriter(config.output)) if config.drop_overlap else None
        if config.plots is not None:
            check_folder(config.plots)
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
        if kept is not None and result.kept is not None:
            kept.write_all(result.kept)
            dropped = len(data[0]) - len(result.kept)
            console.info(f"wrote {len(result.kept)} record(s) to {kept.name} ({dropped} overlapping dropped)")
    if config.plots is not None:
        from biforget.plots import write_plots

        written = write_plots(result.plots, config.plots, embedder.name)
        result.report["plots"] = [str(path) for path in written]
    return result.report


def check_folder(path: Path) -> None:
    """`path` is a folder this run can write files in (created if missing), or an OutputError."""
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder")
    make_folder(path)
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None


def print_evaluation(report: dict[str, Any]) -> None:
    """The report as one JSON document on stdout and, unless quiet, a side-by-side table on stderr."""
    from biforget.pipelines.evaluate_report import print_report, write_report

    write_report(report)  # the writer maps a closed stdout or a gone reader to their errors
    print_report(report)
    if report.get("plots"):
        console.info("plots: " + ", ".join(report["plots"]))
