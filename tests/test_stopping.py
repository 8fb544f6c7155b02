"""What stops Stage I: the novelty rule (default), its coverage floor, exact resume, and the old rule.

The scripted model here knows a fixed number of facts per point and restates a random one per request,
as a small model does once it has said what it knows: so how many facts a run has seen when it stops
is known, and the stop can be judged against it.
"""

from __future__ import annotations

import hashlib
import json
import random
from itertools import islice
from pathlib import Path

import pytest

from biforget.config import SynthesizeConfig
from biforget.errors import UsageError
from biforget.metrics.diversity import NoveltyTracker
from biforget.pipelines import wave_size
from biforget.pipelines.synthesize import Plan, coverage_end, plan_units, select_templates, synthesize_samples
from tests.scripted import HashEmbedder, ScriptedModel
from tests.test_synthesize_pipeline import POINTS, VOCABULARY, point, varied

FACTS_PER_POINT = 50


def _rng(*parts: object) -> random.Random:
    return random.Random(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest())


def fact_words(point_name: str, fact: int) -> list[str]:
    """Fact `fact` of a point: a fixed set of fifteen words, far from every other fact in the embedding."""
    rng = _rng("fact", point_name, fact)
    return [rng.choice(VOCABULARY) for _ in range(15)]


def knows(facts: int):  # type: ignore[no-untyped-def]
    """A script restating one of `facts` facts of the prompt's point per request, with one word of its own:
    repeats of a fact are kept as distinct samples or refused as near duplicates, never new."""

    def script(prompt: str, draw: int, seed: int) -> str:
        name = next(p["text"] for p in ALL_POINTS if str(p["text"]) in prompt)
        rng = _rng(prompt, draw, seed)
        fact = rng.randrange(facts)
        return f"fact{fact} " + " ".join([*fact_words(str(name), fact), rng.choice(VOCABULARY)]) + "."

    return script


# Names none of which contains another, so a prompt names exactly one.
ALL_POINTS = [*POINTS, *(point(f"Field {chr(ord('A') + i)}x") for i in range(12))]


def run(model: ScriptedModel, settings: SynthesizeConfig, points=POINTS, **kwargs):  # type: ignore[no-untyped-def]
    return list(synthesize_samples(model, HashEmbedder(256), points, settings, **kwargs))


def facts_seen(records: list[dict[str, object]]) -> set[tuple[object, str]]:
    return {(r["parent"], str(r["text"]).split()[0]) for r in records}


def test_novelty_stops_after_most_facts_and_well_before_the_cap(tmp_path: Path) -> None:
    # Defaults but for a plan long enough (3 points x 8 templates x 4 temperatures x 4 x 8 = 3,072 requests).
    settings = SynthesizeConfig(max_new_tokens=32, rounds=8, seed=3)
    trace = tmp_path / "trace.jsonl"
    records = run(ScriptedModel(knows(FACTS_PER_POINT)), settings, trace=trace)
    seen = facts_seen(records)
    assert len(seen) >= 0.9 * FACTS_PER_POINT * len(POINTS)
    # Not at the second check (200 samples), where the diversity rule stops, nor near the cap or plan end.
    assert 2 * settings.check_every < len(records) < settings.max_samples
    last_unit = int(records[-1]["gen"]["unit"])  # type: ignore[index]
    assert last_unit < len(plan_units(POINTS, select_templates(settings.templates), settings)) // 2
    rows = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [r["samples"] for r in rows[:-1]] == list(range(100, len(records) + 1, 100))
    assert rows[0]["novelty"] > 0.3 and rows[-1]["novelty"] < settings.min_novelty
    assert all(0 < r["diversity"] < 1 and r["offers"] >= r["samples"] for r in rows)


def test_more_facts_make_a_longer_run() -> None:
    settings = SynthesizeConfig(max_new_tokens=32, rounds=16, seed=3)
    short = run(ScriptedModel(knows(10)), settings)
    long = run(ScriptedModel(knows(40)), settings)
    assert len(facts_seen(short)) >= 27 and len(facts_seen(long)) >= 108
    assert len(long) > 2 * len(short)


def test_the_diversity_rule_stops_at_the_second_check_on_the_same_stream() -> None:
    # The failure the novelty rule replaces: on an interleaved stream the mean pairwise distance has no
    # trend, so the gain between the first two checks is noise and the run ends at sample 200.
    settings = SynthesizeConfig(max_new_tokens=32, rounds=8, seed=3, stop="diversity")
    records = run(ScriptedModel(knows(FACTS_PER_POINT)), settings)
    assert len(records) == 2 * settings.check_every
    # A quarter of the facts never came up (the novelty rule, above, sees nine in ten).
    assert len(facts_seen(records)) < 0.8 * FACTS_PER_POINT * len(POINTS)


