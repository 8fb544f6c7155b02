"""`synthesize`: Stage I, seed-guided synthesis until new samples stop bringing anything new.

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

import numpy as np

from biforget import console
from biforget.config import SynthesizeConfig
from biforget.console import Tracker
from biforget.dedup import Deduplicator
from biforget.errors import NothingProduced, UsageError
from biforget.io.jsonl import RecordWriter
from biforget.metrics.diversity import DiversityTracker, NoveltyTracker
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
_NOT_IN_IDS = SynthesizeConfig.RESUME_MAY_CHANGE


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


class Plan:
    """The fixed work plan: rounds, then sample passes, then turns of the points over the combinations.

    Any request is computed from its index on demand, so memory follows the wave being run, not the
    plan's length (points x templates x temperatures x samples x rounds)."""

    def __init__(
        self, points: Sequence[Record], templates: Sequence[Template], config: SynthesizeConfig
    ) -> None:
        self.points = points
        self.templates = templates
        self.temperatures = config.temperatures
        self.samples = config.samples
        self.combinations = interleaved_combinations(len(templates), len(config.temperatures))
        self.turn_size = len(points)
        self.pass_size = len(self.combinations) * self.turn_size
        self.round_size = config.samples * self.pass_size
        self.length = config.rounds * self.round_size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> PlannedSample:
        if not 0 <= index < self.length:
            raise IndexError(index)
        round_index, rest = divmod(index, self.round_size)
        sample, rest = divmod(rest, self.pass_size)
        turn, position = divmod(rest, self.turn_size)
        # Offsetting by the sample pass and the round keeps early stops from always meeting the same
        # combinations first.
        template, temperature = self.combinations[
            (turn + position + sample + round_index) % len(self.combinations)
        ]
        return PlannedSample(
            self.points[position],
            self.templates[template],
            self.temperatures[temperature],
            round_index,
            sample,
        )

    def wave(self, start: int, size: int) -> list[tuple[int, PlannedSample]]:
        return [(index, self[index]) for index in range(start, min(start + size, self.length))]


def plan_units(
    points: Sequence[Record], templates: Sequence[Template], config: SynthesizeConfig
) -> list[PlannedSample]:
    """The whole plan as a list (for inspection and tests; the run walks `Plan` a wave at a time)."""
    plan = Plan(points, templates, config)
    return [plan[index] for index in range(len(plan))]


def unit_seed(unit: PlannedSample, seed: int) -> int:
    """A request's seed from its identity alone, so neither its batch nor the plan's order changes it."""
    return derive_seed(
        seed, STAGE, unit.point.get("id"), unit.template.id, unit.temperature, unit.round, unit.sample
    )


def coverage_end(plan: Plan) -> int:
    """How many requests of the plan it takes until every point was asked at every temperature.

    The novelty rule may not stop a run earlier, so no point misses a temperature however soon the
    stream looks used up. Every point meets every combination within the first sample pass, so the scan
    ends there, whatever the plan's length."""
    wanted = len({str(point.get("id")) for point in plan.points}) * len(set(plan.temperatures))
    seen: set[tuple[str, float]] = set()
    for index in range(len(plan)):
        unit = plan[index]
        seen.add((str(unit.point.get("id")), unit.temperature))
        if len(seen) == wanted:
            return index + 1
    return len(plan)


class _Trace:
    """The run's checks as JSONL lines `{"samples", "offers", "novelty", "diversity"}`."""

    def __init__(self, path: Path | None) -> None:
        self._writer = RecordWriter(path, flag="--trace") if path else None
        self._last: tuple[object, object] | None = None

    def write(self, row: dict[str, object]) -> None:
        # The run's last state is written at its end; when a check just wrote it, once is enough.
        key = (row["samples"], row["offers"])
        # Diversity needs two samples: a run that kept fewer has no curve.
        if self._writer and key != self._last and row["diversity"] is not None:
            self._writer.write(row)
            self._last = key

    def close(self) -> None:
        if self._writer:
            self._writer.close()


