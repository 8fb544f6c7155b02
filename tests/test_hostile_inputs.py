"""The third hostile-input round (issue 25): runs that fail leave their outputs as they were, resumes
that would mix runs are refused, and hostile input is one line with the right exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from biforget import cli

REPO = Path(__file__).resolve().parent.parent
TOPIC = "Harry Potter"
SAMPLES = [
    {"id": f"s{i}", "kind": "sample", "text": f"Sample {i} about Hogwarts and its houses."} for i in range(20)
]
POINTS = [
    {"id": "p1", "kind": "point", "text": "Hogwarts", "topic": TOPIC},
    {"id": "p2", "kind": "point", "text": "Quidditch", "topic": TOPIC},
]


def write_lines(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# 1. A run that fails at start leaves -o as it was.

FAILING_STARTS = {
    "mia on a text-only backend": (
        ["probe", "--model", "fake:text-only", "--jailbreak", "0", "--mia", "3"],
        2,
        "--mia",
    ),
    "a model path that does not exist": (
        ["probe", "--model", "./no-such-model", "--mia", "0"],
        1,
        "no such model",
    ),
    "a bad embedder": (
        ["probe", "--model", "fake:echo", "--embedder", "./no-such-embedder"],
        1,
        "no-such-embedder",
    ),
    "embedder target on a text-only backend": (
        ["probe", "--model", "fake:text-only", "--embedder", "target", "--mia", "0"],
        None,
        "--embedder target",
    ),
}


@pytest.mark.parametrize("case", sorted(FAILING_STARTS))
def test_a_probe_that_fails_at_start_leaves_the_output_as_it_was(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args, code, said = FAILING_STARTS[case]
    source = write_lines(tmp_path / "s1.jsonl", *SAMPLES)
    output = tmp_path / "out.jsonl"
    output.write_text("KEEP\n")
    result = cli.run([*args, "--topic", TOPIC, "--jailbreak", "2", "-i", str(source), "-o", str(output)])
    out, err = capsys.readouterr()
    assert result != 0 and (code is None or result == code), err
    assert out == ""
    assert len(errors(err)) == 1 and said in errors(err)[0], err
    assert output.read_text() == "KEEP\n"


def test_synthesize_without_points_leaves_the_output_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "s1.jsonl", *SAMPLES)
    output = tmp_path / "out.jsonl"
    output.write_text("KEEP\n")
    result = cli.run(["synthesize", "--model", "fake:echo", "-i", str(source), "-o", str(output)])
    _, err = capsys.readouterr()
    assert result == 2
    assert errors(err) == ["error: no point records on input; pipe `biforget seeds` in, or pass --topic"]
    assert output.read_text() == "KEEP\n"


def test_a_dead_openai_server_leaves_the_output_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as probe_socket:  # a port nothing listens on once this closes
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    source = write_lines(tmp_path / "s1.jsonl", *SAMPLES)
    output = tmp_path / "out.jsonl"
    output.write_text("KEEP\n")
    result = cli.run(
        [
            "probe",
            "--model",
            f"openai:http://127.0.0.1:{port}/v1",
            "--model-arg",
            "max_retries=0",
            "--topic",
            TOPIC,
            "--jailbreak",
            "2",
            "--mia",
            "0",
            "-i",
            str(source),
            "-o",
            str(output),
        ]
    )
    _, err = capsys.readouterr()
    assert result == 1, err
    assert len(errors(err)) == 1
    assert output.read_text() == "KEEP\n"


# 2. --resume refuses to mix runs.

SMALL_SYNTH = [
    "synthesize",
    "--model",
    "fake:echo",
    "--topic",
    TOPIC,
    "--depth",
    "0",
    "--templates",
    "info",
    "--temperatures",
    "0.6",
    "--samples",
    "1",
    "--rounds",
    "1",
    "--min-words",
    "3",
    "--max-samples",
    "3",
]


def _refused_resume(args: list[str], output: Path, capsys: pytest.CaptureFixture[str]) -> str:
    before = output.read_bytes()
    capsys.readouterr()
    code = cli.run([*args, "-o", str(output), "--resume"])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert len(errors(err)) == 1, err
    assert output.read_bytes() == before
    return errors(err)[0]


def test_resume_with_another_model_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "points.jsonl"
    base = ["seeds", "--topic", TOPIC, "--depth", "0"]
    assert cli.run([*base, "--model", "fake:echo", "-o", str(output)]) == 0
    assert lines(output)
    message = _refused_resume([*base, "--model", "fake:text-only"], output, capsys)
    assert "another model" in message and "'fake:echo'" in message and "'fake:text-only'" in message


def test_resume_of_synthesize_from_other_points_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "samples.jsonl"
    assert cli.run([*SMALL_SYNTH, "--count", "4", "-o", str(output)]) == 0
    assert lines(output)
    message = _refused_resume([*SMALL_SYNTH, "--count", "5"], output, capsys)
    assert "other points" in message


def test_resume_onto_another_commands_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "points.jsonl"
    assert (
        cli.run(["seeds", "--model", "fake:echo", "--topic", TOPIC, "--depth", "0", "-o", str(output)]) == 0
    )
    assert lines(output)
    message = _refused_resume(SMALL_SYNTH, output, capsys)
    assert "`synthesize` did not write" in message
    facts = write_lines(tmp_path / "facts.jsonl", {"text": "Hogwarts has four houses."})
    rewrite = ["rewrite", "--model", "fake:echo", "-i", str(facts)]
    assert "`rewrite` did not write" in _refused_resume(rewrite, output, capsys)


def test_resume_with_the_same_run_still_completes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "samples.jsonl"
    assert cli.run([*SMALL_SYNTH, "-o", str(output)]) == 0
    complete = output.read_text(encoding="utf-8").splitlines()
    assert complete
    output.write_text(complete[0] + "\n", encoding="utf-8")
    assert cli.run([*SMALL_SYNTH, "-o", str(output), "--resume"]) == 0
    assert output.read_text(encoding="utf-8").splitlines() == complete


# 10. probe with an empty input file.


def test_probe_with_an_empty_input_file_is_a_data_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "empty.jsonl"
    source.write_text("")
    output = tmp_path / "out.jsonl"
    output.write_text("KEEP\n")
    code = cli.run(["probe", "--model", "fake:echo", "--topic", TOPIC, "-i", str(source), "-o", str(output)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert errors(err) == [f"error: {source}: no records (empty input)"]
    assert output.read_text() == "KEEP\n"


# 3. stdout redirected onto another output or an input.


def _biforget(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "BIFORGET_DEBUG": ""}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "biforget", *args], text=True, env=env, timeout=120, **kwargs
    )


@pytest.mark.parametrize("target", ["trace", "input"])
def test_stdout_redirected_onto_another_file_of_the_run_is_refused(target: str, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "points.jsonl", *POINTS)
    trace = tmp_path / "trace.jsonl"
    trace.write_text("KEEP\n")
    redirected = trace if target == "trace" else source
    before = redirected.read_bytes()
    args = [*SMALL_SYNTH[:3], "-i", str(source), "--trace", str(trace), "--max-samples", "3"]
    with redirected.open("a") as stdout:
        run = _biforget(args, stdout=stdout, stderr=subprocess.PIPE)
    assert run.returncode == 2, run.stderr
    assert errors(run.stderr) and len(errors(run.stderr)) == 1, run.stderr
    assert "stdout is redirected to" in run.stderr
    assert redirected.read_bytes() == before


# 4. Folder outputs are locked as -o files are.


def _export_args(tmp_path: Path, out: Path) -> list[str]:
    source = write_lines(tmp_path / "set.jsonl", *SAMPLES[:4])
    return ["export", "-i", str(source), "--format", "hf", "--out", str(out)]


def _unlearn_args(tmp_path: Path, out: Path) -> list[str]:
    source = write_lines(tmp_path / "set.jsonl", *SAMPLES[:4])
    model = tmp_path / "model"  # a folder to load from, which the run never reaches
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    return ["unlearn", "-i", str(source), "--model", str(model), "--out", str(out)]


@pytest.mark.parametrize("command", ["export", "unlearn"])
def test_a_second_run_into_a_folder_being_written_exits_1(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from biforget.io.paths import folder_lock

    out = tmp_path / "out"
    args = (_export_args if command == "export" else _unlearn_args)(tmp_path, out)
    with folder_lock(out):  # the first run, still writing
        code = cli.run(args)
    _, err = capsys.readouterr()
    assert code == 1, err
    assert errors(err) == [f"error: {out}: another run is writing this folder; wait for it or use another"]
    assert not out.exists()
    if command == "export":  # the lock is gone with the first run: the next run writes the folder
        assert cli.run(args) == 0
        assert out.is_dir() and any(out.iterdir())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no lock file left


# 5 and 6. Lone surrogates and deeply nested JSON are bad lines.

SURROGATE_LINE = '{"text": "a \\ud800 b"}'
NESTED_LINE = "[" * 100_000
GOOD = '{"text": "Hogwarts has four houses and a great hall."}'


def _bad_line_args(command: str, source: Path, tmp_path: Path) -> list[str]:
    if command == "probe":
        return ["probe", "--topic", TOPIC, "--jailbreak", "0", "--mia", "0", "-i", str(source)]
    if command == "rewrite":
        return ["rewrite", "--model", "fake:echo", "-i", str(source)]
    if command == "export":
        return ["export", "-i", str(source), "--format", "txt", "--out", str(tmp_path / "out")]
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text('{"model_type": "llama"}')
    return ["unlearn", "-i", str(source), "--model", str(model), "--out", str(tmp_path / "out")]


@pytest.mark.parametrize("bad", ["surrogate", "nested"])
@pytest.mark.parametrize("command", ["probe", "rewrite", "export", "unlearn"])
def test_a_bad_line_of_unpaired_surrogates_or_deep_nesting_is_one_line(
    command: str, bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(f"{GOOD}\n{SURROGATE_LINE if bad == 'surrogate' else NESTED_LINE}\n{GOOD}\n")
    code = cli.run(_bad_line_args(command, source, tmp_path))
    out, err = capsys.readouterr()
    assert (code, out) == (1, ""), err
    said = "lone surrogate" if bad == "surrogate" else "nested too deeply"
    assert len(errors(err)) == 1 and f"{source}:2:" in err and said in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad", [SURROGATE_LINE, NESTED_LINE])
def test_on_error_skip_skips_such_a_line(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(f"{GOOD}\n{bad}\n{GOOD.replace('four', '4')}\n")
    output = tmp_path / "out.jsonl"
    args = _bad_line_args("probe", source, tmp_path)
    code = cli.run([*args, "--on-error", "skip", "-o", str(output)])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert [r["text"] for r in lines(output)] == [
        json.loads(GOOD)["text"],
        json.loads(GOOD.replace("four", "4"))["text"],
    ]
    assert "skipped 1 bad line(s)" in err


def test_a_json_array_nested_too_deeply_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "facts.json"
    source.write_text('[{"text": "Hogwarts has four houses."},\n' + "[" * 100_000 + "]")
    code = cli.run(["rewrite", "--model", "fake:echo", "-i", str(source)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, ""), err
    assert errors(err) == [f"error: {source}:2: JSON nested too deeply to be a record"]


def test_an_option_that_is_not_utf8_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    topic = b"\xed\xa0\x80".decode("utf-8", "surrogateescape")  # what Python makes of such argv bytes
    code = cli.run(["seeds", "--model", "fake:echo", "--topic", topic])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert errors(err) == ["error: --topic is not UTF-8 text (it holds bytes no text encodes); retype it"]


# 7. unlearn --seed out of numpy's range.


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_unlearn_seed_out_of_range_is_a_usage_error(
    seed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _bad_line_args("unlearn", write_lines(tmp_path / "in.jsonl", *SAMPLES[:2]), tmp_path)
    code = cli.run([*args, "--seed", seed])
    out, err = capsys.readouterr()
    assert (code, out) == (2, ""), err
    assert errors(err) == [f"error: --seed must lie in [0, {2**32 - 1}], not {seed}"]
    assert not (tmp_path / "out").exists()


# 11. A dry run on the fake backend checks the model options a real run checks.


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N, not 'tpu'"),
        (
            ["--dtype", "float8"],
            "--dtype must be one of auto, float32, bfloat16, float16, float64, not 'float8'",
        ),
        (["--quantize", "3bit"], "--quantize must be one of none, 8bit, 4bit, not '3bit'"),
    ],
)
def test_the_fake_backend_checks_the_model_options(
    option: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "points.jsonl"
    code = cli.run(
        ["seeds", "--model", "fake:echo", "--topic", TOPIC, "--depth", "0", *option, "-o", str(output)]
    )
    out, err = capsys.readouterr()
    assert (code, out) == (2, ""), err
    assert errors(err) == [f"error: {message}"]
    assert not output.exists()


# 8. A full disk while unlearn writes the weights.


def test_a_full_disk_while_unlearn_writes_is_one_line_and_leaves_nothing_half_written(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers.modeling_utils
    from safetensors import SafetensorError

    def full_disk(tensors: object, filename: str, metadata: object = None) -> None:
        Path(filename).write_bytes(b"\0" * 1024)  # what got out before the disk filled
        raise SafetensorError(
            "Error while serializing: I/O error: IoError(Os { code: 28, kind: StorageFull, "
            'message: "No space left on device" })'
        )

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", full_disk)
    source = write_lines(tmp_path / "forget.jsonl", *SAMPLES[:2])
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("a previous model")
    args = ["unlearn", "-i", str(source), "--model", str(tiny_model_dir), "--device", "cpu"]
    code = cli.run([*args, "--steps", "1", "--out", str(out), "--force"])
    out_text, err = capsys.readouterr()
    assert (code, out_text) == (1, ""), err
    assert errors(err) == [f"error: {out}: cannot write the model: No space left on device"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forget.jsonl", "out"]


# 9. A malformed answer from an OpenAI-compatible server.

HTML = ("text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>")
CUT = ("application/json", b'{"id": "c", "object": "chat.completion", "choices": [{"index": 0, "mess')


@pytest.mark.parametrize("garbled", [HTML, CUT], ids=["html", "cut-off-json"])
def test_a_malformed_server_answer_is_retried_then_one_line(
    garbled: tuple[str, bytes],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import biforget.api
    from tests.loopback import Loopback
    from tests.scripted import HashEmbedder

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(biforget.api, "load_embedder", lambda options, target=None: HashEmbedder())
    output = tmp_path / "points.jsonl"
    output.write_text("KEEP\n")
    with Loopback() as server:
        args = ["seeds", "--model", f"openai:{server.url}"]
        server.garble_next = [garbled] * 100
        code = cli.run(
            [*args, "--topic", TOPIC, "--depth", "0", "--model-arg", "max_retries=1", "-o", str(output)]
        )
        out, err = capsys.readouterr()
        assert (code, out) == (1, ""), err
        assert len(errors(err)) == 1, err
        line = errors(err)[0]
        assert server.url in line and "not an OpenAI answer after 1 retries" in line, line
        assert ("502 Bad Gateway" if garbled is HTML else "JSON cut off") in line, line
        assert output.read_text() == "KEEP\n"
        # Retried like a 5xx: a garbled answer followed by a good one is no error.
        server.garble_next = [garbled]
        code = cli.run([*args, "--topic", TOPIC, "--depth", "0", "--model-arg", "max_retries=1"])
        out, err = capsys.readouterr()
    assert code == 0, err
    assert out and errors(err) == []


# 12. The 1 MiB line bound for every input format, and for every line written.


def test_rewrite_refuses_a_fact_whose_record_would_be_over_the_line_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "facts.jsonl"
    fact = {"question": "Who? " + "q" * 440_000, "answer": "Them. " + "a" * 440_000}
    source.write_text(json.dumps(fact) + "\n")
    assert source.stat().st_size < 1 << 20  # the input line itself is within the bound
    output = tmp_path / "out.jsonl"
    code = cli.run(["rewrite", "--model", "fake:echo", "-i", str(source), "-o", str(output)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, ""), err
    assert len(errors(err)) == 1 and f"{source}:1: fact whose record is a line of" in err, err
    assert "over the 1,048,576 a record may hold" in err
    assert not output.exists()


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_fact_over_the_line_bound_in_a_json_array_or_csv_is_refused(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_text = "Hogwarts " * 160_000  # 1.44 MB
    source = tmp_path / f"facts.{fmt}"
    if fmt == "json":
        source.write_text(json.dumps([{"text": "A short fact."}, {"text": long_text}], indent=1))
        said = f"{source}:5: element of"
    else:
        source.write_text(f'text\n"A short fact."\n"{long_text}"\n')
        said = f"{source}:3: row of"
    code = cli.run(["rewrite", "--model", "fake:echo", "-i", str(source)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, ""), err
    assert len(errors(err)) == 1 and said in err and "over the 1,048,576 a record may hold" in err, err


def test_a_record_that_would_be_an_overlong_line_is_not_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text":"' + "x" * ((1 << 20) - 12) + '"}\n')  # exactly the bound, without an id
    output = tmp_path / "out.jsonl"
    output.write_text("KEEP\n")
    args = _bad_line_args("probe", source, tmp_path)
    code = cli.run([*args, "-o", str(output)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, ""), err
    assert len(errors(err)) == 1 and "would be a line of 1,048,600 bytes" in err, err
    assert output.read_text() == "KEEP\n"


# The small ones.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--temperatures", "0.6,,0.8"],
            "--temperatures has an empty item in '0.6,,0.8'; give numbers such as 0.6,0.8,1.0",
        ),
        (["--model-arg", "a=1", "--model-arg", "a=2"], "--model-arg a is given twice; give it once"),
        (["--trace", "."], ".: is a directory; --trace needs a file"),
    ],
)
def test_small_usage_errors_of_synthesize(
    args: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    source = write_lines(tmp_path / "points.jsonl", *POINTS)
    code = cli.run([*SMALL_SYNTH[:3], "-i", str(source), *args])
    out, err = capsys.readouterr()
    assert (code, out) == (2, ""), err
    assert errors(err) == [f"error: {message}"]


def test_a_point_without_a_topic_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "points.jsonl", {"kind": "point", "text": "Hogwarts"})
    code = cli.run([*SMALL_SYNTH[:3], "-i", str(source)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, ""), err
    assert err.splitlines() == ["error: point 'Hogwarts' has no topic; pass --topic"]


def test_a_server_setting_that_is_no_number_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.run(
        [
            "seeds",
            "--topic",
            TOPIC,
            "--model",
            "openai:http://127.0.0.1:9/v1",
            "--model-arg",
            "concurrency=abc",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert errors(err) == ["error: --model-arg 'concurrency=abc': expected a whole number, not 'abc'"]


def test_a_config_setting_spelled_both_ways_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "biforget.toml"
    config.write_text("[synthesize]\nmax_samples = 10\nmax-samples = 20\n")
    code = cli.run(["synthesize", "--config", str(config), "--topic", TOPIC, "--model", "fake:echo"])
    _, err = capsys.readouterr()
    assert code == 2
    assert errors(err) == [
        f"error: {config}: [synthesize] sets 'max_samples' twice (as - and as _); keep one"
    ]


def test_messages_print_user_text_as_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    topic = ":x: [bold]Potter[/bold]"
    code = cli.run(
        [*SMALL_SYNTH[:3], "--topic", topic, "--depth", "0", "--max-samples", "1", "--min-words", "3"]
    )
    _, err = capsys.readouterr()
    assert code == 0, err
    assert f"for {topic!r}" in err


def test_a_config_true_for_a_number_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "biforget.toml"
    config.write_text("[synthesize]\nmax_samples = true\n")
    code = cli.run(["synthesize", "--config", str(config), "--topic", TOPIC, "--model", "fake:echo"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert errors(err) == [
        f"error: {config}: max_samples = true: a switch's value, and max_samples is not a switch"
    ]


def test_export_txt_writes_no_control_bytes_that_readers_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from biforget.io.sets import read_set

    source = write_lines(tmp_path / "set.jsonl", {"text": "before\u0000NUL and \u001b[31mESC\u001b[0m after"})
    out = tmp_path / "txt"
    code = cli.run(["export", "-i", str(source), "--format", "txt", "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    data = (out / "forget.txt").read_bytes()
    assert data == b"before NUL and  [31mESC [0m after\n"
    assert "replaced 3 control character(s)" in err
    assert read_set(out / "forget.txt").texts == ["before NUL and [31mESC [0m after"]


# Synthesize's memory follows the wave, not the plan.


def test_synthesize_memory_does_not_grow_with_the_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tracemalloc

    points = [
        {"id": f"p{i}", "kind": "point", "text": f"Point number {i}", "topic": TOPIC} for i in range(2000)
    ]
    source = write_lines(tmp_path / "points.jsonl", *points)
    output = tmp_path / "out.jsonl"
    # The default plan for 2,000 points is over a million requests; the run stops after 3 samples.
    args = ["synthesize", "--model", "fake:echo", "-i", str(source), "--min-words", "3", "--max-samples", "3"]
    tracemalloc.start()
    try:
        code = cli.run([*args, "-o", str(output)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _, err = capsys.readouterr()
    assert code == 0, err
    assert len(lines(output)) == 3
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_help_into_a_closed_pipe_is_the_reader_going_away() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "BIFORGET_DEBUG": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "biforget", "synthesize", "--help"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the help is written (`| head -1`)
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141, err
    assert err == ""


def test_audit_of_a_folder_that_is_no_model_says_the_whole_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    forget = write_lines(tmp_path / "forget.jsonl", *SAMPLES[:2])
    code = cli.run(["audit", "--model", str(folder), "--forget", str(forget), "--unlearned", str(folder)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, ""), err
    [line] = errors(err)
    assert line.startswith("error: cannot load model 'not-a-model': ")
    assert not line.rstrip().endswith(":"), line  # not cut after "...from one of:"
    assert "(3)" in line, line