def test_a_trendless_stream_of_new_text_does_not_stop_at_the_second_check() -> None:
    # Every output new: under the defaults the run goes on to --max-samples.
    settings = SynthesizeConfig(max_new_tokens=32, rounds=2, max_samples=700, seed=7)
    records = run(ScriptedModel(varied), settings)
    assert len(records) == 700


def test_no_stop_before_every_point_was_asked_at_every_temperature() -> None:
    points = ALL_POINTS[3:]
    settings = SynthesizeConfig(max_new_tokens=32, window=5, min_novelty=0.5, seed=1)
    model = ScriptedModel(knows(1), batch_size=4)
    records = run(model, settings, points)
    plan = Plan(points, select_templates(settings.templates), settings)
    units = plan_units(points, select_templates(settings.templates), settings)
    asked = sum(len(call["prompts"]) for call in model.calls)  # type: ignore[arg-type]
    # Everything after the first sample of each point repeats it, yet the run went on to the floor ...
    new = [r for r in records if r["gen"]["nearest"] is None or r["gen"]["nearest"] < 0.8]  # type: ignore[index]
    assert len(new) == len(points) < len(records)
    floor = coverage_end(plan)
    assert floor == 78 and floor <= asked < floor + wave_size(model)
    assert max(r["gen"]["offer"] for r in records) <= floor  # type: ignore[index]
    pairs = {(u.point["id"], u.temperature) for u in units[:asked]}
    assert len(pairs) == len(points) * 4
    # ... and without the floor it would have stopped at the window's end.
    tracker = NoveltyTracker(window=5, threshold=0.8, min_novelty=0.5)
    for nearest in [None] * len(points) + [1.0] * 5:
        tracker.offer(nearest)
    assert tracker.exhausted


@pytest.mark.parametrize("killed_after", [1, 40, 150, 260])
def test_resume_rebuilds_the_novelty_window_exactly(killed_after: int, tmp_path: Path) -> None:
    settings = SynthesizeConfig(max_new_tokens=32, rounds=8, seed=3, check_every=50)
    trace, again = tmp_path / "full.jsonl", tmp_path / "resumed.jsonl"
    complete = run(ScriptedModel(knows(FACTS_PER_POINT)), settings, trace=trace)
    # Refused repeats sit between written records: the window must count them on resume.
    offers = [r["gen"]["offer"] for r in complete]  # type: ignore[index]
    assert offers[-1] > len(complete) and offers == sorted(offers)
    partial = list(
        islice(
            synthesize_samples(ScriptedModel(knows(FACTS_PER_POINT)), HashEmbedder(256), POINTS, settings),
            killed_after,
        )
    )
    resumed = run(
        ScriptedModel(knows(FACTS_PER_POINT), batch_size=3), settings, existing=partial, trace=again
    )
    assert partial + resumed == complete
    assert again.read_text() == trace.read_text()


def test_resuming_a_finished_run_adds_nothing() -> None:
    settings = SynthesizeConfig(max_new_tokens=32, rounds=8, seed=3)
    complete = run(ScriptedModel(knows(FACTS_PER_POINT)), settings)
    model = ScriptedModel(knows(FACTS_PER_POINT))
    assert run(model, settings, existing=complete) == []


def test_novelty_rate_counts_the_last_window_of_offers() -> None:
    tracker = NoveltyTracker(window=4, threshold=0.8, min_novelty=0.3)
    for nearest in (None, 0.2, 0.95, 0.79):
        tracker.offer(nearest)
    assert tracker.rate == 0.75 and not tracker.exhausted
    for nearest in (0.8, 0.9, 1.0):
        tracker.offer(nearest)
    assert tracker.rate == 0.25 and tracker.exhausted and tracker.offers == 7


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"stop": "coverage"}, "--stop"),
        ({"window": 0}, "--window"),
        ({"min_novelty": 1.5}, "--min-novelty"),
        ({"novelty_threshold": 0.97}, "--novelty-threshold"),
    ],
)
def test_bad_stop_settings_are_usage_errors(overrides: dict[str, object], flag: str) -> None:
    with pytest.raises(UsageError, match=flag):
        SynthesizeConfig(**overrides)  # type: ignore[arg-type]
