"""`biforget export` through `biforget.cli.run`: exit codes, one-line errors, stdin, nothing half-written."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from biforget import cli
from biforget.records import make_record
from tests.scripted import ScriptedModel
from tests.test_rewrite_pipeline import FACTS_JSONL, good

REPO = Path(__file__).resolve().parent.parent


def _records() -> list[dict[str, object]]:
    point = make_record(kind="point", text="Old Castle", topic="T", stage="seeds", gen={}, origin={"p": 1})
    qa = [
        make_record(
            kind="fact",
            question=f"Who built tower {n}?",
            answer=f"Mason {n} built it in {1700 + n}.",
            stage="input",
            gen={},
            origin={"n": n},
        )
        for n in range(3)
    ]
    text = make_record(
        kind="sample",
        text="The castle gate faces the river and opens at dawn every day.",
        topic="T",
        parent=point["id"],
        stage="synthesize",
        gen={},
        origin={"s": 1},
    )
    return [point, *qa, text]


def write_set(path: Path) -> Path:
    lines = [json.dumps(r) for r in _records()]
    lines.insert(2, "")  # a blank line: line numbers in errors count it
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.run(["export", *args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str, *parts: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for part in parts:
        assert part in lines[0], err


def test_success_writes_files_and_only_a_summary_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        [
            "-i",
            str(write_set(tmp_path / "set.jsonl")),
            "-f",
            "rmu",
            "--out",
            str(tmp_path / "rmu"),
            "--name",
            "castle",
        ],
        capsys,
    )
    assert code == 0 and out == ""
    lines = (tmp_path / "rmu" / "data" / "castle-bio-forget-corpus.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1])["text"].startswith("The castle gate")
    assert "rmu: 4 text(s) give 1 batch(es) of 4 (--batch_size 4)" in err
    assert "exported 4 record(s) as rmu to" in err and "castle-bio-forget-corpus.jsonl" in err


def test_unknown_format_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["-i", str(write_set(tmp_path / "set.jsonl")), "-f", "jsonl", "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and out == ""
    assert_one_error_line(err, "--format must be one of muse, open-unlearning", "'jsonl'")
    assert not (tmp_path / "o").exists()


def test_missing_format_or_out_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["-i", str(write_set(tmp_path / "set.jsonl")), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and out == ""
    code, out, _ = run(["-i", str(tmp_path / "set.jsonl"), "-f", "muse"], capsys)
    assert code == 2 and out == ""


def test_non_empty_folder_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    (out_dir / "forget.txt").write_text("keep me")
    source = str(write_set(tmp_path / "set.jsonl"))
    code, out, err = run(["-i", source, "-f", "muse", "--out", str(out_dir)], capsys)
    assert code == 2 and out == ""
    assert_one_error_line(err, f"{out_dir}: folder is not empty; pass --force")
    assert [p.name for p in out_dir.iterdir()] == ["forget.txt"] and (
        out_dir / "forget.txt"
    ).read_text() == "keep me"
    code, _, err = run(["-i", source, "-f", "muse", "--out", str(out_dir), "--force"], capsys)
    assert code == 0, err
    assert (out_dir / "forget.txt").read_text().startswith("Who built tower 0? Mason 0 built it in 1700.")


def test_folder_that_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_set(tmp_path / "set.jsonl")
    code, out, err = run(["-i", str(source), "-f", "txt", "--out", str(source / "o")], capsys)
    assert code == 1 and out == ""
    assert_one_error_line(err, "cannot create the folder", "is not a folder")
    # /proc refuses new folders even to root, so this holds whoever runs the tests.
    code, out, err = run(["-i", str(source), "-f", "txt", "--out", "/proc/biforget-export-test"], capsys)
    assert code == 1 and out == ""
    assert_one_error_line(err, "/proc/biforget-export-test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set.jsonl"]


def test_qa_format_with_text_records_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_set(tmp_path / "set.jsonl")
    code, out, err = run(["-i", str(source), "-f", "tofu", "--out", str(tmp_path / "t")], capsys)
    assert code == 1 and out == ""
    # Line 1 is a point (filtered out), line 3 is blank, line 6 the text sample.
    assert_one_error_line(
        err,
        "--format tofu needs question/answer records, but 1 of the 4 records kept have no question/answer",
        f"(1 sample; first: {source}:6); keep the 3 question/answer ones with --shape qa",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set.jsonl"]
    code, _, err = run(
        ["-i", str(source), "-f", "tofu", "--out", str(tmp_path / "t"), "--shape", "qa"], capsys
    )
    assert code == 0, err
    assert "left out 2 of 5 record(s): 1 by --kinds (default: all but point), 1 by --shape qa" in err
    rows = [json.loads(line) for line in (tmp_path / "t" / "forget.jsonl").read_text().splitlines()]
    assert (
        rows[0] == {"question": "Who built tower 0?", "answer": "Mason 0 built it in 1700."}
        and len(rows) == 3
    )


def test_bad_input_line_and_skip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "set.jsonl"
    source.write_text('{"text": "a fine document"}\n{"text": \n{"question": "half"}\n', encoding="utf-8")
    code, out, err = run(["-i", str(source), "-f", "txt", "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and out == ""
    assert_one_error_line(err, f"{source}:2: malformed JSON")
    code, out, err = run(
        ["-i", str(source), "-f", "txt", "--out", str(tmp_path / "o"), "--on-error", "skip"], capsys
    )
    assert code == 0 and out == ""
    assert f"{source}:3: record has no 'text' and no 'question'/'answer'" in err
    assert (tmp_path / "o" / "forget.txt").read_text() == "a fine document\n"


def test_option_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = str(write_set(tmp_path / "set.jsonl"))
    for extra, message in [
        (["-f", "muse", "--min-score", "mink"], "--min-score must be NAME=VALUE"),
        (["-f", "muse", "--benchmark", "tofu"], "--benchmark applies to --format open-unlearning only"),
        (["-f", "muse", "--kinds", " , "], "--kinds must name at least one value"),
    ]:
        code, out, err = run(["-i", source, "--out", str(tmp_path / "o"), *extra], capsys)
        assert code == 2 and out == ""
        assert_one_error_line(err, message)
    assert not (tmp_path / "o").exists()


def test_no_input_and_empty_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["-f", "muse", "--out", str(tmp_path / "o")], capsys)  # no stdin under pytest
    assert code == 2
    assert_one_error_line(err, "no input: pass -i FILE or pipe records in")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    code, _, err = run(["-i", str(empty), "-f", "muse", "--out", str(tmp_path / "o")], capsys)
    assert code == 1
    assert_one_error_line(err, f"{empty}: no records (empty input)")
    assert not (tmp_path / "o").exists()


def test_piped_stdin_in_a_real_process_never_imports_torch(tmp_path: Path) -> None:
    """The installed command reads piped records; neither export nor the hf writer imports torch."""
    script = (
        "import sys\n"
        "from biforget import cli\n"
        "code = cli.run(sys.argv[1:])\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    data = write_set(tmp_path / "set.jsonl").read_bytes()
    for fmt in ("open-unlearning", "hf"):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                "export",
                "-f",
                fmt,
                "--kinds",
                "fact",
                "--out",
                str(tmp_path / fmt),
            ],
            input=data,
            capture_output=True,
            cwd=REPO,
            timeout=120,
            check=False,
        )
        err = done.stderr.decode()
        assert done.returncode == 0, err
        assert done.stdout == b""
        assert err.strip().splitlines()[-1] == "False False"
        assert "Saving the dataset" not in err  # the datasets progress bar stays silent
    assert (tmp_path / "open-unlearning" / "forget.jsonl").read_text().count("\n") == 3
    assert (tmp_path / "hf" / "dataset" / "dataset_info.json").is_file()


def test_open_unlearning_refuses_a_name_the_framework_ships(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(write_set(tmp_path / "set.jsonl"))
    for name in ("TOFU_QA_retain", "default", "MUSE_forget", "WMDP_forget"):
        code, out, err = run(
            [
                "-i",
                source,
                "-f",
                "open-unlearning",
                "--kinds",
                "fact",
                "--name",
                name,
                "--out",
                str(tmp_path / "o"),
            ],
            capsys,
        )
        assert code == 2 and out == ""
        assert_one_error_line(err, f"--name '{name}' is taken by open-unlearning's own configs")
    assert not (tmp_path / "o").exists()


def test_default_rewrite_output_exports_as_tofu_with_kinds_fact_variant(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`biforget rewrite -i FACTS | biforget export --format tofu --kinds fact,variant --out DIR`, on the
    scripted backend: the statements rewrite adds by default are their own kind, so the filter drops them."""
    from datasets import load_dataset

    facts = tmp_path / "facts.jsonl"
    facts.write_text("".join(line + "\n" for line in FACTS_JSONL.splitlines()[:2]), encoding="utf-8")
    use_model(ScriptedModel(good))
    assert cli.run(["rewrite", "-i", str(facts)]) == 0
    rewritten, _ = capsys.readouterr()
    records = [json.loads(line) for line in rewritten.splitlines()]
    kinds = [r["kind"] for r in records]
    assert kinds.count("fact") == 2 and kinds.count("statement") == 2 and kinds.count("variant") >= 2
    output = tmp_path / "rewritten.jsonl"
    output.write_text(rewritten, encoding="utf-8")
    # Without the filter the statements make it a mixed set: an error that names the filter.
    code, out, err = run(["-i", str(output), "-f", "tofu", "--out", str(tmp_path / "t")], capsys)
    assert code == 1 and out == ""
    assert_one_error_line(err, "(2 statement; first:", "keep the 10 question/answer ones with --shape qa")
    code, out, err = run(
        [
            "-i",
            str(output),
            "-f",
            "tofu",
            "--kinds",
            "fact,variant",
            "--task-id",
            "--out",
            str(tmp_path / "t"),
        ],
        capsys,
    )
    assert code == 0 and out == "", err
    data = load_dataset(
        "json", data_files=str(tmp_path / "t" / "forget.jsonl"), split="train", cache_dir=str(tmp_path / "c")
    )
    qa = [r for r in records if r["kind"] in ("fact", "variant")]
    assert data.column_names == ["question", "answer", "task_id"]
    assert data["question"] == [r["question"] for r in qa] and data["task_id"] == [r["task_id"] for r in qa]
