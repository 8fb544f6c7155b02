"""`audit`: scores equal a direct computation from the logits; shifts, ratios, the CLI's shape and errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import biforget.api_loop
from biforget import cli
from biforget.config import AuditConfig, ModelOptions
from biforget.console import Tracker
from biforget.io.sets import read_set
from biforget.models.base import TokenLogprobs
from biforget.models.fake import FakeModel, echo
from biforget.pipelines.audit import prepare_set, score_set

FORGET = [
    "The owl carries letters to the castle every morning before breakfast.",
    "A green snake talks to the boy through the glass at the zoo.",
    "The train leaves from platform nine and three quarters at eleven.",
]
HELDOUT = [
    "The boy plays a ball game on broomsticks high above the school grounds.",
    "A giant keeper of keys brings the boy his first birthday cake.",
]
RETAIN = ["Bread dough rises because yeast feeds on the sugars in flour.", "Tides follow the moon."]
QA = [
    {"question": "Who carries the letters?", "answer": "The owl carries them."},
    {"question": "Where does the train leave from?", "answer": "Platform nine and three quarters."},
]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any] | str]) -> Path:
    lines = [json.dumps(r if isinstance(r, dict) else {"text": r}) for r in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("qa_format", ["chat", "raw"])
def test_nll_and_mink_equal_a_direct_computation_from_the_logits(
    qa_format: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch

    from biforget.models import load_text_model

    model: Any = load_text_model(ModelOptions(model=str(tiny_model_dir), device="cpu"))
    config = AuditConfig(
        unlearned=("x",), forget=tmp_path / "f.jsonl", mink_k=0.2, rouge=False, qa_format=qa_format
    )
    text_set = prepare_set(read_set(write_jsonl(tmp_path / "f.jsonl", FORGET)), "forget", False)
    qa_set = prepare_set(read_set(write_jsonl(tmp_path / "qa.jsonl", QA)), "heldout", False)
    texts = score_set(model, text_set, config, Tracker(), None)
    qa = score_set(model, qa_set, config, Tracker(), None)
    tokenizer = model.hf_tokenizer
    prefix = [tokenizer.bos_token_id] if model.prepends_bos else []

    def direct(context: str, target: str) -> np.ndarray:
        context_ids = tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
        ids = prefix + context_ids + tokenizer(target, add_special_tokens=False)["input_ids"]
        start = max(1, len(prefix) + len(context_ids))
        with torch.no_grad():
            logits = model.model(input_ids=torch.tensor([ids])).logits[0].double()
        logprobs = torch.log_softmax(logits, dim=-1)
        return np.array([float(logprobs[t - 1, ids[t]]) for t in range(start, len(ids))])

    for index, text in enumerate(FORGET):
        values = direct("", text)
        lowest = np.sort(values)[: max(1, int(0.2 * len(values)))]
        assert texts.nll[index] == pytest.approx(-values.mean(), abs=1e-6)
        assert texts.mink[index] == pytest.approx(lowest.mean(), abs=1e-6)
    summary = texts.summary()
    assert summary["nll"] == pytest.approx(np.mean(texts.nll), abs=1e-6)
    assert summary["answer_nll"] is None and summary["rouge_l"] is None
    for index, row in enumerate(QA):
        if qa_format == "raw":
            values = direct(row["question"], " " + row["answer"])
        else:
            # The question as a user turn, the assistant turn opened; the answer closed by its end token.
            user = [{"role": "user", "content": row["question"]}]
            prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
            assert prompt.endswith("<|im_start|>assistant\n")
            values = direct(prompt, row["answer"] + "<|im_end|>\n")
        assert qa.answer_nll is not None
        assert qa.answer_nll[index] == pytest.approx(-values.mean(), abs=1e-6)
        whole = direct("", row["question"] + " " + row["answer"])
        assert qa.nll[index] == pytest.approx(-whole.mean(), abs=1e-6)


def test_rouge_l_is_the_stemmed_recall_and_f1_of_the_greedy_answer(tmp_path: Path) -> None:
    answers = {
        "Who carries the letters?": "owl carry letter",
        "Where does the train leave from?": "nowhere",
    }
    model = FakeModel(lambda request, draw: answers[request.prompt])
    config = AuditConfig(unlearned=("x",), forget=tmp_path / "qa.jsonl", max_new_tokens=7)
    qa_set = prepare_set(read_set(write_jsonl(tmp_path / "qa.jsonl", QA)), "forget", False)
    scores = score_set(model, qa_set, config, Tracker(), None)
    # "the owl carries them" against "owl carry letter": stemmed, "carries" and "carry" are one word, a
    # common subsequence of 2 of the reference's 4 words (recall 0.5) and of the answer's 3 (F1 4/7).
    assert scores.rouge_l == [pytest.approx(0.5), 0.0]
    assert scores.rouge_l_f1 == [pytest.approx(4 / 7), 0.0]
    assert all(r.temperature == 0.0 and r.max_new_tokens == 7 and r.chat for r in model.requests)


class Shifted(FakeModel):
    """The fake backend's scores, every token of the texts in `drop` made `drop[text]` nats less likely."""

    def __init__(self, name: str, drop: dict[str, float]) -> None:
        super().__init__(echo, name=name)
        self.drop = drop

    def token_logprobs(
        self, texts: Sequence[str], context: Sequence[str] | None = None
    ) -> list[TokenLogprobs]:
        scores = super().token_logprobs(texts, context)
        return [
            TokenLogprobs(s.token_ids, s.logprobs - self.drop.get(t, 0.0), s.expected, s.variance)
            for s, t in zip(scores, texts, strict=True)
        ]


