"""Fact readers of `biforget rewrite`: JSONL, JSON array, CSV, custom keys, pass-through, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biforget.errors import InputError, UsageError
from biforget.io.facts import Fact, FactKeys, parse_facts, read_facts


def test_jsonl_qa_and_text_facts_keep_their_other_fields(tmp_path: Path) -> None:
    path = tmp_path / "facts.jsonl"
    rows = [
        {"task_id": "7", "question": "Who? ", "answer": "Ann Lee.", "meta": {"a": 1}},
        {"text": "Ann Lee was born in Leeds.", "source": "wiki"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    facts = read_facts(path)
    assert facts == [
        Fact("Who?", "Ann Lee.", None, {"task_id": "7", "meta": {"a": 1}}, str(path), 1),
        Fact(None, None, "Ann Lee was born in Leeds.", {"source": "wiki"}, str(path), 2),
    ]


def test_json_array_reports_the_line_each_element_starts_on() -> None:
    data = '[\n  {"question": "Q1?", "answer": "A one."},\n\n  {"text": "T"},\n  {"other": 1}\n]\n'
    with pytest.raises(InputError) as caught:
        parse_facts(data, "facts.json")
    assert str(caught.value) == "facts.json:5: fact has neither 'text' nor 'question'/'answer'"
    facts = parse_facts(data, "facts.json", on_error="skip")
    assert [(f.line, f.is_qa) for f in facts] == [(2, True), (4, False)]


def test_csv_with_custom_keys_renames_them_and_passes_other_columns() -> None:
    data = 'prompt,response,task_id\n"Where, exactly?",In Leeds.,3\n"Multi\nline?",Yes it is.,4\n'
    facts = parse_facts(data, "facts.csv", FactKeys(question="prompt", answer="response"))
    assert [(f.question, f.answer, f.extra, f.line) for f in facts] == [
        ("Where, exactly?", "In Leeds.", {"task_id": "3"}, 2),
        ("Multi\nline?", "Yes it is.", {"task_id": "4"}, 3),
    ]


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        ('{"question": "Q?", "answer": "A b."}\n{"question": "Q?"\n', "f.jsonl", "f.jsonl:2: malformed JSON"),
        (
            '{"question": "Q?", "answer": "A b."}\n{"question": "Q2?"}\n',
            "f.jsonl",
            "f.jsonl:2: fact has 'question' but no 'answer'",
        ),
        ('{"answer": "A b."}\n', "f.jsonl", "f.jsonl:1: fact has 'answer' but no 'question'"),
        ('{"text": "  "}\n', "f.jsonl", "f.jsonl:1: fact has neither"),
        ('["just a string"]', "f.json", "f.json:1: expected an object, got str"),
        ('[\n{"text": "a"}\n{"text": "b"}\n]', "f.json", "f.json:3: malformed JSON array"),
        ("question,answer\nQ?,A b.\nQ2?,A c.,extra\n", "f.csv", "f.csv:3: more values than header columns"),
        ("question,answer\nQ?,\n", "f.csv", "f.csv:2: fact has 'question' but no 'answer'"),
        ("title,body\nx,y\n", "f.csv", "f.csv:2: fact has neither 'text' nor 'question'/'answer'"),
    ],
)
def test_malformed_rows_name_file_and_line(data: str, name: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_facts(data, name)
    assert str(caught.value).startswith(message)


def test_skip_continues_past_a_malformed_jsonl_line(capsys: pytest.CaptureFixture[str]) -> None:
    data = '{"text": "one"}\n{broken\n{"text": "three"}\n'
    facts = parse_facts(data, "f.jsonl", on_error="skip")
    assert [(f.text, f.line) for f in facts] == [("one", 1), ("three", 3)]
    assert "f.jsonl:2" in capsys.readouterr().err


def test_format_is_sniffed_on_unnamed_input() -> None:
    assert parse_facts('[{"text": "a"}]', "<stdin>")[0].text == "a"
    assert parse_facts('{"text": "a"}\n', "<stdin>")[0].text == "a"
    assert parse_facts("text\na\n", "<stdin>")[0].text == "a"


def test_empty_binary_and_missing_input(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(InputError, match=r"empty\.jsonl: no facts \(empty input\)"):
        read_facts(empty)
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b'{"text": "a"}\n\x00\x01')
    with pytest.raises(InputError, match=r"b\.jsonl:2: binary data"):
        read_facts(binary)
    with pytest.raises(UsageError, match="no facts on input"):
        read_facts(None)  # no stdin under pytest


def test_keys_must_differ() -> None:
    with pytest.raises(UsageError):
        FactKeys(question="q", answer="q")


def test_an_overlong_jsonl_fact_line_is_one_bad_line_or_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "facts.jsonl"
    huge = json.dumps({"text": "word " * 1_000_000})  # a 5 MB line, over the 1 MiB a record may hold
    good = json.dumps({"text": "Ann Lee was born in Leeds."})
    path.write_text(f"{good}\n{huge}\n{good.replace('Leeds', 'York')}\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}:2: line of 5,000,013 bytes, over the 1,048,576 a record"):
        read_facts(path)
    facts = read_facts(path, on_error="skip")
    assert [(fact.text, fact.line) for fact in facts] == [
        ("Ann Lee was born in Leeds.", 1),
        ("Ann Lee was born in York.", 3),
    ]
    assert "skipped" in capsys.readouterr().err
    # The same limit holds for facts given as text (parse_facts) and for a JSONL file with another name.
    with pytest.raises(InputError, match=r"^facts\.txt:2: line of 5,000,013 bytes"):
        parse_facts(path.read_text(encoding="utf-8"), "facts.txt")
