"""Min-K% and Min-K%++ against a direct computation from the model's logits (the published definitions).

The reference below works on one unpadded sequence at a time, straight from the tiny model's raw logits
with `torch.log_softmax`, in float64, exactly as the papers' code does it: Min-K% is the mean of the
lowest `max(1, int(k * n))` token log-probabilities; Min-K%++ standardises each token's log-probability
by the mean and standard deviation of the log-probability under the next-token distribution,
`(log p(x_t) - mu) / sqrt(E[log p^2] - mu^2)`, then takes the mean of the same number of lowest values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import biforget.models.hf as hf
from biforget.config import ModelOptions, ProbeConfig
from biforget.metrics.mink import lowest_count, mia_scores, mink, mink_pp, standardised
from biforget.models import load_text_model
from biforget.models.base import TokenLogprobs
from biforget.models.hf import HFTextModel
from biforget.pipelines.probe_threshold import calibrate, pass_rate, score_texts

TEXTS = [
    "The owl flew.",  # 4 tokens, 3 scored: fewer than 1/k = 5, so Min-K% takes its single lowest token
    "Harry Potter is a series of seven fantasy novels written by British author J. K. Rowling. The novels "
    "chronicle the lives of a young wizard and his friends Hermione Granger and Ron Weasley, all of whom are "
    "students at Hogwarts School of Witchcraft and Wizardry.",
    "Dumbledore is the headmaster of Hogwarts.",
    "Quidditch is played on broomsticks with four balls: the Quaffle, two Bludgers and the Golden Snitch.",
    "A",  # one token, nothing to score
]


def reference(model: HFTextModel, text: str, k: float) -> tuple[float, float] | None:
    ids = model.hf_tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) < 2:
        return None
    with torch.no_grad():
        logits = model.model(input_ids=torch.tensor([ids])).logits[0]
    log_probs = torch.log_softmax(logits.double(), dim=-1)[:-1]  # position t-1 predicts token t
    targets = torch.tensor(ids[1:])
    token = log_probs.gather(-1, targets[:, None])[:, 0]
    probs = log_probs.exp()
    mu = (probs * log_probs).sum(-1)
    sigma = ((probs * log_probs.square()).sum(-1) - mu.square()).sqrt()
    count = max(1, int(len(token) * k))
    min_k = torch.sort(token).values[:count].mean().item()
    min_k_pp = torch.sort((token - mu) / sigma).values[:count].mean().item()
    return min_k, min_k_pp


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> HFTextModel:
    loaded = load_text_model(ModelOptions(model=str(tiny_model_dir), batch_size=8, chat_template=False))
    assert isinstance(loaded, HFTextModel)
    assert not loaded.prepends_bos  # this tokenizer adds no BOS, so the first token has no prediction
    return loaded


@pytest.mark.parametrize("k", [0.1, 0.2, 0.5, 1.0])
def test_scores_of_a_padded_batch_match_the_reference(model: HFTextModel, k: float) -> None:
    lengths = [len(model.hf_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in TEXTS]
    assert lengths[0] - 1 < 1 / 0.2 and max(lengths) > 10 * lengths[0]  # short text, heavily padded
    got = mia_scores(model.token_logprobs(TEXTS), k)  # one padded batch
    for text, scores in zip(TEXTS, got, strict=True):
        want = reference(model, text, k)
        if want is None:
            assert scores.mink is None and scores.mink_pp is None and scores.tokens == 0
            continue
        assert scores.mink == pytest.approx(want[0], abs=1e-5)
        assert scores.mink_pp == pytest.approx(want[1], abs=1e-5)


def test_the_probe_scores_each_text_on_its_own(model: HFTextModel) -> None:
    alone = [score_texts(model, [text], 0.2)[0] for text in TEXTS]
    together = score_texts(model, TEXTS, 0.2)
    for one, batch in zip(alone, together, strict=True):
        assert one.tokens == batch.tokens
        if one.mink is None:
            assert batch.mink is None
            continue
        assert batch.mink == pytest.approx(one.mink, abs=1e-5)
        assert batch.mink_pp == pytest.approx(one.mink_pp, abs=1e-5)


def test_logits_budget_splits_scoring_batches_without_changing_scores(
    model: HFTextModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    forward = model.model.forward

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(int(kwargs["input_ids"].shape[0]))
        return forward(*args, **kwargs)

    whole = model.token_logprobs(TEXTS)
    monkeypatch.setattr(model.model, "forward", counting)
    width = max(len(model.hf_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in TEXTS)
    vocabulary = int(model.model.config.vocab_size)
    monkeypatch.setattr(hf, "LOGITS_BUDGET", 2 * width * vocabulary)  # two longest rows per pass
    split = model.token_logprobs(TEXTS)
    assert calls and max(calls) <= 4 and len(calls) >= 2 and sum(calls) == len(TEXTS)
    for one, other in zip(whole, split, strict=True):
        np.testing.assert_allclose(other.logprobs, one.logprobs, rtol=0, atol=1e-5)
        np.testing.assert_allclose(other.variance, one.variance, rtol=0, atol=1e-5)


def handmade(logprobs: list[float], expected: list[float], variance: list[float]) -> TokenLogprobs:
    return TokenLogprobs(
        np.arange(len(logprobs)),
        np.array(logprobs, dtype=np.float32),
        np.array(expected, dtype=np.float32),
        np.array(variance, dtype=np.float32),
    )


def test_definitions_on_handmade_values() -> None:
    scores = handmade([-1.0, -4.0, -2.0, -8.0, -0.5, -3.0, -6.0, -0.1, -2.5, -5.0], [-2.0] * 10, [4.0] * 10)
    assert lowest_count(10, 0.2) == 2 and lowest_count(3, 0.2) == 1 and lowest_count(7, 1.0) == 7
    assert mink(scores, 0.2) == pytest.approx(-7.0)  # mean of -8 and -6
    assert mink_pp(scores, 0.2) == pytest.approx(((-8 + 2) / 2 + (-6 + 2) / 2) / 2)
    assert mink(scores, 1.0) == pytest.approx(np.mean(scores.logprobs))
    # A distribution with all mass on the observed token: log p = mean, no spread, standardised to 0.
    certain = handmade([0.0, -3.0], [0.0, -1.0], [0.0, 1.0])
    np.testing.assert_allclose(standardised(certain), [0.0, -2.0])
    empty = handmade([], [], [])
    assert mink(empty, 0.2) is None and mink_pp(empty, 0.2) is None


def reference_set(count: int) -> list[str]:
    """Plain sentences the tiny random model cannot have seen, varied in length and wording."""
    rng = np.random.default_rng(17)
    subjects = [
        "The miller",
        "A tired nurse",
        "Our neighbour",
        "The old bridge",
        "Every ferry",
        "The council",
    ]
    verbs = ["repaired", "painted", "counted", "sold", "watched", "measured", "carried"]
    objects = [
        "the blue fence",
        "forty crates of apples",
        "the harbour lights",
        "a broken clock",
        "the new road",
    ]
    tails = ["before noon", "in the rain", "for the third time this year", "without asking anyone", ""]
    texts = []
    for _ in range(count):
        parts = [rng.choice(subjects), rng.choice(verbs), rng.choice(objects), rng.choice(tails)]
        sentence = " ".join(p for p in parts if p) + "."
        texts.append(" ".join([sentence] * int(rng.integers(1, 3))))
    return texts


def test_calibration_on_half_a_reference_set_and_its_rate_on_the_other_half(model: HFTextModel) -> None:
    texts = reference_set(80)
    fit, held_out = texts[:40], texts[40:]
    for score in ("mink", "mink++"):
        config = ProbeConfig(topic="t", mia_calibrate=Path("refs.txt"), mia_fpr=0.2, mia_score=score)
        threshold = calibrate(model, config, fit)
        assert threshold.value is not None and threshold.details["references"] == 40
        fit_rate = threshold.details["reference_pass_rate"]
        assert fit_rate <= 0.2  # guaranteed on the texts it was set on
        held = [s.get(score) for s in score_texts(model, held_out, 0.2)]
        rate = pass_rate([float(v) for v in held if v is not None], threshold.value)
        print(
            f"{score}: threshold {threshold.value:.4f}, pass rate {fit_rate:.3f} on the calibration half, "
            f"{rate:.3f} on the held-out half (target 0.2)"
        )
        # Exchangeable texts: the held-out rate scatters around the target (2 standard errors at n=40).
        assert rate <= 0.2 + 2 * (0.2 * 0.8 / 40) ** 0.5
