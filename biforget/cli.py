"""The `biforget` command: options in, one library call, records out. Errors are mapped in `run`."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from biforget import console
from biforget.config import (
    EvaluateConfig,
    ExportConfig,
    ModelOptions,
    ProbeConfig,
    RewriteConfig,
    SeedsConfig,
    SynthesizeConfig,
    parse_float_list,
    parse_min_score,
    parse_name_list,
)
from biforget.errors import BiforgetError, UsageError

app = typer.Typer(
    name="biforget",
    help="Forget sets for LLM unlearning, written by the target model itself. Records are JSONL on stdout; "
    "messages and progress go to stderr.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

MODEL_PANEL = "Model"
OUTPUT_PANEL = "Output and settings"

# Shared options, declared once.
TopicOpt = Annotated[str, typer.Option("--topic", "-t", help='The domain, e.g. "Harry Potter".')]
ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        rich_help_panel=MODEL_PANEL,
        help="'default' (SmolLM2-135M-Instruct, packaged), a local model folder, a .gguf file or a hub id.",
    ),
]
DeviceOpt = Annotated[str, typer.Option(rich_help_panel=MODEL_PANEL, help="auto, cpu, cuda or cuda:N.")]
DtypeOpt = Annotated[
    str, typer.Option(rich_help_panel=MODEL_PANEL, help="auto, float32, bfloat16 or float16.")
]
QuantizeOpt = Annotated[
    str,
    typer.Option(
        rich_help_panel=MODEL_PANEL, help="none, 8bit or 4bit (bitsandbytes); a memory option, slower on CPU."
    ),
]
BatchSizeOpt = Annotated[int, typer.Option(rich_help_panel=MODEL_PANEL, help="Sequences per forward pass.")]
ChatTemplateOpt = Annotated[
    bool,
    typer.Option(
        "--chat-template/--no-chat-template",
        rich_help_panel=MODEL_PANEL,
        help="Wrap prompts in the model's chat template when it has one.",
    ),
]
EmbedderOpt = Annotated[
    str,
    typer.Option(
        rich_help_panel=MODEL_PANEL,
        help="'default' (all-MiniLM-L6-v2, packaged), a sentence-transformers model, or 'target'.",
    ),
]
SeedOpt = Annotated[int, typer.Option(help="Run seed: the same seed and settings give the same records.")]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        rich_help_panel=OUTPUT_PANEL,
        help="Write records to FILE (flushed per line), not stdout.",
    ),
]
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        rich_help_panel=OUTPUT_PANEL,
        help="Continue an interrupted run: keep FILE's records, append only new ones.",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        rich_help_panel=OUTPUT_PANEL,
        help="TOML file with a `defaults` table and one table per command; flags override it.",
    ),
]
InputOpt = Annotated[
    str | None,
    typer.Option(
        "--input",
        "-i",
        rich_help_panel=OUTPUT_PANEL,
        help="Read records from FILE ('-' for stdin); default: piped stdin.",
    ),
]
OnErrorOpt = Annotated[
    str,
    typer.Option(
        rich_help_panel=OUTPUT_PANEL, help="fail: stop at a bad input line; skip: count it, warn, go on."
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        rich_help_panel=OUTPUT_PANEL,
        help="No progress or info messages; warnings and errors only.",
    ),
]


def _show_version(value: bool) -> None:
    if value:
        from biforget import __version__

        typer.echo(f"biforget {__version__}", err=True)
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version (to stderr) and exit."
        ),
    ] = False,
) -> None:
    """Forget sets for LLM unlearning, written by the target model itself.

    Records are JSON lines on stdout; messages and progress go to stderr, so commands pipe into each other.
    """


def _write_records(
    produce: Callable[[console.Tracker, list[dict[str, Any]]], Iterable[dict[str, Any]]],
    output: Path | None,
    resume: bool,
) -> None:
    """Stream records to the writer as they are produced; with --resume skip ids already written."""
    from biforget.io.jsonl import RecordWriter

    with RecordWriter(output, resume=resume) as writer:
        done = writer.existing_ids
        with console.tracker() as tracker:
            for record in produce(tracker, writer.existing):
                if record.get("id") is None or record["id"] not in done:
                    writer.write(record)
        where = str(output) if output else "stdout"
        console.info(
            f"wrote {writer.written} record(s) to {where}" + (f" ({len(done)} already there)" if done else "")
        )


@app.command()
def seeds(
    topic: TopicOpt,
    count: Annotated[int, typer.Option(help="Points asked for per list.")] = SeedsConfig.count,
    depth: Annotated[
        int, typer.Option(help="Levels of expansion below the top-level points.")
    ] = SeedsConfig.depth,
    max_points: Annotated[int, typer.Option(help="Stop after this many points.")] = SeedsConfig.max_points,
    samples: Annotated[int, typer.Option(help="Generations per list request, merged.")] = SeedsConfig.samples,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = SeedsConfig.temperature,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = SeedsConfig.top_p,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per list.")] = SeedsConfig.max_new_tokens,
    dedup_threshold: Annotated[
        float, typer.Option(help="Embedding cosine at or above which two points are the same.")
    ] = SeedsConfig.dedup_threshold,
    seed: SeedOpt = SeedsConfig.seed,
    model: ModelOpt = ModelOptions.model,
    device: DeviceOpt = ModelOptions.device,
    dtype: DtypeOpt = ModelOptions.dtype,
    quantize: QuantizeOpt = ModelOptions.quantize,
    batch_size: BatchSizeOpt = ModelOptions.batch_size,
    chat_template: ChatTemplateOpt = ModelOptions.chat_template,
    embedder: EmbedderOpt = ModelOptions.embedder,
    output: OutputOpt = None,
    resume: ResumeOpt = False,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """List the domain's key points with the target model, expanding each level into sub-points."""
    from biforget import api

    console.set_quiet(quiet)
    settings = SeedsConfig(
        topic=topic,
        count=count,
        depth=depth,
        max_points=max_points,
        samples=samples,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        dedup_threshold=dedup_threshold,
        seed=seed,
    )
    options = ModelOptions(
        model=model,
        device=device,
        dtype=dtype,
        quantize=quantize,
        batch_size=batch_size,
        chat_template=chat_template,
        embedder=embedder,
    )
    _write_records(lambda tracker, _: api.seeds(settings, options, tracker=tracker), output, resume)


