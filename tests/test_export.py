"""`biforget export` as a library: each format written from a pipeline-made set, then read back the way
the framework reads it (datasets.load_dataset, load_from_disk, JSON per line, blank-line splitting)."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from biforget import api
from biforget.config import ExportConfig
from biforget.errors import InputError, UsageError
from biforget.formats import dusk, muse
from biforget.formats.base import Written, document
from biforget.formats.rmu import rmu_note
from biforget.io.export import ExportError
from biforget.pipelines.export import ExportResult
from biforget.pipelines.rewrite import rewrite_facts
from biforget.pipelines.synthesize import synthesize_samples
from biforget.records import make_record
from tests.scripted import HashEmbedder, ScriptedModel
from tests.test_rewrite_pipeline import config as rewrite_config
from tests.test_rewrite_pipeline import facts, good
from tests.test_synthesize_pipeline import POINTS, varied
from tests.test_synthesize_pipeline import config as synthesize_config

Record = dict[str, Any]

# What every export of the whole pipeline set says on stderr: the points the default --kinds leaves out,
# and the question/answer records a text format writes as text.
LEFT_OUT_POINTS = "left out 3 of 42 record(s): 3 by --kinds (default: all but point)"


def qa_note(fmt: str) -> str:
    return (
        f'{fmt}: 9 question/answer record(s) written as text ("question answer") beside 30 text record(s); '
        "for a QA experiment export them with --shape qa --format tofu (or open-unlearning)"
    )


MULTI = "First paragraph of a long sample.\n\n\n  \nSecond paragraph, same document.\r\n\r\nThird one."


def _extras() -> list[Record]:
    """What the scripted pipeline does not make: a multi-paragraph sample and scored QA probe samples."""
    gen = {"model": "scripted"}
    multi = make_record(
        kind="sample",
        text=MULTI,
        topic="Testland",
        parent=str(POINTS[0]["id"]),
        stage="synthesize",
        gen=gen,
        origin={"n": 1},
        scores={"mink": -2.0},
    )
    qa = [
        make_record(
            kind="sample",
            question=f"Who guards gate {n}?",
            answer=f"Warden {n} guards it.",
            topic="Testland",
            parent=str(POINTS[n % 3]["id"]),
            stage="probe/mia",
            gen={**gen, "n": n},
            origin={"n": n + 10},
            scores={"mink": -float(n)},
        )
        for n in (1, 2, 3)
    ]
    return [multi, *qa]


@pytest.fixture(scope="module")
def pipeline_set() -> list[Record]:
    """Points, Stage I samples and rewrite facts/variants from the real pipeline on the scripted backend."""
    samples = list(
        synthesize_samples(
            ScriptedModel(varied),
            HashEmbedder(),
            POINTS,
            synthesize_config(rounds=1, samples=1, temperatures=(0.6,)),
        )
    )
    rewritten = list(rewrite_facts(ScriptedModel(good), HashEmbedder(), facts(), rewrite_config()))
    assert len(samples) == 24 and len(rewritten) == 11
    return [*POINTS, *samples, *rewritten, *_extras()]


def exported(records: list[Record]) -> list[Record]:
    """The records the default filters keep: everything but points."""
    return [r for r in records if r["kind"] != "point"]


def qa_only(records: list[Record]) -> list[Record]:
    return [r for r in exported(records) if "question" in r]


def text_only(records: list[Record]) -> list[Record]:
    return [r for r in exported(records) if "question" not in r]


def as_text(record: Record) -> str:
    return f"{record['question']} {record['answer']}" if "question" in record else str(record["text"])


def run(records: list[Record], out: Path, fmt: str, **settings: Any) -> ExportResult:
    return api.export(ExportConfig(format=fmt, out=out, **settings), records)


def load_json_dataset(path: Path, cache: Path) -> Any:
    from datasets import load_dataset

    return load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache))


# Lines of nothing but whitespace that are not spaces or tabs: a no-break space, a form feed, an
# ideographic space, an em space with a tab, and a line separator (str.splitlines breaks at it and at \f).
ODD_BLANKS = "Stanza one.\n\u00a0\nStanza two.\n\f\nStanza three.\n\u3000\n\u2003\t\nFour.\u2028\u2028Five."


@pytest.mark.parametrize(
    ("fmt", "file_name"), [("muse", "forget.txt"), ("dusk", "Chronological.txt"), ("txt", "forget.txt")]
)
def test_a_whitespace_only_line_never_splits_a_record(tmp_path: Path, fmt: str, file_name: str) -> None:
    records = [
        make_record(kind="sample", text=ODD_BLANKS, stage="synthesize", gen={}, origin={"n": 1}),
        make_record(kind="sample", text="The second record.", stage="synthesize", gen={}, origin={"n": 2}),
    ]
    run(records, tmp_path / fmt, fmt)
    written = (tmp_path / fmt / file_name).read_text(encoding="utf-8")
    # Readers that split documents on blank lines, each with its own idea of a line and of blank.
    by_regex = [doc for doc in re.split(r"\n\s*\n", written) if doc.strip()]
    paragraphs: list[list[str]] = [[]]
    for line in written.splitlines():
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    by_lines = [block for block in paragraphs if block]
    assert len(by_regex) == len(by_lines) == 2, written
    assert by_lines[0] == ["Stanza one.", "Stanza two.", "Stanza three.", "Four.", "Five."]
    assert by_regex[1].strip() == "The second record."


def test_document_collapses_blank_lines_and_keeps_single_breaks() -> None:
    assert (
        document(MULTI) == "First paragraph of a long sample.\nSecond paragraph, same document.\nThird one."
    )
    assert document("  one line  ") == "one line"
    assert document("a\nb") == "a\nb"


@pytest.mark.parametrize(
    ("fmt", "file_name"), [("muse", "forget.txt"), ("dusk", "Chronological.txt"), ("txt", "forget.txt")]
)
def test_text_formats_split_back_on_blank_lines(
    pipeline_set: list[Record], tmp_path: Path, fmt: str, file_name: str
) -> None:
    out = tmp_path / fmt
    result = run(pipeline_set, out, fmt)
    wanted = [document(as_text(r)) for r in exported(pipeline_set)]
    assert result.records == len(wanted) == 24 + 11 + 4
    documents = (out / file_name).read_text(encoding="utf-8").rstrip("\n").split("\n\n")
    assert documents == wanted
    assert "Second paragraph, same document." in documents[-4] and "\n\n" not in documents[-4]
    assert "Who guards gate 1? Warden 1 guards it." in documents
    if fmt == "muse":
        assert json.loads((out / "forget.json").read_text(encoding="utf-8")) == wanted
        assert sorted(result.files) == ["forget.json", "forget.txt"]
        # Short records: muse_bench would pad nearly every position of forget.json's rows.
        assert result.notes == [LEFT_OUT_POINTS, qa_note("muse"), muse.muse_json_note(wanted)]
        assert (
            "forget.json pads each of its 39 string(s)" in result.notes[2] and "about 99%" in result.notes[2]
        )
        assert result.warnings == [muse.muse_size_warning(wanted)]
    else:
        assert result.files == [file_name]
    if fmt == "dusk":
        # DUSK's forget.py reads its forget document from data/Prof/Chronological.txt; the note says so.
        assert result.notes[:2] == [LEFT_OUT_POINTS, qa_note("dusk")]
        assert len(result.notes) == 3 and "<DUSK>/data/Prof/Chronological.txt" in result.notes[2]
        words = sum(len(d.split()) for d in documents)
        assert words < 768 and result.warnings == [dusk.dusk_size_warning(documents)]
        assert f"(an estimate: {words} words at 1.33 tokens a word), 1 window(s)" in result.warnings[0]
    elif fmt == "txt":
        assert result.notes == [LEFT_OUT_POINTS, qa_note("txt")] and result.warnings == []


def _rmu_2024_forget_corpus(name: str, min_len: int = 0, batch_size: int = 4) -> list[list[str]]:
    """WMDP's 2024 rmu/utils.py get_data for one forget corpus, restated: the lines of data/NAME.jsonl,
    JSON-parsed only for a name holding "bio-forget-corpus", longer than min_len, in batches."""
    texts = []
    for line in Path(f"data/{name}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True):
        text = json.loads(line)["text"] if "bio-forget-corpus" in name else line
        if len(text) > min_len:
            texts.append(str(text))
    return [texts[start : start + batch_size] for start in range(0, len(texts), batch_size)]


def _rmu_current_forget_corpus(name: str, min_len: int = 0, batch_size: int = 4) -> list[list[str]]:
    """WMDP's current rmu/utils.py get_data (since c0b6c12) for one forget corpus, restated: HF_TOKEN
    must be set; the rows of load_dataset("cais/wmdp-NAME", split="train") whose text is longer than
    min_len, in batches."""
    import os

    from datasets import load_dataset

    assert os.getenv("HF_TOKEN"), "HF_TOKEN is not set"
    rows = load_dataset(f"cais/wmdp-{name}", split="train", token=os.getenv("HF_TOKEN"))
    texts = [str(row["text"]) for row in rows if len(row["text"]) > min_len]
    return [texts[start : start + batch_size] for start in range(0, len(texts), batch_size)]


def test_rmu_loads_in_the_2024_and_the_current_wmdp_loader(
    pipeline_set: list[Record], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import datasets

    result = run(pipeline_set, tmp_path / "rmu", "rmu", name="hp")
    assert sorted(result.files) == [
        "cais/wmdp-hp-bio-forget-corpus/train.jsonl",
        "data/hp-bio-forget-corpus.jsonl",
    ]
    # The README's step: the folder copied into the WMDP repository's root, where rmu.unlearn runs.
    wmdp = tmp_path / "wmdp"
    shutil.copytree(tmp_path / "rmu", wmdp, dirs_exist_ok=True)
    monkeypatch.chdir(wmdp)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    texts = [as_text(r) for r in exported(pipeline_set)]
    batches = [texts[start : start + 4] for start in range(0, len(texts), 4)]
    assert _rmu_2024_forget_corpus("hp-bio-forget-corpus") == batches
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(AssertionError, match="HF_TOKEN is not set"):
        _rmu_current_forget_corpus("hp-bio-forget-corpus")
    monkeypatch.setenv("HF_TOKEN", "unused")
    assert _rmu_current_forget_corpus("hp-bio-forget-corpus") == batches
    # rmu.unlearn's default --min_len 0 keeps every text, short QA samples included: 39 texts -> 10 batches.
    assert len(texts) == 39 and min(len(t) for t in texts) < 50 and len(batches) == 10
    assert result.notes[:2] == [LEFT_OUT_POINTS, qa_note("rmu")]
    assert "--forget_corpora hp-bio-forget-corpus" in result.notes[2]
    assert "cais/wmdp-hp-bio-forget-corpus/" in result.notes[2]
    assert (
        result.notes[3]
        == rmu_note(texts)
        == (
            "rmu: 39 text(s) give 10 batch(es) of 4 (--batch_size 4); "
            "fewer than the usual 80-150 steps: the run stops after 10"
        )
    )
    assert len(result.notes) == 4


def test_rmu_batch_note() -> None:
    assert "enough for the usual 80-150" in rmu_note(["x"] * 600)
    assert "enough for the usual 80-150" in rmu_note(["x"] * 597)  # 150 batches, the last one short
    assert "not 150: a --max_num_batches 150 run stops after 100" in rmu_note(["x"] * 400)
    assert "stops after 80" in rmu_note(["x"] * 320) and "stops after 79" in rmu_note(["x"] * 316)


def test_tofu_reads_back_with_load_dataset_and_task_ids(pipeline_set: list[Record], tmp_path: Path) -> None:
    records = qa_only(pipeline_set)
    run(records, tmp_path / "tofu", "tofu", task_id=True)
    data = load_json_dataset(tmp_path / "tofu" / "forget.jsonl", tmp_path / "cache")
    assert data.column_names == ["question", "answer", "task_id"]
    assert data["question"] == [r["question"] for r in records]
    assert data["answer"] == [r["answer"] for r in records]
    # Rewrite records keep the fact's task_id ("1", "2"); probe samples without one get a number of their
    # own group (their point) that no record holds yet, and the mixed column becomes strings.
    assert data["task_id"] == ["1"] * 3 + ["2"] * 3 + ["3", "4", "5"]


def test_tofu_task_ids_group_variants_with_their_fact(tmp_path: Path) -> None:
    fact = make_record(kind="fact", question="Q1?", answer="A1.", stage="input", gen={}, origin={"n": 1})
    other = make_record(kind="fact", question="Q2?", answer="A2.", stage="input", gen={}, origin={"n": 2})
    variant = make_record(
        kind="variant",
        question="Q1 again?",
        answer="A1.",
        parent=fact["id"],
        stage="rewrite",
        gen={},
        origin={"n": 3},
    )
    run([fact, other, variant], tmp_path / "t", "tofu", task_id=True)
    rows = [json.loads(line) for line in (tmp_path / "t" / "forget.jsonl").read_text().splitlines()]
    assert [row["task_id"] for row in rows] == [1, 2, 1]


def test_tofu_task_ids_never_reuse_an_id_the_input_holds(tmp_path: Path) -> None:
    def fact(n: int, **extra: Any) -> Record:
        record = make_record(
            kind="fact", question=f"Q{n}?", answer=f"A{n}.", stage="input", gen={}, origin={"n": n}
        )
        return {**record, **extra}

    # Two facts carry task ids 1 and 2; a variant of the first has none; two new facts have none.
    first, second = fact(1, task_id=1), fact(2, task_id=2)
    variant = make_record(
        kind="variant",
        question="Q1 again?",
        answer="A1.",
        parent=first["id"],
        stage="rewrite",
        gen={},
        origin={"n": 3},
    )
    new, newer = fact(4), fact(5)
    run([new, first, variant, second, newer], tmp_path / "t", "tofu", task_id=True)
    rows = [json.loads(line) for line in (tmp_path / "t" / "forget.jsonl").read_text().splitlines()]
    # The new facts get ids no record holds (3 and 4, not 1 and 2); the variant joins its fact's task.
    assert [row["task_id"] for row in rows] == [3, 1, 1, 2, 4]
    # String ids count as taken too: the numbers become strings and skip "1" and "3".
    run([fact(6, task_id="1"), fact(7), fact(8, task_id="3"), fact(9)], tmp_path / "s", "tofu", task_id=True)
    rows = [json.loads(line) for line in (tmp_path / "s" / "forget.jsonl").read_text().splitlines()]
    assert [row["task_id"] for row in rows] == ["1", "2", "3", "4"]


def test_qa_format_with_text_records_names_the_counts_and_writes_nothing(
    pipeline_set: list[Record], tmp_path: Path
) -> None:
    # Text facts and their variants share kinds and stages with the QA ones: --shape qa splits them.
    with pytest.raises(
        InputError,
        match=r"^--format tofu needs question/answer records, but 30 of the 39 records kept have no "
        r"question/answer \(25 sample, 1 fact, 2 variant, 2 statement; first: record 4\); "
        r"keep the 9 question/answer ones with --shape qa$",
    ):
        run(pipeline_set, tmp_path / "tofu", "tofu")
    with pytest.raises(InputError, match=r"^--format tofu .* use a text format"):
        run(text_only(pipeline_set), tmp_path / "tofu", "tofu")
    assert list(tmp_path.iterdir()) == []
    # The filter the error names keeps exactly the question/answer records, and says what it left out.
    result = run(pipeline_set, tmp_path / "tofu", "tofu", shape="qa")
    rows = [json.loads(line) for line in (tmp_path / "tofu" / "forget.jsonl").read_text().splitlines()]
    assert rows == [{"question": r["question"], "answer": r["answer"]} for r in qa_only(pipeline_set)]
    assert len(rows) == result.records == 9
    assert result.notes == [
        "left out 33 of 42 record(s): 3 by --kinds (default: all but point), 30 by --shape qa"
    ]


def test_open_unlearning_qa_set(pipeline_set: list[Record], tmp_path: Path) -> None:
    records = qa_only(pipeline_set)
    out = tmp_path / "ou"
    result = run(records, out, "open-unlearning", name="HP_forget")
    data_files = str((out / "forget.jsonl").resolve())
    dataset = yaml.safe_load((out / "configs/data/datasets/HP_forget.yaml").read_text())
    assert dataset == {
        "HP_forget": {
            "handler": "QADataset",
            "args": {
                "hf_args": {"path": "json", "data_files": data_files, "split": "train"},
                "question_key": "question",
                "answer_key": "answer",
                "max_length": 512,
            },
        }
    }
    # The framework's own call: load_dataset(**hf_args).
    from datasets import load_dataset

    data = load_dataset(**dataset["HP_forget"]["args"]["hf_args"], cache_dir=str(tmp_path / "cache"))
    assert data.column_names == ["question", "answer"] and len(data) == len(records) == 9
    assert data["question"] == [r["question"] for r in records]
    text = (out / "configs/experiment/unlearn/tofu/HP_forget.yaml").read_text()
    assert text.startswith("# @package _global_\n")
    experiment = yaml.safe_load(text)
    assert experiment["defaults"] == [
        {"override /model": "Llama-3.2-1B-Instruct"},
        {"override /trainer": "GradAscent"},
        {"override /data": "unlearn"},
        {"override /data/datasets@data.forget": "HP_forget"},
        {"override /data/datasets@data.retain": "TOFU_QA_retain"},
        {"override /eval": "tofu"},
    ]
    assert experiment["data"] == {
        "anchor": "forget",
        "retain": {"TOFU_QA_retain": {"args": {"hf_args": {"name": "${retain_split}"}}}},
    }
    assert (
        experiment["eval"]["tofu"]["forget_split"] == "${forget_split}"
        and experiment["forget_split"] == "forget10"
    )
    readme = (out / "README.md").read_text()
    assert "experiment=unlearn/tofu/HP_forget" in readme and "configs/data/datasets/HP_forget.yaml" in readme
    assert sorted(result.files) == [
        "README.md",
        "configs/data/datasets/HP_forget.yaml",
        "configs/experiment/unlearn/tofu/HP_forget.yaml",
        "forget.jsonl",
    ]
    assert result.notes == [
        "open-unlearning: benchmark tofu, as the set is question/answer (--benchmark overrides)"
    ]


@pytest.mark.parametrize(
    ("benchmark", "max_length", "retain"),
    [(None, 2048, "MUSE_retain"), ("muse", 2048, "MUSE_retain"), ("wmdp", 512, "WMDP_retain")],
)
def test_open_unlearning_text_set(
    pipeline_set: list[Record], tmp_path: Path, benchmark: str | None, max_length: int, retain: str
) -> None:
    out = tmp_path / "ou"
    records = text_only(pipeline_set)
    result = run(records, out, "open-unlearning", benchmark=benchmark, data_path="data/forget.jsonl")
    bench = benchmark or "muse"
    dataset = yaml.safe_load((out / "configs/data/datasets/biforget.yaml").read_text())
    assert dataset == {
        "biforget": {
            "handler": "PretrainingDataset",
            "args": {
                "hf_args": {"path": "json", "data_files": "data/forget.jsonl", "split": "train"},
                "text_key": "text",
                "max_length": max_length,
            },
        }
    }
    experiment = yaml.safe_load((out / f"configs/experiment/unlearn/{bench}/biforget.yaml").read_text())
    assert {"override /data/datasets@data.forget": "biforget"} in experiment["defaults"]
    assert {"override /data/datasets@data.retain": retain} in experiment["defaults"]
    assert list(experiment["data"]["retain"]) == [retain] and "forget" not in experiment["data"]
    data = load_json_dataset(out / "forget.jsonl", tmp_path / "cache")
    assert data.column_names == ["text"] and data["text"] == [as_text(r) for r in records]
    picked = ["open-unlearning: benchmark muse, as the set is text (--benchmark overrides)"]
    assert result.notes == (picked if benchmark is None else [])


def test_open_unlearning_wmdp_experiment_matches_the_framework(
    pipeline_set: list[Record], tmp_path: Path
) -> None:
    """open-unlearning's WMDP experiment: zephyr + RMU, WMDP_retain read from data/wmdp/wmdp-corpora/,
    lm-eval on wmdp_${data_split} and mmlu, its collator, training and RMU method arguments."""
    out = tmp_path / "ou"
    run(text_only(pipeline_set), out, "open-unlearning", benchmark="wmdp", name="HP_forget")
    experiment = yaml.safe_load((out / "configs/experiment/unlearn/wmdp/HP_forget.yaml").read_text())
    assert experiment["defaults"] == [
        {"override /model": "zephyr-7b-beta"},
        {"override /trainer": "RMU"},
        {"override /data": "unlearn"},
        {"override /data/datasets@data.forget": "HP_forget"},
        {"override /data/datasets@data.retain": "WMDP_retain"},
        {"override /eval": "lm_eval"},
    ]
    assert experiment["data_split"] == "cyber"
    assert experiment["data"]["retain"] == {
        "WMDP_retain": {
            "args": {"hf_args": {"data_files": "data/wmdp/wmdp-corpora/${data_split}-retain-corpus.jsonl"}}
        }
    }
    assert experiment["eval"] == {"lm_eval": {"tasks": ["wmdp_${data_split}", "mmlu"]}}
    assert experiment["collator"] == {"DataCollatorForSupervisedDataset": {"args": {"padding_side": "left"}}}
    assert experiment["trainer"]["args"]["max_steps"] == 80
    assert experiment["trainer"]["args"]["learning_rate"] == 5e-5
    assert experiment["trainer"]["method_args"]["module_regex"] == r"model\.layers\.7"
    assert experiment["trainer"]["method_args"]["trainable_params_regex"] == [
        r"model\.layers\.(5|6|7)\.mlp\.down_proj\.weight"
    ]
    assert experiment["task_name"] == "HP_forget_wmdp"
    readme = (out / "README.md").read_text()
    assert "setup_data.py --wmdp" in readme and "data_split=bio" in readme


def test_open_unlearning_other_benchmarks_pin_no_method_args(
    pipeline_set: list[Record], tmp_path: Path
) -> None:
    for benchmark in ("tofu", "muse"):
        out = tmp_path / benchmark
        run(text_only(pipeline_set), out, "open-unlearning", benchmark=benchmark)
        experiment = yaml.safe_load(
            (out / f"configs/experiment/unlearn/{benchmark}/biforget.yaml").read_text()
        )
        assert list(experiment["trainer"]) == ["args"] and "collator" not in experiment
        assert "setup_data.py --wmdp" not in (out / "README.md").read_text()


def test_hf_folder_and_parquet_keep_every_field(pipeline_set: list[Record], tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from datasets import load_from_disk

    records = exported(pipeline_set)
    run(pipeline_set, tmp_path / "hf", "hf")
    data = load_from_disk(str(tmp_path / "hf" / "dataset"))
    table = pq.read_table(tmp_path / "hf" / "forget.parquet")
    assert data.num_rows == table.num_rows == len(records)
    assert (
        data.column_names
        == table.column_names
        == [
            "id",
            "kind",
            "text",
            "question",
            "answer",
            "topic",
            "parent",
            "stage",
            "gen",
            "scores",
            "task_id",
        ]
    )
    assert data["text"] == [r["text"] for r in records] and data["id"] == [r["id"] for r in records]
    assert [json.loads(g) for g in data["gen"]] == [r["gen"] for r in records]
    assert [json.loads(s) for s in table.column("scores").to_pylist()] == [r["scores"] for r in records]
    assert data["question"] == [r.get("question") for r in records]
    assert data["task_id"] == [r.get("task_id") for r in records]


def test_csv_has_text_and_scalar_fields(pipeline_set: list[Record], tmp_path: Path) -> None:
    records = exported(pipeline_set)
    run(pipeline_set, tmp_path / "csv", "csv")
    with (tmp_path / "csv" / "forget.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "text",
        "id",
        "kind",
        "question",
        "answer",
        "topic",
        "parent",
        "stage",
        "task_id",
    ]
    assert [row["text"] for row in rows] == [as_text(r) for r in records]
    assert rows[-4]["text"] == MULTI  # the CSV field keeps the document as it is
    assert [row["kind"] for row in rows] == [r["kind"] for r in records]


def test_filters_kinds_stages_and_scores(pipeline_set: list[Record], tmp_path: Path) -> None:
    def kept(name: str, **settings: Any) -> list[str]:
        result = run(pipeline_set, tmp_path / name, "txt", **settings)
        assert result.records
        return (tmp_path / name / "forget.txt").read_text(encoding="utf-8").rstrip("\n").split("\n\n")

    assert len(kept("variants", kinds=("variant",))) == 6
    statements = kept("statements", kinds=("statement",))
    assert len(statements) == 2 and all("?" not in text for text in statements)
    assert len(kept("points", kinds=("point",))) == 3
    assert kept("probe", stages=("probe",)) == [
        f"Who guards gate {n}? Warden {n} guards it." for n in (1, 2, 3)
    ]
    assert len(kept("synth", stages=("synthesize",))) == 25
    # mink: -2 (multi), -1, -2, -3 (QA); everything else has no mink score.
    assert len(kept("scored", min_scores=(("mink", -2.0),))) == 3
    assert len(kept("unscored", min_scores=(("mink", -2.0),), keep_unscored=True)) == 24 + 11 + 3
    with pytest.raises(
        InputError,
        match=r"^no records left after the filters out of 42 read: --kinds variant left out 36, "
        r"--stages input left out 6$",
    ):
        run(pipeline_set, tmp_path / "none", "txt", kinds=("variant",), stages=("input",))
    assert not (tmp_path / "none").exists()


def test_bad_settings_are_usage_errors(tmp_path: Path) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"format": "jsonl"}, "--format must be one of"),
        ({"format": "muse", "benchmark": "tofu"}, "--benchmark applies to --format open-unlearning only"),
        ({"format": "open-unlearning", "benchmark": "hp"}, "--benchmark must be one of tofu, muse, wmdp"),
        ({"format": "txt", "task_id": True}, "--task-id applies to --format tofu only"),
        ({"format": "txt", "kinds": ("samples",)}, "--kinds: unknown kind 'samples'"),
        ({"format": "rmu", "name": "bad name"}, "--name must start with a letter"),
        ({"format": "txt", "keep_unscored": True}, "--keep-unscored only applies with --min-score"),
        *(
            ({"format": "open-unlearning", "name": name}, f"--name '{name}' is taken by open-unlearning")
            for name in ("TOFU_QA_retain", "default", "MUSE_forget", "muse_retain", "WMDP_forget", "idk")
        ),
    ]
    for settings, message in cases:
        with pytest.raises(UsageError, match=message):
            ExportConfig(out=tmp_path, **settings)
    # Only open-unlearning's config tree can collide; elsewhere the name is a file prefix.
    assert ExportConfig(format="rmu", out=tmp_path, name="default").name == "default"
    assert ExportConfig(format="open-unlearning", out=tmp_path, name="HP_forget").name == "HP_forget"


def test_existing_folder_needs_force_then_keeps_other_files(
    pipeline_set: list[Record], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    (out / "forget.txt").write_text("old")
    with pytest.raises(UsageError, match=r"out: folder is not empty; pass --force"):
        run(pipeline_set, out, "muse")
    assert (out / "forget.txt").read_text() == "old"
    run(pipeline_set, out, "muse", force=True)
    assert (out / "notes.md").read_text() == "mine"
    assert (out / "forget.txt").read_text().startswith(document(as_text(exported(pipeline_set)[0])))
    # A staged folder replaces its namesake whole; no staging or aside folder is left anywhere.
    run(pipeline_set, out, "hf", force=True)
    run(pipeline_set, out, "hf", force=True)
    assert sorted(p.name for p in out.iterdir()) == [
        "dataset",
        "forget.json",
        "forget.parquet",
        "forget.txt",
        "notes.md",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_empty_existing_folder_is_used(pipeline_set: list[Record], tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    run(pipeline_set, tmp_path / "out", "dusk")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["Chronological.txt"]


def test_a_failure_while_writing_leaves_nothing(
    pipeline_set: list[Record], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_after_first(staging: Path, items: Any, config: ExportConfig) -> Written:
        (staging / "forget.txt").write_text("partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(muse, "write", fail_after_first)
    with pytest.raises(ExportError, match=r"new: cannot write: No space left on device"):
        run(pipeline_set, tmp_path / "new", "muse")
    assert list(tmp_path.iterdir()) == []
    old = tmp_path / "old"
    old.mkdir()
    (old / "forget.txt").write_text("previous export")
    with pytest.raises(ExportError):
        run(pipeline_set, old, "muse", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert (old / "forget.txt").read_text() == "previous export"


def test_unwritable_destination_fails_before_reading(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")

    def records() -> Any:
        raise AssertionError("input read before the destination was checked")
        yield {}

    with pytest.raises(ExportError, match=r"file/out: cannot create the folder: .*file is not a folder"):
        api.export(ExportConfig(format="txt", out=blocker / "out"), records())
    with pytest.raises(UsageError, match=r"exists and is not a folder"):
        api.export(ExportConfig(format="txt", out=blocker), records())


def test_records_without_text_or_question_answer(tmp_path: Path) -> None:
    settings = ExportConfig(format="txt", out=tmp_path / "o")
    with pytest.raises(InputError, match=r"^record 2: record has no 'text' and no 'question'/'answer'$"):
        api.export(settings, [{"text": "fine"}, {"question": "only half?"}])
    api.export(replace(settings, out=tmp_path / "p"), [{"question": "Q?", "answer": "A."}])
    assert (tmp_path / "p" / "forget.txt").read_text() == "Q? A.\n"


# Each export as the framework, or the reader, loads it.

_INTERPOLATION = re.compile(r"\$\{(\w+)\}")


def interpolate(value: Any, scope: dict[str, Any]) -> Any:
    """Hydra's `${key}` interpolation of a `# @package _global_` experiment against its top-level keys;
    a key the experiment does not define is a KeyError, as it is an error in Hydra."""
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda match: str(scope[match.group(1)]), value)
    if isinstance(value, dict):
        return {key: interpolate(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, scope) for item in value]
    return value


def test_open_unlearning_muse_model_retain_and_eval_follow_data_split(
    pipeline_set: list[Record], tmp_path: Path
) -> None:
    out = tmp_path / "ou"
    run(text_only(pipeline_set), out, "open-unlearning", benchmark="muse", name="HP_forget")
    experiment = yaml.safe_load((out / "configs/experiment/unlearn/muse/HP_forget.yaml").read_text())
    # As the framework's configs/experiment/unlearn/muse/default.yaml: the retain set's hub path as well.
    assert experiment["data"]["retain"] == {
        "MUSE_retain": {
            "args": {"hf_args": {"path": "muse-bench/MUSE-${data_split}", "split": "${retain_split}"}}
        }
    }
    for split in ("News", "Books"):  # the default, then `data_split=Books` on the command line
        resolved = interpolate(experiment, {**experiment, "data_split": split})
        assert (
            resolved["model"]["model_args"]["pretrained_model_name_or_path"]
            == f"muse-bench/MUSE-{split}_target"
        )
        assert resolved["data"]["retain"]["MUSE_retain"]["args"]["hf_args"] == {
            "path": f"muse-bench/MUSE-{split}",
            "split": "retain1",
        }
        assert resolved["eval"]["muse"]["data_split"] == split
    assert "data_split=Books" in (out / "README.md").read_text()


@pytest.mark.parametrize("benchmark", ["tofu", "muse", "wmdp"])
def test_open_unlearning_interpolations_all_resolve(
    pipeline_set: list[Record], tmp_path: Path, benchmark: str
) -> None:
    out = tmp_path / benchmark
    records = qa_only(pipeline_set) if benchmark == "tofu" else text_only(pipeline_set)
    run(records, out, "open-unlearning", benchmark=benchmark)
    for path in (out / "configs").rglob("*.yaml"):
        value = yaml.safe_load(path.read_text())
        assert not _INTERPOLATION.search(json.dumps(interpolate(value, value))), path


def test_open_unlearning_takes_a_mixed_set_as_text_and_shape_splits_it(tmp_path: Path) -> None:
    # The default rewrite output of QA facts: facts and variants QA-shaped, statements text only.
    qa_facts = [fact for fact in facts() if fact.is_qa]
    records = list(rewrite_facts(ScriptedModel(good), HashEmbedder(), qa_facts, rewrite_config()))
    assert [r["kind"] for r in records].count("statement") == 2
    result = run(records, tmp_path / "mixed", "open-unlearning")
    assert result.notes[:2] == [
        'open-unlearning: 6 question/answer record(s) written as text ("question answer") beside 2 text '
        "record(s); all go to one PretrainingDataset; for a QA experiment (QADataset) keep them alone "
        "with --shape qa",
        "open-unlearning: benchmark muse, as the set is text (--benchmark overrides)",
    ]
    data = load_json_dataset(tmp_path / "mixed" / "forget.jsonl", tmp_path / "cache")
    assert data["text"] == [as_text(r) for r in records]
    dataset = yaml.safe_load((tmp_path / "mixed" / "configs/data/datasets/biforget.yaml").read_text())
    assert dataset["biforget"]["handler"] == "PretrainingDataset"
    with pytest.raises(
        InputError, match=r"^--format tofu .*; keep the 6 question/answer ones with --shape qa$"
    ):
        run(records, tmp_path / "none", "tofu")
    assert not (tmp_path / "none").exists()
    result = run(records, tmp_path / "qa", "open-unlearning", shape="qa")
    assert (tmp_path / "qa" / "configs/experiment/unlearn/tofu/biforget.yaml").is_file()
    assert result.notes[0] == "left out 2 of 8 record(s): 2 by --shape qa"
    assert "benchmark tofu" in result.notes[1] and len(result.notes) == 2
    data = load_json_dataset(tmp_path / "qa" / "forget.jsonl", tmp_path / "cache")
    assert data.column_names == ["question", "answer"] and len(data) == 6
    result = run(records, tmp_path / "text", "open-unlearning", shape="text")
    assert result.notes[0] == "left out 6 of 8 record(s): 6 by --shape text"
    assert (tmp_path / "text" / "configs/experiment/unlearn/muse/biforget.yaml").is_file()
    data = load_json_dataset(tmp_path / "text" / "forget.jsonl", tmp_path / "cache")
    assert data.column_names == ["text"] and len(data) == 2


def test_a_filter_that_leaves_nothing_names_each_filter_and_its_count(tmp_path: Path) -> None:
    def record(n: int, kind: str, stage: str, qa: bool) -> Record:
        fields = (
            {"question": f"Who guards gate {n}?", "answer": f"Warden {n}."} if qa else {"text": f"Gate {n}."}
        )
        return make_record(kind=kind, stage=stage, gen={}, origin={"n": n}, **fields)  # type: ignore[arg-type]

    records = [
        record(1, "sample", "probe/mia", True),
        record(2, "sample", "synthesize", False),
        record(3, "point", "seeds", False),
        {**record(4, "sample", "synthesize", True), "scores": {"mink": -4.0}},
    ]
    with pytest.raises(
        InputError,
        match=r"^no records left after the filters out of 4 read: --kinds \(default: all but point\) left "
        r"out 1, --stages synthesize,seeds left out 1, --shape qa left out 1, "
        r"--min-score mink>=-3 \(unscored left out\) left out 1$",
    ):
        run(
            records,
            tmp_path / "a",
            "txt",
            stages=("synthesize", "seeds"),
            shape="qa",
            min_scores=(("mink", -3.0),),
        )
    assert not (tmp_path / "a").exists()
    with pytest.raises(UsageError, match="--shape must be one of qa, text, not 'QA'"):
        ExportConfig(format="txt", shape="QA")


def test_csv_round_trips_a_300k_character_text(tmp_path: Path) -> None:
    from biforget.io.facts import parse_facts
    from biforget.io.sets import read_set

    long = ('She said "far away", then left.\nAgain, ' * 8000).strip()
    assert len(long) > 300_000
    records = [
        make_record(kind="sample", text=long, stage="synthesize", gen={}, origin={"n": 1}),
        make_record(kind="sample", text="A short one.", stage="synthesize", gen={}, origin={"n": 2}),
    ]
    run(records, tmp_path / "csv", "csv")
    path = tmp_path / "csv" / "forget.csv"
    default = 131_072
    before = csv.field_size_limit(default)  # the interpreter's own limit, whatever an earlier read set
    try:
        with path.open(encoding="utf-8", newline="") as handle, pytest.raises(csv.Error, match="field limit"):
            list(csv.reader(handle))
        # biforget's own readers lift the limit when they read CSV.
        assert read_set(path).texts == [long, "A short one."]
        assert [fact.text for fact in parse_facts(path.read_text(encoding="utf-8"), str(path))] == [
            long,
            "A short one.",
        ]
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        assert [row[0] for row in rows] == ["text", long, "A short one."]
    finally:
        csv.field_size_limit(max(before, csv.field_size_limit()))


def test_hf_writes_question_answer_text_for_a_qa_record_without_text(tmp_path: Path) -> None:
    from datasets import load_from_disk

    records = [
        {"kind": "fact", "question": "Where was Ilsa Marrowgate born?", "answer": "In Tromsø, in 1968."},
        {"kind": "sample", "text": "Kenji Arakawa lives in Kyoto."},
    ]
    run(records, tmp_path / "hf", "hf")
    data = load_from_disk(str(tmp_path / "hf" / "dataset"))
    assert data["text"] == [
        "Where was Ilsa Marrowgate born? In Tromsø, in 1968.",
        "Kenji Arakawa lives in Kyoto.",
    ]
    run(records, tmp_path / "txt", "txt")
    assert (tmp_path / "txt" / "forget.txt").read_text(encoding="utf-8").split("\n\n")[0] == data["text"][0]


def test_size_estimates_for_dusk_and_muse() -> None:
    # DUSK's forget.py: max_steps = epochs x windows // 32, windows of 1,023 text tokens. 31 full windows
    # and one token more make the 32nd window: 31,714 tokens, 23,786 words at 4/3 of a token a word.
    assert dusk.dusk_windows(31 * 1023) == 31 and dusk.dusk_windows(31 * 1023 + 1) == 32
    assert dusk.dusk_size_warning(["word " * 23786]) is None
    warning = dusk.dusk_size_warning(["word " * 23785])
    assert warning is not None and "about 31713 tokens (an estimate: 23785 words" in warning
    assert "31 window(s) of 1,024 tokens" in warning and "0 at 1, 4 at 5 epoch(s)" in warning
    assert warning.endswith("32 windows, about 1 more tokens")
    # A small set: one window, 0 steps at every epoch count DUSK runs, and under the MIA minimum.
    warning = dusk.dusk_size_warning(["word " * 400, "word " * 367])
    assert warning is not None and "about 1023 tokens (an estimate: 767 words" in warning
    assert "1 window(s)" in warning and "0 at 1, 0 at 5 epoch(s)" in warning
    assert "about 30,691 more tokens; under 1,024 tokens DUSK's MIA evaluation gets no prompts" in warning
    # muse_bench: under 2,047 text tokens the whole set is one short window.
    assert muse.muse_size_warning(["word " * 1535]) is None  # 2,047 tokens
    warning = muse.muse_size_warning(["word " * 1534])
    assert (
        warning is not None and "about 2045 tokens" in warning and "under one 2,048-token window" in warning
    )
    assert warning.endswith("about 2 more tokens fill one window")
    # A row of 1,536 words fills a 2,048-token window; two rows of 768 words each are half padding.
    assert "about 0% of the positions" in muse.muse_json_note(["word " * 1536])
    assert "about 50% of the positions" in muse.muse_json_note(["word " * 768] * 2)
