"""Stage I synthesis on the scripted backend: plan, records, convergence, caps and exact resume."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from itertools import islice
from pathlib import Path

import pytest

from biforget import api
from biforget.config import SynthesizeConfig
from biforget.errors import UsageError
from biforget.pipelines.synthesize import STAGE, plan_units, select_templates, synthesize_samples, unit_seed
from biforget.records import make_record
from tests.scripted import HashEmbedder, ScriptedModel

VOCABULARY = [f"w{i}" for i in range(2000)]


def point(text: str, topic: str = "Testland") -> dict[str, object]:
    return make_record(
        kind="point", text=text, topic=topic, parent=None, stage="seeds", gen={}, origin={"position": text}
    )


POINTS = [point("Alpha Castle"), point("Beta River"), point("Gamma Tower")]


def varied(prompt: str, draw: int, seed: int) -> str:
    """Fifteen pseudo-random words per output: distinct texts, far apart in the hash embedding."""
    rng = random.Random(hashlib.sha256(f"{prompt}|{draw}|{seed}".encode()).hexdigest())
    return " ".join(rng.choice(VOCABULARY) for _ in range(15)) + "."


def config(**overrides: object) -> SynthesizeConfig:
    values: dict[str, object] = {
        "temperatures": (0.6, 1.0),
        "samples": 2,
        "rounds": 2,
        "max_new_tokens": 32,
        "check_every": 1000,
        "seed": 7,
    }
    values.update(overrides)
    return SynthesizeConfig(**values)  # type: ignore[arg-type]


def run(model: ScriptedModel, settings: SynthesizeConfig, **kwargs: object) -> list[dict[str, object]]:
    return list(synthesize_samples(model, HashEmbedder(), POINTS, settings, **kwargs))  # type: ignore[arg-type]


def test_every_unit_of_the_plan_becomes_a_record_with_provenance() -> None:
    model = ScriptedModel(varied, batch_size=8)
    records = run(model, config())
    # 3 points x 8 templates x 2 temperatures x 2 rounds x 2 samples, all distinct and clean.
    assert len(records) == 3 * 8 * 2 * 2 * 2
    assert len({r["id"] for r in records}) == len(records)
    ids = {p["id"] for p in POINTS}
    for record in records:
        assert record["kind"] == "sample" and record["stage"] == STAGE and record["topic"] == "Testland"
        assert record["parent"] in ids
        gen = record["gen"]
        assert gen["point"] in {p["text"] for p in POINTS}  # type: ignore[index]
        assert gen["template"].startswith("synthesize/") and len(gen["template_hash"]) == 8  # type: ignore[index]
        assert gen["temperature"] in (0.6, 1.0) and gen["round"] in (0, 1) and gen["sample"] in (0, 1)  # type: ignore[index]
        assert gen["model"] == "scripted" and gen["seed"] == 7  # type: ignore[index]
    counts = Counter((r["gen"]["template"], r["gen"]["temperature"]) for r in records)  # type: ignore[index]
    assert set(counts.values()) == {3 * 2 * 2}


def test_requests_carry_their_own_seeds_and_the_batch_size_changes_nothing() -> None:
    small, large = ScriptedModel(varied, batch_size=3), ScriptedModel(varied, batch_size=64)
    records = run(small, config())
    assert run(large, config()) == records
    assert all(n == 1 for call in small.calls for n in call["n"])  # type: ignore[attr-defined]
    templates = select_templates(config().templates)
    units = plan_units(POINTS, templates, config())
    seeds = [seed for call in small.calls for seed in call["seeds"]]  # type: ignore[attr-defined]
    assert seeds == [unit_seed(unit, 7) for unit in units]
    # Temperatures mix within one wave of requests.
    assert set(small.calls[0]["temperatures"]) == {0.6, 1.0}  # type: ignore[arg-type]


def test_any_window_of_the_default_plan_spans_temperatures_and_templates() -> None:
    settings = SynthesizeConfig()
    templates = select_templates(settings.templates)
    points = [point(f"Point {i}") for i in range(64)]
    units = plan_units(points, templates, settings)
    assert len(units) == 64 * len(templates) * 4 * settings.samples * settings.rounds
    for start in range(0, 4096):
        window = units[start : start + 16]
        assert {u.temperature for u in window} == {0.6, 0.8, 1.0, 1.2}
        assert len({u.template.id for u in window}) == len(templates) == 8
    # Round robin: every point has its next sample before any point has another.
    for start in range(0, len(units), 64):
        assert len({u.point["id"] for u in units[start : start + 64]}) == 64


def test_the_first_64_samples_of_a_default_run_span_every_temperature() -> None:
    points = [point(f"Point {i}") for i in range(64)]
    model = ScriptedModel(varied, batch_size=32)
    records = list(synthesize_samples(model, HashEmbedder(), points, SynthesizeConfig(max_samples=64)))
    assert len(records) == 64
    assert {r["gen"]["temperature"] for r in records} == {0.6, 0.8, 1.0, 1.2}  # type: ignore[index]
    templates = {r["gen"]["template"] for r in records}  # type: ignore[index]
    assert (
        len(templates) >= 3 and any("/qa/" in t for t in templates) and any("/info/" in t for t in templates)
    )


def test_same_settings_same_records_and_another_seed_changes_them() -> None:
    first = run(ScriptedModel(varied), config())
    again = run(ScriptedModel(varied), config())
    other = run(ScriptedModel(varied), config(seed=8))
    assert first == again
    assert {r["id"] for r in first}.isdisjoint({r["id"] for r in other})


def test_round_robin_keeps_points_balanced_at_any_stop() -> None:
    for cap in (1, 5, 8, 13, 29):
        records = run(ScriptedModel(varied), config(max_samples=cap))
        assert len(records) == cap
        per_point = Counter(r["parent"] for r in records)
        # One sample is the most any point can be ahead.
        assert max(per_point.values()) - min(per_point.get(p["id"], 0) for p in POINTS) <= 1


def test_cleaning_dedup_and_qa_fields() -> None:
    def script(prompt: str, draw: int, seed: int) -> str:
        if "Question:" in prompt:
            return "Question: Where does the river flow? Answer: " + varied(prompt, draw, seed)
        if draw == 1:
            return "I'm sorry, but I cannot help with that request."
        return "Same words every time for this point and template, repeated in full here."

    records = run(ScriptedModel(script), config(rounds=1, temperatures=(0.8,)))
    qa = [r for r in records if "question" in r]
    assert qa and all(r["question"] == "Where does the river flow?" for r in qa)
    assert all(r["text"] == f"{r['question']} {r['answer']}" for r in qa)
    plain = [r for r in records if "question" not in r]
    # The constant sentence is accepted once; its repeats are duplicates, refusals never appear.
    assert len(plain) == 1
    assert not any("sorry" in str(r["text"]).lower() for r in records)


def test_qa_templates_start_the_reply_with_the_label_and_read_what_the_model_continues() -> None:
    def script(prompt: str, draw: int, seed: int) -> str:
        if "Question:" not in prompt:
            return varied(prompt, draw, seed)
        # The two ways the default model continues "Question:": in the form, or as loose prose.
        if seed % 2:
            return " Why does the river flow east?\nAnswer: Because " + varied(prompt, draw, seed)
        return "An essay on rivers: " + varied(prompt, draw, seed)

    model = ScriptedModel(script)
    records = run(model, config(rounds=1, temperatures=(0.8,)))
    starts = {
        (prompt, start)
        for call in model.calls
        for prompt, start in zip(call["prompts"], call["reply_starts"], strict=True)  # type: ignore[call-overload]
    }
    assert {start for prompt, start in starts if "Question:" in prompt} == {"Question:"}
    assert {start for prompt, start in starts if "Question:" not in prompt} == {""}
    from_qa = [r for r in records if str(r["gen"]["template"]).startswith("synthesize/qa/")]  # type: ignore[index]
    paired = [r for r in from_qa if "question" in r]
    assert paired and all(r["question"] == "Why does the river flow east?" for r in paired)
    assert all(str(r["answer"]).startswith("Because w") for r in paired)
    # A reply that left the form is prose, without the label it was started with.
    loose = [r for r in from_qa if "question" not in r]
    assert loose and all(str(r["text"]).startswith("An essay on rivers:") for r in loose)


def test_the_diversity_rule_stops_when_new_samples_stop_adding_diversity(tmp_path: Path) -> None:
    def script(prompt: str, draw: int, seed: int) -> str:
        rng = random.Random(hashlib.sha256(f"{prompt}|{draw}|{seed}".encode()).hexdigest())
        # A small vocabulary: the set's diversity saturates quickly.
        return " ".join(rng.choice(VOCABULARY[:40]) for _ in range(30)) + "."

    trace = tmp_path / "trace.jsonl"
    records = run(
        ScriptedModel(script),
        config(stop="diversity", check_every=10, epsilon=0.01, dedup_threshold=0.999, rounds=4),
        trace=trace,
    )
    assert len(records) % 10 == 0 and len(records) < 3 * 8 * 2 * 4 * 2
    curve = [json.loads(line) for line in trace.read_text().splitlines()]
    # One line per check; the run stopped at a check, so its last value is that check's line, once.
    assert [c["samples"] for c in curve] == list(range(10, len(records) + 1, 10))
    assert curve[-1]["diversity"] - curve[-2]["diversity"] < 0.01


def test_the_trace_ends_with_the_value_where_the_run_stopped(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    records = run(ScriptedModel(varied), config(check_every=25, max_samples=30), trace=trace)
    curve = [json.loads(line) for line in trace.read_text().splitlines()]
    assert len(records) == 30 and [c["samples"] for c in curve] == [25, 30]


@pytest.mark.parametrize("killed_after", [1, 7, 20, 45])
def test_resume_regenerates_exactly_what_an_uninterrupted_run_would(killed_after: int) -> None:
    settings = config(max_samples=60)
    complete = run(ScriptedModel(varied), settings)
    partial = list(
        islice(synthesize_samples(ScriptedModel(varied), HashEmbedder(), POINTS, settings), killed_after)
    )
    model = ScriptedModel(varied)
    resumed = run(model, settings, existing=partial)
    assert partial + resumed == complete
    # Only the interrupted request and later ones were generated again.
    units = plan_units(POINTS, select_templates(settings.templates), settings)
    first = partial[-1]["gen"]["unit"]  # type: ignore[index]
    assert model.calls[0]["seeds"][0] == unit_seed(units[first], 7)  # type: ignore[index]


@pytest.mark.parametrize(("before", "after"), [(16, 4), (4, 16)])
def test_resume_at_another_batch_size_loses_and_repeats_nothing(before: int, after: int) -> None:
    settings = config(max_samples=60)
    complete = run(ScriptedModel(varied, batch_size=8), settings)
    partial = list(
        islice(
            synthesize_samples(ScriptedModel(varied, batch_size=before), HashEmbedder(), POINTS, settings), 23
        )
    )
    resumed = run(ScriptedModel(varied, batch_size=after), settings, existing=partial)
    assert [r["id"] for r in partial + resumed] == [r["id"] for r in complete]
    assert partial + resumed == complete


def test_points_pass_through_rules_in_the_library_call() -> None:
    other = {"id": "keep-me", "kind": "sample", "text": "An earlier sample.", "extra": [1, 2]}
    records = list(
        api.synthesize(
            config(rounds=1, temperatures=(0.8,), samples=1),
            records=[other, *POINTS],
            model=ScriptedModel(varied),
            embedder=HashEmbedder(),
        )
    )
    assert records[0] == other
    assert all(r["kind"] == "sample" for r in records)
    assert not any(r["kind"] == "point" for r in records)
    with pytest.raises(UsageError, match="no point records"):
        list(api.synthesize(config(), records=[other], model=ScriptedModel(varied), embedder=HashEmbedder()))
