"""Model-layer mechanics on the tiny random Llama (conftest `tiny_model_dir`), loaded through our own loader.

About the tiny model: its weights are random and its embeddings tied, so the strongest logit is usually the
input token itself. Greedy decoding therefore repeats a prompt's last token ("in in in ..."). With the chat
template every prompt ends in "assistant\\n", so greedy output is a run of newlines, which `generate` strips
to "". Tests that compare greedy outputs per prompt use the raw-text model (`chat_template=False`), whose
greedy outputs differ from prompt to prompt, and assert that they differ, so a mix-up of order would show.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from biforget.config import ModelOptions
from biforget.errors import ModelError, UsageError
from biforget.models import load_embedder, load_text_model
from biforget.models.base import GenerationRequest
from biforget.models.hf import HFTextModel
from biforget.models.hf_settings import HFSettings
from biforget.models.sources import resolve_model

PROMPTS = [
    "Hi",
    "Tell me a long story about dragons and castles please",
    "What is the capital of France?",
    "Paris is a city in",
    "Bananas",
]
LONG_TEXT = (
    "Harry Potter is a series of seven fantasy novels written by British author J. K. Rowling. The novels "
    "chronicle the lives of a young wizard, Harry Potter, and his friends Hermione Granger and Ron Weasley, "
    "all of whom are students at Hogwarts School of Witchcraft and Wizardry. The main story arc concerns "
    "Harry's conflict with Lord Voldemort, a dark wizard who intends to become immortal, overthrow the "
    "wizard governing body known as the Ministry of Magic and subjugate all wizards and Muggles."
)
SHORT_TEXT = "The owl flew."
TEXTS = [SHORT_TEXT, LONG_TEXT, "Dumbledore is the headmaster of Hogwarts.", "Quidditch is played on brooms."]
GREEDY: dict[str, Any] = {"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 8}
SAMPLED: dict[str, Any] = {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 8}


@pytest.fixture(scope="module")
def chat_model(tiny_model_dir: Path) -> HFTextModel:
    model = load_text_model(ModelOptions(model=str(tiny_model_dir), batch_size=8))
    assert isinstance(model, HFTextModel)
    return model


@pytest.fixture(scope="module")
def raw_model(tiny_model_dir: Path) -> HFTextModel:
    model = load_text_model(ModelOptions(model=str(tiny_model_dir), batch_size=8, chat_template=False))
    assert isinstance(model, HFTextModel)
    return model


def gen(model: HFTextModel, prompts: list[str], **kwargs: Any) -> list[list[str]]:
    """The same settings for every prompt, as one wave of requests."""
    return model.generate([GenerationRequest(prompt=p, **kwargs) for p in prompts])


def _solo(model: HFTextModel, prompt: str, **kwargs: Any) -> list[str]:
    return gen(model, [prompt], **kwargs)[0]


# ------------------------------------------------------------------------------------------ generate


def test_generate_greedy_batch_matches_each_prompt_alone(raw_model: HFTextModel) -> None:
    batched = gen(raw_model, PROMPTS, **GREEDY)
    alone = [_solo(raw_model, p, **GREEDY) for p in PROMPTS]
    assert len(batched) == len(PROMPTS)
    assert all(len(outs) == 1 and isinstance(outs[0], str) for outs in batched)
    # Distinct per prompt, so equality below really checks the order (prompts are not in length order).
    assert len({outs[0] for outs in alone}) == len(PROMPTS)
    assert all(outs[0] for outs in alone)
    # Left padding with the attention mask leaves float32 greedy decoding of this model unchanged here
    # (checked: exact equality holds), so batched and solo outputs must be identical.
    assert batched == alone


def test_generate_sub_batches_keep_order(raw_model: HFTextModel, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = gen(raw_model, PROMPTS, **GREEDY)
    calls: list[dict[str, torch.Tensor]] = []
    inner = raw_model.model.generate

    def spy(**kwargs: Any) -> Any:
        calls.append({key: kwargs[key].clone() for key in ("input_ids", "attention_mask")})
        return inner(**kwargs)

    monkeypatch.setattr(raw_model, "batch_size", 2)
    monkeypatch.setattr(raw_model.model, "generate", spy)
    got = gen(raw_model, PROMPTS, **GREEDY)
    assert got == expected
    # 5 prompts at 2 per batch: 3 sub-batches, longest prompts first.
    assert [c["input_ids"].shape[0] for c in calls] == [2, 2, 1]
    widths = [c["input_ids"].shape[1] for c in calls]
    assert widths == sorted(widths, reverse=True)
    lengths = sorted(
        (
            len(ids)
            for ids in [
                raw_model.prompts.encode([GenerationRequest(p, temperature=0, max_new_tokens=8)])[0]
                for p in PROMPTS
            ]
        ),
        reverse=True,
    )
    real = [int(n) for c in calls for n in c["attention_mask"].sum(1)]
    assert real == lengths
    pad = raw_model.hf_tokenizer.pad_token_id
    for call in calls:
        for ids, mask in zip(call["input_ids"], call["attention_mask"], strict=True):
            n_pad = int((mask == 0).sum())
            # Left padding: zeros then ones in the mask, pad ids where the mask is zero.
            assert mask.tolist() == [0] * n_pad + [1] * (len(mask) - n_pad)
            assert (ids[:n_pad] == pad).all()


def test_generate_same_seed_same_text_other_seed_other_text(chat_model: HFTextModel) -> None:
    first = gen(chat_model, PROMPTS[:3], seed=7, **SAMPLED)
    again = gen(chat_model, PROMPTS[:3], seed=7, **SAMPLED)
    other = gen(chat_model, PROMPTS[:3], seed=8, **SAMPLED)
    assert first == again
    assert all(outs[0] for outs in first)
    assert first != other
    # Every prompt's text changes with the seed, not only one of them.
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_generate_seed_does_not_touch_global_rng(chat_model: HFTextModel) -> None:
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    gen(chat_model, PROMPTS[:1], seed=5, **SAMPLED)
    after = torch.rand(3)
    assert torch.equal(before, after)


def test_generate_n_samples_per_prompt(chat_model: HFTextModel) -> None:
    outputs = gen(chat_model, PROMPTS[:3], n=3, seed=1, **SAMPLED)
    assert len(outputs) == 3
    for outs in outputs:
        assert len(outs) == 3
        assert all(isinstance(text, str) and text for text in outs)
        assert len(set(outs)) > 1
    # Sampled drawings of different prompts are not shuffled into each other: no text repeats across prompts.
    flat = [text for outs in outputs for text in outs]
    assert len(set(flat)) == len(flat)


def test_generate_n_with_sub_batches(chat_model: HFTextModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat_model, "batch_size", 2)  # n=3 > batch size: one prompt per sub-batch
    outputs = gen(chat_model, PROMPTS, n=3, seed=2, **SAMPLED)
    assert [len(outs) for outs in outputs] == [3] * len(PROMPTS)
    assert all(text for outs in outputs for text in outs)


def test_generate_greedy_n_gives_identical_copies(raw_model: HFTextModel) -> None:
    outputs = gen(raw_model, PROMPTS[:2], n=2, **GREEDY)
    assert [len(outs) for outs in outputs] == [2, 2]
    for prompt, outs in zip(PROMPTS[:2], outputs, strict=True):
        assert outs[0] == outs[1] != ""
        assert outs == _solo(raw_model, prompt, n=2, **GREEDY)


def test_generate_empty_list(raw_model: HFTextModel) -> None:
    assert gen(raw_model, [], **GREEDY) == []


def test_chat_template_applied_unless_disabled(chat_model: HFTextModel, raw_model: HFTextModel) -> None:
    prompt = "Who is Harry Potter?"
    rendered = chat_model.render(prompt)
    assert chat_model.use_chat_template
    assert rendered != prompt
    assert "<|im_start|>user\nWho is Harry Potter?<|im_end|>" in rendered
    assert rendered.endswith("<|im_start|>assistant\n")
    assert not raw_model.use_chat_template
    assert raw_model.render(prompt) == prompt
    # The token ids generate sends are those of the rendered conversation, and of the bare text without it.
    tokenizer = chat_model.hf_tokenizer
    rendered_ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    assert (
        chat_model.prompts.encode([GenerationRequest(prompt, temperature=0, max_new_tokens=8)])[0]
        == rendered_ids
    )
    assert (
        raw_model.prompts.encode([GenerationRequest(prompt, temperature=0, max_new_tokens=8)])[0]
        == tokenizer(prompt)["input_ids"]
    )
    # The same request through both gives different text: the chat model continues the rendered turn.
    assert gen(chat_model, [prompt], seed=3, **SAMPLED) != gen(raw_model, [prompt], seed=3, **SAMPLED)


# ------------------------------------------------------------------------------------------- padding


def test_pad_left_and_right(raw_model: HFTextModel) -> None:
    pad = raw_model.hf_tokenizer.pad_token_id
    assert pad is not None
    rows = [[11, 12, 13, 14], [21], [31, 32]]
    ids, mask = raw_model._pad(rows, "left")
    assert ids.tolist() == [[11, 12, 13, 14], [pad, pad, pad, 21], [pad, pad, 31, 32]]
    assert mask.tolist() == [[1, 1, 1, 1], [0, 0, 0, 1], [0, 0, 1, 1]]
    ids, mask = raw_model._pad(rows, "right")
    assert ids.tolist() == [[11, 12, 13, 14], [21, pad, pad, pad], [31, 32, pad, pad]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]]
    assert raw_model.hf_tokenizer.padding_side == "left"


# ------------------------------------------------------------------------------------ token_logprobs


def _manual_scores(model: HFTextModel, ids: list[int], start: int) -> dict[str, np.ndarray]:
    """The scores computed by hand: one unpadded sequence, no mask, the textbook formulas.

    The reference takes the model's float32 logits but does the softmax arithmetic in float64: the one-pass
    variance E[l^2] - E[l]^2 cancels catastrophically in float32 here (E[l^2] ~ 116 on this near-uniform
    random model, variance ~ 0.026), off by up to ~1e-4, so a float32 reference would not be one.
    """
    with torch.no_grad():
        logits = model.model(input_ids=torch.tensor([ids])).logits[0].float()
    log_probs = torch.log_softmax(logits[start - 1 : len(ids) - 1].double(), dim=-1)
    targets = torch.tensor(ids[start:])
    probs = log_probs.exp()
    expected = (probs * log_probs).sum(-1)
    return {
        "token_ids": targets.numpy(),
        "logprobs": log_probs.gather(-1, targets[:, None])[:, 0].numpy(),
        "expected": expected.numpy(),
        "variance": ((probs * log_probs.square()).sum(-1) - expected.square()).numpy(),
    }


def _assert_matches(got: Any, want: dict[str, np.ndarray], atol: float = 1e-5) -> None:
    np.testing.assert_array_equal(got.token_ids, want["token_ids"])
    for field in ("logprobs", "expected", "variance"):
        np.testing.assert_allclose(getattr(got, field), want[field], rtol=0, atol=atol, err_msg=field)


def test_token_logprobs_shapes_and_manual_agreement(raw_model: HFTextModel) -> None:
    tokenizer = raw_model.hf_tokenizer
    assert not raw_model.prepends_bos  # the SmolLM2 tokenizer adds no BOS: the first token has no prediction
    scores = raw_model.token_logprobs(TEXTS)
    assert len(scores) == len(TEXTS)
    for text, score in zip(TEXTS, scores, strict=True):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(score) == len(ids) - 1
        assert score.logprobs.shape == score.expected.shape == score.variance.shape == (len(ids) - 1,)
        assert score.logprobs.dtype == np.float64
        assert (score.logprobs <= 0).all() and (score.expected <= 0).all() and (score.variance >= 0).all()
        _assert_matches(score, _manual_scores(raw_model, ids, 1))


def test_token_logprobs_with_context(raw_model: HFTextModel) -> None:
    tokenizer = raw_model.hf_tokenizer
    contexts = ["Question: who wrote it? Answer:", "Q: where?"]
    texts = [" J. K. Rowling wrote the books.", " At Hogwarts."]
    scores = raw_model.token_logprobs(texts, context=contexts)
    for context, text, score in zip(contexts, texts, scores, strict=True):
        context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
        text_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(score) == len(text_ids)  # every text token has a predecessor in the context
        _assert_matches(score, _manual_scores(raw_model, context_ids + text_ids, len(context_ids)))
    # The context changes the scores of the text's tokens (the first one above all).
    alone = raw_model.token_logprobs(texts[:1])[0]
    assert not np.allclose(scores[0].logprobs[1:], alone.logprobs, atol=1e-4)
    with pytest.raises(ValueError, match="one string per text"):
        raw_model.token_logprobs(texts, context=contexts[:1])


def test_token_logprobs_padded_batch_matches_each_text_alone(
    raw_model: HFTextModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    lengths = [len(ids) for ids in raw_model.hf_tokenizer(TEXTS, add_special_tokens=False)["input_ids"]]
    assert max(lengths) > 10 * min(lengths)  # the short text is padded by far more than its own length
    batched = raw_model.token_logprobs(TEXTS)
    alone = [raw_model.token_logprobs([text])[0] for text in TEXTS]
    monkeypatch.setattr(raw_model, "batch_size", 3)  # a second sub-batch
    split = raw_model.token_logprobs(TEXTS)
    for one, many, other in zip(alone, batched, split, strict=True):
        want = {f: getattr(one, f) for f in ("token_ids", "logprobs", "expected", "variance")}
        _assert_matches(many, want)
        _assert_matches(other, want)


def test_token_logprobs_empty_and_single_token_texts(raw_model: HFTextModel) -> None:
    assert len(raw_model.hf_tokenizer("a", add_special_tokens=False)["input_ids"]) == 1
    scores = raw_model.token_logprobs(["", "a", SHORT_TEXT])
    assert len(scores) == 3
    for score in scores[:2]:
        assert len(score) == 0
        assert score.token_ids.shape == score.logprobs.shape == score.expected.shape == (0,)
        assert score.variance.shape == (0,)
    assert len(scores[2]) > 0
    # With a context the single token is scored; an empty text still gives nothing.
    with_context = raw_model.token_logprobs(["a", ""], context=["The letter", "Nothing"])
    assert [len(s) for s in with_context] == [1, 0]
    assert raw_model.token_logprobs([]) == []


# ----------------------------------------------------------------------------------------- embedding


def test_target_embedder_rows(chat_model: HFTextModel) -> None:
    embedder = load_embedder(ModelOptions(embedder="target"), target=chat_model)
    assert embedder.name == f"target:{chat_model.name}"
    hidden = int(chat_model.model.config.hidden_size)
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), hidden)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    alone = np.stack([embedder.embed([text])[0] for text in TEXTS])
    # Order kept and padding excluded from the mean: each row equals the text embedded alone.
    np.testing.assert_allclose(vectors, alone, atol=1e-5)
    similarity = vectors @ vectors.T
    assert (similarity[~np.eye(len(TEXTS), dtype=bool)] < 0.9999).all()  # rows really differ
    assert embedder.embed([]).shape == (0, hidden)


def test_mean_hidden_states_is_the_masked_mean(chat_model: HFTextModel) -> None:
    ids = chat_model.hf_tokenizer(SHORT_TEXT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        hidden = chat_model.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[-1]
    mean = hidden[0].float().mean(0)
    want = (mean / mean.norm()).numpy()
    got = chat_model.mean_hidden_states([LONG_TEXT, SHORT_TEXT])[1]
    np.testing.assert_allclose(got, want, atol=1e-5)


# -------------------------------------------------------------------------------------- quantisation


@pytest.fixture(scope="module")
def float_scores(raw_model: HFTextModel) -> np.ndarray:
    return np.concatenate([s.logprobs for s in raw_model.token_logprobs(TEXTS)])


@pytest.mark.parametrize(
    ("quantize", "layer", "min_r", "max_rel_err"),
    [
        # Measured on TEXTS (134 scored tokens), bitsandbytes 0.50.2 on CPU: 8-bit r = 0.99998, mean |diff|
        # = 0.5% of the float32 scores' standard deviation; 4-bit NF4 r = 0.997, mean |diff| = 5.7%. The
        # random model's log-probs are nearly uniform (std ~0.16 nats), so quantisation noise is large
        # relative to their spread; the bounds leave 4-10x room yet fail for misaligned or unrelated scores
        # (r ~ 0) or a broken dequantisation. CPU arithmetic here is deterministic, so they are not flaky.
        ("8bit", "Linear8bitLt", 0.999, 0.05),
        ("4bit", "Linear4bit", 0.98, 0.2),
    ],
)
def test_quantized_model_on_cpu(
    tiny_model_dir: Path,
    float_scores: np.ndarray,
    quantize: str,
    layer: str,
    min_r: float,
    max_rel_err: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bnb = pytest.importorskip("bitsandbytes")
    model = load_text_model(ModelOptions(model=str(tiny_model_dir), quantize=quantize, chat_template=False))
    assert isinstance(model, HFTextModel)
    assert model.device.type == "cpu"
    layer_type = getattr(bnb.nn, layer)
    quantized = [m for m in model.model.modules() if isinstance(m, layer_type)]
    # Every projection of both decoder layers (q, k, v, o, gate, up, down) is a bitsandbytes layer.
    assert len(quantized) == 2 * 7

    with caplog.at_level(logging.WARNING):
        outputs = gen(model, PROMPTS[:2], **GREEDY)
        scores = np.concatenate([s.logprobs for s in model.token_logprobs(TEXTS)])
    assert [len(outs) for outs in outputs] == [1, 1]
    assert all(isinstance(outs[0], str) and outs[0] for outs in outputs)
    assert scores.shape == float_scores.shape
    assert np.isfinite(scores).all()
    assert np.abs(scores - float_scores).max() > 1e-5  # the quantised weights really are in use
    r = float(np.corrcoef(scores, float_scores)[0, 1])
    assert r > min_r
    assert np.abs(scores - float_scores).mean() < max_rel_err * float_scores.std()
    # bitsandbytes logs a warning per 8-bit matmul on CPU; the loader keeps those off stderr.
    assert not [rec for rec in caplog.records if rec.name.startswith("bitsandbytes")]


# -------------------------------------------------------------------------------------------- errors


def test_cuda_on_cpu_only_machine_names_the_alternative(tiny_model_dir: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible")
    for device in ("cuda", "cuda:0"):
        with pytest.raises(ModelError, match="--device cpu"):
            load_text_model(ModelOptions(model=str(tiny_model_dir), device=device))


def test_bad_model_paths(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no config\.json"):
        load_text_model(ModelOptions(model=str(tmp_path)))
    with pytest.raises(ModelError, match="no such model"):
        load_text_model(ModelOptions(model=str(tmp_path / "missing")))
    (tmp_path / "weights.bin").write_bytes(b"\0" * 8)
    with pytest.raises(ModelError, match=r"\.gguf"):
        load_text_model(ModelOptions(model=str(tmp_path / "weights.bin")))


def test_broken_folder_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(ModelError, match="cannot load model"):
        load_text_model(ModelOptions(model=str(tmp_path)))


def test_bad_options_are_usage_errors_of_the_hf_backend() -> None:
    with pytest.raises(UsageError, match="--dtype"):
        HFSettings.from_options(ModelOptions(dtype="float8"))
    with pytest.raises(UsageError, match="--quantize"):
        HFSettings.from_options(ModelOptions(quantize="2bit"))
    with pytest.raises(UsageError, match="--device must be auto, cpu, cuda or cuda:N, not 'tpu'"):
        HFSettings.from_options(ModelOptions(device="tpu"))
    with pytest.raises(UsageError, match="--model-arg gpu_layers: the hf backend does not read it"):
        HFSettings.from_options(ModelOptions(model_args=("gpu_layers=3",)))
    with pytest.raises(UsageError, match="--model-arg 'trust_remote_code=maybe'"):
        HFSettings.from_options(ModelOptions(model_args=("trust_remote_code=maybe",)))
    with pytest.raises(UsageError, match="must be KEY=VALUE"):
        ModelOptions(model_args=("no-equals-sign",))


# ---------------------------------------------------------------------------------------- resolution


def test_default_resolves_to_a_plain_safetensors_folder(default_model_dir: Path) -> None:
    source = resolve_model("default")
    assert source.kind == "folder"
    assert source.local
    assert source.gguf_file is None
    assert source.name == "SmolLM2-135M-Instruct"
    folder = Path(source.location)
    assert folder == default_model_dir
    assert (folder / "model.safetensors").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama"


def test_a_prompt_longer_than_the_context_is_cut_counted_and_warned(
    raw_model: HFTextModel, capsys: pytest.CaptureFixture[str]
) -> None:
    long = GenerationRequest("owls " * 2000, temperature=0.0, max_new_tokens=8, reply_start="Answer:")
    short = GenerationRequest("Who is Harry?", temperature=0.0, max_new_tokens=8)
    before = raw_model.prompts.truncated
    [cut, kept] = raw_model.prompts.encode([long, short])
    # The prompt's own text is cut, so the reply start still ends what the model sees.
    assert len(cut) == raw_model.max_length - 8
    assert raw_model.hf_tokenizer.decode(cut).endswith("Answer:")
    assert kept == raw_model.hf_tokenizer("Who is Harry?")["input_ids"]
    assert raw_model.prompts.truncated == before + 1
    assert f"1 prompt(s) cut to fit {raw_model.name}'s {raw_model.max_length}-token context" in (
        capsys.readouterr().err
    )
