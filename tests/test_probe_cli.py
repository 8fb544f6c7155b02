"""`biforget probe` through `biforget.cli.run` on the scripted backend: streams, errors, resume."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import biforget.api
from biforget import cli
from biforget.config import ModelOptions
from tests.scripted import ScriptedModel
from tests.test_probe_pipeline import STAGE_ONE, ScoredModel, script

SMALL = [
    "--topic",
    "Testland",
    "--jailbreak",
    "12",
    "--mia",
    "12",
    "--max-new-tokens",
    "16",
    "--seed",
    "5",
    "--batch-size",
    "4",
]


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(options: ModelOptions) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(biforget.api, "load_models", refuse)


def stage_one(path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in STAGE_ONE), encoding="utf-8")
    return path


def test_inputs_pass_through_first_then_probe_records(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(ScoredModel(script, batch_size=4))
    code = cli.run(["probe", "-i", str(stage_one(tmp_path / "s.jsonl")), *SMALL])
    out, err = capsys.readouterr()
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert records[:3] == STAGE_ONE
    stages = [r["stage"] for r in records[3:]]
    assert stages and set(stages) == {"probe/jailbreak", "probe/mia"}
    assert all(
        {"mink", "mink_pp", "topic_sim"} <= set(r["scores"]) for r in records if r["stage"] == "probe/mia"
    )
    assert "probe/jailbreak: rejected" in err and "refusal" in err and "irrelevant" in err
    assert "probe/mia: threshold" in err and "mode keep" in err
    assert f"wrote {len(records)} record(s) to stdout" in err
    assert "{" not in err


def test_no_input_probes_the_topic_alone(
    use_model: Callable[[ScriptedModel], None], capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(ScoredModel(script, batch_size=4))
    code = cli.run(["probe", *SMALL])  # no stdin under pytest: no input, which is not an error
    out, err = capsys.readouterr()
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert records and all(r["stage"].startswith("probe/") and r["parent"] is None for r in records)


def test_interrupt_exits_130_and_resume_completes_the_same_file(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = stage_one(tmp_path / "s.jsonl")
    # 40 membership attempts: waves of 32 and 8, so the interrupt below falls between them.
    args = ["probe", "-i", str(inputs), *SMALL, "--mia", "40", "--mia-threshold", "-7.3"]
    reference = tmp_path / "reference.jsonl"
    use_model(ScoredModel(script, batch_size=4))
    assert cli.run([*args, "-o", str(reference)]) == 0
    output = tmp_path / "out.jsonl"
    use_model(ScoredModel(script, batch_size=4, stop_at=3))  # in the second membership wave
    assert cli.run([*args, "-o", str(output)]) == 130
    partial = output.read_text(encoding="utf-8").splitlines()
    assert len(STAGE_ONE) < len(partial) < len(reference.read_text().splitlines())
    use_model(ScoredModel(script, batch_size=64))
    assert cli.run([*args, "--batch-size", "64", "-o", str(output), "--resume"]) == 0
    assert output.read_text(encoding="utf-8") == reference.read_text(encoding="utf-8")
    assert "interrupted" in capsys.readouterr().err


def test_calibration_option(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    references = tmp_path / "refs.jsonl"
    references.write_text(
        "".join(json.dumps({"text": f"reference {i} " + "w1 w2 w3 " * i}) + "\n" for i in range(1, 21)),
        encoding="utf-8",
    )
    use_model(ScoredModel(script, batch_size=4))
    code = cli.run(
        ["probe", *SMALL, "--jailbreak", "0", "--mia-calibrate", str(references), "--mia-fpr", "0.2"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "mode calibrate" in err and "of 20 reference text(s)" in err
    for record in map(json.loads, out.splitlines()):
        assert record["gen"]["mia"]["mode"] == "calibrate" and record["gen"]["mia"]["fpr"] == 0.2
        assert record["scores"]["mink"] > record["gen"]["mia"]["threshold"]


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--mia-calibrate", "{tmp}/missing.txt"], 1, "missing.txt: no such file"),
        (["--mia-calibrate", "{tmp}/empty.txt"], 1, "empty.txt: no texts (empty input)"),
        (["--mia-calibrate", "{tmp}/empty.jsonl"], 1, "empty.jsonl: no records (empty input)"),
        (["--mink-k", "0"], 2, "--mink-k must lie in (0, 1]"),
        (["--mink-k", "1.2"], 2, "--mink-k must lie in (0, 1]"),
        (["--jailbreak", "-1"], 2, "--jailbreak must be 0 or more"),
        (["--mia", "-5"], 2, "--mia must be 0 or more"),
        (["--mia-score", "zlib"], 2, "--mia-score"),
        (["--mia-threshold", "-2", "--mia-calibrate", "{tmp}/empty.txt"], 2, "exclude each other"),
        (["--points", "{tmp}/missing.jsonl"], 1, "missing.jsonl: no such file"),
        (["--resume"], 2, "--resume needs -o"),
    ],
)
def test_bad_input_and_usage_errors_are_one_line(
    no_model: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    fragment: str,
) -> None:
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    result = cli.run(
        [
            "probe",
            "-i",
            str(stage_one(tmp_path / "s.jsonl")),
            *SMALL,
            *(a.replace("{tmp}", str(tmp_path)) for a in args),
        ]
    )
    out, err = capsys.readouterr()
    assert result == code
    assert out == ""  # nothing written before the error: not even the passed-through inputs
    assert err.count("\n") == 1 and err.startswith("error:") and fragment in err