@pytest.fixture
def models(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`fake:target` and two unlearned fakes; records which models were loaded, in order."""
    drops = {
        "fake:target": {},
        "fake:strong": {
            **dict.fromkeys(FORGET, 2.0),
            **dict.fromkeys(HELDOUT, 0.5),
            **dict.fromkeys(RETAIN, 0.1),
        },
        "fake:weak": {**dict.fromkeys(FORGET, 1.0), **dict.fromkeys(RETAIN, 0.4)},
    }
    loaded: list[str] = []

    def load(options: ModelOptions) -> FakeModel:
        loaded.append(options.model)
        return Shifted(options.model, drops[options.model])

    monkeypatch.setattr(biforget.api_loop, "load_text_model", load)
    return loaded


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code = cli.run(["audit", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_report_on_stdout_table_on_stderr(
    models: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forget = write_jsonl(tmp_path / "forget.jsonl", FORGET)
    heldout = write_jsonl(tmp_path / "heldout.jsonl", HELDOUT)
    retain = tmp_path / "retain.txt"
    retain.write_text("\n\n".join(RETAIN) + "\n", encoding="utf-8")
    args = ["-m", "fake:target", "--unlearned", "fake:strong", "--unlearned", "fake:weak", "--name", "strong"]
    args += ["--name", "weak", "--forget", str(forget), "--heldout", str(heldout), "--retain", str(retain)]
    code, report, err = run([*args, "--plots", str(tmp_path / "plots")], capsys)
    assert code == 0, err
    assert models == ["fake:target", "fake:strong", "fake:weak"]
    assert set(report) == {"settings", "target", "models", "notes", "plots"}
    assert list(report["target"]) == ["forget", "heldout", "retain"]
    assert set(report["target"]["forget"]) == {
        "records",
        "qa_records",
        "nll",
        "mink",
        "answer_nll",
        "rouge_l",
        "rouge_l_f1",
        "unscored",
    }
    strong, weak = report["models"]["strong"], report["models"]["weak"]
    assert strong["shift"]["forget"]["nll"] == pytest.approx(2.0)
    assert strong["shift"]["forget"]["mink"] == pytest.approx(-2.0)
    assert strong["transfer"] == pytest.approx(0.25)
    assert strong["damage"] == pytest.approx(0.1)
    assert strong["selectivity"] == pytest.approx((0.5 - 0.1) / 2.0)
    # Every record moved by the same amount: every resample gives the point.
    assert strong["ci"]["shift"]["forget"]["nll"] == [pytest.approx(2.0), pytest.approx(2.0)]
    assert strong["ci"]["transfer"] == [pytest.approx(0.25), pytest.approx(0.25)]
    assert weak["transfer"] == pytest.approx(0.0) and weak["selectivity"] == pytest.approx(-0.4)
    # The fake backend's per-word table knows these held-out sentences no better than the retain ones,
    # which is the one thing the report has to say beside the numbers.
    assert report["target"]["heldout"]["nll"] >= report["target"]["retain"]["nll"]
    assert [note.split(" (")[0] for note in report["notes"]] == [
        "--heldout is not better known than --retain under the target"
    ]
    assert "transfer" in err and "selectivity" in err and "forget (3)" in err
    assert sorted(Path(p).name for p in report["plots"]) == ["forget_nll.png", "shifts.png"]
    assert all(Path(p).stat().st_size > 1000 for p in report["plots"])


def test_without_heldout_and_retain_the_ratios_are_null(
    models: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forget = write_jsonl(tmp_path / "forget.jsonl", FORGET)
    code, report, _ = run(
        ["-m", "fake:target", "--unlearned", "fake:strong", "--forget", str(forget), "-q"], capsys
    )
    assert code == 0
    row = report["models"]["fake:strong"]
    assert row["transfer"] is None and row["damage"] is None and row["selectivity"] is None
    assert len(report["notes"]) == 2


def test_qa_sets_get_answer_metrics(
    models: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forget = write_jsonl(tmp_path / "qa.jsonl", QA)
    code, report, _ = run(
        ["-m", "fake:target", "--unlearned", "fake:weak", "--forget", str(forget), "-q"], capsys
    )
    assert code == 0
    row = report["target"]["forget"]
    assert row["answer_nll"] is not None and row["rouge_l"] is not None
    assert report["settings"]["sets"]["forget"]["qa_records"] == 2


def one_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_folder_that_is_no_model_is_a_one_line_error(
    models: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forget = write_jsonl(tmp_path / "forget.jsonl", FORGET)
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello", encoding="utf-8")
    code, out, err = run(["-m", "fake:target", "--unlearned", str(folder), "--forget", str(forget)], capsys)
    assert code == 1 and out is None
    assert "not a transformers model" in one_error(err)
    assert models == []


def test_a_set_without_text_is_a_one_line_error(
    models: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forget = write_jsonl(tmp_path / "forget.jsonl", FORGET)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"title": "x"}])
    args = ["-m", "fake:target", "--unlearned", "fake:weak", "--forget", str(forget), "--retain", str(bad)]
    code, out, err = run(args, capsys)
    assert code == 1 and out is None
    assert "record has no 'text' field" in one_error(err)


def test_a_set_mixing_qa_and_text_records_gets_qa_metrics_on_its_qa_records(
    models: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [FORGET[0], *QA, FORGET[1]])
    qa_only = write_jsonl(tmp_path / "qa.jsonl", QA)
    args = ["-m", "fake:target", "--unlearned", "fake:weak", "--forget", str(mixed), "--retain", str(qa_only)]
    code, report, err = run(args, capsys)
    assert code == 0, err
    forget = report["target"]["forget"]
    assert forget["records"] == 4 and forget["qa_records"] == 2
    assert report["settings"]["sets"]["forget"]["qa_records"] == 2
    # The QA metrics of the mixed set are those of its two QA records alone.
    for metric in ("answer_nll", "rouge_l", "rouge_l_f1"):
        assert forget[metric] is not None
        assert forget[metric] == pytest.approx(report["target"]["retain"][metric])
    assert report["models"]["fake:weak"]["shift"]["forget"]["answer_nll"] is not None
    assert any("its 2 question/answer record(s) of 4" in note for note in report["notes"])
    assert "forget (2)" in err and "forget (4)" in err
    code, report, _ = run([*args, "--as-text", "-q"], capsys)
    assert code == 0 and report["target"]["forget"]["answer_nll"] is None
    assert report["target"]["forget"]["nll"] is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--forget", "{forget}"], "give at least one --unlearned"),
        (["--unlearned", "fake:weak"], "--forget SET is required"),
        (
            ["--unlearned", "fake:weak", "--forget", "{forget}", "--mink-k", "0"],
            "--mink-k must lie in (0, 1]",
        ),
        (
            ["--unlearned", "fake:weak", "--name", "a", "--name", "b", "--forget", "{forget}"],
            "--name given 2",
        ),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, models: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forget = write_jsonl(tmp_path / "forget.jsonl", FORGET)
    code, out, err = run(["-m", "fake:target", *(a.format(forget=forget) for a in args)], capsys)
    assert code == 2 and out is None
    assert message in one_error(err)


@pytest.mark.model
def test_the_loop_on_the_default_model(
    default_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A few GA steps on four paragraphs of our notes move them more than unrelated text."""
    repo = Path(__file__).resolve().parent.parent
    notes = read_set(repo / "examples" / "wizarding-notes.txt").texts
    unrelated = read_set(repo / "examples" / "unrelated-notes.txt").texts
    forget = write_jsonl(tmp_path / "forget.jsonl", notes[:4])
    retain = write_jsonl(tmp_path / "retain.jsonl", unrelated[:4])
    out = tmp_path / "ga"
    code = cli.run(
        ["unlearn", "-i", str(forget), "--out", str(out), "--steps", "4", "--batch-size", "2", "-q"]
    )
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    code, report, err = run(
        ["--unlearned", str(out), "--forget", str(forget), "--retain", str(retain), "-q"], capsys
    )
    assert code == 0, err
    row = report["models"]["ga"]
    assert row["shift"]["forget"]["nll"] > 0.05
    assert row["shift"]["forget"]["nll"] > row["damage"]


def install(monkeypatch: pytest.MonkeyPatch, drops: dict[str, dict[str, float]]) -> None:
    monkeypatch.setattr(biforget.api_loop, "load_text_model", lambda o: Shifted(o.model, drops[o.model]))


def audit_with(
    drops: dict[str, dict[str, float]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    install(monkeypatch, {"fake:target": {}, **drops})
    forget = write_jsonl(tmp_path / "forget.jsonl", FORGET)
    heldout = write_jsonl(tmp_path / "heldout.jsonl", HELDOUT)
    retain = write_jsonl(tmp_path / "retain.jsonl", RETAIN)
    args = ["-m", "fake:target", "--forget", str(forget), "--heldout", str(heldout), "--retain", str(retain)]
    for name in drops:
        args += ["--unlearned", name, "--name", name.removeprefix("fake:")]
    code, report, err = run([*args, *extra, "-q"], capsys)
    assert code == 0, err
    return dict(report)


def shifts(forget: float, heldout: float, retain: float) -> dict[str, float]:
    """Every token of every record of a set made that many nats less likely: its NLL shift."""
    return {
        **dict.fromkeys(FORGET, forget),
        **dict.fromkeys(HELDOUT, heldout),
        **dict.fromkeys(RETAIN, retain),
    }


def test_transfer_and_selectivity_cannot_be_gamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The four cases of issue 28: damage must not buy selectivity, and no ratio over a forget shift that
    did not happen."""
    drops = {
        "fake:wrecked": shifts(6.0, 5.0, 4.0),
        "fake:careful": shifts(2.0, 0.5, 0.05),
        "fake:idle": shifts(0.001, 0.2, 0.0),
        "fake:backwards": shifts(-0.5, 0.2, 0.0),
    }
    report = audit_with(drops, tmp_path, monkeypatch, capsys)
    rows = report["models"]
    assert rows["careful"]["selectivity"] > rows["wrecked"]["selectivity"]
    assert rows["careful"]["selectivity"] == pytest.approx((0.5 - 0.05) / 2.0, abs=1e-6)
    assert rows["wrecked"]["selectivity"] == pytest.approx((5.0 - 4.0) / 6.0, abs=1e-6)
    assert rows["careful"]["transfer"] == pytest.approx(0.25)
    for name in ("idle", "backwards"):
        assert rows[name]["transfer"] is None and rows[name]["selectivity"] is None
        assert rows[name]["ci"]["transfer"] is None
        assert any(note.startswith(f"{name}: forget NLL shift") for note in report["notes"])
    assert rows["idle"]["damage"] == pytest.approx(0.0)
    assert report["settings"]["min_forget_shift"] == 0.05


def test_every_shift_and_ratio_has_a_seeded_paired_bootstrap_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Forget records shift by 1, 2 and 3 nats; held-out by 0.5 each. A resample of the three forget
    # records has mean 1 (all three draws the first) with probability 1/27 = 3.7%, above the 2.5% tail,
    # and likewise 3: the 95% interval of the forget shift is [1, 3], and of transfer [0.5/3, 0.5/1].
    uneven = {**shifts(0.0, 0.5, 0.1), FORGET[0]: 1.0, FORGET[1]: 2.0, FORGET[2]: 3.0}
    report = audit_with({"fake:uneven": uneven}, tmp_path, monkeypatch, capsys)
    row = report["models"]["uneven"]
    assert row["shift"]["forget"]["nll"] == pytest.approx(2.0)
    assert row["ci"]["shift"]["forget"]["nll"] == [pytest.approx(1.0), pytest.approx(3.0)]
    assert row["ci"]["shift"]["forget"]["mink"] == [pytest.approx(-3.0), pytest.approx(-1.0)]
    assert row["ci"]["transfer"] == [pytest.approx(0.5 / 3.0, abs=1e-6), pytest.approx(0.5)]
    assert row["ci"]["selectivity"] == [pytest.approx(0.4 / 3.0, abs=1e-6), pytest.approx(0.4)]
    assert row["ci"]["damage"] == [pytest.approx(0.1), pytest.approx(0.1)]
    again = audit_with({"fake:uneven": uneven}, tmp_path, monkeypatch, capsys)
    assert again["models"] == report["models"]
    none = audit_with({"fake:uneven": uneven}, tmp_path, monkeypatch, capsys, ["--bootstrap", "0"])
    assert none["models"]["uneven"]["ci"]["shift"]["forget"]["nll"] is None


def test_an_unlearned_model_with_another_tokenizer_is_refused(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from transformers import AutoTokenizer

    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    tokenizer = AutoTokenizer.from_pretrained(str(other))
    tokenizer.add_tokens(["<grindylow>"])
    tokenizer.save_pretrained(str(other))
    forget = write_jsonl(tmp_path / "forget.jsonl", FORGET)
    args = ["-m", str(tiny_model_dir), "--device", "cpu", "--forget", str(forget), "--no-rouge"]
    code, out, err = run([*args, "--unlearned", str(other), "-q"], capsys)
    assert code == 2 and out is None
    assert "its tokenizer differs from the target's" in one_error(err)
    code, report, err = run([*args, "--unlearned", str(tiny_model_dir), "--name", "same", "-q"], capsys)
    assert code == 0, err
    assert report["models"]["same"]["shift"]["forget"]["nll"] == pytest.approx(0.0, abs=1e-6)


def test_roc_auc_is_the_rank_statistic_with_ties_as_sklearn_computes_it() -> None:
    from sklearn.metrics import roc_auc_score

    from biforget.pipelines.audit_leak import roc_auc

    draw = np.random.default_rng(7)
    for size in (1, 3, 40):
        # Integer scores tie often, within and across the two sides.
        members = draw.integers(0, 6, size).astype(float)
        nonmembers = draw.integers(0, 5, size + 2).astype(float)
        labels = [1] * len(members) + [0] * len(nonmembers)
        expected = roc_auc_score(labels, np.concatenate([members, nonmembers]))
        assert roc_auc(list(members), list(nonmembers)) == pytest.approx(expected, abs=1e-12)
    same = list(draw.normal(size=25))
    assert roc_auc(same, same) == pytest.approx(0.5)
    assert roc_auc([5.0, 6.0], [1.0, 2.0, 3.0]) == 1.0
    assert roc_auc([1.0, 2.0], [5.0, 6.0]) == 0.0
    assert roc_auc([2.0, 2.0], [2.0]) == 0.5
    assert roc_auc([], [1.0]) is None


def test_leak_gives_each_models_membership_auc_against_the_nonmember_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.metrics import roc_auc_score

    from biforget.metrics.mink import mink

    nonmember = [
        "A copper kettle hums on the stove while rain taps the window.",
        "Seven lanterns swing above the harbour as the ferry docks.",
        "The orchard keeper counts plums into wooden crates at dusk.",
        "Moss grows thick on the north side of the old stone bridge.",
    ]
    path = write_jsonl(tmp_path / "nonmember.jsonl", nonmember)
    drops = {"fake:forgot": {**shifts(3.0, 1.0, 0.0)}}
    report = audit_with(drops, tmp_path, monkeypatch, capsys, ["--nonmember", str(path)])
    leak = report["leak"]
    assert set(leak) == {"target", "forgot"}

    def expected(model: Shifted, members: list[str]) -> float:
        scores = [mink(s, 0.2) for s in model.token_logprobs(members + nonmember)]
        return float(roc_auc_score([1] * len(members) + [0] * len(nonmember), scores))

    models = {"target": Shifted("fake:target", {}), "forgot": Shifted("fake:forgot", drops["fake:forgot"])}
    for name, model in models.items():
        for role, members in (("forget", FORGET), ("heldout", HELDOUT)):
            row = leak[name][role]
            assert row["auc"] == pytest.approx(expected(model, members), abs=1e-6)
            assert (row["members"], row["nonmembers"]) == (len(members), len(nonmember))
    # Every forget token 3 nats less likely puts every forget record below every non-member one.
    assert leak["forgot"]["forget"]["auc"] == 0.0
    for role in ("forget", "heldout"):
        change = leak["forgot"][role]["auc"] - leak["target"][role]["auc"]
        assert leak["forgot"]["change"][role] == pytest.approx(change, abs=1e-6)
    assert report["settings"]["sets"]["nonmember"]["records"] == 4


def test_an_empty_nonmember_set_is_a_usage_error(
    models: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forget = write_jsonl(tmp_path / "forget.jsonl", FORGET)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    args = [
        "-m",
        "fake:target",
        "--unlearned",
        "fake:weak",
        "--forget",
        str(forget),
        "--nonmember",
        str(empty),
    ]
    code, out, err = run(args, capsys)
    assert code == 2 and out is None
    assert "--nonmember" in one_error(err) and "empty set" in err
    assert models == []


@pytest.mark.parametrize("less_known", ["heldout", "retain"])
def test_a_note_says_when_the_heldout_set_is_known_no_better_than_the_retain_set(
    less_known: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = {"heldout": HELDOUT, "retain": RETAIN}
    install(
        monkeypatch, {"fake:target": dict.fromkeys(texts[less_known], 5.0), "fake:ga": shifts(1.0, 0.5, 0.1)}
    )
    forget = write_jsonl(tmp_path / "forget.jsonl", FORGET)
    heldout = write_jsonl(tmp_path / "heldout.jsonl", HELDOUT)
    retain = write_jsonl(tmp_path / "retain.jsonl", RETAIN)
    args = ["-m", "fake:target", "--forget", str(forget), "--heldout", str(heldout), "--retain", str(retain)]
    code, report, err = run([*args, "--unlearned", "fake:ga", "--name", "ga"], capsys)
    assert code == 0, err
    target = report["target"]
    notes = [n for n in report["notes"] if n.startswith("--heldout is not better known")]
    if less_known == "heldout":
        assert target["heldout"]["nll"] > target["retain"]["nll"]
        [note] = notes
        assert f"NLL {target['heldout']['nll']:.3f} vs {target['retain']['nll']:.3f}" in note
        assert "--heldout is not better known" in err
    else:
        assert target["heldout"]["nll"] < target["retain"]["nll"]
        assert not notes and "not better known" not in err
