"""The commands that run the target model and write records: seeds, synthesize, probe, rewrite."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from biforget.cli.shared import (
    COMMON,
    INPUT,
    MODEL,
    OUTPUT,
    MinWordsOpt,
    SeedOpt,
    TemperatureOpt,
    TemperaturesOpt,
    TopicOpt,
    TopPOpt,
    app,
    begin,
    emit,
    model_options,
    on_error,
    with_options,
)
from biforget.config import ProbeConfig, RewriteConfig, SeedsConfig, SynthesizeConfig
from biforget.io.facts import FactKeys

# The seeds settings synthesize --topic passes on to the points it lists first.
SEEDS_KEYS = ("topic", "count", "depth", "max_points", "seed")


@app.command()
@with_options(MODEL, OUTPUT, COMMON)
def seeds(
    ctx: typer.Context,
    topic: TopicOpt,
    count: Annotated[int, typer.Option(help="Points asked for per list.")] = SeedsConfig.count,
    depth: Annotated[
        int, typer.Option(help="Levels of expansion below the top-level points.")
    ] = SeedsConfig.depth,
    max_points: Annotated[int, typer.Option(help="Stop after this many points.")] = SeedsConfig.max_points,
    samples: Annotated[int, typer.Option(help="Generations per list request, merged.")] = SeedsConfig.samples,
    temperature: TemperatureOpt = SeedsConfig.temperature,
    top_p: TopPOpt = SeedsConfig.top_p,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per list.")] = SeedsConfig.max_new_tokens,
    dedup_threshold: Annotated[
        float, typer.Option(help="Embedding cosine at or above which two points are the same.")
    ] = SeedsConfig.dedup_threshold,
    seed: SeedOpt = SeedsConfig.seed,
) -> None:
    """List the domain's key points with the target model, expanding each level into sub-points."""
    from biforget import api

    values = begin(ctx)
    settings = SeedsConfig.from_mapping(values, strict=False)
    options = model_options(values)
    emit(
        values,
        lambda tracker, existing: api.seeds(settings, options, existing=existing, tracker=tracker),
        settings,
    )


@app.command()
@with_options(MODEL, INPUT, OUTPUT, COMMON)
def synthesize(
    ctx: typer.Context,
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
    temperatures: TemperaturesOpt = ",".join(str(t) for t in SynthesizeConfig.temperatures),
    top_p: TopPOpt = SynthesizeConfig.top_p,
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
    min_words: MinWordsOpt = SynthesizeConfig.min_words,
    stop: Annotated[
        str,
        typer.Option(
            help="novelty: stop when recent samples stop bringing anything new; diversity: the original "
            "scripts' rule (--epsilon), unreliable on an interleaved run (docs/stopping.md)."
        ),
    ] = SynthesizeConfig.stop,
    window: Annotated[
        int, typer.Option(help="--stop novelty: offers (kept or refused as repeats) the rate is taken over.")
    ] = SynthesizeConfig.window,
    novelty_threshold: Annotated[
        float, typer.Option(help="--stop novelty: an offer is new below this cosine to everything kept.")
    ] = SynthesizeConfig.novelty_threshold,
    min_novelty: Annotated[
        float,
        typer.Option(
            help="--stop novelty: stop when fewer new offers than this share are in the window "
            "(once every point was asked at every temperature)."
        ),
    ] = SynthesizeConfig.min_novelty,
    check_every: Annotated[
        int, typer.Option(help="Accepted samples between checks (trace lines; the --stop diversity rule).")
    ] = SynthesizeConfig.check_every,
    epsilon: Annotated[
        float, typer.Option(help="--stop diversity: stop when diversity gains less than this between checks.")
    ] = SynthesizeConfig.epsilon,
    max_samples: Annotated[
        int, typer.Option(help="Hard cap on accepted samples.")
    ] = SynthesizeConfig.max_samples,
    trace: Annotated[
        Path | None, typer.Option(help="Write the novelty rate and diversity at every check here (JSONL).")
    ] = None,
    count: Annotated[int, typer.Option(help="seeds: points per list (with --topic).")] = SeedsConfig.count,
    depth: Annotated[
        int, typer.Option(help="seeds: levels of expansion (with --topic).")
    ] = SeedsConfig.depth,
    max_points: Annotated[
        int, typer.Option(help="seeds: most points (with --topic).")
    ] = SeedsConfig.max_points,
    seed: SeedOpt = SynthesizeConfig.seed,
) -> None:
    """Write Stage I forget-set text: every point through every template and temperature, until new samples
    stop bringing anything new."""
    from biforget import api
    from biforget.io.jsonl import iter_records, open_input

    values = begin(ctx)
    settings = SynthesizeConfig.from_mapping(values, strict=False)
    seeds_settings = SeedsConfig.from_mapping({k: values[k] for k in SEEDS_KEYS}) if topic else None
    options = model_options(values)
    source = open_input(values["input"], on_error=on_error(values["on_error"]))
    emit(
        values,
        lambda tracker, existing: api.synthesize(
            settings,
            options,
            records=iter_records(source, allow_empty=False),
            seeds_config=seeds_settings,
            existing=existing,
            trace=trace,
            tracker=tracker,
        ),
        settings,
        reads={"-i": values["input"] or "-"},
        writes={"--trace": trace},
    )


