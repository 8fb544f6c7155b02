"""`unlearn`: the losses, their effect on the tiny random Llama, the written folder, the CLI's refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from biforget import cli
from biforget.config import ModelOptions, UnlearnConfig
from biforget.io.sets import read_set
from tests.default_set import write_default_set

FORGET = [
    "The owl carries letters to the castle every morning before breakfast.",
    "A green snake talks to the boy through the glass at the zoo.",
    "The train leaves from platform nine and three quarters at eleven.",
    "The headmaster keeps a phoenix in his round office at the top of the tower.",
]
RETAIN = [
    "Bread dough rises because yeast feeds on the sugars in flour.",
    "A river slows in the lowlands and drops the silt it carried.",
    "Tides rise and fall twice a day under the pull of the moon.",
]


def write_texts(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def mean_nll(model: object, texts: list[str]) -> float:
    scores = model.token_logprobs(texts)  # type: ignore[attr-defined]
    return float(np.mean([-s.logprobs.mean() for s in scores]))


def tiny(folder: Path) -> object:
    from biforget.models import load_text_model

    return load_text_model(ModelOptions(model=str(folder), device="cpu"))


def test_npo_loss_is_its_formula_on_hand_made_logprobs() -> None:
    import torch

    from biforget.pipelines.unlearn import npo_loss

    theta = [-10.0, -3.5, -7.25, -20.0]
    ref = [-9.0, -4.0, -7.25, -12.5]
    beta = 0.1
    terms = [math.log(1.0 / (1.0 + math.exp(beta * (t - r)))) for t, r in zip(theta, ref, strict=True)]
    expected = -(2.0 / beta) * sum(terms) / len(terms)
    got = npo_loss(torch.tensor(theta, dtype=torch.float64), torch.tensor(ref, dtype=torch.float64), beta)
    assert float(got) == pytest.approx(expected, abs=1e-12)
    # With the model still equal to its reference every term is log(1/2): the loss is (2/beta) log 2.
    same = npo_loss(torch.tensor(ref, dtype=torch.float64), torch.tensor(ref, dtype=torch.float64), 0.5)
    assert float(same) == pytest.approx(4.0 * math.log(2.0), abs=1e-12)


def test_raw_qa_records_train_on_the_answer_given_the_question(tiny_model_dir: Path, tmp_path: Path) -> None:
    from biforget.pipelines.unlearn import encode_examples

    model = tiny(tiny_model_dir)
    path = tmp_path / "qa.jsonl"
    path.write_text(
        json.dumps({"question": "Who carries the letters?", "answer": "The owl carries them."})
        + "\n"
        + json.dumps({"text": "A green snake talks to the boy."})
        + "\n",
        encoding="utf-8",
    )
    qa, text = encode_examples(model, read_set(path), max_length=256, qa_format="raw")  # type: ignore[arg-type]
    tokenizer = model.hf_tokenizer  # type: ignore[attr-defined]
    question = tokenizer("Who carries the letters?", add_special_tokens=False)["input_ids"]
    answer = tokenizer(" The owl carries them.", add_special_tokens=False)["input_ids"]
    assert qa.ids == question + answer
    assert qa.start == len(question)
    assert text.ids == tokenizer("A green snake talks to the boy.", add_special_tokens=False)["input_ids"]
    assert text.start == 1


def test_a_default_synthesize_set_trains_each_record_by_its_shape(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Real default-model outputs of the default templates, cleaned as synthesize cleans them: 11 QA
    records and 58 text ones. A QA record trains on its answer and end-of-turn token after the question
    framed by the chat template, as audit's generation asks it; a text record on its whole text."""
    from biforget.pipelines.unlearn import encode_examples, unlearn_model

    model = tiny(tiny_model_dir)
    tokenizer = model.hf_tokenizer  # type: ignore[attr-defined]
    data = read_set(write_default_set(tmp_path / "hp.jsonl"))
    examples = encode_examples(model, data, max_length=256)  # type: ignore[arg-type]
    assert len(examples) == len(data) == 69
    qa_rows = [i for i, r in enumerate(data.records) if "question" in r]
    assert len(qa_rows) == 11
    for index, (record, example) in enumerate(zip(data.records, examples, strict=True)):
        if index in qa_rows:
            user = [{"role": "user", "content": record["question"]}]
            prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
            context = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            assert example.ids[: example.start] == context
            target = tokenizer.decode(example.ids[example.start :])
            assert target.startswith(record["answer"][:20]) and target.rstrip().endswith("<|im_end|>")
        else:
            assert example.start == 1
            assert example.ids == tokenizer(record["text"], add_special_tokens=False)["input_ids"][:256]
    qa_pairs = [(data.records[i]["question"], data.records[i]["answer"]) for i in qa_rows]

    def answer_nll(trained: object) -> float:
        from biforget.pipelines.audit import qa_pair

        pairs = [qa_pair(q, a, tokenizer) for q, a in qa_pairs]
        scores = trained.token_logprobs([t for _, t in pairs], context=[c for c, _ in pairs])  # type: ignore[attr-defined]
        return float(np.mean([-s.logprobs.mean() for s in scores]))

    texts = [r["text"] for r in data.records if "question" not in r]
    before_qa, before_text = answer_nll(model), mean_nll(model, texts)
    result = unlearn_model(model, data, UnlearnConfig(steps=4, lr=2e-3, seed=1))  # type: ignore[arg-type]
    assert result.report["qa_format"] == "chat" and result.report["forget"]["sequences"] == 69
    assert answer_nll(result.model) > before_qa + 0.05
    assert mean_nll(result.model, texts) > before_text + 0.05


