"""Data loss and bad input: outputs that would destroy inputs, locked and untouched outputs, exact
resume by unique ids, runaway lines, non-finite numbers, OS errors and broken pipes.

Each case checks stdout, stderr and the exit code separately. The subprocess cases run `probe` with
both probes off: a pure passthrough that loads no model, so they run the real process quickly."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import biforget.api
import biforget.models
import biforget.pipelines.evaluate
from biforget import cli
from biforget.config import ModelOptions, SeedsConfig, command_table
from biforget.errors import InputError, ModelError, UsageError
from biforget.io.jsonl import iter_records, open_input
from biforget.io.paths import check_paths
from tests.scripted import HashEmbedder, ScriptedModel

REPO = Path(__file__).resolve().parent.parent
PASSTHROUGH = ["probe", "--topic", "Harry Potter", "--jailbreak", "0", "--mia", "0"]


def points(prompt: str, draw: int, seed: int) -> str:
    if "numbered list" in prompt:
        return "1. Hogwarts\n2. Quidditch\n3. Horcruxes"
    # A sample prompt: prose long enough to pass --min-words, so synthesize has records of its own.
    return f"Seed {seed} wrote this passage about the castle, its towers, its lessons and its old rules."


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[ModelOptions]:
    """The scripted backend in place of the real loader; the options of every load, to show none ran."""
    seen: list[ModelOptions] = []

    def load(options: ModelOptions) -> tuple[ScriptedModel, HashEmbedder]:
        seen.append(options)
        return ScriptedModel(points), HashEmbedder()

    monkeypatch.setattr(biforget.api, "load_models", load)
    return seen


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def write_lines(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


POINT = {"id": "p1", "kind": "point", "text": "Hogwarts", "topic": "Harry Potter"}


# An output that is also an input, or another output.


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink"])
def test_output_that_is_the_input_is_refused_before_anything_is_read(
    spelling: str,
    loads: list[ModelOptions],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = write_lines(tmp_path / "points.jsonl", POINT)
    before = source.read_bytes()
    monkeypatch.chdir(tmp_path)
    output = {"same": str(source), "relative": "./points.jsonl", "symlink": "link.jsonl"}[spelling]
    if spelling == "symlink":
        (tmp_path / "link.jsonl").symlink_to(source)
    code = cli.run(["synthesize", "-i", str(source), "-o", output])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert len(errors(err)) == 1 and "is also the input (-i)" in errors(err)[0]
    assert source.read_bytes() == before
    assert loads == []


@pytest.mark.parametrize(
    ("command", "flag"),
    [(["synthesize", "--topic", "HP"], "--trace"), (["rewrite", "-i", "FACTS"], "--keep-rejected")],
)
def test_a_side_output_on_the_output_path_is_refused(
    command: list[str],
    flag: str,
    loads: list[ModelOptions],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    facts = write_lines(tmp_path / "facts.jsonl", {"question": "Who?", "answer": "Harry."})
    output = write_lines(tmp_path / "out.jsonl", {"id": "kept", "text": "earlier work"})
    before = output.read_bytes()
    args = [str(facts) if arg == "FACTS" else arg for arg in command]
    monkeypatch.chdir(tmp_path)
    code = cli.run([*args, "-o", str(output), flag, "out.jsonl"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert errors(err) == [f"error: -o and {flag} name the same file (out.jsonl); give each its own"]
    assert output.read_bytes() == before
    assert loads == []


def test_stdin_redirected_from_the_output_file_is_refused(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "set.jsonl", {"id": "a", "text": "x"})
    with path.open("rb") as stdin, pytest.raises(UsageError, match=r"is also the input \(stdin\)"):
        saved = sys.stdin
        sys.stdin = stdin  # type: ignore[assignment]
        try:
            check_paths({"-i": "-"}, {"-o": path})
        finally:
            sys.stdin = saved


# Locked and untouched outputs.


def test_a_second_run_on_a_locked_output_exits_1_and_leaves_it(
    loads: list[ModelOptions], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = write_lines(tmp_path / "points.jsonl", {"id": "a", "text": "being written"})
    before = output.read_bytes()
    with output.open("rb+") as other_run:
        fcntl.flock(other_run.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        code = cli.run(["seeds", "--topic", "Harry Potter", "-o", str(output)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert errors(err) == [f"error: {output}: another run is writing this file; wait for it or use another"]
    assert output.read_bytes() == before
    assert loads == []


def test_two_processes_on_one_output(tmp_path: Path) -> None:
    """A real second process while the first holds the file: it exits 1 with one line."""
    source = write_lines(tmp_path / "in.jsonl", {"id": "a", "text": "x"})
    output = tmp_path / "out.jsonl"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from biforget.io.jsonl import RecordWriter\n"
            "with RecordWriter(sys.argv[1]) as writer:\n"
            "    writer.write({'id': 'first', 'text': 'first run'})\n"
            "    print('held', flush=True)\n"
            "    sys.stdin.readline()\n",
            str(output),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        second = _biforget([*PASSTHROUGH, "-i", str(source), "-o", str(output)])
    finally:
        holder.communicate("\n", timeout=60)
    assert second.returncode == 1
    assert second.stdout == ""
    assert second.stderr.splitlines() == [
        f"error: {output}: another run is writing this file; wait for it or use another"
    ]
    assert [json.loads(line)["id"] for line in output.read_text().splitlines()] == ["first"]


def test_an_unknown_model_leaves_an_existing_output_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    output = write_lines(tmp_path / "points.jsonl", {"id": "a", "text": "a day's work"})
    before = output.read_bytes()
    code = cli.run(["seeds", "--topic", "Harry Potter", "--model", "./nope", "-o", str(output)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert len(errors(err)) == 1 and "./nope: no such model" in errors(err)[0]
    assert output.read_bytes() == before


def test_a_model_that_cannot_be_served_leaves_outputs_as_they_were(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(options: ModelOptions) -> tuple[ScriptedModel, HashEmbedder]:
        raise ModelError("--device cuda: no CUDA GPU here; use --device cpu")

    monkeypatch.setattr(biforget.api, "load_models", refuse)
    output = write_lines(tmp_path / "points.jsonl", {"id": "a", "text": "a day's work"})
    before = output.read_bytes()
    fresh = tmp_path / "new" / "points.jsonl"
    for target in (output, fresh):
        code = cli.run(["seeds", "--topic", "Harry Potter", "--device", "cuda", "-o", str(target)])
        out, err = capsys.readouterr()
        assert code == 1
        assert out == ""
        assert errors(err) == ["error: --device cuda: no CUDA GPU here; use --device cpu"]
    assert output.read_bytes() == before
    assert not fresh.exists()  # a file the failed run created is not left behind


def test_a_run_with_no_records_still_empties_its_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Empty stdin is "no input" (an empty named file is a data error).
    monkeypatch.setattr(sys, "stdin", None)
    output = write_lines(tmp_path / "out.jsonl", {"id": "old", "text": "previous run"})
    code = cli.run([*PASSTHROUGH, "-o", str(output)])
    out, err = capsys.readouterr()
    assert (code, out) == (0, "")
    assert f"wrote 0 record(s) to {output}" in err
    assert output.read_bytes() == b""


# Exact resume: unique string ids, the same settings.

ODD_IDS = [
    {"text": "no id"},
    {"id": 5, "text": "numeric id"},
    {"id": "s", "text": "first of a shared id"},
    {"id": "s", "text": "second of a shared id"},
    {"id": "5", "text": "the string the number reads as"},
    {"text": "no id"},
    {"id": "", "text": "empty id"},
]


def test_passthrough_records_get_unique_string_ids_and_resume_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *ODD_IDS)
    output = tmp_path / "out.jsonl"
    args = [*PASSTHROUGH, "-i", str(source), "-o", str(output)]
    assert cli.run(args) == 0
    complete = output.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in complete]
    assert [r["text"] for r in records] == [r["text"] for r in ODD_IDS]
    ids = [r["id"] for r in records]
    assert all(isinstance(i, str) and i for i in ids) and len(set(ids)) == len(ids)
    assert ids[1] == "5" and ids[2] == "s"  # a first, usable id is kept (as a string)
    for kept, given in zip(records, ODD_IDS, strict=True):
        assert {k: v for k, v in kept.items() if k != "id"} == {k: v for k, v in given.items() if k != "id"}
    for cut in range(len(complete)):
        output.write_text("".join(line + "\n" for line in complete[:cut]), encoding="utf-8")
        capsys.readouterr()
        assert cli.run([*args, "--resume"]) == 0
        assert output.read_text(encoding="utf-8").splitlines() == complete
        assert f"wrote {len(complete) - cut} record(s)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "flag"), [(["--seed", "2"], "--seed"), (["--temperature", "0.3"], "--temperature")]
)
def test_resume_with_other_settings_is_refused(
    change: list[str],
    flag: str,
    loads: list[ModelOptions],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "points.jsonl"
    base = ["seeds", "--topic", "Harry Potter", "--depth", "0", "--seed", "1", "-o", str(output)]
    assert cli.run(base) == 0
    before = output.read_bytes()
    capsys.readouterr()
    code = cli.run([*base, *change, "--resume"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert errors(err) == [
        f"error: {output}: --resume with other settings than the run that wrote it ({flag}); "
        "repeat that run's settings or write a new file"
    ]
    assert output.read_bytes() == before
    assert len(loads) == 1  # only the first run loaded a model


# Runaway lines, empty files, non-finite numbers.


def test_an_overlong_line_is_a_bad_line_that_is_never_held_whole(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    long_text = "x" * 5000
    path.write_text(
        json.dumps({"text": "short"}) + "\n" + json.dumps({"text": long_text}) + "\n" + '{"text": "after"}\n'
    )
    with pytest.raises(InputError, match=r":2: line of 5,013 bytes, over the 1,000 a record may hold"):
        list(iter_records(open_input(path), max_line_bytes=1000))
    source = open_input(path, on_error="skip")
    assert [r["text"] for r in iter_records(source, max_line_bytes=1000)] == ["short", "after"]
    assert source.skipped == 1


def test_a_megabytes_line_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.jsonl"
    with source.open("w") as handle:
        handle.write('{"text": "fine"}\n{"text": "' + "y" * 5_000_000 + '"}\n')
    code = cli.run([*PASSTHROUGH, "-i", str(source)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""  # the input is read whole before the first record is written
    assert errors(err) == [
        f"error: {source}:2: line of 5,000,013 bytes, over the 1,048,576 a record may hold"
    ]


def test_an_empty_input_file_is_a_data_error_but_no_stdin_is_no_input(
    loads: list[ModelOptions],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    code = cli.run(["synthesize", "--topic", "Harry Potter", "-i", str(empty)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert errors(err) == [f"error: {empty}: no records (empty input)"]
    monkeypatch.setattr(sys, "stdin", None)
    code = cli.run(
        ["synthesize", "--topic", "Harry Potter", "--depth", "0", "--samples", "1", "--rounds", "1"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "listed 3 point(s)" in err and errors(err) == []


@pytest.mark.parametrize(
    "args",
    [
        ["seeds", "--topic", "HP", "--temperature", "nan"],
        ["seeds", "--topic", "HP", "--temperature", "inf"],
        ["seeds", "--topic", "HP", "--dedup-threshold", "nan"],
        ["synthesize", "--topic", "HP", "--temperatures", "0.6,inf"],
        ["synthesize", "--topic", "HP", "--epsilon", "nan"],
        ["probe", "--topic", "HP", "--min-relevance", "nan"],
        ["probe", "--topic", "HP", "--mia-threshold", "-inf"],
        ["rewrite", "--min-similarity", "nan"],
        ["evaluate", "SET", "--overlap-threshold", "inf"],
    ],
)
def test_non_finite_numbers_are_usage_errors(
    args: list[str], loads: list[ModelOptions], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = args[-2]
    code = cli.run([str(tmp_path / "s.jsonl") if a == "SET" else a for a in args])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert len(errors(err)) == 1 and f"{flag} must be a finite number" in errors(err)[0]
    assert loads == []


# Outputs checked before the work.


@pytest.mark.parametrize("target", ["plots", "drop-overlap"])
def test_evaluate_checks_its_outputs_before_scoring(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scored: list[object] = []
    monkeypatch.setattr(biforget.models, "load_tokenizer", lambda options: scored.append(1))
    monkeypatch.setattr(biforget.api, "load_embedder", lambda options, target=None: scored.append(1))
    ours = write_lines(tmp_path / "ours.jsonl", {"text": "one text"}, {"text": "another text"})
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    args = ["evaluate", str(ours)]
    if target == "plots":
        args += ["--plots", str(blocker / "plots")]
    else:
        args += ["--retain", str(ours), "--drop-overlap", "-o", str(blocker / "kept.jsonl")]
    code = cli.run(args)
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert (
        len(errors(err)) == 1
        and f"{blocker}/" in errors(err)[0]
        and f"{blocker} is not a folder" in errors(err)[0]
    )
    assert scored == []


# OS errors and broken pipes, in real processes.


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "BIFORGET_DEBUG": ""}


def _biforget(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "biforget", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        **kwargs,
    )


def _many(tmp_path: Path, count: int = 5000) -> Path:
    return write_lines(
        tmp_path / "many.jsonl", *({"id": f"r{i}", "text": f"record {i} " * 4} for i in range(count))
    )


def test_a_full_disk_is_one_line_naming_the_file(tmp_path: Path) -> None:
    run = _biforget([*PASSTHROUGH, "-i", str(_many(tmp_path, 10)), "-o", "/dev/full"])
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.splitlines() == ["error: /dev/full: cannot write: No space left on device"]


def test_a_full_stdout_is_one_line(tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        run = subprocess.run(
            [sys.executable, "-m", "biforget", *PASSTHROUGH, "-i", str(_many(tmp_path, 10))],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            timeout=120,
        )
    assert run.returncode == 1
    assert run.stderr.splitlines() == ["error: <stdout>: cannot write: No space left on device"]


def test_an_output_folder_that_cannot_exist_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    run = _biforget([*PASSTHROUGH, "-i", str(_many(tmp_path, 10)), "-o", str(blocker / "out.jsonl")])
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.splitlines() == [f"error: {blocker}/out.jsonl: cannot write: {blocker} is not a folder"]


def test_a_closed_stdout_is_one_line(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "biforget", *PASSTHROUGH, "-i", str(_many(tmp_path, 10))]
    run = subprocess.run(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        timeout=120,
        preexec_fn=lambda: os.close(1),
    )
    assert run.returncode == 1
    assert run.stderr.splitlines() == ["error: <stdout>: stdout is closed; pass -o FILE"]


def test_a_reader_that_goes_away_ends_the_run_quietly(tmp_path: Path) -> None:
    """`biforget ... | head -1`: no traceback, no error line, no "Exception ignored" at exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "biforget", *PASSTHROUGH, "-i", str(_many(tmp_path))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert process.stdout is not None and process.stderr is not None
    first = json.loads(process.stdout.readline())
    process.stdout.close()  # what `head -1` does after its line
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert first["id"] == "r0"
    assert err == ""


