"""No command exits 0 having been asked for records and written none of its own: each such run exits 1 with
one stderr line holding the counts by reason and the setting most likely to help (issue 24, part 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from biforget import cli
from tests.scripted import ScriptedModel
from tests.test_probe_pipeline import STAGE_ONE, ScoredModel
from tests.test_synthesize_pipeline import POINTS

TOPIC = "Harry Potter"


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def only_topic(prompt: str, draw: int, seed: int) -> str:
    """A list that names the topic itself and nothing else, as the default model often does."""
    return f"1. {TOPIC}\n2. Harry Potter."


def test_seeds_with_no_point_exits_1_with_counts(
    use_model: Callable[[ScriptedModel], None], capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(ScriptedModel(only_topic))
    code = cli.run(["seeds", "--topic", TOPIC, "--count", "3", "--depth", "1", "--max-new-tokens", "48"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    [line] = error_lines(err)
    # Two lists (the two --samples of the one top-level request), every item the topic itself.
    assert line == (
        f"error: seeds: no point for {TOPIC!r} (generated 2 list(s); rejected: topic 2); "
        "try a higher --count (now 3) or more --samples (now 2)"
    )


def test_seeds_counts_lists_that_give_no_item(
    use_model: Callable[[ScriptedModel], None], capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(ScriptedModel(lambda prompt, draw, seed: "Sure, here are the key topics:"))
    code = cli.run(["seeds", "--topic", TOPIC, "--max-new-tokens", "24"])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    [line] = error_lines(err)
    assert "(generated 2 list(s); rejected: no_list_item 2)" in line
    assert "try a larger --max-new-tokens (now 24)" in line


def test_synthesize_topic_with_no_point_is_an_error_not_an_empty_file(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ScriptedModel(only_topic)
    use_model(model)
    out_file = tmp_path / "full.jsonl"
    code = cli.run(["synthesize", "--topic", TOPIC, "--count", "3", "--depth", "1", "-o", str(out_file)])
    _, err = capsys.readouterr()
    assert code == 1
    [line] = error_lines(err)
    assert line.startswith(f"error: seeds: no point for {TOPIC!r} (generated 2 list(s); rejected: topic 2)")
    assert "wrote 0 record(s)" not in err
    assert not out_file.exists()  # a failed run that wrote nothing leaves no empty file behind
    # No sample was asked of the model once the listing gave nothing.
    assert all("key topics of" in prompt for call in model.calls for prompt in call["prompts"])  # type: ignore[attr-defined]


def write_points(path: Path) -> Path:
    path.write_text("".join(json.dumps(p) + "\n" for p in POINTS), encoding="utf-8")
    return path


def test_synthesize_with_every_sample_rejected_exits_1_with_counts(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What a 24-token cap leaves: a few words, under --min-words.
    use_model(ScriptedModel(lambda prompt, draw, seed: "Harry Potter is a"))
    points = write_points(tmp_path / "p.jsonl")
    args = ["synthesize", "-i", str(points), "--temperatures", "0.7", "--samples", "1", "--rounds", "1"]
    code = cli.run([*args, "--templates", "info", "--max-new-tokens", "24"])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    [line] = error_lines(err)
    assert line.startswith("error: synthesize: no sample accepted (generated 12 output(s) for 3 point(s); ")
    assert "rejected: too_short 12" in line
    assert "try a larger --max-new-tokens (now 24)" in line
    # The counts are in the error line, not repeated in a report before it.
    assert "synthesize: 0 sample(s)" not in err


FACTS = [
    {
        "question": "Where was the novelist Ilsa Marrowgate born?",
        "answer": "She was born in Tallinn in 1961.",
    },
    {"question": "What did Orrin Vale write first?", "answer": "His first book was The Salt Ledger."},
]


def test_rewrite_with_every_variant_rejected_exits_1_after_the_facts(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(ScriptedModel(lambda prompt, draw, seed: "I'm sorry, but I can't help with that."))
    facts = tmp_path / "facts.jsonl"
    facts.write_text("".join(json.dumps(f) + "\n" for f in FACTS), encoding="utf-8")
    code = cli.run(["rewrite", "-i", str(facts), "--variants", "1", "--no-statements"])
    out, err = capsys.readouterr()
    assert code == 1
    # The facts themselves are written; no variant is.
    assert [json.loads(line)["kind"] for line in out.splitlines()] == ["fact", "fact"]
    [line] = error_lines(err)
    assert line.startswith(
        "error: rewrite: no variant accepted for any of 2 fact(s) (generated 6 attempt(s); "
    )
    assert "rejected: refusal 6" in line
    assert "try more --attempts (now 3)" in line


def refuse(prompt: str, draw: int, seed: int) -> str:
    return "I'm sorry, but I can't help with that request."


PROBE = ["--topic", "Testland", "--jailbreak", "4", "--mia", "4", "--max-new-tokens", "16", "--seed", "5"]


def test_probe_with_no_input_and_nothing_added_exits_1(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(ScoredModel(refuse))
    # No input at all (no -i, no piped stdin): probe works from --topic alone. An empty -i FILE is
    # another error, "empty input" (tests/test_hostile_inputs.py).
    code = cli.run(["probe", *PROBE])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    [line] = error_lines(err)
    assert line == (
        "error: probe: no sample added to an empty input (generated 4 jailbreak and 4 mia attempt(s); "
        "rejected: refusal 8); try more --jailbreak or --mia attempts"
    )


def test_probe_adding_nothing_to_an_input_exits_0_with_the_counts(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(ScoredModel(refuse))
    stage_one = tmp_path / "s.jsonl"
    stage_one.write_text("".join(json.dumps(r) + "\n" for r in STAGE_ONE), encoding="utf-8")
    code = cli.run(["probe", "-i", str(stage_one), *PROBE])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == STAGE_ONE
    assert "probe/jailbreak: rejected 4: refusal 4" in err
    assert "probe/mia: rejected 4: refusal 4" in err
    assert not error_lines(err)