class _Stop:
    """Dedup, diversity and novelty state, and whether the run should stop, after each offer.

    Built offer by offer both in a run and from a resumed run's records (`replay`), so both reach the
    same state: every kept record carries `gen.offer` (its number among all offers) and `gen.nearest`
    (its highest cosine to what was kept before), and the refused offers between two records, near
    duplicates that were never written, are the gaps in `gen.offer`, never new since
    `novelty_threshold <= dedup_threshold`.
    """

    def __init__(self, config: SynthesizeConfig, coverage: int) -> None:
        self.config = config
        self.coverage = coverage
        self.dedup = Deduplicator(config.dedup_threshold)
        self.diversity = DiversityTracker(check_every=config.check_every, epsilon=config.epsilon)
        self.novelty = NoveltyTracker(config.window, config.novelty_threshold, config.min_novelty)
        self.checks: list[dict[str, object]] = []
        self.reason: str | None = None

    def row(self) -> dict[str, object]:
        rate = self.novelty.rate
        value = self.diversity.diversity
        return {
            "samples": self.diversity.count,
            "offers": self.novelty.offers,
            "novelty": round(rate, 6) if rate is not None else None,
            "diversity": round(value, 6) if value is not None else None,
        }

    def refused(self, unit: int) -> None:
        """A repeat (exact or near) was offered at plan index `unit`."""
        self.novelty.offer(1.0)
        self._decide(unit, False)

    def kept(self, record: Record, vector: np.ndarray, nearest: float | None, unit: int) -> None:
        """A new sample was kept; note its offer number and nearest cosine on its `gen`."""
        # Rounded before use, so a resumed run reads back exactly the value this run decided on.
        nearest = round(nearest, 6) if nearest is not None else None
        record["gen"]["offer"] = self.novelty.offers + 1
        record["gen"]["nearest"] = nearest
        self._count(vector, nearest, unit)

    def _count(self, vector: np.ndarray, nearest: float | None, unit: int) -> None:
        self.novelty.offer(nearest)
        converged = self.diversity.add(vector)
        if self.diversity.count % self.config.check_every == 0:
            self.checks.append(self.row())
        self._decide(unit, converged)

    def replay(self, record: Record, vector: np.ndarray) -> None:
        """Rebuild the state one written record at a time (`--resume`)."""
        gen = record.get("gen", {})
        offer = gen.get("offer")
        unit = int(gen.get("unit", 0))
        if isinstance(offer, int):
            # Refused offers followed by a written record did not stop the run, so they only count.
            for _ in range(offer - self.novelty.offers - 1):
                self.novelty.offer(1.0)
        nearest = gen["nearest"] if "nearest" in gen else self.dedup.nearest(vector)
        self.dedup.add(str(record["text"]), vector)
        self._count(vector, nearest, unit)

    def _decide(self, unit: int, converged: bool) -> None:
        if self.reason is not None:
            return
        if self.config.stop == "diversity" and converged:
            self.reason = f"diversity gained less than --epsilon {self.config.epsilon} since the last check"
        elif self.config.stop == "novelty" and unit + 1 >= self.coverage and self.novelty.exhausted:
            rate = self.novelty.rate or 0.0
            self.reason = (
                f"novelty {rate:.3f} of the last {self.config.window} offers is below --min-novelty "
                f"{self.config.min_novelty}"
            )
        elif self.diversity.count >= self.config.max_samples:
            self.reason = f"--max-samples {self.config.max_samples} reached"


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
    """Yield accepted `sample` records until the stopping rule (`config.stop`) fires, the plan ends or
    `max_samples`.

    `existing` are records a previous run of the same settings wrote (`--resume`): they rebuild the
    dedup and stopping state, and the plan restarts at the last request they reached.
    """
    tracker = tracker or Tracker()
    templates = templates or select_templates(config.templates, config.template_dir)
    settings = config.settings()
    origin_settings = {k: v for k, v in settings.items() if k not in _NOT_IN_IDS}
    units = Plan(points, templates, config)
    state = _Stop(config, coverage_end(units))
    curve = _Trace(trace)

    previous = [r for r in existing if r.get("stage") == STAGE and r.get("kind") == "sample"]
    done_ids = {str(r.get("id")) for r in previous}
    first_unit = 0
    if previous:
        vectors = embedder.embed([str(r["text"]) for r in previous])
        for record, vector in zip(previous, vectors, strict=True):
            state.replay(record, vector)
        for row in state.checks:
            curve.write(row)
        # Records are written in plan order, so every request before the last one written is done.
        first_unit = max(int(r.get("gen", {}).get("unit", 0)) for r in previous)
        console.info(
            f"resuming after {len(previous)} sample(s), from request {first_unit + 1} of {len(units)}"
        )

    rejected: dict[str, int] = {}
    generated = 0
    empty = False
    task = tracker.start("synthesize", total=config.max_samples, unit="samples")
    tracker.skip(task, state.diversity.count)
    step = wave_size(model)
    try:
        if state.reason is not None:
            return
        for wave_start in range(first_unit, len(units), step):
            wave = units.wave(wave_start, step)
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
            made: list[tuple[int, Record]] = []
            for (index, unit), prompt, texts in zip(wave, prompts, outputs, strict=True):
                result = _make_sample(
                    model, embedder, unit, index, texts[0], prompt, config, settings, origin_settings
                )
                if isinstance(result, str):
                    rejected[result] = rejected.get(result, 0) + 1
                elif result["id"] not in done_ids:
                    made.append((index, result))
            # One embedder call per wave; the records are then offered one by one, in plan order.
            wave_vectors = list(embedder.embed([r["text"] for _, r in made])) if made else []
            for (index, record), vector in zip(made, wave_vectors, strict=True):
                offer = state.dedup.consider(record["text"], vector)
                if offer.verdict is not None:
                    rejected[f"duplicate_{offer.verdict}"] = rejected.get(f"duplicate_{offer.verdict}", 0) + 1
                    state.refused(index)
                else:
                    state.kept(record, vector, offer.nearest, index)
                    if state.checks and state.checks[-1]["samples"] == state.diversity.count:
                        curve.write(state.checks[-1])
                    yield record
                    tracker.advance(task)
                    rate = state.novelty.rate
                    tracker.status(task, f"novelty {rate:.2f}" if rate is not None else "")
                if state.reason is not None:
                    return
        state.reason = "the plan ended (--rounds)"
        if not state.diversity.count:
            empty = True  # the error's line carries the counts the report would print
            raise NothingProduced(
                STAGE,
                "sample accepted",
                f"{generated} output(s) for {len(points)} point(s)",
                dict(sorted(rejected.items())),
                _hint(rejected, config),
            )
    finally:
        if state.diversity.count:
            curve.write(state.row())
        curve.close()
        if not empty:
            _report(state, rejected)


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


def _report(state: _Stop, rejected: dict[str, int]) -> None:
    value = state.diversity.diversity
    rate = state.novelty.rate
    shown = f"{value:.4f}" if value is not None else "n/a"
    novelty = f"{rate:.3f}" if rate is not None else "n/a"
    why = state.reason or "interrupted"
    console.info(
        f"synthesize: {state.diversity.count} sample(s) from {state.novelty.offers} offer(s), "
        f"diversity {shown}, novelty {novelty}; stopped: {why}"
    )
    if rejected:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(rejected.items()))
        console.info(f"synthesize: rejected {sum(rejected.values())} output(s): {reasons}")
