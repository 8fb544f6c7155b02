"""`biforget synthesize` with the default templates and temperatures, then `biforget export` in every
format, through the CLI, on real outputs of the default model.

The scripted backend answers a request with the SmolLM2-135M-Instruct output recorded for its prompt,
temperature and reply start, and with nothing (rejected as too short) where none is recorded:
tests/fixtures/smollm2_synthesis_outputs.json holds the info/ templates' outputs on three Harry Potter
points at 0.8 and 1.2, tests/fixtures/smollm2_qa_reply_start_outputs.json the qa/ templates' outputs
with the reply started as "Question:", as the default run asks, one temperature per template and point.
So `synthesize --samples 1 --rounds 1` writes the set the default model gives for those requests: QA
samples beside text samples.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from biforget import cli
from tests.default_set import POINTS


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _export(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    code = cli.run(["export", *args])
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def test_open_unlearning_takes_the_default_set_and_says_how(
    default_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datasets import load_dataset

    records = _records(default_set)
    samples = [r for r in records if r["kind"] == "sample"]
    qa = [r for r in samples if "question" in r]
    text = len(samples) - len(qa)
    # The set is mixed: 6 QA and 28 text samples (qa/ outputs that do not parse as a question and an
    # answer are text).
    assert (len(qa), text) == (6, 28) and len(samples) == len(records)
    assert all("synthesize/qa/" in json.dumps(r["gen"]) for r in qa)
    out_dir = tmp_path / "ou"
    code, out, err = _export(
        ["-i", str(default_set), "--format", "open-unlearning", "--out", str(out_dir)], capsys
    )
    assert code == 0 and out == "", err
    # One line says the QA records went in as text, with the counts and the --shape qa alternative.
    as_text = [line for line in err if "written as text" in line]
    assert as_text == [
        f'open-unlearning: {len(qa)} question/answer record(s) written as text ("question answer") beside '
        f"{text} text record(s); all go to one PretrainingDataset; for a QA experiment (QADataset) keep "
        "them alone with --shape qa"
    ]
    assert not [line for line in err if line.startswith("left out")]  # no filter left a record out
    data = load_dataset(
        "json", data_files=str(out_dir / "forget.jsonl"), split="train", cache_dir=str(tmp_path / "c")
    )
    assert data.column_names == ["text"] and len(data) == len(samples)
    assert data["text"] == [
        f"{r['question']} {r['answer']}" if "question" in r else r["text"] for r in samples
    ]
    # The alternative the line names: the QA records alone, as a QADataset of the TOFU experiment.
    code, out, err = _export(
        ["-i", str(default_set), "-f", "open-unlearning", "--shape", "qa", "--out", str(tmp_path / "qa")],
        capsys,
    )
    assert code == 0, err
    assert f"left out {text} of {len(records)} record(s): {text} by --shape qa" in err
    assert (tmp_path / "qa" / "configs/experiment/unlearn/tofu/biforget.yaml").is_file()
    rows = _records(tmp_path / "qa" / "forget.jsonl")
    assert rows == [{"question": r["question"], "answer": r["answer"]} for r in qa]


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("muse", "forget.txt"),
        ("dusk", "Chronological.txt"),
        ("txt", "forget.txt"),
        ("rmu", "data/biforget-bio-forget-corpus.jsonl"),
    ],
)
def test_text_formats_take_the_default_set(
    default_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, name: str
) -> None:
    samples = [r for r in _records(default_set) if r["kind"] == "sample"]
    qa = sum("question" in r for r in samples)
    code, out, err = _export(["-i", str(default_set), "--format", fmt, "--out", str(tmp_path / fmt)], capsys)
    assert code == 0 and out == "", err
    assert [line for line in err if "written as text" in line] == [
        f'{fmt}: {qa} question/answer record(s) written as text ("question answer") beside '
        f"{len(samples) - qa} text record(s); for a QA experiment export them with --shape qa --format tofu "
        "(or open-unlearning)"
    ]
    written = (tmp_path / fmt / name).read_text(encoding="utf-8")
    if fmt == "rmu":
        assert len(written.splitlines()) == len(samples)
    else:
        # Every record one document, for a reader that splits on blank lines.
        assert len([doc for doc in re.split(r"\n\s*\n", written) if doc.strip()]) == len(samples)


def test_tofu_on_the_default_set_names_shape_qa(
    default_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = [r for r in _records(default_set) if r["kind"] == "sample"]
    qa = sum("question" in r for r in samples)
    code, out, err = _export(
        ["-i", str(default_set), "--format", "tofu", "--out", str(tmp_path / "t")], capsys
    )
    assert code == 1 and out == "" and len(err) == 1
    assert err[0].startswith("error: --format tofu needs question/answer records, but ")
    assert err[0].endswith(f"keep the {qa} question/answer ones with --shape qa")
    code, out, err = _export(
        [
            "-i",
            str(default_set),
            "--format",
            "tofu",
            "--shape",
            "qa",
            "--task-id",
            "--out",
            str(tmp_path / "t"),
        ],
        capsys,
    )
    assert code == 0, err
    rows = _records(tmp_path / "t" / "forget.jsonl")
    assert len(rows) == qa and len({row["task_id"] for row in rows}) == len(POINTS)


def test_a_filter_that_leaves_nothing_exits_1_naming_it(
    default_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _records(default_set)
    code, out, err = _export(
        ["-i", str(default_set), "-f", "txt", "--stages", "probe", "--out", str(tmp_path / "none")], capsys
    )
    assert code == 1 and out == "" and len(err) == 1
    assert err[0] == (
        f"error: {default_set}: no records left after the filters out of {len(records)} read: "
        f"--stages probe left out {len(records)}"
    )
    assert not (tmp_path / "none").exists()


# csv and hf took a mixed set before --shape too; this keeps them doing so on the default set.
def test_csv_and_hf_keep_both_shapes_column_by_column(
    default_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv

    from datasets import load_from_disk

    samples = _records(default_set)
    for fmt in ("csv", "hf"):
        code, out, err = _export(["-i", str(default_set), "-f", fmt, "--out", str(tmp_path / fmt)], capsys)
        assert code == 0 and out == "", err
        # Nothing turned into text alone: the question and answer stay columns beside `text`.
        assert not [line for line in err if "written as text" in line or line.startswith("left out")]
    with (tmp_path / "csv" / "forget.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    data = load_from_disk(str(tmp_path / "hf" / "dataset"))
    for table in (rows, data.to_list()):
        assert len(table) == len(samples)
        assert [row["question"] or None for row in table] == [r.get("question") for r in samples]