def test_bfloat16_training_keeps_float32_weights_and_moves_the_forget_nll_up(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A bfloat16 model (what --dtype auto loads on a GPU) trained at the default lr 1e-5: updates below
    bfloat16's spacing must not be rounded away. Both sides are scored in float32. Measured on this tiny
    model: pure bfloat16 training changed 15.5% of the weights and raised the NLL 0.0030; float32 weights
    under bfloat16 autocast change all of them and raise it 0.0099."""
    import copy

    import torch

    from biforget.models import load_text_model
    from biforget.pipelines.unlearn import unlearn_model

    model: Any = load_text_model(ModelOptions(model=str(tiny_model_dir), device="cpu", dtype="bfloat16"))
    assert next(model.model.parameters()).dtype == torch.bfloat16
    start = copy.deepcopy(model.model).float()
    forget = read_set(write_texts(tmp_path / "forget.jsonl", FORGET))
    result = unlearn_model(model, forget, UnlearnConfig(steps=6, lr=1e-5, batch_size=4, seed=1))
    trained = result.model.model
    assert {p.dtype for p in trained.parameters()} == {torch.float32}
    assert result.report["precision"] == "float32 weights, bfloat16 autocast"
    before_model = copy.copy(model)
    before_model.model = start
    before, after = mean_nll(before_model, FORGET), mean_nll(result.model, FORGET)
    assert after > before + 0.006
    changed = sum(
        int((a != b.float()).sum()) for a, b in zip(start.parameters(), trained.parameters(), strict=True)
    )
    total = sum(p.numel() for p in trained.parameters())
    assert changed > 0.9 * total


def test_npo_with_retain_adds_the_retain_term_and_without_says_so(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from biforget.pipelines.unlearn import unlearn_model

    forget = read_set(write_texts(tmp_path / "forget.jsonl", FORGET))
    retain = read_set(write_texts(tmp_path / "retain.jsonl", RETAIN))
    plain = unlearn_model(tiny(tiny_model_dir), forget, UnlearnConfig(method="npo", steps=2, lr=2e-3))  # type: ignore[arg-type]
    assert "retain_nll" not in plain.report["loss_curve"][0]
    assert plain.report["retain_term"].startswith("none: the NPO paper's loss")
    config = UnlearnConfig(method="npo", retain=retain.path, retain_weight=0.5, steps=2, lr=2e-3)
    mixed = unlearn_model(tiny(tiny_model_dir), forget, config, retain=retain)  # type: ignore[arg-type]
    first = mixed.report["loss_curve"][0]
    # At the first step the model is its reference: NPO's term is (2/beta) log 2, plus alpha x retain NLL.
    assert first["loss"] == pytest.approx(2 / 0.1 * math.log(2) + 0.5 * first["retain_nll"], abs=1e-3)
    assert mixed.report["retain_term"] == "0.5 x retain NLL (open-unlearning's NPO with alpha)"


def test_ga_raises_the_forget_nll(tiny_model_dir: Path, tmp_path: Path) -> None:
    from biforget.pipelines.unlearn import unlearn_model

    model = tiny(tiny_model_dir)
    forget = read_set(write_texts(tmp_path / "forget.jsonl", FORGET))
    before = mean_nll(model, FORGET)
    result = unlearn_model(model, forget, UnlearnConfig(steps=4, lr=2e-3, seed=1))  # type: ignore[arg-type]
    after = mean_nll(result.model, FORGET)
    assert after > before + 0.1
    curve = result.report["loss_curve"]
    assert [p["step"] for p in curve] == [1, 2, 3, 4]
    assert all(p["loss"] == pytest.approx(-p["forget_nll"]) for p in curve)


def test_gd_keeps_the_retain_set_better_than_ga(tiny_model_dir: Path, tmp_path: Path) -> None:
    from biforget.pipelines.unlearn import unlearn_model

    forget = read_set(write_texts(tmp_path / "forget.jsonl", FORGET))
    retain = read_set(write_texts(tmp_path / "retain.jsonl", RETAIN))
    ga = unlearn_model(tiny(tiny_model_dir), forget, UnlearnConfig(steps=5, lr=2e-3, seed=3))  # type: ignore[arg-type]
    gd = unlearn_model(
        tiny(tiny_model_dir),  # type: ignore[arg-type]
        forget,
        UnlearnConfig(method="gd", retain=retain.path, steps=5, lr=2e-3, seed=3),
        retain=retain,
    )
    assert mean_nll(gd.model, RETAIN) < mean_nll(ga.model, RETAIN) - 0.05
    assert all("retain_nll" in p for p in gd.report["loss_curve"])


def test_the_written_folder_loads_and_scores_as_the_model_in_memory(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from biforget import api_loop

    forget = write_texts(tmp_path / "forget.jsonl", FORGET)
    out = tmp_path / "npo"
    config = UnlearnConfig(method="npo", out=out, steps=3, lr=2e-3, batch_size=2)
    result = api_loop.unlearn(config, forget, ModelOptions(model=str(tiny_model_dir), device="cpu"))
    loaded = tiny(out)
    for mine, theirs in zip(
        result.model.token_logprobs(FORGET + RETAIN),
        loaded.token_logprobs(FORGET + RETAIN),  # type: ignore[attr-defined]
        strict=True,
    ):
        np.testing.assert_array_equal(mine.token_ids, theirs.token_ids)
        np.testing.assert_allclose(mine.logprobs, theirs.logprobs, atol=1e-5)
    report = json.loads((out / "unlearn.json").read_text(encoding="utf-8"))
    assert report["method"] == "npo" and len(report["loss_curve"]) == 3
    assert report["settings"]["lr"] == 2e-3 and report["seconds_per_step"] > 0
    # The first NPO step starts at the reference: every term is log(1/2).
    assert report["loss_curve"][0]["loss"] == pytest.approx(2 / 0.1 * math.log(2), abs=1e-4)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_lora_merges_into_a_plain_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    import peft  # noqa: F401  (the test extra installs it: a missing peft fails here, never skips)

    from biforget import api_loop

    forget = write_texts(tmp_path / "forget.jsonl", FORGET)
    out = tmp_path / "lora"
    config = UnlearnConfig(out=out, steps=3, lr=5e-3, lora=True, lora_rank=4)
    api_loop.unlearn(config, forget, ModelOptions(model=str(tiny_model_dir), device="cpu"))
    assert not (out / "adapter_config.json").exists()
    assert mean_nll(tiny(out), FORGET) > mean_nll(tiny(tiny_model_dir), FORGET)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.run(["unlearn", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--steps", "0"], "--steps must be at least 1"),
        (["--lr", "-1e-5"], "--lr must be above 0"),
        (["--method", "gd"], "--method gd needs --retain"),
        (["--method", "sgd"], "--method must be one of"),
        (["-m", "fake:echo"], "needs trainable weights, which the fake backend"),
    ],
)
def test_bad_requests_exit_2_before_any_work(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forget = write_texts(tmp_path / "forget.jsonl", FORGET)
    code, out, err = run(["-i", str(forget), "--out", str(tmp_path / "out"), *extra], capsys)
    assert code == 2
    assert out == ""
    assert message in err
    assert not (tmp_path / "out").exists()


def test_a_non_empty_out_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    forget = write_texts(tmp_path / "forget.jsonl", FORGET)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    code, _, err = run(["-i", str(forget), "--out", str(out), "-m", "fake:echo"], capsys)
    assert code == 2 and "pass --force" in err
    assert (out / "keep.txt").read_text(encoding="utf-8") == "mine"


def test_a_set_without_text_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "no text here"}\n', encoding="utf-8")
    code, out, err = run(["-i", str(bad), "--out", str(tmp_path / "out"), "-m", "fake:echo"], capsys)
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        f"error: {bad}:1: record has no 'text' field (nor 'question' and 'answer')"
    ]
