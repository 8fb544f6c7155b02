"""`synthesize`: Stage I, seed-guided synthesis until the diversity curve flattens.

Every point is rendered into every selected template and sampled at every temperature, `samples` times,
round after round. The work plan is a fixed list of requests, each one sample of one point through one
template at one temperature, with a seed drawn from exactly that identity (never from a batch), so any
request regenerates identically whatever its batch; that is what makes `--resume` exact, even at another
`--batch-size`. The order keeps a stop at any moment balanced: points take turns (every point gets its
next sample before any point gets another), and as the points take turns they step through the
template x temperature combinations in an order where neighbours differ in both, so any window of
consecutive samples spans the templates and temperatures as evenly as the counts allow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from biforget import console
from biforget.config import SynthesizeConfig
from biforget.console import Tracker
from biforget.dedup import Deduplicator
from biforget.errors import NothingProduced, UsageError
from biforget.io.jsonl import RecordWriter
from biforget.metrics.diversity import DiversityTracker
from biforget.models.base import Embedder, GenerationRequest, TextModel
from biforget.parse import clean_output
from biforget.pipelines import wave_size
from biforget.records import Provenance, Record, derive_seed, make_record
from biforget.templates import Template, load_family, load_folder

STAGE = "synthesize"
FAMILIES = ("info", "qa")
PLACEHOLDERS = {"point", "topic"}
# Settings that decide when a run stops, not what a given sample says: left out of ids so a longer
# or shorter run keeps the ids it shares with this one.
_NOT_IN_IDS = ("rounds", "check_every", "epsilon", "max_samples")


def select_templates(selection: Sequence[str], template_dir: Path | None = None) -> list[Template]:
    """Templates by family (`info`, `qa`, `user`) or id (`info/rewrite`, `synthesize/qa/why-how`).

    A user's own templates live in `template_dir/info/*.txt` and `template_dir/qa/*.txt`; all are checked
    for placeholders now, so a bad one stops the run before any model is loaded.
    """
    available: list[Template] = []
    for family in FAMILIES:
        available += load_family(f"synthesize/{family}", allowed=PLACEHOLDERS, required={"point"})
    if template_dir is not None:
        if not template_dir.is_dir():
            raise UsageError(f"--template-dir {template_dir}: not a folder")
        for family in FAMILIES:
            available += load_folder(
                template_dir / family, f"user/{family}", allowed=PLACEHOLDERS, required={"point"}
            )
    chosen: list[Template] = []
    for item in selection:
        key = item.strip().strip("/")
        matches = [t for t in available if _matches(t, key)]
        if not matches:
            known = sorted({*FAMILIES, "user", *(t.id.removeprefix("synthesize/") for t in available)})
            raise UsageError(
                f"--templates: {key!r} is neither a family nor a template id (known: {', '.join(known)})"
            )
        chosen += [t for t in matches if t not in chosen]
    return chosen


def _matches(template: Template, key: str) -> bool:
    short = template.id.removeprefix("synthesize/")
    family = short.split("/")[0] if not short.startswith("user/") else "user"
    return key in (template.id, short, family) or (key in FAMILIES and short.startswith(f"user/{key}/"))


def in_qa_family(template: Template) -> bool:
    """Templates of the `qa` family (built-in or a user's) ask for a question and its answer."""
    return "/qa/" in f"/{template.id}/"


@dataclass(frozen=True)
class PlannedSample:
    """One request of the plan: a sample of a point through a template at a temperature."""

    point: Record
    template: Template
    temperature: float
    round: int
    sample: int


def interleaved_combinations(templates: int, temperatures: int) -> list[tuple[int, int]]:
    """Every (template, temperature) index pair once, neighbours differing in both where possible.

    Pair q is (q mod T, (q + q // L) mod M) with L = lcm(T, M): the first L pairs walk both indices
    together (all pairs whose difference is 0 modulo gcd(T, M)), each next block of L shifts the
    temperature by one, and the gcd(T, M) blocks together cover the grid.
    """
    block = math.lcm(templates, temperatures)
    return [(q % templates, (q + q // block) % temperatures) for q in range(templates * temperatures)]


def plan_units(
    points: Sequence[Record], templates: Sequence[Template], config: SynthesizeConfig
) -> list[PlannedSample]:
    """The fixed work plan: rounds, then sample passes, then turns of the points over the combinations."""
    combinations = interleaved_combinations(len(templates), len(config.temperatures))
    units: list[PlannedSample] = []
    for round_index in range(config.rounds):
        for sample in range(config.samples):
            for turn in range(len(combinations)):
                for position, point in enumerate(points):
                    # Offsetting by the sample pass and the round keeps early stops from always meeting
                    # the same combinations first.
                    template, temperature = combinations[
                        (turn + position + sample + round_index) % len(combinations)
                    ]
                    units.append(
                        PlannedSample(
                            point, templates[template], config.temperatures[temperature], round_index, sample
                        )
                    )
    return units


def unit_seed(unit: PlannedSample, seed: int) -> int:
    """A request's seed from its identity alone, so neither its batch nor the plan's order changes it."""
    return derive_seed(
        seed, STAGE, unit.point.get("id"), unit.template.id, unit.temperature, unit.round, unit.sample
    )


class _Trace:
    """The diversity curve as JSONL lines `{"samples": N, "diversity": D}`, written by the record writer."""

    def __init__(self, path: Path | None) -> None:
        self._writer = RecordWriter(path) if path else None
        self._last: int | None = None

    def write(self, samples: int, diversity: float) -> None:
        # The run's last value is written at its end; when a check just wrote it, once is enough.
        if self._writer and samples != self._last:
            self._writer.write({"samples": samples, "diversity": round(diversity, 6)})
            self._last = samples

    def close(self) -> None:
        if self._writer:
            self._writer.close()


def synthesize_samples(
    model: TextModel,
    embedder: Embedder,
    points: Sequence[Record],
    config: SynthesizeConfig,
    *,
    existing: Iterable[Record] = (),
    trace: Path | None = None,
    tracker: Tracker | None = None,
    templates: Sequence[Template] | None = None,
) -> Iterator[Record]:
    """Yield accepted `sample` records until diversity converges, the plan ends or `max_samples`.

    `existing` are records a previous run of the same settings wrote (`--resume`): they rebuild the
    dedup and convergence state, and the plan restarts at the last request they reached.
    """
    tracker = tracker or Tracker()
    templates = templates or select_templates(config.templates, config.template_dir)
    settings = config.settings()
    origin_settings = {k: v for k, v in settings.items() if k not in _NOT_IN_IDS}
    units = plan_units(points, templates, config)
    dedup = Deduplicator(config.dedup_threshold)
    diversity = DiversityTracker(check_every=config.check_every, epsilon=config.epsilon)
    curve = _Trace(trace)

    previous = [r for r in existing if r.get("stage") == STAGE and r.get("kind") == "sample"]
    done_ids = {str(r.get("id")) for r in previous}
    first_unit = 0
    if previous:
        vectors = embedder.embed([str(r["text"]) for r in previous])
        for record, vector in zip(previous, vectors, strict=True):
            dedup.add(str(record["text"]), vector)
            diversity.add(vector)
        for samples, value in diversity.curve:
            curve.write(samples, value)
        # Records are written in plan order, so every request before the last one written is done.
        first_unit = max(int(r.get("gen", {}).get("unit", 0)) for r in previous)
        console.info(
            f"resuming after {len(previous)} sample(s), from request {first_unit + 1} of {len(units)}"
        )

    rejected: dict[str, int] = {}
    generated = 0
    empty = False
    task = tracker.start("synthesize", total=config.max_samples, unit="samples")
    tracker.skip(task, diversity.count)
    step = wave_size(model)
    try:
        if diversity.converged or diversity.count >= config.max_samples:
            return
        for wave_start in range(first_unit, len(units), step):
            wave = list(enumerate(units[wave_start : wave_start + step], start=wave_start))
            values = [{"point": u.point["text"], "topic": _topic(u.point, config)} for _, u in wave]
            prompts = [u.template.render(**v) for (_, u), v in zip(wave, values, strict=True)]
            outputs = model.generate(
                [
                    GenerationRequest(
                        prompt=prompt,
                        temperature=unit.temperature,
                        top_p=config.top_p,
                        max_new_tokens=config.max_new_tokens,
                        seed=unit_seed(unit, config.seed),
                        reply_start=unit.template.render_reply(**v),
                    )
                    for (_, unit), prompt, v in zip(wave, prompts, values, strict=True)
                ]
            )
            generated += len(wave)
            made: list[Record] = []
            for (index, unit), prompt, texts in zip(wave, prompts, outputs, strict=True):
                result = _make_sample(
                    model, embedder, unit, index, texts[0], prompt, config, settings, origin_settings
                )
                if isinstance(result, str):
                    rejected[result] = rejected.get(result, 0) + 1
                elif result["id"] not in done_ids:
                    made.append(result)
            # One embedder call per wave; the records are then offered one by one, in plan order.
            wave_vectors = list(embedder.embed([r["text"] for r in made])) if made else []
            for record, vector in zip(made, wave_vectors, strict=True):
                verdict = dedup.offer(record["text"], vector)
                if verdict is not None:
                    rejected[f"duplicate_{verdict}"] = rejected.get(f"duplicate_{verdict}", 0) + 1
                    continue
                checked = diversity.add(vector)
                if diversity.count % config.check_every == 0 and diversity.curve:
                    curve.write(*diversity.curve[-1])
                yield record
                tracker.advance(task)
                current = diversity.diversity
                tracker.status(task, f"diversity {current:.4f}" if current is not None else "")
                if checked or diversity.count >= config.max_samples:
                    return
        if not diversity.count:
            empty = True  # the error's line carries the counts the report would print
            raise NothingProduced(
                STAGE,
                "sample accepted",
                f"{generated} output(s) for {len(points)} point(s)",
                dict(sorted(rejected.items())),
                _hint(rejected, config),
            )
    finally:
        if diversity.diversity is not None:
            curve.write(diversity.count, diversity.diversity)
        curve.close()
        if not empty:
            _report(diversity, rejected)


def _topic(point: Record, config: SynthesizeConfig) -> str:
    topic = point.get("topic") or config.topic
    if not topic:
        raise UsageError(f"point {point.get('id')} has no topic; pass --topic")
    return str(topic)


def _make_sample(
    model: TextModel,
    embedder: Embedder,
    unit: PlannedSample,
    index: int,
    raw: str,
    prompt: str,
    config: SynthesizeConfig,
    settings: dict[str, object],
    origin_settings: dict[str, object],
) -> Record | str:
    """A sample record from one raw output, or the reason it was rejected."""
    cleaned = clean_output(raw, prompt, qa=in_qa_family(unit.template), min_words=config.min_words)
    if cleaned.text is None:
        return cleaned.reason or "rejected"
    topic = _topic(unit.point, config)
    provenance = Provenance(model.name, embedder.name, settings, origin_settings)
    template = unit.template.provenance()
    gen = provenance.gen(
        template,
        {
            "temperature": unit.temperature,
            "top_p": config.top_p,
            "round": unit.round,
            "sample": unit.sample,
            "seed": config.seed,
            "unit": index,
            "point": unit.point["text"],
        },
    )
    origin = provenance.origin(
        template, {"temperature": unit.temperature, "round": unit.round, "sample": unit.sample}
    )
    return make_record(
        kind="sample",
        text=cleaned.text,
        question=cleaned.question,
        answer=cleaned.answer,
        topic=topic,
        parent=str(unit.point.get("id")),
        stage=STAGE,
        gen=gen,
        origin=origin,
    )


def _hint(rejected: dict[str, int], config: SynthesizeConfig) -> str:
    """The setting most likely to let samples through, from the reason that rejected the most."""
    reason = max(rejected, key=lambda r: rejected[r]) if rejected else "empty"
    if reason.startswith("duplicate"):
        return f"try a higher --dedup-threshold (now {config.dedup_threshold}) or more --temperatures"
    if reason == "refusal":
        return "try other --templates or higher --temperatures"
    return (
        f"try a larger --max-new-tokens (now {config.max_new_tokens}) or a smaller --min-words "
        f"(now {config.min_words})"
    )


def _report(diversity: DiversityTracker, rejected: dict[str, int]) -> None:
    value = diversity.diversity
    state = "converged" if diversity.converged else "stopped"
    shown = f"{value:.4f}" if value is not None else "n/a"
    console.info(f"synthesize: {diversity.count} sample(s), diversity {shown}, {state}")
    if rejected:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(rejected.items()))
        console.info(f"synthesize: rejected {sum(rejected.values())} output(s): {reasons}")
