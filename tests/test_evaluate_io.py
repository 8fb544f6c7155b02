"""Readers for evaluation sets: biforget JSONL, plain text, CSV and JSON arrays, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from biforget.errors import InputError
from biforget.io.sets import read_set, read_trace


def test_biforget_jsonl_any_kind_and_qa_as_question_plus_answer(tmp_path: Path) -> None:
    path = tmp_path / "hp.jsonl"
    rows = [
        {"id": "a", "kind": "sample", "text": "Harry flies.", "topic": "Harry Potter"},
        {
            "id": "b",
            "kind": "variant",
            "question": "Who is Hagrid?",
            "answer": "The keeper of keys.",
            "text": "stale",
            "topic": "Harry Potter",
        },
        {"id": "c", "kind": "fact", "text": "Dobby is free."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    data = read_set(path)
    assert data.name == "hp" and data.format == "jsonl"
    assert data.texts == ["Harry flies.", "Who is Hagrid? The keeper of keys.", "Dobby is free."]
    assert data.records == rows
    assert data.topics == {"Harry Potter"}


def test_plain_text_paragraphs_or_lines(tmp_path: Path) -> None:
    path = tmp_path / "book.txt"
    path.write_text("First line\nstill first.\n\n  \nSecond one.\n", encoding="utf-8")
    assert read_set(path).texts == ["First line still first.", "Second one."]
    assert read_set(path, lines=True).texts == ["First line", "still first.", "Second one."]
    assert read_set(path, name="book-text").name == "book-text"


def test_csv_text_column_and_qa_columns(tmp_path: Path) -> None:
    path = tmp_path / "textbook.csv"
    path.write_text('id,text\n1,"A wand, chosen."\n2,Owls carry post.\n', encoding="utf-8")
    data = read_set(path)
    assert data.texts == ["A wand, chosen.", "Owls carry post."]
    assert data.records[0] == {"id": "1", "text": "A wand, chosen."}
    qa = tmp_path / "qa.csv"
    qa.write_text("question,answer\nWho?,Harry.\n", encoding="utf-8")
    assert read_set(qa).texts == ["Who? Harry."]


def test_csv_without_text_column_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("title,body\na,b\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_set(path)
    assert str(caught.value) == f"{path}: CSV has no 'text' column (columns: 'title', 'body')"


def test_json_array_of_strings_and_objects(tmp_path: Path) -> None:
    path = tmp_path / "muse.json"
    path.write_text(
        json.dumps(["One text.", {"text": "Two."}, {"question": "Q?", "answer": "A."}]), encoding="utf-8"
    )
    data = read_set(path)
    assert data.format == "json" and data.texts == ["One text.", "Two.", "Q? A."]
    jsonl = tmp_path / "lines.json"
    jsonl.write_text('{"text": "x y"}\n', encoding="utf-8")
    assert read_set(jsonl).format == "jsonl"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", "empty set (no records)"),
        ("blank.txt", "\n  \n", "empty set (no records)"),
        ("array.json", "[]", "empty set (no records)"),
        ("bad.jsonl", '{"text": "ok"}\n{"text": \n', "2: malformed JSON"),
        ("notext.jsonl", '{"text": "ok"}\n{"answer": "only"}\n', "2: record has no 'text' field"),
    ],
)
def test_bad_sets_are_input_errors_naming_file_and_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_set(path)
    assert str(caught.value).startswith(f"{path}:") and message in str(caught.value)


def test_binary_and_missing_files(tmp_path: Path) -> None:
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"text\n\x00\x01")
    with pytest.raises(InputError, match="binary data"):
        read_set(binary)
    with pytest.raises(InputError, match="no such file"):
        read_set(tmp_path / "missing.jsonl")


def test_trace_reader(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text(
        '{"samples": 8, "diversity": 0.5}\n{"samples": 16, "diversity": 0.55}\n', encoding="utf-8"
    )
    assert read_trace(path) == [(8, 0.5, None, None), (16, 0.55, None, None)]
    path.write_text(
        '{"samples": 8, "offers": 9, "novelty": 1.0, "diversity": 0.5}\n'
        '{"samples": 16, "offers": 20, "novelty": 0.45, "diversity": 0.55}\n',
        encoding="utf-8",
    )
    assert read_trace(path) == [(8, 0.5, 1.0, 9), (16, 0.55, 0.45, 20)]
    assert read_trace(path)[1].novelty == 0.45
    path.write_text('{"samples": 8, "diversity": 0.5, "novelty": "high"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=":1: expected"):
        read_trace(path)
    path.write_text('{"samples": 8}\n', encoding="utf-8")
    with pytest.raises(InputError, match=":1: expected"):
        read_trace(path)


def test_an_overlong_jsonl_line_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    huge = json.dumps({"text": "word " * 1_000_000})
    path.write_text(json.dumps({"text": "Harry flies."}) + "\n" + huge + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}:2: line of 5,000,013 bytes, over the 1,048,576"):
        read_set(path)


def test_a_json_array_error_names_the_line_not_the_index(tmp_path: Path) -> None:
    path = tmp_path / "set.json"
    path.write_text('[\n  "Harry flies.",\n\n  "Hagrid keeps keys.",\n  42\n]\n', encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}:5: expected an object or a string, got int$"):
        read_set(path)


def _pixels_of(path: Path, colour: str) -> int:
    from matplotlib.colors import to_rgb
    from matplotlib.image import imread

    image = imread(path)[..., :3]
    return int((np.abs(image - np.asarray(to_rgb(colour))).max(axis=-1) < 0.02).sum())


def test_the_convergence_plot_draws_novelty_when_the_trace_has_it(tmp_path: Path) -> None:
    from biforget.io.sets import TracePoint
    from biforget.plots import COLOURS, convergence_curve

    old = convergence_curve([TracePoint(10, 0.5), TracePoint(20, 0.52)], tmp_path / "old.png")
    new = convergence_curve(
        [TracePoint(10, 0.5, 1.0, 10), TracePoint(20, 0.52, 0.4, 25), TracePoint(30, 0.51, 0.02, 60)],
        tmp_path / "new.png",
    )
    # The diversity curve in both; the novelty curve (second colour) only where the trace carries it.
    assert _pixels_of(old, COLOURS[0]) > 100 and _pixels_of(new, COLOURS[0]) > 100
    assert _pixels_of(old, COLOURS[1]) == 0 and _pixels_of(new, COLOURS[1]) > 100