@app.command()
def synthesize(
    topic: Annotated[
        str | None,
        typer.Option(
            "--topic",
            "-t",
            help="The domain; with no point records on "
            "input, the points are listed first (seeds options apply).",
        ),
    ] = None,
    templates: Annotated[
        str, typer.Option(help="Comma-separated families (info, qa, user) or template ids.")
    ] = ",".join(SynthesizeConfig.templates),
    template_dir: Annotated[
        Path | None, typer.Option(help="A folder with your own templates in info/ and qa/.")
    ] = None,
    temperatures: Annotated[str, typer.Option(help="Comma-separated sampling temperatures.")] = ",".join(
        str(t) for t in SynthesizeConfig.temperatures
    ),
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = SynthesizeConfig.top_p,
    samples: Annotated[
        int, typer.Option(help="Samples per template x temperature x point.")
    ] = SynthesizeConfig.samples,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per sample.")] = SynthesizeConfig.max_new_tokens,
    rounds: Annotated[
        int, typer.Option(help="Passes over the points with fresh samples.")
    ] = SynthesizeConfig.rounds,
    dedup_threshold: Annotated[
        float, typer.Option(help="Cosine at or above which a sample is a near-duplicate.")
    ] = SynthesizeConfig.dedup_threshold,
    min_words: Annotated[
        int, typer.Option(help="Drop cleaned outputs shorter than this.")
    ] = SynthesizeConfig.min_words,
    check_every: Annotated[
        int, typer.Option(help="Accepted samples between convergence checks.")
    ] = SynthesizeConfig.check_every,
    epsilon: Annotated[
        float, typer.Option(help="Stop when diversity gains less than this between checks.")
    ] = SynthesizeConfig.epsilon,
    max_samples: Annotated[
        int, typer.Option(help="Hard cap on accepted samples.")
    ] = SynthesizeConfig.max_samples,
    trace: Annotated[Path | None, typer.Option(help="Write the diversity curve here as JSONL.")] = None,
    count: Annotated[int, typer.Option(help="seeds: points per list (with --topic).")] = SeedsConfig.count,
    depth: Annotated[
        int, typer.Option(help="seeds: levels of expansion (with --topic).")
    ] = SeedsConfig.depth,
    max_points: Annotated[
        int, typer.Option(help="seeds: most points (with --topic).")
    ] = SeedsConfig.max_points,
    seed: SeedOpt = SynthesizeConfig.seed,
    model: ModelOpt = ModelOptions.model,
    device: DeviceOpt = ModelOptions.device,
    dtype: DtypeOpt = ModelOptions.dtype,
    quantize: QuantizeOpt = ModelOptions.quantize,
    batch_size: BatchSizeOpt = ModelOptions.batch_size,
    chat_template: ChatTemplateOpt = ModelOptions.chat_template,
    embedder: EmbedderOpt = ModelOptions.embedder,
    input: InputOpt = None,
    on_error: OnErrorOpt = "fail",
    output: OutputOpt = None,
    resume: ResumeOpt = False,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Write Stage I forget-set text: every point through every template and temperature, until diversity
    converges."""
    from biforget import api
    from biforget.io.jsonl import iter_records, open_input

    console.set_quiet(quiet)
    settings = SynthesizeConfig(
        topic=topic,
        templates=tuple(t.strip() for t in templates.split(",") if t.strip()),
        template_dir=template_dir,
        temperatures=parse_float_list("--temperatures", temperatures),
        top_p=top_p,
        samples=samples,
        max_new_tokens=max_new_tokens,
        rounds=rounds,
        dedup_threshold=dedup_threshold,
        min_words=min_words,
        check_every=check_every,
        epsilon=epsilon,
        max_samples=max_samples,
        seed=seed,
    )
    seeds_settings = (
        SeedsConfig(topic=topic, count=count, depth=depth, max_points=max_points, seed=seed)
        if topic
        else None
    )
    options = ModelOptions(
        model=model,
        device=device,
        dtype=dtype,
        quantize=quantize,
        batch_size=batch_size,
        chat_template=chat_template,
        embedder=embedder,
    )
    source = open_input(input, on_error=_on_error(on_error))
    _write_records(
        lambda tracker, existing: api.synthesize(
            settings,
            options,
            records=iter_records(source),
            seeds_config=seeds_settings,
            existing=existing,
            trace=trace,
            tracker=tracker,
        ),
        output,
        resume,
    )


@app.command()
def probe(
    topic: TopicOpt,
    jailbreak: Annotated[
        int, typer.Option(help="Jailbreak-style attempts; 0 disables.")
    ] = ProbeConfig.jailbreak,
    mia: Annotated[int, typer.Option(help="Membership-inference attempts; 0 disables.")] = ProbeConfig.mia,
    points: Annotated[
        Path | None,
        typer.Option(
            help="Point records (JSONL); default: gen.point of the input samples, else the topic alone."
        ),
    ] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = ProbeConfig.temperature,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = ProbeConfig.top_p,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per attempt.")] = ProbeConfig.max_new_tokens,
    min_relevance: Annotated[
        float, typer.Option(help="Lowest embedding cosine to the topic or a point.")
    ] = ProbeConfig.min_relevance,
    dedup_threshold: Annotated[
        float, typer.Option(help="Cosine at or above which an output is a near-duplicate.")
    ] = ProbeConfig.dedup_threshold,
    min_words: Annotated[
        int, typer.Option(help="Drop cleaned outputs shorter than this.")
    ] = ProbeConfig.min_words,
    mink_k: Annotated[
        float, typer.Option(help="Fraction of lowest tokens Min-K% and Min-K%++ average.")
    ] = ProbeConfig.mink_k,
    mia_score: Annotated[
        str, typer.Option(help="mink or mink++: the score that decides.")
    ] = ProbeConfig.mia_score,
    mia_threshold: Annotated[
        float | None, typer.Option(help="Accept MIA outputs scoring above this.")
    ] = None,
    mia_calibrate: Annotated[
        Path | None,
        typer.Option(
            help="Reference texts the model should not have seen (JSONL or text): threshold at --mia-fpr."
        ),
    ] = None,
    mia_fpr: Annotated[
        float, typer.Option(help="With --mia-calibrate: most reference texts let through.")
    ] = ProbeConfig.mia_fpr,
    mia_keep: Annotated[
        float, typer.Option(help="Without a threshold: keep this top fraction of candidates.")
    ] = ProbeConfig.mia_keep,
    seed: SeedOpt = ProbeConfig.seed,
    model: ModelOpt = ModelOptions.model,
    device: DeviceOpt = ModelOptions.device,
    dtype: DtypeOpt = ModelOptions.dtype,
    quantize: QuantizeOpt = ModelOptions.quantize,
    batch_size: BatchSizeOpt = ModelOptions.batch_size,
    chat_template: ChatTemplateOpt = ModelOptions.chat_template,
    embedder: EmbedderOpt = ModelOptions.embedder,
    input: InputOpt = None,
    on_error: OnErrorOpt = "fail",
    output: OutputOpt = None,
    resume: ResumeOpt = False,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Stage II: pass the input samples through, then add samples from jailbreak and membership-inference
    probing."""
    from biforget import api
    from biforget.io.jsonl import iter_records, open_input

    console.set_quiet(quiet)
    settings = ProbeConfig(
        topic=topic,
        jailbreak=jailbreak,
        mia=mia,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        min_relevance=min_relevance,
        dedup_threshold=dedup_threshold,
        min_words=min_words,
        mink_k=mink_k,
        mia_score=mia_score,
        mia_threshold=mia_threshold,
        mia_calibrate=mia_calibrate,
        mia_fpr=mia_fpr,
        mia_keep=mia_keep,
        seed=seed,
    )
    options = ModelOptions(
        model=model,
        device=device,
        dtype=dtype,
        quantize=quantize,
        batch_size=batch_size,
        chat_template=chat_template,
        embedder=embedder,
    )
    source = open_input(input, on_error=_on_error(on_error))
    _write_records(
        lambda tracker, existing: api.probe(
            settings,
            options,
            records=iter_records(source),
            points_file=points,
            existing=existing,
            tracker=tracker,
        ),
        output,
        resume,
    )


@app.command()
def rewrite(
    variants: Annotated[
        int, typer.Option(help="Accepted variants wanted per fact (per round).")
    ] = RewriteConfig.variants,
    temperatures: Annotated[str, typer.Option(help="Comma-separated sampling temperatures.")] = ",".join(
        str(t) for t in RewriteConfig.temperatures
    ),
    attempts: Annotated[
        int | None,
        typer.Option(help="Most generations per fact and round to reach --variants; default 3 x --variants."),
    ] = None,
    statements: Annotated[
        bool,
        typer.Option(
            "--statements/--no-statements",
            help="QA facts: one declarative statement variant more, not counted in --variants.",
        ),
    ] = True,
    rounds: Annotated[
        int, typer.Option(help="Passes with fresh samples; the fact is written once.")
    ] = RewriteConfig.rounds,
    draws: Annotated[
        int, typer.Option(help="QA facts: questions and answers sampled per attempt, paired by the checks.")
    ] = RewriteConfig.draws,
    min_similarity: Annotated[
        float, typer.Option(help="Embedding cosine to the fact a variant must exceed.")
    ] = RewriteConfig.min_similarity,
    max_similarity: Annotated[
        float, typer.Option(help="Cosine at or above which a variant is a near copy.")
    ] = RewriteConfig.max_similarity,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = RewriteConfig.top_p,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per rewrite.")] = RewriteConfig.max_new_tokens,
    question_key: Annotated[str, typer.Option(help="Input field holding the question.")] = "question",
    answer_key: Annotated[str, typer.Option(help="Input field holding the answer.")] = "answer",
    text_key: Annotated[str, typer.Option(help="Input field holding a text fact.")] = "text",
    keep_rejected: Annotated[
        Path | None, typer.Option(help="Write rejected rewrites with their reasons here (JSONL).")
    ] = None,
    seed: SeedOpt = RewriteConfig.seed,
    model: ModelOpt = ModelOptions.model,
    device: DeviceOpt = ModelOptions.device,
    dtype: DtypeOpt = ModelOptions.dtype,
    quantize: QuantizeOpt = ModelOptions.quantize,
    batch_size: BatchSizeOpt = ModelOptions.batch_size,
    chat_template: ChatTemplateOpt = ModelOptions.chat_template,
    embedder: EmbedderOpt = ModelOptions.embedder,
    input: InputOpt = None,
    on_error: OnErrorOpt = "fail",
    output: OutputOpt = None,
    resume: ResumeOpt = False,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Rewrite each fact (JSONL, JSON array or CSV with question+answer or text) into meaning-preserving
    variants: the fact record, then its variants."""
    from biforget import api
    from biforget.io.facts import FactKeys, read_facts

    console.set_quiet(quiet)
    settings = RewriteConfig(
        variants=variants,
        temperatures=parse_float_list("--temperatures", temperatures),
        top_p=top_p,
        attempts=attempts,
        statements=statements,
        rounds=rounds,
        draws=draws,
        min_similarity=min_similarity,
        max_similarity=max_similarity,
        max_new_tokens=max_new_tokens,
        seed=seed,
    )
    options = ModelOptions(
        model=model,
        device=device,
        dtype=dtype,
        quantize=quantize,
        batch_size=batch_size,
        chat_template=chat_template,
        embedder=embedder,
    )
    facts = read_facts(input, FactKeys(question_key, answer_key, text_key), on_error=_on_error(on_error))
    _write_records(
        lambda tracker, existing: api.rewrite(
            settings, facts, options, existing=existing, keep_rejected=keep_rejected, tracker=tracker
        ),
        output,
        resume,
    )


@app.command()
def export(
    format: Annotated[
        str, typer.Option("--format", "-f", help="muse, open-unlearning, rmu, dusk, tofu, hf, csv or txt.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write; staged beside it and renamed, never half-written.")
    ],
    kinds: Annotated[
        str | None, typer.Option(help="Comma-separated kinds to keep; default: all but point.")
    ] = None,
    stages: Annotated[
        str | None, typer.Option(help="Comma-separated stages to keep (probe = probe/*).")
    ] = None,
    min_score: Annotated[
        list[str] | None,
        typer.Option(
            "--min-score", help="NAME=VALUE: keep records whose scores.NAME is at least VALUE; repeatable."
        ),
    ] = None,
    keep_unscored: Annotated[
        bool, typer.Option(help="With --min-score: keep records without that score.")
    ] = False,
    benchmark: Annotated[
        str | None,
        typer.Option(
            help="open-unlearning: tofu, muse or wmdp (retain set, model, eval); default tofu for QA sets, "
            "muse for text."
        ),
    ] = None,
    name: Annotated[
        str, typer.Option(help="Dataset and experiment name (open-unlearning), file prefix (rmu).")
    ] = ExportConfig.name,
    data_path: Annotated[
        str | None,
        typer.Option(
            help="open-unlearning: the forget.jsonl path the dataset YAML names; default its absolute path."
        ),
    ] = None,
    task_id: Annotated[
        bool,
        typer.Option(
            "--task-id", help="tofu: add task_id (the record's own, else one per fact and its variants)."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty DIR, replacing same-named files.")
    ] = False,
    input: InputOpt = None,
    on_error: OnErrorOpt = "fail",
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Write a forget set in the layout an unlearning framework reads. Loads no model."""
    from biforget import api
    from biforget.io.jsonl import iter_records, open_input

    console.set_quiet(quiet)
    settings = ExportConfig(
        format=format,
        out=out,
        force=force,
        kinds=parse_name_list("--kinds", kinds),
        stages=parse_name_list("--stages", stages) or (),
        min_scores=tuple(parse_min_score(value) for value in min_score or ()),
        keep_unscored=keep_unscored,
        task_id=task_id,
        benchmark=benchmark,
        name=name,
        data_path=data_path,
    )
    source = open_input(input, on_error=_on_error(on_error))
    if not source.present:
        raise UsageError("no input: pass -i FILE or pipe records in")
    result = api.export(settings, iter_records(source, required=()), source=source)
    console.info(
        f"exported {result.records} record(s) as {result.format} to {result.out}: " + ", ".join(result.files)
    )


@app.command()
def evaluate(
    sets: Annotated[
        list[Path],
        typer.Argument(
            help="Sets to score: biforget JSONL, .txt, .csv or .json.", metavar="SET", show_default=False
        ),
    ],
    against: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="FILE",
            help="A baseline set (a book text, a textbook-style CSV, another corpus); repeatable.",
        ),
    ] = None,
    topic: Annotated[
        str | None,
        typer.Option(
            "--topic", "-t", help="The domain; default: the records' `topic` field when they agree."
        ),
    ] = None,
    name: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="Name each set (SETs, then --against files, in order); default: the file stem.",
        ),
    ] = None,
    lines: Annotated[
        bool, typer.Option("--lines", help="Plain text: one document per line, not per paragraph.")
    ] = False,
    chunk_tokens: Annotated[
        int, typer.Option(help="Tokens per chunk (efficiency, relevance).")
    ] = EvaluateConfig.chunk_tokens,
    sample_size: Annotated[
        int, typer.Option(help="Records per set for diversity and coverage (seeded).")
    ] = EvaluateConfig.sample_size,
    relevance_seeds: Annotated[
        int, typer.Option(help="t-SNE runs averaged for relevance.")
    ] = EvaluateConfig.relevance_seeds,
    relevance_chunks: Annotated[
        int, typer.Option(help="Chunks sampled per set for relevance.")
    ] = EvaluateConfig.relevance_chunks,
    relevance_nearest: Annotated[
        int, typer.Option(help="Chunks nearest the topic kept for the t-SNE map.")
    ] = EvaluateConfig.relevance_nearest,
    clusters: Annotated[int, typer.Option(help="k-means clusters for coverage.")] = EvaluateConfig.clusters,
    retain: Annotated[
        Path | None, typer.Option(help="Retain set: measure the knowledge the sets share with it.")
    ] = None,
    overlap_threshold: Annotated[
        float, typer.Option(help="Cosine to the nearest retain record at or above which a record overlaps.")
    ] = EvaluateConfig.overlap_threshold,
    top_overlaps: Annotated[
        int, typer.Option(help="Worst overlapping records listed per set.")
    ] = EvaluateConfig.top_overlaps,
    drop_overlap: Annotated[
        bool,
        typer.Option(
            "--drop-overlap",
            help="Write the SET without its overlapping records to -o FILE (needs --retain).",
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            rich_help_panel=OUTPUT_PANEL,
            help="With --drop-overlap: where the kept records go.",
        ),
    ] = None,
    plots: Annotated[Path | None, typer.Option(help="Write PNG figures into this folder.")] = None,
    trace: Annotated[
        Path | None, typer.Option(help="A `synthesize --trace` file: plot its convergence.")
    ] = None,
    seed: SeedOpt = EvaluateConfig.seed,
    model: ModelOpt = ModelOptions.model,
    device: DeviceOpt = ModelOptions.device,
    dtype: DtypeOpt = ModelOptions.dtype,
    quantize: QuantizeOpt = ModelOptions.quantize,
    batch_size: BatchSizeOpt = ModelOptions.batch_size,
    embedder: EmbedderOpt = ModelOptions.embedder,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Score sets side by side: efficiency, diversity, relevance, coverage, overlap. JSON report on stdout."""
    from biforget import api
    from biforget.pipelines.evaluate import print_report, write_report

    console.set_quiet(quiet)
    settings = EvaluateConfig(
        topic=topic,
        chunk_tokens=chunk_tokens,
        sample_size=sample_size,
        relevance_seeds=relevance_seeds,
        relevance_chunks=relevance_chunks,
        relevance_nearest=relevance_nearest,
        clusters=clusters,
        overlap_threshold=overlap_threshold,
        top_overlaps=top_overlaps,
        lines=lines,
        names=tuple(name or ()),
        retain=retain,
        drop_overlap=drop_overlap,
        output=output,
        plots=plots,
        trace=trace,
        seed=seed,
    )
    options = ModelOptions(
        model=model, device=device, dtype=dtype, quantize=quantize, batch_size=batch_size, embedder=embedder
    )
    with console.tracker() as tracker:
        report = api.evaluate(settings, sets, against or (), options, tracker=tracker)
    write_report(report)
    print_report(report)
    if report.get("plots"):
        console.info("plots: " + ", ".join(report["plots"]))


def _on_error(value: str) -> Literal["fail", "skip"]:
    if value not in ("fail", "skip"):
        raise UsageError(f"--on-error must be fail or skip, not {value!r}")
    return "fail" if value == "fail" else "skip"


def _config_path(args: Sequence[str]) -> Path | None:
    """`--config FILE` is applied before parsing, so the file can supply every other option's default."""
    for index, arg in enumerate(args):
        if arg == "--config" and index + 1 < len(args):
            return Path(args[index + 1])
        if arg.startswith("--config="):
            return Path(arg.partition("=")[2])
    return None


