"""The transformers backend (`hf:`): local folders, GGUF files, hub ids and the built-in default;
bitsandbytes 4/8-bit quantisation and accelerate's `device_map` sharding.

Imported only when a model is actually loaded, so the CLI's help never pays for torch.

Sampling is done row by row: every request draw has its own torch generator seeded from the request's
seed, and a logits processor adds Gumbel noise from it to the temperature-scaled, top-p-masked logits;
greedy decoding then takes the argmax, which is an exact sample from the same distribution. So a
request's text never depends on the requests it shares a batch with, and temperatures mix in a batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from biforget.config import ModelOptions
from biforget.errors import ModelError
from biforget.models.base import Capability, GenerationRequest, TokenLogprobs
from biforget.models.hf_sampling import RowSampler
from biforget.models.hf_settings import (
    NAME,
    HFSettings,
    quantization_config,
    resolve_device,
    resolve_dtype,
)
from biforget.models.hub import first_line, from_pretrained, quiet_hf_libraries
from biforget.models.prompting import PromptEncoder, completion
from biforget.models.sources import ModelSource, resolve_model
from biforget.records import derive_seed

# Logits one scoring forward pass may hold (2**28 float32 values = 1 GiB).
LOGITS_BUDGET = 2**28


def _load_hf_tokenizer(source: ModelSource) -> Any:
    from transformers import AutoTokenizer

    kwargs = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    return from_pretrained(AutoTokenizer, source.location, source.name, local=source.local, **kwargs)


def load(target: str, options: ModelOptions) -> HFTextModel:
    """The `hf:` backend's entry in the registry."""
    settings = HFSettings.from_options(options)
    source = resolve_model(target)
    quiet_hf_libraries(offline=source.local)
    from transformers import AutoModelForCausalLM

    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    quantization = quantization_config(settings.quantize, dtype)
    kwargs: dict[str, Any] = {"dtype": dtype, **settings.extra}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    if "device_map" not in kwargs:
        if device == "cuda":
            kwargs["device_map"] = "auto"
        elif device.startswith("cuda:") or quantization is not None:
            kwargs["device_map"] = {"": device}
    try:
        tokenizer = _load_hf_tokenizer(source)
        model = from_pretrained(
            AutoModelForCausalLM, source.location, source.name, local=source.local, **kwargs
        )
    except ModelError:
        raise
    except (OSError, ValueError, RuntimeError, ImportError, KeyError) as exc:
        hint = "" if source.local else " (hub ids need network access to the hub or a local cache)"
        raise ModelError(f"cannot load model {source.name!r}: {first_line(exc)}{hint}") from exc
    if "device_map" not in kwargs and device != "cpu":
        model = model.to(device)
    tokenizer.padding_side = "left"
    return HFTextModel(
        model,
        tokenizer,
        name=source.name,
        batch_size=options.batch_size,
        chat_template=options.chat_template,
    )


def load_tokenizer(target: str, options: ModelOptions) -> HFTokenizer:
    """The target model's tokenizer alone: token counts need no weights."""
    source = resolve_model(target)
    quiet_hf_libraries(offline=source.local)
    try:
        tokenizer = _load_hf_tokenizer(source)
    except ModelError:
        raise
    except (OSError, ValueError, RuntimeError, ImportError, KeyError) as exc:
        raise ModelError(f"cannot load the tokenizer of {source.name!r}: {first_line(exc)}") from exc
    return HFTokenizer(tokenizer, source.name)


class HFTokenizer:
    """A transformers tokenizer behind the Tokenizer interface."""

    def __init__(self, tokenizer: Any, name: str) -> None:
        self.hf_tokenizer = tokenizer
        self.name = name

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(ids) for ids in self.hf_tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.hf_tokenizer.decode([int(i) for i in ids], skip_special_tokens=True))


@dataclass(frozen=True)
class _Row:
    request: int
    draw: int
    ids: list[int]


