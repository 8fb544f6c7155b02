"""`biforget synthesize` through `biforget.cli.run` on the scripted backend: streams, errors, resume."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import biforget.api
from biforget import cli
from biforget.config import ModelOptions
from tests.scripted import ScriptedModel
from tests.test_synthesize_pipeline import POINTS, varied

SMALL = ["--temperatures", "0.6,1.0", "--samples", "2", "--rounds", "1", "--max-new-tokens", "16"]


def script(prompt: str, draw: int, seed: int) -> str:
    if "subtopics of" in prompt:
        return "1. Castle Gate\n2. River Bank"
    if "key topics of" in prompt:
        return "1. Old Castle\n2. Deep River"
    return varied(prompt, draw, seed)


def write_points(path: Path, extra: list[dict[str, object]] | None = None) -> Path:
    lines = [json.dumps(r) for r in (extra or [])] + [json.dumps(p) for p in POINTS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_points_in_samples_out_with_passthrough_first(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(ScriptedModel(script))
    other = {"id": "x1", "kind": "sample", "text": "kept as is", "custom": {"a": 1}}
    code = cli.run(["synthesize", "-i", str(write_points(tmp_path / "p.jsonl", [other])), *SMALL])
    out, err = capsys.readouterr()
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0] == other
    samples = records[1:]
    assert len(samples) == 3 * 8 * 2 * 2 and all(r["kind"] == "sample" for r in samples)
    assert {r["parent"] for r in samples} == {p["id"] for p in POINTS}
    assert "synthesize:" in err and "{" not in err


def test_topic_alone_lists_points_then_synthesises(
    use_model: Callable[[ScriptedModel], None], capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(ScriptedModel(script))
    code = cli.run(["synthesize", "--topic", "Testland", "--depth", "1", "--count", "2", *SMALL])
    out, err = capsys.readouterr()
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert records and all(r["kind"] == "sample" for r in records)  # the points are consumed
    assert {r["gen"]["point"] for r in records} == {"Old Castle", "Deep River", "Castle Gate", "River Bank"}
    assert all(r["topic"] == "Testland" for r in records)


def test_interrupt_exits_130_and_resume_completes_the_same_file(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    points = write_points(tmp_path / "p.jsonl")
    reference = tmp_path / "reference.jsonl"
    use_model(ScriptedModel(script))
    assert cli.run(["synthesize", "-i", str(points), *SMALL, "-o", str(reference)]) == 0
    output = tmp_path / "out.jsonl"
    # 64 requests in waves of 32: the interrupt falls in the second wave.
    use_model(ScriptedModel(script, stop_at=2))
    assert cli.run(["synthesize", "-i", str(points), *SMALL, "-o", str(output)]) == 130
    partial = output.read_text(encoding="utf-8").splitlines()
    assert 0 < len(partial) < len(reference.read_text().splitlines())
    assert all(json.loads(line) for line in partial)  # whole records only
    use_model(ScriptedModel(script))
    assert cli.run(["synthesize", "-i", str(points), *SMALL, "-o", str(output), "--resume"]) == 0
    assert output.read_text(encoding="utf-8") == reference.read_text(encoding="utf-8")
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--temperatures", "0.6,hot"], 2, "--temperatures"),
        (["--temperatures", "-1"], 2, "temperature"),
        (["--resume"], 2, "--resume needs -o"),
        (["--templates", "nonsense"], 2, "nonsense"),
        (["--samples", "0"], 2, "--samples"),
        (["--on-error", "maybe"], 2, "--on-error"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    use_model: Callable[[ScriptedModel], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    fragment: str,
) -> None:
    use_model(ScriptedModel(script))
    result = cli.run(["synthesize", "-i", str(write_points(tmp_path / "p.jsonl")), *args])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert result == code
    assert len(errors) == 1 and fragment in errors[0]


def test_template_with_unknown_placeholder_stops_before_any_model_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(options: ModelOptions) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(biforget.api, "load_models", refuse)
    (tmp_path / "tpl" / "info").mkdir(parents=True)
    (tmp_path / "tpl" / "info" / "mine.txt").write_text(
        "Tell me about {point} in {fandom}.", encoding="utf-8"
    )
    code = cli.run(
        ["synthesize", "-i", str(write_points(tmp_path / "p.jsonl")), "--template-dir", str(tmp_path / "tpl")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "{fandom}" in err and "mine.txt" in err


def test_point_without_text_names_the_line(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(ScriptedModel(script))
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(POINTS[0]) + "\n" + json.dumps({"kind": "point", "id": "p2"}) + "\n")
    code = cli.run(["synthesize", "-i", str(path), *SMALL])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert f"{path}:2:" in err and "'text'" in err


def test_no_points_and_no_topic_is_a_usage_error(
    use_model: Callable[[ScriptedModel], None], capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(ScriptedModel(script))
    code = cli.run(["synthesize"])  # no stdin under pytest: no input, which is not an error by itself
    assert code == 2
    assert "--topic" in capsys.readouterr().err


def test_user_templates_join_the_plan(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ScriptedModel(script)
    use_model(model)
    (tmp_path / "tpl" / "qa").mkdir(parents=True)
    (tmp_path / "tpl" / "qa" / "mine.txt").write_text("Quiz me on {point} ({topic}).", encoding="utf-8")
    code = cli.run(
        [
            "synthesize",
            "-i",
            str(write_points(tmp_path / "p.jsonl")),
            *SMALL,
            "--templates",
            "user",
            "--template-dir",
            str(tmp_path / "tpl"),
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert {r["gen"]["template"] for r in records} == {"user/qa/mine"}
    assert "Quiz me on Alpha Castle (Testland)." in model.calls[0]["prompts"]  # type: ignore[operator]
