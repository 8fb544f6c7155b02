"""`biforget evaluate` through `biforget.cli.run` on a word tokenizer and the hash embedder."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import biforget.api
import biforget.models
from biforget import cli, console
from tests.scripted import HashEmbedder


class WordTokenizer:
    """One token per whitespace-separated word, so token counts are word counts."""

    name = "words"

    def __init__(self) -> None:
        self.vocabulary: dict[str, int] = {}
        self.words: list[str] = []

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        out = []
        for text in texts:
            ids = []
            for word in text.split():
                if word not in self.vocabulary:
                    self.vocabulary[word] = len(self.words)
                    self.words.append(word)
                ids.append(self.vocabulary[word])
            out.append(ids)
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self.words[i] for i in ids)


@pytest.fixture(autouse=True)
def scripted_models(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(biforget.models, "load_tokenizer", lambda options: WordTokenizer())
    monkeypatch.setattr(biforget.api, "load_embedder", lambda options, target=None: HashEmbedder())
    yield
    console.set_quiet(False)


OURS = [
    "Harry Potter catches the golden snitch in his first match",
    "Hermione Granger brews a potion in a girls bathroom",
    "Ron Weasley plays wizard chess against a giant board",
    "Hagrid keeps a dragon egg in his hut by the forest",
    "Dumbledore leaves Harry Potter an invisibility cloak at Christmas",
    "Snape teaches potions in the cold dungeons below the castle",
]


def write_jsonl(path: Path, texts: Sequence[str], topic: str | None = "Harry Potter") -> Path:
    rows = [
        {"id": f"r{i}", "kind": "sample", "text": t, **({"topic": topic} if topic else {})}
        for i, t in enumerate(texts)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code = cli.run(["evaluate", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_report_on_stdout_table_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ours = write_jsonl(tmp_path / "ours.jsonl", OURS)
    book = tmp_path / "book.txt"
    book.write_text(
        "Harry Potter lives under the stairs\n\nThe castle has moving stairs and a lake\n\n"
        "A train leaves from platform nine and three quarters\n",
        encoding="utf-8",
    )
    code, report, err = run(
        [
            str(ours),
            "--against",
            str(book),
            "--chunk-tokens",
            "8",
            "--relevance-seeds",
            "2",
            "--clusters",
            "3",
        ],
        capsys,
    )
    assert code == 0, err
    assert list(report) == ["settings", "sets", "best", "notes"]
    assert report["settings"]["topic"] == "Harry Potter" and report["settings"]["topic_source"] == "records"
    assert report["settings"]["sets"]["book"]["role"] == "against"
    ours_row, book_row = report["sets"]["ours"], report["sets"]["book"]
    words = sum(len(t.split()) for t in OURS)
    assert (ours_row["records"], ours_row["tokens"], ours_row["chunks"]) == (6, words, -(-words // 8))
    assert (book_row["records"], book_row["tokens"], book_row["chunks"]) == (3, 23, 3)
    for row in (ours_row, book_row):
        assert 0 < row["diversity"] <= 2
        assert row["relevance_tsne"] > 0 and row["relevance_tsne_std"] >= 0
        assert -1 <= row["topic_similarity"] <= 1
        assert 1 <= row["clusters_covered"] <= 3 and row["cluster_entropy"] >= 0
        assert row["overlap"] is None
    assert report["best"]["chunks"] == "book"
    assert report["notes"] == {"ours": [], "book": []}
    assert "relevance (t-SNE distance) ↓" in err and "diversity (remote-clique) ↑" in err
    assert "book (against)" in err and '"sets"' not in err


def test_the_same_run_gives_the_same_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ours = write_jsonl(tmp_path / "ours.jsonl", OURS)
    args = [str(ours), "--chunk-tokens", "4", "--relevance-seeds", "2", "--clusters", "2", "-q"]
    first = run(args, capsys)
    second = run(args, capsys)
    assert first[0] == 0 and first[1] == second[1]
    assert first[2] == ""  # --quiet: no table, no progress


def test_one_record_and_no_topic_are_nulls_with_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single = write_jsonl(tmp_path / "single.jsonl", OURS[:1], topic=None)
    code, report, err = run([str(single)], capsys)
    assert code == 0, err
    row = report["sets"]["single"]
    assert row["records"] == 1 and row["diversity"] is None
    assert row["relevance_tsne"] is None and row["topic_similarity"] is None
    notes = report["notes"]["single"]
    assert "diversity: needs at least 2 records" in notes
    assert any(n.startswith("relevance: no topic") for n in notes)
    assert report["settings"]["topic"] is None
    assert "relevance: no topic" in err


def test_disagreeing_topics_need_a_topic_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", OURS[:3], topic="Harry Potter")
    b = write_jsonl(tmp_path / "b.jsonl", OURS[3:], topic="Hogwarts")
    code, report, _ = run([str(a), str(b)], capsys)
    assert code == 0 and report["sets"]["a"]["topic_similarity"] is None
    assert "several topics" in report["notes"]["a"][0]
    code, report, _ = run(
        [str(a), str(b), "--topic", "wizards", "--relevance-seeds", "1", "--chunk-tokens", "4"], capsys
    )
    assert report["settings"]["topic"] == "wizards" and report["sets"]["b"]["relevance_tsne"] is not None
    assert report["sets"]["b"]["relevance_tsne_std"] == 0.0


def test_overlap_with_retain_and_drop_overlap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ours = write_jsonl(tmp_path / "ours.jsonl", OURS)
    retain = tmp_path / "retain.txt"
    retain.write_text(
        f"{OURS[1]}\n\nSnape teaches potions in the cold dungeons below the old castle\n\n"
        "Muggles commute to work by car\n",
        encoding="utf-8",
    )
    kept_path = tmp_path / "kept.jsonl"
    code, report, err = run(
        [
            str(ours),
            "--retain",
            str(retain),
            "--drop-overlap",
            "-o",
            str(kept_path),
            "--clusters",
            "2",
            "--relevance-seeds",
            "1",
        ],
        capsys,
    )
    assert code == 0, err
    found = report["sets"]["ours"]["overlap"]
    assert found["records"] == 2 and found["share"] == pytest.approx(2 / 6, abs=1e-6)
    assert [o["id"] for o in found["top"]] == ["r1", "r5"]
    assert found["top"][0]["similarity"] == pytest.approx(1.0) and found["top"][0]["retain_index"] == 0
    assert found["top"][1]["retain_text"].endswith("below the old castle")
    kept = [json.loads(line) for line in kept_path.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in kept] == ["r0", "r2", "r3", "r4"]
    assert "4 record(s)" in err and "2 overlapping dropped" in err


def test_plots_are_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ours = write_jsonl(tmp_path / "ours.jsonl", OURS)
    trace = tmp_path / "trace.jsonl"
    trace.write_text('{"samples": 2, "diversity": 0.4}\n{"samples": 4, "diversity": 0.5}\n', encoding="utf-8")
    plots = tmp_path / "figures"
    code, report, err = run(
        [
            str(ours),
            "--plots",
            str(plots),
            "--trace",
            str(trace),
            "--chunk-tokens",
            "8",
            "--relevance-seeds",
            "1",
            "--clusters",
            "2",
        ],
        capsys,
    )
    assert code == 0, err
    names = sorted(Path(p).name for p in report["plots"])
    assert names == ["convergence.png", "pca.png", "relevance_tsne.png"]
    for name in names:
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plots: {plots}" in err


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"empty.jsonl": ""}, "empty.jsonl: empty set (no records)"),
        ({"notext.csv": "title\nx\n"}, "notext.csv: CSV has no 'text' column (columns: 'title')"),
    ],
)
def test_bad_sets_exit_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str], message: str
) -> None:
    paths = []
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
        paths.append(str(tmp_path / name))
    code, report, err = run(paths, capsys)
    assert code == 1 and report is None
    assert err.strip().count("\n") == 0 and err.startswith("error: ") and message in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--drop-overlap", "-o", "x.jsonl"], "--drop-overlap needs --retain"),
        (["--name", "one", "--name", "two"], "--name given 2 time(s) for 1 set(s)"),
        (["--sample-size", "1"], "--sample-size must be at least 2"),
        (["--topic", " "], "--topic must not be empty"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    ours = write_jsonl(tmp_path / "ours.jsonl", OURS)
    code, report, err = run([str(ours), *extra], capsys)
    assert code == 2 and report is None and message in err


def test_same_stem_twice_needs_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_jsonl(tmp_path / "a" / "hp.jsonl", OURS[:3])
    second = write_jsonl(tmp_path / "b" / "hp.jsonl", OURS[3:])
    code, _, err = run([str(first), str(second)], capsys)
    assert code == 2 and "two sets are named 'hp'" in err
    code, report, err = run([str(first), str(second), "--name", "early", "--name", "late", "-q"], capsys)
    assert code == 0, err
    assert list(report["sets"]) == ["early", "late"]


def test_too_few_chunks_for_a_map_is_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ours = write_jsonl(tmp_path / "ours.jsonl", OURS[:2])
    code, report, _ = run([str(ours), "--relevance-seeds", "1"], capsys)
    assert code == 0
    row = report["sets"]["ours"]
    assert row["relevance_tsne"] is None and row["topic_similarity"] is not None
    assert any("too few for a t-SNE map" in note for note in report["notes"]["ours"])