# Model options and settings declared once.


def test_model_args_reach_the_options_and_a_bad_shape_is_a_usage_error(
    loads: list[ModelOptions], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["seeds", "--topic", "HP", "--depth", "0", "-q"]
    assert cli.run([*base, "--model-arg", "revision=main", "--model-arg", "trust.remote=0"]) == 0
    assert loads[-1].model_args == ("revision=main", "trust.remote=0")
    capsys.readouterr()
    code = cli.run([*base, "--model-arg", "revision"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert errors(err) == ["error: --model-arg must be KEY=VALUE such as revision=main, not 'revision'"]
    assert len(loads) == 1


def test_a_library_user_reads_the_same_config_file(
    loads: list[ModelOptions], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "biforget.toml"
    path.write_text(
        '[defaults]\nseed = 9\nbatch-size = 3\nmodel-arg = ["revision=main"]\n\n'
        '[seeds]\ntopic = "Harry Potter"\ncount = 2\ndepth = 0\ntemperature = 0.5\n'
    )
    table = command_table(path, "seeds")
    settings = SeedsConfig.from_mapping(table, strict=False)
    options = ModelOptions.from_mapping(table, strict=False)
    assert settings == SeedsConfig(topic="Harry Potter", count=2, depth=0, temperature=0.5, seed=9)
    assert options == ModelOptions(batch_size=3, model_args=("revision=main",))
    assert cli.run(["seeds", "--config", str(path), "-q"]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    assert record["gen"]["settings"] == settings.settings()
    assert loads == [options]
    with pytest.raises(UsageError, match="unknown setting 'colour' for SeedsConfig"):
        SeedsConfig.from_mapping({"topic": "HP", "colour": 3})
    with pytest.raises(UsageError, match="--count must be a whole number, not 'x'"):
        SeedsConfig.from_mapping({"topic": "HP", "count": "x"})