def _default_map(args: Sequence[str]) -> dict[str, Any] | None:
    from biforget.config import config_default_map

    path = _config_path(args)
    if path is None:
        return None
    group = typer.main.get_command(app)
    commands = {
        name: [p.name for p in command.params if p.name]
        for name, command in getattr(group, "commands", {}).items()
    }
    return config_default_map(path, commands)


def exit_code_for(exc: BaseException) -> int:
    """The one table from exceptions to a one-line message on stderr and an exit code."""
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if isinstance(exc, KeyboardInterrupt):
        console.error("interrupted")
        return 130
    if console.debug_enabled():
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, BiforgetError):
        console.error(str(exc))
        return exc.exit_code
    format_message = getattr(exc, "format_message", None)
    exit_code = getattr(exc, "exit_code", None)
    if callable(format_message) and isinstance(exit_code, int):
        # Typer's own usage errors (an option that does not parse, a missing option).
        if type(exc).__name__ == "NoArgsIsHelpError":
            # Bare `biforget`: the help is the answer (rich has printed it already, plain Click carries
            # it as the message), not an "error:" line with nothing after it.
            if format_message().strip():
                print(format_message(), file=sys.stderr)
            return exit_code
        context = getattr(exc, "ctx", None)
        where = f"{context.command_path}: " if context is not None else ""
        console.error(f"{where}{format_message()}")
        return exit_code
    if isinstance(exc, typer.Abort):
        console.error("aborted")
        return 1
    if isinstance(exc, MemoryError):
        console.error("out of memory; try a smaller --batch-size or --quantize 8bit/4bit")
        return 1
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    console.error(
        f"internal error: {type(exc).__name__}: {first_line} (set BIFORGET_DEBUG=1 for a traceback)"
    )
    return 1


def run(args: Sequence[str] | None = None) -> int:
    """Run the CLI on `args` and return the exit code instead of exiting."""
    arguments = list(sys.argv[1:] if args is None else args)
    try:
        result = app(
            args=arguments, prog_name="biforget", standalone_mode=False, default_map=_default_map(arguments)
        )
    except BaseException as exc:
        return exit_code_for(exc)
    if isinstance(result, int) and result == 130:
        console.error("interrupted")
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run())
