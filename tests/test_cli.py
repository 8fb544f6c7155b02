"""The `biforget` command through `biforget.cli.run`: stdout carries records only, stderr the rest,
exit codes follow the one table in `exit_code_for`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import biforget.api
from biforget import cli
from biforget.config import ModelOptions
from biforget.errors import InputError, ModelError
from biforget.io.jsonl import read_all
from tests.scripted import HashEmbedder, ScriptedModel

Script = Callable[[str, int, int], str]


def points(prompt: str, draw: int, seed: int) -> str:
    if "subtopics of" in prompt:
        point = prompt.split("subtopics of ", 1)[1].split(" (from ", 1)[0]
        return f"1. {point} Alpha\n2. {point} Beta"
    return "Here are the topics:\n1. Hogwarts\n2. Quidditch\n3. Horcruxes"


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> Callable[[Script], list[ScriptedModel]]:
    """Make `biforget.api.load_models` return a scripted model running `script`; returns the models made."""
    made: list[ScriptedModel] = []

    def install(script: Script) -> list[ScriptedModel]:
        def load(options: ModelOptions) -> tuple[ScriptedModel, HashEmbedder]:
            model = ScriptedModel(script)
            made.append(model)
            return model, HashEmbedder()

        monkeypatch.setattr(biforget.api, "load_models", load)
        return made

    return install


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_seeds_prints_only_json_lines_on_stdout(
    backend: Callable[[Script], list[ScriptedModel]], capsys: pytest.CaptureFixture[str]
) -> None:
    backend(points)
    code = cli.run(["seeds", "--topic", "Harry Potter", "--depth", "1", "--count", "2"])
    out, err = capsys.readouterr()
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [record["text"] for record in records] == [
        "Hogwarts",
        "Quidditch",
        "Hogwarts Alpha",
        "Hogwarts Beta",
        "Quidditch Alpha",
        "Quidditch Beta",
    ]
    assert all(record["kind"] == "point" and record["stage"] == "seeds" for record in records)
    assert out.endswith("\n")
    assert "wrote 6 record(s) to stdout" in err
    assert "{" not in err  # no record leaked to stderr


def test_output_file_gets_the_records_and_stdout_stays_empty(
    backend: Callable[[Script], list[ScriptedModel]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    backend(points)
    path = tmp_path / "points.jsonl"
    code = cli.run(["seeds", "--topic", "Harry Potter", "--depth", "0", "-o", str(path)])
    out, err = capsys.readouterr()
    assert code == 0
    assert out == ""
    assert [record["text"] for record in read_all(path)] == ["Hogwarts", "Quidditch", "Horcruxes"]
    assert f"wrote 3 record(s) to {path}" in err


def test_resume_appends_only_new_records(
    backend: Callable[[Script], list[ScriptedModel]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    backend(points)
    path = tmp_path / "points.jsonl"
    args = ["seeds", "--topic", "Harry Potter", "--depth", "1", "--count", "2", "-o", str(path)]
    assert cli.run(args) == 0
    complete = path.read_bytes()
    lines = complete.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]) + lines[3][:20])  # an interrupted run: 3 records and a torn one
    capsys.readouterr()
    assert cli.run([*args, "--resume"]) == 0
    assert path.read_bytes() == complete
    assert "wrote 3 record(s)" in capsys.readouterr().err


def test_resume_without_output_is_a_usage_error(
    backend: Callable[[Script], list[ScriptedModel]], capsys: pytest.CaptureFixture[str]
) -> None:
    made = backend(points)
    code = cli.run(["seeds", "--topic", "Harry Potter", "--resume"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == ["error: --resume needs -o FILE: there is no file to resume from"]
    assert made == []  # refused before any model was loaded


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "0"], "--count must be at least 1"),
        (["--count", "x"], "Invalid value for '--count'"),
        (["--top-p", "0"], "--top-p must lie in (0, 1]"),
        (["--depth", "-1"], "--depth must be 0 or more"),
        (["--no-such-flag"], "No such option"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    args: list[str],
    message: str,
    backend: Callable[[Script], list[ScriptedModel]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    made = backend(points)
    code = cli.run(["seeds", "--topic", "Harry Potter", *args])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert len(error_lines(err)) == 1 and message in error_lines(err)[0]
    assert "Traceback" not in err
    assert made == []


def test_missing_topic_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.run(["seeds"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "--topic" in err


def test_unknown_model_with_the_real_loader(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BIFORGET_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)
    code = cli.run(["seeds", "--topic", "Harry Potter", "--model", "./nope"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert error_lines(err) == [
        "error: ./nope: no such model file or folder (and not a hub id of the form org/name)"
    ]
    assert "Traceback" not in err


def test_debug_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BIFORGET_DEBUG", "1")
    monkeypatch.chdir(tmp_path)
    code = cli.run(["seeds", "--topic", "Harry Potter", "--model", "./nope", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert "ModelError" in err
    assert len(error_lines(err)) == 1


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ModelError("the model went away"), "error: the model went away"),
        (InputError("bad line", source="in.jsonl", line=4), "error: in.jsonl:4: bad line"),
        (RuntimeError("kaboom\nsecond line"), "error: internal error: RuntimeError: kaboom"),
    ],
)
def test_errors_inside_the_command_exit_1(
    error: Exception,
    message: str,
    backend: Callable[[Script], list[ScriptedModel]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BIFORGET_DEBUG", raising=False)

    def failing(prompt: str, draw: int, seed: int) -> str:
        raise error

    backend(failing)
    code = cli.run(["seeds", "--topic", "Harry Potter"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert error_lines(err) == [
        message + (" (set BIFORGET_DEBUG=1 for a traceback)" if "internal" in message else "")
    ]
    assert "Traceback" not in err


def test_keyboard_interrupt_exits_130_and_keeps_written_records(
    backend: Callable[[Script], list[ScriptedModel]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def interrupted(prompt: str, draw: int, seed: int) -> str:
        if "subtopics of" in prompt:
            raise KeyboardInterrupt
        return points(prompt, draw, seed)

    backend(interrupted)
    path = tmp_path / "points.jsonl"
    code = cli.run(["seeds", "--topic", "Harry Potter", "-o", str(path)])
    out, err = capsys.readouterr()
    assert code == 130
    assert out == ""
    assert "error: interrupted" in err
    data = path.read_text(encoding="utf-8")
    assert data.endswith("\n")
    assert [json.loads(line)["text"] for line in data.splitlines()] == ["Hogwarts", "Quidditch", "Horcruxes"]


def test_help_lists_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["--help"]) == 0
    out = capsys.readouterr().out
    assert "seeds" in out
    assert "Usage" in out


def test_bare_command_shows_help_without_an_empty_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run([]) == 2
    out, err = capsys.readouterr()
    assert "seeds" in out + err
    assert "Usage" in out + err
    assert error_lines(err) == []


def test_seeds_help_lists_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["seeds", "--help"]) == 0
    out = capsys.readouterr().out
    for option in (
        "--topic",
        "--count",
        "--depth",
        "--max-points",
        "--resume",
        "--config",
        "--quiet",
        "--seed",
    ):
        assert option in out


def test_version_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    from biforget import __version__

    assert cli.run(["--version"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == f"biforget {__version__}"


def test_quiet_suppresses_the_summary(
    backend: Callable[[Script], list[ScriptedModel]], capsys: pytest.CaptureFixture[str]
) -> None:
    backend(points)
    assert cli.run(["seeds", "--topic", "Harry Potter", "--depth", "0"]) == 0
    loud_out, loud_err = capsys.readouterr()
    assert "wrote 3 record(s)" in loud_err
    assert cli.run(["seeds", "--topic", "Harry Potter", "--depth", "0", "--quiet"]) == 0
    quiet_out, quiet_err = capsys.readouterr()
    assert quiet_err == ""
    assert quiet_out == loud_out  # the same records either way


def test_same_seed_same_output(
    backend: Callable[[Script], list[ScriptedModel]], capsys: pytest.CaptureFixture[str]
) -> None:
    backend(points)
    assert cli.run(["seeds", "--topic", "Harry Potter", "--seed", "3", "-q"]) == 0
    first = capsys.readouterr().out
    assert cli.run(["seeds", "--topic", "Harry Potter", "--seed", "3", "-q"]) == 0
    assert capsys.readouterr().out == first
    assert cli.run(["seeds", "--topic", "Harry Potter", "--seed", "4", "-q"]) == 0
    other = capsys.readouterr().out
    assert [json.loads(line)["id"] for line in other.splitlines()] != [
        json.loads(line)["id"] for line in first.splitlines()
    ]


def test_model_options_reach_the_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[ModelOptions] = []

    def load(options: ModelOptions) -> tuple[ScriptedModel, HashEmbedder]:
        seen.append(options)
        return ScriptedModel(points), HashEmbedder()

    monkeypatch.setattr(biforget.api, "load_models", load)
    args = [
        "seeds",
        "--topic",
        "HP",
        "--depth",
        "0",
        "--model",
        "some/model",
        "--device",
        "cuda:1",
        "--dtype",
        "bfloat16",
        "--quantize",
        "4bit",
        "--batch-size",
        "5",
        "--no-chat-template",
        "--embedder",
        "target",
    ]
    assert cli.run(args) == 0
    assert seen == [
        ModelOptions(
            model="some/model",
            device="cuda:1",
            dtype="bfloat16",
            quantize="4bit",
            batch_size=5,
            chat_template=False,
            embedder="target",
        )
    ]


# The input convention, one behaviour over every way of giving input.

DATA = b'{"text": "a", "id": "1"}\n\n{"text": "b", "keep": {"x": 1}}\n'


def _via_file(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    monkeypatch.setattr(sys, "stdin", None)  # -i FILE never looks at stdin
    return read_all(str(path))


def _via_dash(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    with path.open() as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        return read_all("-")


def _via_pipe(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    read_end, write_end = os.pipe()
    os.write(write_end, path.read_bytes())
    os.close(write_end)
    with os.fdopen(read_end) as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        return read_all(None)


@pytest.mark.parametrize("reader", [_via_file, _via_dash, _via_pipe], ids=["-i FILE", "-i -", "piped stdin"])
def test_input_convention(
    reader: Callable[[Path, pytest.MonkeyPatch], list[dict[str, object]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(DATA)
    assert reader(path, monkeypatch) == [{"text": "a", "id": "1"}, {"text": "b", "keep": {"x": 1}}]


@pytest.mark.parametrize("reader", [_via_file, _via_dash, _via_pipe], ids=["-i FILE", "-i -", "piped stdin"])
def test_input_convention_bad_line(
    reader: Callable[[Path, pytest.MonkeyPatch], list[dict[str, object]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(DATA + b"{oops\n")
    with pytest.raises(InputError, match=r":4: malformed JSON"):
        reader(path, monkeypatch)


def test_resume_with_a_deeper_run_appends_only_the_new_level(
    backend: Callable[[Script], list[ScriptedModel]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    backend(points)
    path = tmp_path / "points.jsonl"
    base = ["seeds", "--topic", "Harry Potter", "--count", "2", "-o", str(path)]
    assert cli.run([*base, "--depth", "0"]) == 0
    assert cli.run([*base, "--depth", "1", "--resume"]) == 0
    texts = [record["text"] for record in read_all(path)]
    assert texts == [
        "Hogwarts",
        "Quidditch",
        "Hogwarts Alpha",
        "Hogwarts Beta",
        "Quidditch Alpha",
        "Quidditch Beta",
    ]
    assert "(2 already there)" in capsys.readouterr().err