@app.command()
@with_options(MODEL, INPUT, OUTPUT, COMMON)
def probe(
    ctx: typer.Context,
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
    temperature: TemperatureOpt = ProbeConfig.temperature,
    top_p: TopPOpt = ProbeConfig.top_p,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per attempt.")] = ProbeConfig.max_new_tokens,
    min_relevance: Annotated[
        float, typer.Option(help="Lowest embedding cosine to the topic or a point.")
    ] = ProbeConfig.min_relevance,
    dedup_threshold: Annotated[
        float, typer.Option(help="Cosine at or above which an output is a near-duplicate.")
    ] = ProbeConfig.dedup_threshold,
    min_words: MinWordsOpt = ProbeConfig.min_words,
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
) -> None:
    """Stage II: pass the input samples through, then add samples from jailbreak and membership-inference
    probing."""
    from biforget import api
    from biforget.io.jsonl import iter_records, open_input

    values = begin(ctx)
    settings = ProbeConfig.from_mapping(values, strict=False)
    options = model_options(values)
    source = open_input(values["input"], on_error=on_error(values["on_error"]))
    emit(
        values,
        lambda tracker, existing: api.probe(
            settings,
            options,
            records=iter_records(source, allow_empty=False),
            points_file=points,
            existing=existing,
            tracker=tracker,
        ),
        settings,
        reads={"-i": values["input"] or "-", "--points": points, "--mia-calibrate": mia_calibrate},
    )


@app.command()
@with_options(MODEL, INPUT, OUTPUT, COMMON)
def rewrite(
    ctx: typer.Context,
    variants: Annotated[
        int, typer.Option(help="Accepted variants wanted per fact (per round).")
    ] = RewriteConfig.variants,
    temperatures: TemperaturesOpt = ",".join(str(t) for t in RewriteConfig.temperatures),
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
    ] = RewriteConfig.statements,
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
    top_p: TopPOpt = RewriteConfig.top_p,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per rewrite.")] = RewriteConfig.max_new_tokens,
    question_key: Annotated[str, typer.Option(help="Input field holding the question.")] = FactKeys.question,
    answer_key: Annotated[str, typer.Option(help="Input field holding the answer.")] = FactKeys.answer,
    text_key: Annotated[str, typer.Option(help="Input field holding a text fact.")] = FactKeys.text,
    keep_rejected: Annotated[
        Path | None, typer.Option(help="Write rejected rewrites with their reasons here (JSONL).")
    ] = None,
    seed: SeedOpt = RewriteConfig.seed,
) -> None:
    """Rewrite each fact (JSONL, JSON array or CSV with question+answer or text) into meaning-preserving
    variants: the fact record, then its variants."""
    from biforget import api
    from biforget.io.facts import read_facts

    values = begin(ctx)
    settings = RewriteConfig.from_mapping(values, strict=False)
    options = model_options(values)
    keys = FactKeys(question_key, answer_key, text_key)
    facts = read_facts(values["input"], keys, on_error=on_error(values["on_error"]))
    emit(
        values,
        lambda tracker, existing: api.rewrite(
            settings, facts, options, existing=existing, keep_rejected=keep_rejected, tracker=tracker
        ),
        settings,
        reads={"-i": values["input"] or "-"},
        writes={"--keep-rejected": keep_rejected},
    )