class HFTextModel:
    """A causal LM from transformers behind the TextModel interface."""

    backend = NAME
    capabilities = frozenset(
        {
            Capability.LOGPROBS,
            Capability.DISTRIBUTION,
            Capability.HIDDEN_STATES,
            Capability.TOKENIZER,
            Capability.TRAINING,
        }
    )

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        batch_size: int = ModelOptions.batch_size,
        chat_template: bool = True,
    ) -> None:
        self.model = model.eval()
        self.hf_tokenizer = tokenizer
        self.tokenizer = HFTokenizer(tokenizer, name)
        self.name = name
        self.batch_size = batch_size
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.use_chat_template = chat_template and bool(getattr(tokenizer, "chat_template", None))
        bos = tokenizer.bos_token_id
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        with_special = tokenizer("a")["input_ids"]
        # Score a text the way published detectors do: with BOS only if the tokenizer adds one by default.
        self.prepends_bos = bos is not None and with_special[:1] == [bos] and plain[:1] != [bos]
        self.max_length = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
        # Tokens generated so far (padding and end-of-sequence excluded), for rates and benchmarks.
        self.generated_tokens = 0
        self.prompts = PromptEncoder(
            tokenizer, use_chat_template=self.use_chat_template, max_length=self.max_length, model_name=name
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ----------------------------------------------------------------------------------- generation

    def render(self, prompt: str, chat: bool = True) -> str:
        return self.prompts.render(prompt, chat)

    def _pad(self, rows: Sequence[list[int]], side: str) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(row) for row in rows)
        pad = self.hf_tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if side == "left":
                ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
                mask[i, width - len(row) :] = 1
            else:
                ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
                mask[i, : len(row)] = 1
        return ids.to(self.device), mask.to(self.device)

    @staticmethod
    def _longest_first(lengths: Sequence[int], per_batch: int) -> Iterator[list[int]]:
        order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
        for start in range(0, len(order), per_batch):
            yield order[start : start + per_batch]

    @torch.inference_mode()
    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        if not requests:
            return []
        encoded = self.prompts.encode(requests)
        # Greedy requests give n identical copies from one row; sampled ones a row per draw.
        rows = [
            _Row(index, draw, encoded[index])
            for index, request in enumerate(requests)
            for draw in range(request.n if request.temperature > 0 else 1)
        ]
        texts: dict[tuple[int, int], str] = {}
        # Longest budget and prompt first, so a batch's rows need about the same number of steps.
        order = sorted(
            range(len(rows)),
            key=lambda i: (-requests[rows[i].request].max_new_tokens, -len(rows[i].ids), i),
        )
        for start in range(0, len(order), self.batch_size):
            batch = [rows[i] for i in order[start : start + self.batch_size]]
            for row, text in zip(batch, self._generate_rows(batch, requests), strict=True):
                texts[(row.request, row.draw)] = text
        results: list[list[str]] = []
        for index, request in enumerate(requests):
            if request.temperature > 0:
                results.append([texts[(index, draw)] for draw in range(request.n)])
            else:
                results.append([texts[(index, 0)]] * request.n)
        return results

    def _generate_rows(self, batch: Sequence[_Row], requests: Sequence[GenerationRequest]) -> list[str]:
        from transformers import LogitsProcessorList

        own = [requests[row.request] for row in batch]
        ids, mask = self._pad([row.ids for row in batch], "left")
        sampler = RowSampler(
            [r.temperature for r in own],
            [r.top_p for r in own],
            # The prompt is mixed in so requests that share a seed still draw independent noise.
            [derive_seed(r.seed, "draw", row.draw, r.prompt) for r, row in zip(own, batch, strict=True)],
            self.device,
        )
        output = self.model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max(r.max_new_tokens for r in own),
            do_sample=False,
            logits_processor=LogitsProcessorList([sampler]),
            pad_token_id=self.hf_tokenizer.pad_token_id,
            eos_token_id=self.model.generation_config.eos_token_id,
        )
        new_tokens = output[:, ids.shape[1] :]
        texts: list[str] = []
        pad = self.hf_tokenizer.pad_token_id
        for row_tokens, request in zip(new_tokens, own, strict=True):
            # A row with a smaller budget than its batch keeps only its own first tokens: what it would
            # have generated alone.
            kept = row_tokens[: request.max_new_tokens]
            self.generated_tokens += int((kept != pad).sum())
            texts.append(completion(request, self.hf_tokenizer.decode(kept, skip_special_tokens=True)))
        return texts

    # -------------------------------------------------------------------------------------- scoring

    def _scoring_batches(self, lengths: Sequence[int]) -> Iterator[list[int]]:
        """Longest first, at most `batch_size` rows, and at most `LOGITS_BUDGET` logits per forward pass.

        Scoring keeps the full logits (rows x width x vocabulary): 32 texts of 400 tokens under a 49k
        vocabulary are 2.5 GB in float32, so long texts go in smaller batches than short ones.
        """
        vocabulary = int(getattr(self.model.config, "vocab_size", 0) or len(self.hf_tokenizer))
        for group in self._longest_first(lengths, self.batch_size):
            width = max(1, lengths[group[0]])
            per_pass = max(1, LOGITS_BUDGET // (width * vocabulary))
            for start in range(0, len(group), per_pass):
                yield group[start : start + per_pass]

    @torch.inference_mode()
    def token_logprobs(
        self, texts: Sequence[str], context: Sequence[str] | None = None
    ) -> list[TokenLogprobs]:
        if context is not None and len(context) != len(texts):
            raise ValueError("context must give one string per text")
        rows: list[list[int]] = []
        starts: list[int] = []
        prefix = [self.hf_tokenizer.bos_token_id] if self.prepends_bos else []
        for i, text in enumerate(texts):
            context_ids = (
                self.hf_tokenizer(context[i], add_special_tokens=False)["input_ids"] if context else []
            )
            text_ids = self.hf_tokenizer(text, add_special_tokens=False)["input_ids"]
            row = (prefix + list(context_ids) + list(text_ids))[: self.max_length]
            # The first scored position is the first text token that has a predecessor.
            starts.append(max(1, len(prefix) + len(context_ids)))
            rows.append(row)
        results: list[TokenLogprobs | None] = [None] * len(texts)
        for batch in self._scoring_batches([len(r) for r in rows]):
            ids, mask = self._pad([rows[i] for i in batch], "right")
            logits = self.model(input_ids=ids, attention_mask=mask).logits
            for row_index, text_index in enumerate(batch):
                length = len(rows[text_index])
                start = starts[text_index]
                if length <= start:
                    empty = np.zeros(0, dtype=np.float64)
                    results[text_index] = TokenLogprobs(np.zeros(0, dtype=np.int64), empty, empty, empty)
                    continue
                # Position t-1 predicts token t. float64 math and results whatever the model's dtype:
                # Min-K%++ divides log p - E[log p] by the spread, and on a flat distribution (spread
                # ~0.16 against log-probabilities ~ -10.8) float32 rounding of either term moved the
                # score by ~5e-5; float64 keeps it within 1e-6 of the reference.
                log_probs = torch.log_softmax(logits[row_index, start - 1 : length - 1].double(), dim=-1)
                targets = ids[row_index, start:length]
                chosen = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
                probs = log_probs.exp()
                expected = (probs * log_probs).sum(-1)
                # Two-pass variance: E[l^2] - E[l]^2 cancels when E[l^2] is large (~116 for a flat
                # distribution over 49k tokens), an error of ~1e-4 in float32 that also made a text's
                # variance depend on how it was batched.
                variance = (probs * (log_probs - expected.unsqueeze(-1)).square()).sum(-1)
                results[text_index] = TokenLogprobs(
                    token_ids=targets.cpu().numpy(),
                    logprobs=chosen.cpu().numpy(),
                    expected=expected.cpu().numpy(),
                    variance=variance.clamp_min(0).cpu().numpy(),
                )
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------------------------ embedding

    @torch.inference_mode()
    def mean_hidden_states(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled last hidden state per text (the paper's target-model embedding), L2-normalised."""
        if not texts:
            return np.zeros((0, int(self.model.config.hidden_size)), dtype=np.float32)
        rows = [
            list(self.hf_tokenizer(t, add_special_tokens=False)["input_ids"])[: self.max_length]
            or [self.hf_tokenizer.eos_token_id]
            for t in texts
        ]
        out: list[np.ndarray | None] = [None] * len(texts)
        for batch in self._longest_first([len(r) for r in rows], self.batch_size):
            ids, mask = self._pad([rows[i] for i in batch], "right")
            hidden = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[
                -1
            ]
            weights = mask.unsqueeze(-1).to(torch.float32)
            pooled = (hidden.float() * weights).sum(1) / weights.sum(1).clamp_min(1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            for row_index, text_index in enumerate(batch):
                out[text_index] = pooled[row_index].cpu().numpy()
        return np.stack([v for v in out if v is not None]).astype(np.float32)
