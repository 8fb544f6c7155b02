"""The commands that work on finished sets: export (no model) and evaluate (tokenizer and embedder)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from biforget import console
from biforget.cli.shared import (
    COMMON,
    INPUT,
    MODEL,
    OUTPUT_PANEL,
    SeedOpt,
    app,
    begin,
    model_options,
    on_error,
    with_options,
)
from biforget.config import EvaluateConfig, ExportConfig
from biforget.errors import UsageError


@app.command()
@with_options(INPUT, COMMON)
def export(
    ctx: typer.Context,
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
    shape: Annotated[
        str | None,
        typer.Option(
            help="qa: keep question/answer records only; text: keep text-only records; default both."
        ),
    ] = None,
    min_score: Annotated[
        list[str] | None,
        typer.Option(
            "--min-score", help="NAME=VALUE: keep records whose scores.NAME is at least VALUE; repeatable."
        ),
    ] = None,
    keep_unscored: Annotated[
        bool, typer.Option(help="With --min-score: keep records without that score.")
    ] = ExportConfig.keep_unscored,
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
    ] = ExportConfig.task_id,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty DIR, replacing same-named files.")
    ] = ExportConfig.force,
) -> None:
    """Write a forget set in the layout an unlearning framework reads. Loads no model."""
    from biforget import api
    from biforget.io.jsonl import iter_records, open_input

    values = begin(ctx)
    settings = ExportConfig.from_mapping(values, strict=False)
    source = open_input(values["input"], on_error=on_error(values["on_error"]))
    if not source.present:
        raise UsageError("no input: pass -i FILE or pipe records in")
    result = api.export(settings, iter_records(source, required=()), source=source)
    console.info(
        f"exported {result.records} record(s) as {result.format} to {result.out}: " + ", ".join(result.files)
    )


@app.command()
@with_options(MODEL, COMMON, leave_out=("chat_template",))
def evaluate(
    ctx: typer.Context,
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
    ] = EvaluateConfig.lines,
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
    ] = EvaluateConfig.drop_overlap,
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
) -> None:
    """Score sets side by side: efficiency, diversity, relevance, coverage, overlap. JSON report on stdout."""
    from biforget import api

    values = begin(ctx)
    settings = EvaluateConfig.from_mapping(values, strict=False)
    options = model_options(values)
    with console.tracker() as tracker:
        report = api.evaluate(settings, sets, against or (), options, tracker=tracker)
    api.print_evaluation(report)
