"""JSONL input and output: the input conventions, errors naming FILE:LINE, the flushing writer, --resume."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from pathlib import Path

import pytest

from biforget.errors import InputError, UsageError
from biforget.io.jsonl import RecordWriter, iter_records, open_input, read_all, read_existing


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def lines_of(*records: dict[str, object]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


# Reading.


def test_reads_records_in_order(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "in.jsonl", lines_of({"text": "a", "extra": [1]}, {"text": "b"}))
    source = open_input(path)
    assert source.present and source.name == str(path)
    assert list(iter_records(source)) == [{"text": "a", "extra": [1]}, {"text": "b"}]
    assert source.read == 2 and source.skipped == 0
    assert source.stream is not None and source.stream.closed  # closed once read


def test_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    data = b'\xef\xbb\xbf{"text": "caf\xc3\xa9"}\r\n\r\n   \n{"text": "b"}\r\n\n'
    path = write_bytes(tmp_path / "in.jsonl", data)
    assert read_all(path) == [{"text": "café"}, {"text": "b"}]


def test_last_line_without_newline_is_read(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "in.jsonl", b'{"text": "a"}\n{"text": "b"}')
    assert [record["text"] for record in read_all(path)] == ["a", "b"]


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "in.jsonl", b'{"text": "a"}\n\n{"text": "b"\n{"text": "c"}\n')
    with pytest.raises(InputError) as caught:
        read_all(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: ")
    assert "malformed JSON" in message
    assert "\n" not in message
    assert caught.value.line == 3 and caught.value.source == str(path)


@pytest.mark.parametrize(
    ("line", "what"), [(b"[1, 2]", "list"), (b'"text"', "str"), (b"42", "int"), (b"null", "NoneType")]
)
def test_non_object_json(tmp_path: Path, line: bytes, what: str) -> None:
    path = write_bytes(tmp_path / "in.jsonl", b'{"text": "a"}\n' + line + b"\n")
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:2: expected a JSON object, got {what}$"):
        read_all(path)


@pytest.mark.parametrize("record", [{"question": "q"}, {"text": ""}, {"text": "   "}, {"text": 3}])
def test_missing_or_empty_text_field(tmp_path: Path, record: dict[str, object]) -> None:
    path = write_bytes(tmp_path / "in.jsonl", lines_of({"text": "ok"}, {"text": "ok"}, record))
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:3: record has no 'text' field$"):
        read_all(path)


def test_required_fields_are_configurable(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "in.jsonl", lines_of({"question": "q", "answer": "a"}))
    assert read_all(path, required=("question", "answer")) == [{"question": "q", "answer": "a"}]
    assert read_all(path, required=()) == [{"question": "q", "answer": "a"}]
    with pytest.raises(InputError, match=r":1: record has no 'answer' field"):
        read_all(
            write_bytes(tmp_path / "q.jsonl", lines_of({"question": "q"})), required=("question", "answer")
        )


def test_binary_file_with_nul_bytes(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "model.bin", b"\x00\x01\x02GGUF\x00\x00\n\x00")
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:1: binary data"):
        read_all(path)


def test_utf16_file_is_reported_as_binary(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "in.jsonl", '{"text": "a"}\n'.encode("utf-16"))
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:1: "):
        read_all(path)


def test_invalid_utf8(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "in.jsonl", b'{"text": "a"}\n{"text": "\xff\xfe"}\n')
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:2: not UTF-8 text$"):
        read_all(path)


def test_skip_counts_bad_lines_and_keeps_good_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = b'{"text": "a"}\nnot json\n[1]\n{"text": "b"}\n{"no": "text"}\n\x00\x00\n{"text": "c"}\n'
    source = open_input(write_bytes(tmp_path / "in.jsonl", data), on_error="skip")
    records = list(iter_records(source))
    assert [record["text"] for record in records] == ["a", "b", "c"]
    assert source.skipped == 4
    assert source.read == 3
    err = capsys.readouterr().err
    assert f"{tmp_path / 'in.jsonl'}:2:" in err and f"{tmp_path / 'in.jsonl'}:6:" in err
    assert "skipped 4 bad line(s)" in err


def test_skip_with_only_bad_lines_and_allow_empty_false(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "in.jsonl", b"nope\n")
    assert read_all(path, on_error="skip") == []
    with pytest.raises(InputError, match="no records"):
        read_all(path, on_error="skip", allow_empty=False)


def test_fail_is_the_default(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "in.jsonl", b'{"text": "a"}\nnope\n')
    source = open_input(path)
    assert source.on_error == "fail"
    got = iter_records(source)
    assert next(got) == {"text": "a"}
    with pytest.raises(InputError):
        next(got)
    assert source.stream is not None and source.stream.closed


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: no such file$"):
        open_input(path)


def test_directory_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=rf"^{re.escape(str(tmp_path))}: is a directory"):
        open_input(tmp_path)


def test_unreadable_file_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod 0 does not stop root, so the permission error is injected where the file is opened.
    path = write_bytes(tmp_path / "secret.jsonl", b'{"text": "a"}\n')
    real_open = Path.open

    def refuse(self: Path, *args: object, **kwargs: object) -> object:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: cannot read: Permission denied$"):
        open_input(path)


def test_empty_file_with_allow_empty_false_names_the_file(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "empty.jsonl", b"")
    assert read_all(path) == []
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: no records \(empty input\)$"):
        read_all(path, allow_empty=False)
    blank = write_bytes(tmp_path / "blank.jsonl", b"\n \n\r\n")
    with pytest.raises(InputError, match=rf"^{re.escape(str(blank))}: no records"):
        read_all(blank, allow_empty=False)


# Stdin conventions.


class _NoFileno(io.StringIO):
    pass


def _closed_stdin() -> io.TextIOWrapper:
    stream = io.TextIOWrapper(io.BytesIO(b'{"text": "a"}\n'))
    stream.close()
    return stream


@pytest.mark.parametrize(
    "make_stdin",
    [lambda: None, _closed_stdin, lambda: _NoFileno('{"text": "a"}\n')],
    ids=["none", "closed", "no-fd"],
)
def test_missing_or_closed_stdin_is_no_input(monkeypatch: pytest.MonkeyPatch, make_stdin: object) -> None:
    monkeypatch.setattr(sys, "stdin", make_stdin())  # type: ignore[operator]
    source = open_input(None)
    assert not source.present
    assert source.name == "<stdin>"
    assert list(iter_records(source)) == []
    assert read_all(None, allow_empty=False) == []  # no input is not an error


def test_terminal_stdin_is_no_input(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "r", closefd=False) as tty:
            assert tty.isatty()
            monkeypatch.setattr(sys, "stdin", tty)
            assert not open_input(None).present
    finally:
        os.close(master)
        os.close(slave)


def test_dev_null_stdin_reads_as_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    with open(os.devnull) as null:
        monkeypatch.setattr(sys, "stdin", null)
        assert read_all(None) == []


def test_file_as_stdin_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_bytes(tmp_path / "in.jsonl", lines_of({"text": "a"}, {"text": "b"}))
    with path.open() as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        source = open_input(None)
        assert source.present and source.name == "<stdin>"
        assert [record["text"] for record in iter_records(source)] == ["a", "b"]


def test_pipe_as_stdin_is_read_and_errors_name_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"text": "a"}\nbroken\n')
    os.close(write_end)
    with os.fdopen(read_end) as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        with pytest.raises(InputError, match=r"^<stdin>:2: malformed JSON"):
            read_all(None)


def test_dash_reads_stdin_and_closed_stdin_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_bytes(tmp_path / "in.jsonl", lines_of({"text": "a"}))
    with path.open() as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        assert read_all("-") == [{"text": "a"}]
    monkeypatch.setattr(sys, "stdin", _closed_stdin())
    with pytest.raises(InputError, match="stdin is closed"):
        open_input("-")


def test_empty_pipe_with_allow_empty_false_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    with os.fdopen(read_end) as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        with pytest.raises(InputError, match=r"^<stdin>: no records"):
            read_all(None, allow_empty=False)


# Writing.

RECORDS = [
    {"id": "a", "text": "Ünïcode “quotes”", "n": 1},
    {"id": "b", "text": "line\nbreak", "gen": {"x": [1, 2]}},
]


def test_writer_writes_compact_lines_and_flushes_each(tmp_path: Path) -> None:
    path = tmp_path / "out" / "set.jsonl"  # the folder is created
    with RecordWriter(path) as writer:
        writer.write(RECORDS[0])
        # Read while the writer is still open: the record is already on disk, whole.
        assert path.read_text(encoding="utf-8") == '{"id":"a","text":"Ünïcode “quotes”","n":1}\n'
        writer.write(RECORDS[1])
        data = path.read_bytes()
        assert data.endswith(b"\n") and data.count(b"\n") == 2
        assert writer.written == 2
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == RECORDS
    assert lines[1] == '{"id":"b","text":"line\\nbreak","gen":{"x":[1,2]}}'


def test_writer_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    with RecordWriter(None) as writer:
        assert writer.write_all(RECORDS) == 2
    out = capsys.readouterr().out
    assert out.splitlines() == [
        json.dumps(record, ensure_ascii=False, separators=(",", ":")) for record in RECORDS
    ]
    assert out.endswith("\n")


@pytest.mark.parametrize("encoding", ["ascii", "latin-1", "cp1252"])
def test_writer_to_stdout_is_utf8_whatever_the_locale(monkeypatch: pytest.MonkeyPatch, encoding: str) -> None:
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding=encoding, newline="\r\n")
    monkeypatch.setattr(sys, "stdout", stdout)
    print("before", file=stdout)  # something already written through the text layer stays first
    record = {"id": "a", "text": "Ελληνικά “quotes” café"}
    RecordWriter(None).write(record)
    expected = '{"id":"a","text":"Ελληνικά “quotes” café"}\n'.encode()
    assert raw.getvalue() == b"before\r\n" + expected  # UTF-8 bytes, and "\n" line ends, not "\r\n"


def test_writer_to_a_text_only_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    RecordWriter(None).write({"id": "a", "text": "é"})
    assert stdout.getvalue() == '{"id":"a","text":"é"}\n'


def test_writer_truncates_without_resume(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "set.jsonl", lines_of({"id": "old", "text": "x"}))
    with RecordWriter(path) as writer:
        assert writer.existing == [] and writer.existing_ids == set()
        writer.write(RECORDS[0])
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a"]


def test_writer_appends_with_resume(tmp_path: Path) -> None:
    path = write_bytes(
        tmp_path / "set.jsonl", lines_of({"id": "old1", "text": "x"}, {"id": "old2", "text": "y"})
    )
    with RecordWriter(path, resume=True) as writer:
        assert writer.existing_ids == {"old1", "old2"}
        assert [record["text"] for record in writer.existing] == ["x", "y"]
        writer.write(RECORDS[0])
        assert writer.written == 1
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["old1", "old2", "a"]


def test_resume_of_a_missing_file_starts_it(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    with RecordWriter(path, resume=True) as writer:
        assert writer.existing_ids == set()
        writer.write(RECORDS[0])
    assert path.read_text().count("\n") == 1


def test_resume_drops_a_torn_last_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    intact = lines_of({"id": "a", "text": "x"}, {"id": "b", "text": "y"})
    path = write_bytes(tmp_path / "set.jsonl", intact + b'{"id":"c","te')
    with RecordWriter(path, resume=True) as writer:
        assert writer.existing_ids == {"a", "b"}
        assert path.read_bytes() == intact + b'{"id":"c","te'  # untouched until the first record
        writer.write({"id": "c", "text": "z"})
    data = path.read_bytes()
    assert data == intact + b'{"id":"c","text":"z"}\n'
    assert [json.loads(line)["id"] for line in data.decode().splitlines()] == ["a", "b", "c"]
    assert "torn last line" in capsys.readouterr().err


def test_resume_drops_a_line_torn_inside_a_utf8_character(tmp_path: Path) -> None:
    intact = lines_of({"id": "a", "text": "x"})
    path = write_bytes(tmp_path / "set.jsonl", intact + '{"id":"b","text":"é'.encode()[:-1])
    with RecordWriter(path, resume=True) as writer:
        assert writer.existing_ids == {"a"}
        writer.write({"id": "b", "text": "é"})
    assert [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()] == ["a", "b"]


def test_resume_after_a_whole_last_line_without_newline(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "set.jsonl", b'{"id":"a","text":"x"}')
    with RecordWriter(path, resume=True) as writer:
        assert writer.existing_ids == {"a"}
        writer.write({"id": "b", "text": "y"})
    assert path.read_bytes() == b'{"id":"a","text":"x"}\n{"id":"b","text":"y"}\n'


def test_resume_of_a_file_with_only_a_torn_line(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "set.jsonl", b'{"id":"a"')
    with RecordWriter(path, resume=True) as writer:
        assert writer.existing == []
        writer.write({"id": "a", "text": "x"})
    assert path.read_bytes() == b'{"id":"a","text":"x"}\n'


def test_resume_refuses_a_corrupt_line_in_the_middle(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "set.jsonl", b'{"id":"a"}\ngarbage\n{"id":"b"}\n')
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:2: malformed JSON"):
        RecordWriter(path, resume=True)
    assert path.read_bytes() == b'{"id":"a"}\ngarbage\n{"id":"b"}\n'  # left untouched


def test_read_existing_reports_the_intact_prefix(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "set.jsonl", b'{"id":"a"}\n\n{"id":"b"}\n{"id')
    records, intact = read_existing(path)
    assert [record["id"] for record in records] == ["a", "b"]
    assert intact == len(b'{"id":"a"}\n\n{"id":"b"}\n')
    assert read_existing(tmp_path / "absent.jsonl") == ([], 0)


def test_resume_without_a_path_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--resume needs -o FILE"):
        RecordWriter(None, resume=True)


def test_output_path_that_is_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        RecordWriter(tmp_path)
