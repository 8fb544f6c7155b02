"""`probe`: Stage II, adversarial probing for knowledge the plain Stage I templates miss.

Two probes run one after the other, each a fixed plan of attempts, every attempt seeded from the run seed
and its place in the plan (so any attempt regenerates identically whatever its batch, and `--resume` is
exact):

- jailbreak probing renders jailbreak-style templates (role play, continuation, hypothetical framing, ...)
  with the topic and a point, and accepts an output that is not a refusal, is relevant (embedding cosine
  to the topic or a point at least `min_relevance`) and is not a duplicate;
- membership-inference probing asks for questions and answers or passages, re-scores each output
  teacher-forced under the raw model, on its own without the prompt (never with the sampler's warped
  scores), and accepts the outputs whose Min-K% or Min-K%++ passes a threshold: given, calibrated on
  reference texts at a false-positive rate, or by default the top fraction of the candidates.

Every output is deduplicated against the input records and against everything accepted before it.
Attempts walk the points round-robin (every point gets an attempt before any point gets another) while
the templates rotate, so a small run still covers the points and every template.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from biforget import console
from biforget.clean import is_refusal
from biforget.config import ProbeConfig
from biforget.console import Tracker
from biforget.dedup import Deduplicator
from biforget.errors import InputError, NothingProduced
from biforget.metrics.mink import MiaScores
from biforget.models.base import Embedder, GenerationRequest, TextModel
from biforget.parse import clean_output
from biforget.pipelines import wave_size
from biforget.pipelines.probe_plan import (
    JAILBREAK,
    MIA,
    Attempt,
    Point,
    domain_points,
    is_qa_probe,
    load_probe_templates,
    plan_attempts,
)
from biforget.pipelines.probe_threshold import Threshold, calibrate, keep_top, score_texts
from biforget.records import Provenance, Record, derive_seed, make_record
from biforget.templates import Template

# The plan's names are part of this stage's interface; they live in probe_plan.py.
__all__ = [
    "JAILBREAK",
    "MIA",
    "Point",
    "domain_points",
    "load_probe_templates",
    "plan_attempts",
    "probe_samples",
]

# Settings that decide which outputs are accepted, not what an attempt generates: left out of ids, so a
# run with another threshold or filter keeps the ids of the texts both runs accept.
_NOT_IN_IDS = (
    "jailbreak",
    "mia",
    "min_relevance",
    "dedup_threshold",
    "min_words",
    "mink_k",
    "mia_score",
    "mia_threshold",
    "mia_calibrate",
    "mia_fpr",
    "mia_keep",
)


# ------------------------------------------------------------------------------------------ probing


@dataclass
class _Candidate:
    attempt: Attempt
    text: str
    question: str | None
    answer: str | None
    vector: np.ndarray
    topic_sim: float
    scores: MiaScores | None = None


class _Prober:
    """State shared by both probes: the models, the relevance anchors and the dedup memory."""

    def __init__(
        self,
        model: TextModel,
        embedder: Embedder,
        config: ProbeConfig,
        points: Sequence[Point],
        tracker: Tracker,
    ) -> None:
        self.model = model
        self.embedder = embedder
        self.config = config
        self.points = points
        self.tracker = tracker
        settings = config.settings()
        origin_settings = {k: v for k, v in settings.items() if k not in _NOT_IN_IDS}
        self.provenance = Provenance(model.name, embedder.name, settings, origin_settings)
        self.anchors = embedder.embed([config.topic, *(p.text for p in points)])
        self.dedup = Deduplicator(config.dedup_threshold)
        # Both probes' totals, for the error of a run that was asked for samples and added none.
        self.accepted = 0
        self.rejected: dict[str, int] = {}

    def tally(self, accepted: int, rejected: dict[str, int]) -> None:
        self.accepted += accepted
        for reason, count in rejected.items():
            _count(self.rejected, reason, count)

    def remember(self, texts: Sequence[str]) -> None:
        if texts:
            for text, vector in zip(texts, self.embedder.embed(list(texts)), strict=True):
                self.dedup.add(text, vector)

    def waves(self, count: int, templates: Sequence[Template], first: int = 0) -> list[list[Attempt]]:
        """The plan from attempt `first` on, in waves handed to the backend at once."""
        plan = plan_attempts(count, templates, self.points)[first:]
        size = wave_size(self.model)
        return [plan[i : i + size] for i in range(0, len(plan), size)]

    def is_new(self, candidate: _Candidate, rejected: dict[str, int]) -> bool:
        """Offer the candidate to the dedup memory; a repeat is counted under its duplicate kind."""
        verdict = self.dedup.offer(candidate.text, candidate.vector)
        if verdict is not None:
            _count(rejected, f"duplicate_{verdict}")
        return verdict is None

    def candidates(self, stage: str, batch: Sequence[Attempt], rejected: dict[str, int]) -> list[_Candidate]:
        """Generate one wave; clean, drop refusals and off-topic outputs; embed the rest in one call."""
        config = self.config
        prompts = [
            a.template.render(topic=config.topic, point=a.point.text if a.point else config.topic)
            for a in batch
        ]
        outputs = self.model.generate(
            [
                GenerationRequest(
                    prompt=prompt,
                    temperature=config.temperature,
                    top_p=config.top_p,
                    max_new_tokens=config.max_new_tokens,
                    seed=derive_seed(config.seed, stage, attempt.index),
                )
                for attempt, prompt in zip(batch, prompts, strict=True)
            ]
        )
        kept: list[tuple[Attempt, str, str | None, str | None]] = []
        for attempt, prompt, texts in zip(batch, prompts, outputs, strict=True):
            cleaned = clean_output(
                texts[0] if texts else "",
                prompt,
                qa=is_qa_probe(attempt.template),
                min_words=config.min_words,
            )
            reason = (
                cleaned.reason if cleaned.text is None else ("refusal" if is_refusal(cleaned.text) else None)
            )
            if reason is not None or cleaned.text is None:
                _count(rejected, reason or "rejected")
                continue
            kept.append((attempt, cleaned.text, cleaned.question, cleaned.answer))
        if not kept:
            return []
        vectors = self.embedder.embed([text for _, text, _, _ in kept])
        similarities = vectors @ self.anchors.T
        found = []
        for (attempt, text, question, answer), vector, row in zip(kept, vectors, similarities, strict=True):
            topic_sim = float(row.max())
            if topic_sim < config.min_relevance:
                _count(rejected, "irrelevant")
                continue
            found.append(_Candidate(attempt, text, question, answer, vector, topic_sim))
        return found

    def record(self, stage: str, candidate: _Candidate, threshold: Threshold | None = None) -> Record:
        attempt = candidate.attempt
        point = attempt.point
        template = attempt.template.provenance()
        fields: dict[str, Any] = {
            "temperature": self.config.temperature,
            "top_p": self.config.top_p,
            "seed": self.config.seed,
            "attempt": attempt.index,
        }
        if point is not None:
            fields["point"] = point.text
        scoring = {"mia": threshold.provenance()} if threshold is not None else None
        gen = self.provenance.gen(template, fields, scoring)
        origin = self.provenance.origin(
            template, {"point": point.text if point else None, "attempt": attempt.index}
        )
        scores: dict[str, float] = {}
        if candidate.scores is not None:
            scores.update(candidate.scores.as_dict())
        scores["topic_sim"] = round(candidate.topic_sim, 6)
        return make_record(
            kind="sample",
            text=candidate.text,
            question=candidate.question,
            answer=candidate.answer,
            topic=self.config.topic,
            parent=point.id if point else None,
            stage=stage,
            gen=gen,
            origin=origin,
            scores=scores,
        )


def _count(counter: dict[str, int], reason: str, amount: int = 1) -> None:
    counter[reason] = counter.get(reason, 0) + amount


def _resume_point(stage: str, previous: Sequence[Record]) -> int:
    """The attempt to restart at: records are written in plan order, so every attempt before the last
    one written is done."""
    attempts = [int(r.get("gen", {}).get("attempt", 0)) for r in previous]
    return max(attempts) if attempts else 0


def _report(stage: str, accepted: int, attempts: int, rejected: dict[str, int]) -> None:
    console.info(f"{stage}: accepted {accepted} of {attempts} attempt(s)")
    if rejected:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(rejected.items()))
        console.info(f"{stage}: rejected {sum(rejected.values())}: {reasons}")


def probe_samples(
    model: TextModel,
    embedder: Embedder,
    inputs: Sequence[Record],
    config: ProbeConfig,
    *,
    points: Sequence[Point] | None = None,
    references: Sequence[str] | None = None,
    existing: Iterable[Record] = (),
    tracker: Tracker | None = None,
    templates: dict[str, list[Template]] | None = None,
) -> Iterator[Record]:
    """Yield new `sample` records from jailbreak probing, then from membership-inference probing.

    `inputs` are the records passed through (the caller writes them); they seed the dedup memory and,
    without `points`, give the domain's points. `references` calibrate the membership threshold when
    `config.mia_calibrate` is set. `existing` are records a previous run of the same settings wrote
    (`--resume`): they rebuild the dedup memory and each probe restarts at the last attempt it reached.
    """
    tracker = tracker or Tracker()
    templates = templates or load_probe_templates()
    domain = list(points) if points is not None else domain_points(inputs)
    console.info(f"probe: topic {config.topic!r}, {len(domain)} point(s), {len(inputs)} input record(s)")
    prober = _Prober(model, embedder, config, domain, tracker)
    prober.remember([str(r["text"]) for r in inputs if isinstance(r.get("text"), str)])
    previous = list(existing)
    done = {str(r.get("id")) for r in previous}
    earlier = {
        stage: [r for r in previous if r.get("stage") == stage and r.get("kind") == "sample"]
        for stage in (JAILBREAK, MIA)
    }
    prober.remember([str(r["text"]) for r in earlier[JAILBREAK]])
    # A membership record is only ever written after jailbreak probing finished.
    if config.jailbreak and not earlier[MIA]:
        yield from _jailbreak(
            prober, templates[JAILBREAK], done, _resume_point(JAILBREAK, earlier[JAILBREAK])
        )
    if config.mia:
        yield from _membership(prober, templates[MIA], references, done, earlier[MIA])
    # Added to records passed through, no sample is a result with its counts on stderr; with nothing
    # passed through and nothing from an earlier run, the output would be empty.
    if not inputs and not earlier[JAILBREAK] and not earlier[MIA] and not prober.accepted:
        raise NothingProduced(
            "probe",
            "sample added to an empty input",
            f"{config.jailbreak} jailbreak and {config.mia} mia attempt(s)",
            dict(sorted(prober.rejected.items())),
            _hint(prober.rejected, config),
        )


def _hint(rejected: dict[str, int], config: ProbeConfig) -> str:
    """The setting most likely to let probe outputs through, from the reason that rejected the most."""
    reason = max(rejected, key=lambda r: rejected[r]) if rejected else "empty"
    if reason == "irrelevant":
        return f"try a lower --min-relevance (now {config.min_relevance})"
    if reason == "below_threshold":
        return "try a higher --mia-keep, a lower --mia-threshold or a higher --mia-fpr"
    if reason.startswith("duplicate"):
        return f"try a higher --dedup-threshold (now {config.dedup_threshold})"
    if reason == "refusal":
        return "try more --jailbreak or --mia attempts"
    return (
        f"try a larger --max-new-tokens (now {config.max_new_tokens}) or a smaller --min-words "
        f"(now {config.min_words})"
    )


def _jailbreak(
    prober: _Prober, templates: Sequence[Template], done: set[str], first: int
) -> Iterator[Record]:
    config = prober.config
    waves = prober.waves(config.jailbreak, templates, first)
    rejected: dict[str, int] = {}
    accepted = 0
    task = prober.tracker.start(JAILBREAK, total=config.jailbreak, unit="attempts")
    prober.tracker.skip(task, first)
    if first:
        console.info(f"{JAILBREAK}: resuming from attempt {first + 1} of {config.jailbreak}")
    try:
        for wave in waves:
            for candidate in prober.candidates(JAILBREAK, wave, rejected):
                record = prober.record(JAILBREAK, candidate)
                if record["id"] in done:
                    continue
                if not prober.is_new(candidate, rejected):
                    continue
                accepted += 1
                yield record
            prober.tracker.advance(task, len(wave))
            prober.tracker.status(task, f"accepted {accepted}")
    finally:
        prober.tally(accepted, rejected)
        _report(JAILBREAK, accepted, config.jailbreak, rejected)


def _membership(
    prober: _Prober,
    templates: Sequence[Template],
    references: Sequence[str] | None,
    done: set[str],
    earlier: Sequence[Record],
) -> Iterator[Record]:
    config = prober.config
    threshold = Threshold(config.mia_mode, config.mia_score, config.mink_k)
    if config.mia_mode == "threshold":
        threshold.value = config.mia_threshold
    elif config.mia_mode == "calibrate":
        if not references:
            raise InputError("no reference texts", source=str(config.mia_calibrate))
        threshold = calibrate(prober.model, config, references, prober.tracker)
    else:
        threshold.details["keep"] = config.mia_keep
    streaming = threshold.mode != "keep"
    if streaming:
        console.info(threshold.describe())
        # Accepted records of the interrupted run are remembered; keep mode reruns the probe as a whole,
        # because its threshold depends on every candidate.
        prober.remember([str(r["text"]) for r in earlier])
    first = _resume_point(MIA, earlier) if streaming else 0
    waves = prober.waves(config.mia, templates, first)
    rejected: dict[str, int] = {}
    pool: list[_Candidate] = []
    accepted = 0
    key = config.mia_score
    task = prober.tracker.start(MIA, total=config.mia, unit="attempts")
    prober.tracker.skip(task, first)
    try:
        for wave in waves:
            found = prober.candidates(MIA, wave, rejected)
            for candidate, scores in zip(
                found, score_texts(prober.model, [c.text for c in found], config.mink_k), strict=True
            ):
                candidate.scores = scores
                value = scores.get(key)
                if value is None:
                    _count(rejected, "unscored")
                    continue
                if not streaming:
                    # Keep mode: dedup now, rank once every candidate is known.
                    if prober.is_new(candidate, rejected):
                        pool.append(candidate)
                    continue
                # Threshold first, then dedup against accepted records only, so a resumed run, which
                # knows only the accepted records, takes the same decisions.
                if threshold.value is None or not value > threshold.value:
                    _count(rejected, "below_threshold")
                    continue
                record = prober.record(MIA, candidate, threshold)
                if record["id"] in done:
                    continue
                if not prober.is_new(candidate, rejected):
                    continue
                accepted += 1
                yield record
            prober.tracker.advance(task, len(wave))
            prober.tracker.status(task, f"accepted {accepted}" if streaming else f"candidates {len(pool)}")
        if not streaming:
            values = [float(c.scores.get(key) or 0.0) for c in pool if c.scores is not None]
            chosen, threshold.value = keep_top(values, config.mia_keep)
            threshold.details["candidates"] = len(pool)
            console.info(threshold.describe())
            if len(pool) > len(chosen):
                _count(rejected, "below_threshold", len(pool) - len(chosen))
            for index in chosen:
                record = prober.record(MIA, pool[index], threshold)
                accepted += 1
                if record["id"] not in done:
                    yield record
    finally:
        prober.tally(accepted, rejected)
        _report(MIA, accepted, config.mia, rejected)
