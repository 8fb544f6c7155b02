"""The transformers backend: local folders, GGUF files and hub ids; bitsandbytes quantisation; sharding.

Imported only when a model is actually loaded, so the CLI's help never pays for torch.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from biforget.config import ModelOptions
from biforget.errors import ModelError
from biforget.models.base import TokenLogprobs
from biforget.models.sources import ModelSource
from biforget.records import derive_seed

# Logits one scoring forward pass may hold (2**28 float32 values = 1 GiB).
LOGITS_BUDGET = 2**28


def quiet_hf_libraries(*, offline: bool) -> None:
    """Silence other libraries' progress bars and info logs; they would otherwise share stderr with ours.

    The hub's offline switch is read when huggingface_hub is first imported, so this runs before that.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", module="transformers")
    warnings.filterwarnings("ignore", module="bitsandbytes")
    # bitsandbytes reports through `logging`, not `warnings`: on CPU its 8-bit matmul logs a float16-cast
    # warning on every call of every quantised layer (hundreds of stderr lines per forward pass), and its
    # import logs a missing optional `kernels` package. Keep its errors only.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def resolve_device(requested: str) -> str:
    cuda = torch.cuda.is_available()
    if requested == "auto":
        return "cuda" if cuda else "cpu"
    if requested.startswith("cuda"):
        if not cuda:
            raise ModelError(f"--device {requested}: no CUDA GPU is visible to torch; use --device cpu")
        index = int(requested.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ModelError(
                f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) visible; "
                "use --device cuda to shard across all of them"
            )
    return requested


def resolve_dtype(requested: str, device: str) -> torch.dtype:
    if requested == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[requested]


