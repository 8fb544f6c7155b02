"""The default flow end to end, as the README runs it: the set a default `synthesize` writes (default
templates, so QA and text records mixed) goes through `unlearn`, `audit` and `export` with no extra flag.

The set is synthesized through the CLI from the default model's recorded outputs (the `default_set`
fixture); unlearning and scoring run on the tiny random Llama with the SmolLM2 tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biforget import cli

REPO = Path(__file__).resolve().parent.parent


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_default_set_reaches_unlearn_and_audit_with_no_extra_flag(
    default_set: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _records(default_set)
    qa = [r for r in records if "question" in r and "answer" in r]
    assert 0 < len(qa) < len(records)  # mixed, as a default run writes it

    out = tmp_path / "hp-ga"
    # --steps only keeps the test short; no flag says anything about the shapes of the records.
    code = cli.run(
        ["unlearn", "-i", str(default_set), "--model", str(tiny_model_dir), "--out", str(out), "--steps", "4"]
    )
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert stdout == ""
    assert (out / "unlearn.json").is_file()

    examples = REPO / "examples"
    code = cli.run(
        [
            *("audit", "--model", str(tiny_model_dir), "--unlearned", str(out), "--forget", str(default_set)),
            *("--heldout", str(examples / "wizarding-notes.txt")),
            *("--retain", str(examples / "unrelated-notes.txt")),
            *("--bootstrap", "50"),
        ]
    )
    stdout, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(stdout)
    forget = report["target"]["forget"]
    # Text metrics on every record, QA metrics on the QA records, and the report says how many.
    assert forget["records"] == len(records)
    assert forget["qa_records"] == len(qa)
    assert forget["nll"] is not None and forget["mink"] is not None
    assert forget["answer_nll"] is not None and forget["rouge_l"] is not None
    shift = report["models"]["hp-ga"]["shift"]["forget"]
    assert shift["nll"] is not None and shift["answer_nll"] is not None
    # GA on the set made it less likely under the unlearned model.
    assert shift["nll"] > 0


def test_the_default_set_exports_to_open_unlearning_with_no_extra_flag(
    default_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _records(default_set)
    qa = [r for r in records if "question" in r and "answer" in r]
    out = tmp_path / "ou"
    code = cli.run(["export", "-i", str(default_set), "--format", "open-unlearning", "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert stdout == ""
    rows = _records(out / "forget.jsonl")
    assert len(rows) == len(records)
    assert all(set(row) == {"text"} for row in rows)
    # QA records went in as "question answer", and stderr said so with the way to keep them as QA.
    texts = {row["text"] for row in rows}
    assert all(f"{r['question']} {r['answer']}" in texts for r in qa)
    assert "--shape qa" in err
