"""The commands that close the loop: unlearn a set from the target, then audit what went."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from biforget import console
from biforget.cli.shared import COMMON, MODEL, OUTPUT_PANEL, SeedOpt, app, begin, model_options, with_options
from biforget.config import AuditConfig, UnlearnConfig

QA_FORMAT_HELP = (
    "QA records: chat (the question as a user turn of the chat template, the answer with its end token, "
    "as generation and the frameworks' QA datasets query it) or raw ('question answer')."
)
SetPath = Annotated[Path | None, typer.Option(metavar="SET", show_default=False)]


@app.command()
@with_options(MODEL, COMMON, leave_out=("batch_size", "embedder"))
def unlearn(
    ctx: typer.Context,
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            metavar="SET",
            rich_help_panel=OUTPUT_PANEL,
            help="The forget set: biforget JSONL, .txt, .csv or .json (as evaluate reads).",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(help="Model folder to write (load it with --model DIR); staged beside it and renamed."),
    ],
    method: Annotated[
        str,
        typer.Option(help="ga (gradient ascent), gd (ascent plus descent on --retain) or npo."),
    ] = UnlearnConfig.method,
    retain: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="gd (needed), npo (optional, as open-unlearning's NPO): the set to keep (descent on "
            "its NLL).",
        ),
    ] = None,
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = UnlearnConfig.steps,
    lr: Annotated[float, typer.Option(help="Learning rate (constant, AdamW).")] = UnlearnConfig.lr,
    batch_size: Annotated[int, typer.Option(help="Forget sequences per step.")] = UnlearnConfig.batch_size,
    max_length: Annotated[int, typer.Option(help="Tokens per sequence; longer ones are cut.")] = (
        UnlearnConfig.max_length
    ),
    beta: Annotated[float, typer.Option(help="npo: inverse temperature.")] = UnlearnConfig.beta,
    retain_weight: Annotated[
        float, typer.Option(help="gd, npo with --retain: weight of the retain NLL (open-unlearning's alpha).")
    ] = UnlearnConfig.retain_weight,
    qa_format: Annotated[str, typer.Option(help=QA_FORMAT_HELP)] = UnlearnConfig.qa_format,
    lora: Annotated[
        bool,
        typer.Option(
            "--lora", help="Train LoRA adapters (needs peft, the lora extra), merged into the folder."
        ),
    ] = UnlearnConfig.lora,
    lora_rank: Annotated[int, typer.Option(help="--lora: adapter rank.")] = UnlearnConfig.lora_rank,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out folder.")] = (
        UnlearnConfig.force
    ),
    seed: SeedOpt = UnlearnConfig.seed,
) -> None:
    """Unlearn a forget set from the target with a reference method (GA, GD, NPO); a smoke test and a
    way to compare sets, not a replacement for the unlearning frameworks `export` writes for."""
    from biforget import api_loop

    values = begin(ctx)
    settings = UnlearnConfig.from_mapping(values, strict=False)
    options = model_options(values)
    with console.tracker() as tracker:
        result = api_loop.unlearn(settings, input, options, tracker=tracker)
    report = result.report
    console.info(
        f"wrote the unlearned model to {settings.out} ({report['method']}, {settings.steps} steps, "
        f"{report['seconds_per_step']} s/step); audit it with --unlearned {settings.out}"
    )


@app.command()
@with_options(MODEL, COMMON, leave_out=("embedder",))
def audit(
    ctx: typer.Context,
    unlearned: Annotated[
        list[str] | None,
        typer.Option(metavar="DIR", help="An unlearned model folder (or any --model spec); repeatable."),
    ] = None,
    forget: SetPath = None,
    heldout: Annotated[
        Path | None,
        typer.Option(metavar="SET", help="Text on the domain the model knows that is not in the forget set."),
    ] = None,
    retain: Annotated[
        Path | None, typer.Option(metavar="SET", help="Unrelated text the model should keep (damage).")
    ] = None,
    paraphrases: Annotated[
        Path | None,
        typer.Option(metavar="SET", help="The forget set's facts in other words (rewrite variants)."),
    ] = None,
    nonmember: Annotated[
        Path | None,
        typer.Option(
            metavar="SET",
            help="Text the target never saw (e.g. written after its cutoff, or invented facts): the "
            "membership AUC of the forget and held-out sets against it, by Min-K%.",
        ),
    ] = None,
    name: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="Name each --unlearned model, in order; default: its folder name."),
    ] = None,
    mink_k: Annotated[float, typer.Option(help="Min-K%: the share of lowest token log-probs.")] = (
        AuditConfig.mink_k
    ),
    max_new_tokens: Annotated[int, typer.Option(help="QA sets: length of the greedy answer.")] = (
        AuditConfig.max_new_tokens
    ),
    rouge: Annotated[
        bool, typer.Option("--rouge/--no-rouge", help="QA sets: ROUGE-L of the greedy answers (generation).")
    ] = AuditConfig.rouge,
    as_text: Annotated[
        bool,
        typer.Option(
            "--as-text", help="Score no record as QA (no answer NLL or ROUGE-L); nll and mink only."
        ),
    ] = AuditConfig.as_text,
    qa_format: Annotated[str, typer.Option(help=QA_FORMAT_HELP + " Use unlearn's.")] = AuditConfig.qa_format,
    min_forget_shift: Annotated[
        float,
        typer.Option(
            help="Transfer and selectivity only when the forget NLL shift reaches this (nats/token)."
        ),
    ] = AuditConfig.min_forget_shift,
    bootstrap: Annotated[
        int, typer.Option(help="Paired bootstrap resamples over records for the 95% intervals; 0: none.")
    ] = AuditConfig.bootstrap,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resamples.")] = AuditConfig.seed,
    plots: Annotated[Path | None, typer.Option(help="Write PNG figures into this folder.")] = None,
) -> None:
    """Did the domain go? Score forget, held-out, retain and paraphrase sets under the target and each
    unlearned model: NLL and Min-K% shifts, transfer, damage, selectivity, with bootstrap intervals. A set
    may mix QA and text records: QA metrics on its QA records, NLL and Min-K% on all. JSON on stdout."""
    from biforget import api_loop

    values = begin(ctx)
    settings = AuditConfig.from_mapping(values, strict=False)
    options = model_options(values)
    with console.tracker() as tracker:
        report = api_loop.audit(settings, options, tracker=tracker)
    api_loop.print_audit(report)