def _quantization(options: ModelOptions, dtype: torch.dtype) -> Any:
    if options.quantize == "none":
        return None
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except Exception as exc:
        raise ModelError(
            f"--quantize {options.quantize} needs a working bitsandbytes ({exc}); use --quantize none"
        ) from None
    if options.quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=True,
    )


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host resolves and accepts a connection; a closed network fails in milliseconds
    here, where the hub client would retry for most of a minute."""
    import socket
    from urllib.parse import urlparse

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    port = urlparse(endpoint).port or 443
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _from_pretrained(loader: Any, source: ModelSource, **kwargs: Any) -> Any:
    """Load from a local source, or from a hub id: the local HF cache first, then the hub if reachable."""
    if source.local:
        return loader.from_pretrained(source.location, **kwargs)
    try:
        return loader.from_pretrained(source.location, local_files_only=True, **kwargs)
    except OSError:
        if not _hub_reachable():
            raise ModelError(
                f"cannot load model {source.name!r}: not in the local Hugging Face cache and the hub is "
                "unreachable; pass a local folder or .gguf file, or --model default"
            ) from None
    return loader.from_pretrained(source.location, **kwargs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class HFTextModel:
    """A causal LM from transformers behind the TextModel interface."""

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
        self.tokenizer = tokenizer
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

    @classmethod
    def load(cls, source: ModelSource, options: ModelOptions) -> HFTextModel:
        quiet_hf_libraries(offline=source.local)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = resolve_device(options.device)
        dtype = resolve_dtype(options.dtype, device)
        quantization = _quantization(options, dtype)
        kwargs: dict[str, Any] = {"dtype": dtype}
        if source.gguf_file:
            kwargs["gguf_file"] = source.gguf_file
        if quantization is not None:
            kwargs["quantization_config"] = quantization
        if device == "cuda":
            kwargs["device_map"] = "auto"
        elif device.startswith("cuda:") or quantization is not None:
            kwargs["device_map"] = {"": device}
        try:
            tokenizer_kwargs = {"gguf_file": source.gguf_file} if source.gguf_file else {}
            tokenizer = _from_pretrained(AutoTokenizer, source, **tokenizer_kwargs)
            model = _from_pretrained(AutoModelForCausalLM, source, **kwargs)
        except ModelError:
            raise
        except (OSError, ValueError, RuntimeError, ImportError, KeyError) as exc:
            hint = "" if source.local else " (hub ids need network access to the hub or a local cache)"
            raise ModelError(f"cannot load model {source.name!r}: {_first_line(exc)}{hint}") from exc
        if "device_map" not in kwargs and device != "cpu":
            model = model.to(device)
        tokenizer.padding_side = "left"
        return cls(
            model,
            tokenizer,
            name=source.name,
            batch_size=options.batch_size,
            chat_template=options.chat_template,
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ----------------------------------------------------------------------------------- generation

    def render(self, prompt: str, chat: bool = True) -> str:
        if not (chat and self.use_chat_template):
            return prompt
        return str(
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        )

    def _encode_prompts(self, prompts: Sequence[str], chat: bool = True) -> list[list[int]]:
        # A chat template already writes its special tokens; raw text gets the tokenizer's own.
        add_special = not (chat and self.use_chat_template)
        encoded = self.tokenizer([self.render(p, chat) for p in prompts], add_special_tokens=add_special)
        return [list(ids) for ids in encoded["input_ids"]]

    def _pad(self, rows: Sequence[list[int]], side: str) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(row) for row in rows)
        pad = self.tokenizer.pad_token_id
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
    def generate(
        self,
        prompts: Sequence[str],
        *,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        n: int = 1,
        seed: int = 0,
        chat: bool = True,
    ) -> list[list[str]]:
        if not prompts:
            return []
        encoded = self._encode_prompts(prompts, chat)
        sampling = temperature > 0
        draws = n if sampling else 1
        per_batch = max(1, self.batch_size // draws)
        results: list[list[str]] = [[] for _ in prompts]
        eos = self.model.generation_config.eos_token_id
        for index, batch in enumerate(self._longest_first([len(e) for e in encoded], per_batch)):
            ids, mask = self._pad([encoded[i] for i in batch], "left")
            options: dict[str, Any] = {
                "max_new_tokens": max_new_tokens,
                "pad_token_id": self.tokenizer.pad_token_id,
                "eos_token_id": eos,
                "num_return_sequences": draws,
            }
            if sampling:
                # top_k=0: the raw distribution cut by top_p only, not transformers' default top-50.
                options.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
            else:
                options.update(do_sample=False)
            with torch.random.fork_rng(devices=self._rng_devices()):
                # A seed per sub-batch, derived from the call's seed, so any batch can be regenerated alone.
                torch.manual_seed(derive_seed(seed, "batch", index))
                output = self.model.generate(input_ids=ids, attention_mask=mask, **options)
            new_tokens = output[:, ids.shape[1] :]
            self.generated_tokens += int((new_tokens != self.tokenizer.pad_token_id).sum())
            texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for row, prompt_index in enumerate(batch):
                chunk = texts[row * draws : (row + 1) * draws]
                results[prompt_index] = [t.strip() for t in chunk] * (n if not sampling else 1)
        return results

    def _rng_devices(self) -> list[int]:
        device = self.device
        return [device.index or 0] if device.type == "cuda" else []

    # -------------------------------------------------------------------------------------- scoring

    def _scoring_batches(self, lengths: Sequence[int]) -> Iterator[list[int]]:
        """Longest first, at most `batch_size` rows, and at most `LOGITS_BUDGET` logits per forward pass.

        Scoring keeps the full logits (rows x width x vocabulary): 32 texts of 400 tokens under a 49k
        vocabulary are 2.5 GB in float32, so long texts go in smaller batches than short ones.
        """
        vocabulary = int(getattr(self.model.config, "vocab_size", 0) or len(self.tokenizer))
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
        prefix = [self.tokenizer.bos_token_id] if self.prepends_bos else []
        for i, text in enumerate(texts):
            context_ids = self.tokenizer(context[i], add_special_tokens=False)["input_ids"] if context else []
            text_ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
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
        rows = [
            list(self.tokenizer(t, add_special_tokens=False)["input_ids"])[: self.max_length]
            or [self.tokenizer.eos_token_id]
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

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
