"""Stage II probing on the scripted backend: plan, filters, thresholds, records and exact resume."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from biforget import api
from biforget.config import ProbeConfig
from biforget.errors import InputError, UsageError
from biforget.metrics.mink import mia_scores
from biforget.models.base import TokenLogprobs
from biforget.pipelines.probe import JAILBREAK, MIA, Point, domain_points, load_probe_templates, plan_attempts
from biforget.pipelines.probe_threshold import calibrate_threshold, keep_top, pass_rate
from biforget.text import normalise
from tests.scripted import HashEmbedder, ScriptedModel

TOPIC = "Testland"
WORDS = [f"w{i}" for i in range(3000)]
REFUSAL = "I'm sorry, but as a chatbot I cannot help with that request."
OFF_TOPIC = "Boil the pasta for nine minutes, then drain it and add salt, pepper and olive oil to taste."
STAGE_ONE: list[dict[str, Any]] = [
    {
        "id": "s1",
        "kind": "sample",
        "text": "Alpha Castle stands on the hill above the old town of Testland.",
        "parent": "p1",
        "stage": "synthesize",
        "gen": {"point": "Alpha Castle"},
        "custom": [1, 2],
    },
    {
        "id": "s2",
        "kind": "sample",
        "text": "Beta River runs through Testland from the northern mountains.",
        "parent": "p2",
        "stage": "synthesize",
        "gen": {"point": "Beta River"},
    },
    {
        "id": "s3",
        "kind": "sample",
        "text": "Another passage about Alpha Castle and its towers in Testland.",
        "parent": "p1",
        "stage": "synthesize",
        "gen": {"point": "Alpha Castle"},
    },
]


def point_of(prompt: str) -> str:
    for name in ("Alpha Castle", "Beta River", "Gamma Tower"):
        if name in prompt:
            return name
    return TOPIC


def script(prompt: str, draw: int, seed: int) -> str:
    """Role play is refused, the quiz-night answer key wanders off topic, the rest is on-topic text whose
    length (and so its scripted Min-K%) varies with the prompt and seed."""
    if "Professor Quill" in prompt:
        return REFUSAL
    if "quiz night" in prompt:
        return OFF_TOPIC
    rng = random.Random(hashlib.sha256(f"{prompt}|{draw}|{seed}".encode()).hexdigest())
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 20)))
    return f"{point_of(prompt)} {words}."


class ScoredModel(ScriptedModel):
    """Scripted text; each text's token log-probabilities come from its hash, and a text containing
    `unscorable` has no scored token (as a one-token text would)."""

    def token_logprobs(
        self, texts: Sequence[str], context: Sequence[str] | None = None
    ) -> list[TokenLogprobs]:
        out = []
        for text in texts:
            if "unscorable" in text:
                empty = np.zeros(0, dtype=np.float32)
                out.append(TokenLogprobs(np.zeros(0, dtype=np.int64), empty, empty, empty))
                continue
            rng = np.random.default_rng(int(hashlib.sha256(text.encode()).hexdigest()[:8], 16))
            values = -rng.uniform(0.0, 8.0, size=len(text.split())).astype(np.float32)
            out.append(TokenLogprobs(np.arange(len(values)), values, values + 1, np.full_like(values, 4.0)))
        return out


def settings(**overrides: object) -> ProbeConfig:
    values: dict[str, object] = {"topic": TOPIC, "jailbreak": 20, "mia": 20, "max_new_tokens": 32, "seed": 5}
    values.update(overrides)
    return ProbeConfig(**values)  # type: ignore[arg-type]


def run(
    config: ProbeConfig,
    inputs: Sequence[dict[str, Any]] = STAGE_ONE,
    model: ScriptedModel | None = None,
    **kwargs: object,
) -> list[dict[str, Any]]:
    model = model or ScoredModel(script, batch_size=4)
    return list(api.probe(config, records=list(inputs), model=model, embedder=HashEmbedder(), **kwargs))  # type: ignore[arg-type]


def test_inputs_first_unchanged_then_jailbreak_then_mia_records() -> None:
    records = run(settings())
    assert records[: len(STAGE_ONE)] == STAGE_ONE
    new = records[len(STAGE_ONE) :]
    stages = [r["stage"] for r in new]
    assert set(stages) == {JAILBREAK, MIA}
    assert stages == sorted(stages)  # every jailbreak record before any membership record
    texts = [normalise(str(r["text"])) for r in records]
    assert len(set(texts)) == len(texts)
    assert len({r["id"] for r in new}) == len(new)
    for record in new:
        assert record["kind"] == "sample" and record["topic"] == TOPIC
        assert REFUSAL not in str(record["text"]) and OFF_TOPIC not in str(record["text"])
        gen = record["gen"]
        assert isinstance(gen, dict)
        assert gen["point"] in {"Alpha Castle", "Beta River"}
        assert record["parent"] == {"Alpha Castle": "p1", "Beta River": "p2"}[gen["point"]]
        assert gen["template"].startswith(f"{record['stage']}/") and len(gen["template_hash"]) == 8
        assert gen["temperature"] == 0.9 and gen["seed"] == 5 and gen["model"] == "scripted"
        scores = record["scores"]
        assert isinstance(scores, dict) and scores["topic_sim"] >= 0.25
        if record["stage"] == MIA:
            assert isinstance(scores["mink"], float) and isinstance(scores["mink_pp"], float)
            assert gen["mia"]["mode"] == "keep" and gen["mia"]["score"] == "mink" and gen["mia"]["k"] == 0.2
        else:
            assert set(scores) == {"topic_sim"} and "mia" not in gen


def test_jailbreak_filters_count_rejections_by_reason(capsys: pytest.CaptureFixture[str]) -> None:
    records = run(settings(jailbreak=20, mia=0))
    jailbreak = [r for r in records if r.get("stage") == JAILBREAK]
    err = capsys.readouterr().err
    # 20 attempts over 2 points and 5 templates: each template 4 times; role play refused, the answer key
    # off topic, the other 12 on topic and distinct.
    assert len(jailbreak) == 12
    assert "probe/jailbreak: accepted 12 of 20 attempt(s)" in err
    assert "probe/jailbreak: rejected 8: irrelevant 4, refusal 4" in err
    assert not any(r.get("stage") == MIA for r in records)


def test_duplicates_of_inputs_and_of_each_other_are_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    def copying(prompt: str, draw: int, seed: int) -> str:
        if "Continue the following text" in prompt:
            return str(STAGE_ONE[0]["text"]) + " "  # an input, word for word
        if "thought experiment" in prompt:
            return "Alpha Castle and Beta River are the same text for every prompt in Testland, always."
        return script(prompt, draw, seed)

    records = run(settings(jailbreak=20, mia=0), model=ScoredModel(copying, batch_size=4))
    err = capsys.readouterr().err
    texts = [normalise(str(r["text"])) for r in records]
    assert len(set(texts)) == len(texts)
    # Continuation: 4 exact copies of an input. Thought experiment: 4 outputs, 1 kept, 3 exact repeats.
    assert "duplicate_exact 7" in err
    assert sum(1 for r in records if r.get("gen", {}).get("template") == "probe/jailbreak/hypothetical") == 1


def test_near_duplicates_by_embedding_are_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    def near(prompt: str, draw: int, seed: int) -> str:
        if "Recite from memory" in prompt:
            # The same words in another order: a different string, the same bag-of-words embedding.
            rng = random.Random(f"{prompt}|{seed}")
            words = ["Alpha", "Castle", *[f"x{i}" for i in range(14)]]
            rng.shuffle(words)
            return " ".join(words) + " end."
        return script(prompt, draw, seed)

    run(settings(jailbreak=20, mia=0), model=ScoredModel(near, batch_size=4))
    assert "duplicate_near 3" in capsys.readouterr().err


def test_points_round_robin_with_rotating_templates() -> None:
    templates = load_probe_templates()[JAILBREAK]
    assert len(templates) >= 4
    points = [Point("A", "a"), Point("B", "b"), Point("C", "c")]
    plan = plan_attempts(len(points) * len(templates), templates, points)
    assert [a.point for a in plan[:3]] == points  # every point before any point's second attempt
    assert {(a.template.id, a.point) for a in plan} == {(t.id, p) for t in templates for p in points}
    alone = plan_attempts(len(templates), templates, [])
    assert [a.template for a in alone] == templates and all(a.point is None for a in alone)


def test_points_from_input_samples_or_a_points_file(tmp_path: Path) -> None:
    assert domain_points(STAGE_ONE) == [Point("Alpha Castle", "p1"), Point("Beta River", "p2")]
    points_file = tmp_path / "points.jsonl"
    points_file.write_text('{"id": "g", "kind": "point", "text": "Gamma Tower"}\n', encoding="utf-8")
    model = ScoredModel(script, batch_size=4)
    records = run(settings(jailbreak=5, mia=0), model=model, points_file=points_file)
    new = [r for r in records if r.get("stage") == JAILBREAK]
    assert new and {r["gen"]["point"] for r in new} == {"Gamma Tower"}
    assert {r["parent"] for r in new} == {"g"}
    assert all("Gamma Tower" in p for call in model.calls for p in call["prompts"])  # type: ignore[attr-defined]


def test_topic_alone_without_points(capsys: pytest.CaptureFixture[str]) -> None:
    model = ScoredModel(script, batch_size=4)
    records = run(settings(jailbreak=5, mia=5), inputs=[], model=model)
    assert records and all(r["parent"] is None and "point" not in r["gen"] for r in records)
    assert all(TOPIC in p for call in model.calls for p in call["prompts"])  # type: ignore[attr-defined]
    assert "0 point(s), 0 input record(s)" in capsys.readouterr().err


def test_attempts_are_requests_at_the_probe_temperature_and_the_batch_size_changes_nothing() -> None:
    model = ScoredModel(script, batch_size=4)
    records = run(settings(jailbreak=10, mia=6, temperature=0.7), model=model)
    # One wave per probe: 10 jailbreak attempts, then 6 membership attempts.
    assert [len(call["prompts"]) for call in model.calls] == [10, 6]  # type: ignore[arg-type]
    assert {t for call in model.calls for t in call["temperatures"]} == {0.7}  # type: ignore[attr-defined]
    seeds = [seed for call in model.calls for seed in call["seeds"]]  # type: ignore[attr-defined]
    assert len(set(seeds)) == 16
    assert (
        run(settings(jailbreak=10, mia=6, temperature=0.7), model=ScoredModel(script, batch_size=64))
        == records
    )


def mia_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("stage") == MIA]


def test_keep_mode_keeps_the_top_fraction_of_candidates(capsys: pytest.CaptureFixture[str]) -> None:
    everything = mia_records(run(settings(jailbreak=0, mia=30, mia_keep=1.0)))
    capsys.readouterr()
    kept = mia_records(run(settings(jailbreak=0, mia=30, mia_keep=0.3)))
    err = capsys.readouterr().err
    scores = sorted((float(r["scores"]["mink"]) for r in everything), reverse=True)
    want = max(1, int(0.3 * len(everything)))
    assert len(kept) == want
    assert sorted((float(r["scores"]["mink"]) for r in kept), reverse=True) == scores[:want]
    # Kept records appear in attempt order with the same ids as in the run that keeps everything.
    kept_ids = {r["id"] for r in kept}
    assert [r["id"] for r in kept] == [r["id"] for r in everything if r["id"] in kept_ids]
    threshold = kept[0]["gen"]["mia"]["threshold"]
    assert threshold == scores[want - 1]
    assert f"threshold {threshold:.4f} on mink (k 0.2), mode keep" in err
    assert f"below_threshold {len(everything) - want}" in err


def test_given_threshold_accepts_scores_above_it(capsys: pytest.CaptureFixture[str]) -> None:
    everything = mia_records(run(settings(jailbreak=0, mia=30, mia_keep=1.0)))
    scores = sorted(float(r["scores"]["mink_pp"]) for r in everything)
    cut = scores[len(scores) // 2]
    capsys.readouterr()
    chosen = mia_records(run(settings(jailbreak=0, mia=30, mia_score="mink++", mia_threshold=cut)))
    err = capsys.readouterr().err
    assert [r["id"] for r in chosen] == [r["id"] for r in everything if r["scores"]["mink_pp"] > cut]
    assert all(
        r["gen"]["mia"] == {"score": "mink++", "k": 0.2, "mode": "threshold", "threshold": cut}
        for r in chosen
    )
    assert f"probe/mia: threshold {cut:.4f} on mink++ (k 0.2), mode threshold" in err


def test_text_without_scored_tokens_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    def unscorable(prompt: str, draw: int, seed: int) -> str:
        if "Quote the part" in prompt:
            return f"{point_of(prompt)} unscorable " + " ".join(f"u{i}" for i in range(14)) + f" {seed}."
        return script(prompt, draw, seed)

    records = mia_records(
        run(settings(jailbreak=0, mia=10, mia_keep=1.0), model=ScoredModel(unscorable, batch_size=4))
    )
    assert records and not any("unscorable" in str(r["text"]) for r in records)
    assert "unscored 2" in capsys.readouterr().err


def test_calibrated_threshold_from_reference_texts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(3)
    texts = [" ".join(rng.choice(WORDS) for _ in range(20)) for _ in range(40)]
    references = tmp_path / "refs.txt"
    references.write_text("\n".join(texts) + "\n", encoding="utf-8")
    records = mia_records(run(settings(jailbreak=0, mia=20, mia_calibrate=references, mia_fpr=0.25)))
    err = capsys.readouterr().err
    reference_scores = [
        float(s.mink or 0.0) for s in mia_scores(ScoredModel(script).token_logprobs(texts), 0.2)
    ]
    threshold = calibrate_threshold(reference_scores, 0.25)
    assert pass_rate(reference_scores, threshold) <= 0.25
    assert f"threshold {threshold:.4f} on mink (k 0.2), mode calibrate" in err
    assert "of 40 reference text(s)" in err
    assert records
    for record in records:
        gen_mia = record["gen"]["mia"]
        assert gen_mia["threshold"] == threshold and gen_mia["fpr"] == 0.25 and gen_mia["references"] == 40
        assert gen_mia["reference_pass_rate"] <= 0.25
        assert float(record["scores"]["mink"]) > threshold


def test_calibration_file_errors_before_any_record(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    for path, message in ((tmp_path / "missing.jsonl", "no such file"), (empty, "no texts")):
        stream = api.probe(
            settings(mia_calibrate=path),
            records=STAGE_ONE,
            model=ScoredModel(script),
            embedder=HashEmbedder(),
        )
        with pytest.raises(InputError, match=message):
            next(stream)


@pytest.mark.parametrize(
    ("fpr", "scores"),
    [
        (0.05, list(range(100))),
        (0.1, [1.0] * 7 + [2.0] * 3),
        (0.25, [0.5, 0.1, 0.9, 0.3]),
        (0.0, [3.0, 1.0]),
        (0.5, [2.0]),
    ],
)
def test_calibrated_threshold_lets_through_at_most_the_rate(fpr: float, scores: list[float]) -> None:
    threshold = calibrate_threshold(scores, fpr)
    passed = sum(1 for s in scores if s > threshold)
    assert passed <= fpr * len(scores)
    # And not needlessly strict: the next lower distinct score would let too many through.
    lower = [s for s in sorted(set(scores)) if s < threshold]
    if lower:
        assert sum(1 for s in scores if s > lower[-1]) > fpr * len(scores)


def test_keep_top_counts_and_ties() -> None:
    assert keep_top([], 0.5) == ([], None)
    assert keep_top([0.3, 0.9, 0.1, 0.9, 0.5], 0.5) == ([1, 3], 0.9)
    assert keep_top([0.3, 0.1], 0.1) == ([0], 0.3)  # at least one
    assert keep_top([0.3, 0.1, 0.2], 1.0) == ([0, 1, 2], 0.1)


def test_same_seed_same_records_other_seed_other_records() -> None:
    first = run(settings(jailbreak=12, mia=12))
    assert first == run(settings(jailbreak=12, mia=12))
    other = run(settings(jailbreak=12, mia=12, seed=6))
    assert [r["text"] for r in first[3:]] != [r["text"] for r in other[3:]]


def test_ids_do_not_depend_on_acceptance_settings() -> None:
    loose = run(settings(jailbreak=12, mia=12, mia_keep=1.0, min_relevance=0.0))
    strict = run(settings(jailbreak=12, mia=12, mia_keep=0.5, min_relevance=0.3))
    loose_ids = {r["id"]: r["text"] for r in loose}
    assert all(loose_ids.get(r["id"]) == r["text"] for r in strict)


@pytest.mark.parametrize("mode", [{"mia_keep": 0.5}, {"mia_threshold": -7.3}])
@pytest.mark.parametrize("cut", [4, 9, 13])
def test_resume_after_interruption_gives_the_same_records(mode: dict[str, object], cut: int) -> None:
    config = settings(jailbreak=16, mia=16, **mode)
    full = run(config)
    new = full[len(STAGE_ONE) :]
    assert len(new) > 13
    written = STAGE_ONE + new[:cut]  # what an interrupted `-o FILE` run left behind
    done = {r["id"] for r in written}
    resumed = [r for r in run(config, existing=written) if r["id"] not in done]
    assert written + resumed == full


def test_nothing_to_probe_needs_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(options: object) -> None:
        raise AssertionError("no model should load")

    monkeypatch.setattr(api, "load_models", no_model)
    records = list(api.probe(settings(jailbreak=0, mia=0), records=STAGE_ONE))
    assert records == STAGE_ONE


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"topic": " "}, "--topic"),
        ({"jailbreak": -1}, "--jailbreak must be 0 or more"),
        ({"mia": -3}, "--mia must be 0 or more"),
        ({"mink_k": 0.0}, r"--mink-k must lie in \(0, 1\]"),
        ({"mink_k": 1.5}, r"--mink-k must lie in \(0, 1\]"),
        ({"mia_score": "loss"}, "--mia-score must be one of mink, mink\\+\\+"),
        ({"mia_threshold": -1.0, "mia_calibrate": Path("refs.txt")}, "exclude each other"),
        ({"mia_fpr": 1.0}, "--mia-fpr"),
        ({"mia_keep": 0.0}, "--mia-keep"),
        ({"min_relevance": 2.0}, "--min-relevance"),
        ({"max_new_tokens": 0}, "--max-new-tokens"),
    ],
)
def test_bad_settings_are_usage_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        settings(**overrides)
