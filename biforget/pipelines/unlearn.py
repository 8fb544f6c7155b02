"""`unlearn`: a small reference unlearner on transformers' Trainer, for smoke tests and for comparing
forget sets by their effect; not a replacement for the frameworks `export` writes for.

Every record is one training sequence. A question/answer record trains on the answer given the question
(the question's tokens are context, not target); a text record on its text. With `--qa-format chat` (the
default) the question is a user turn of the model's chat template and the answer ends with the template's
end of turn, as audit's ROUGE-L generation and the frameworks' QA datasets query it; `raw` trains
"question answer" with no template. A sequence's log-prob `log p(y|x)` sums the log-probabilities of its
target tokens, tokenized exactly as `audit` scores them (`model.token_logprobs(targets, context=...)`),
cut to `--max-length` tokens.

Losses per batch of forget sequences `i` (and, for gd, a retain batch of the same size):

- `ga`  (gradient ascent): `L = -NLL_f`, with `NLL_f` the mean token NLL of the batch's target tokens.
- `gd`  (gradient difference): `L = -NLL_f + w * NLL_r`, `w` = `--retain-weight`, `NLL_r` the same mean
  on the retain batch.
- `npo` (negative preference optimisation, Zhang et al. 2024):
  `L = -(2/beta) * mean_i logsigmoid(-beta * (log p_theta(y_i|x_i) - log p_ref(y_i|x_i)))`,
  with `p_ref` the frozen target, whose sequence log-probs are computed once before training; with
  `--retain`, plus `w * NLL_r` as open-unlearning's NPO (its alpha), without it the paper's plain NPO.

The optimiser is the Trainer's AdamW at a constant learning rate, no warm-up, no weight decay. The
trained weights are float32: a half-precision model (`--dtype auto` on a GPU) is cast up and trained
under autocast in its own dtype, since bfloat16 weights round away updates of lr ~1e-5.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from biforget import console
from biforget.config import UnlearnConfig
from biforget.console import Tracker
from biforget.errors import InputError, OutputError, UsageError
from biforget.io.sets import EvalSet
from biforget.models.hf import HFTextModel
from biforget.pipelines.audit import qa_tokenizer, record_pair

REPORT_FILE = "unlearn.json"
# Label of positions that are context, not target (the value torch's cross-entropy skips).
IGNORE = -100


@dataclass(frozen=True)
class Example:
    """One training sequence: token ids and the first position whose token is a target."""

    ids: list[int]
    start: int


def encode_examples(
    model: HFTextModel, data: EvalSet, max_length: int, qa_format: str = "chat"
) -> list[Example]:
    """The set's records as training sequences, built the way `HFTextModel.token_logprobs` scores them."""
    tokenizer = model.hf_tokenizer
    prefix = [tokenizer.bos_token_id] if model.prepends_bos else []
    chat = qa_tokenizer(model, qa_format)
    examples = []
    empty = 0
    for record, text in zip(data.records, data.texts, strict=True):
        context, target = record_pair(record, text, chat)
        context_ids = list(tokenizer(context, add_special_tokens=False)["input_ids"]) if context else []
        target_ids = list(tokenizer(target, add_special_tokens=False)["input_ids"])
        ids = (prefix + context_ids + target_ids)[:max_length]
        start = max(1, len(prefix) + len(context_ids))
        if start >= len(ids):
            empty += 1
            continue
        examples.append(Example(ids, start))
    if empty:
        console.warn(f"{data.path}: {empty} record(s) leave no target token within --max-length {max_length}")
    if not examples:
        raise InputError(
            f"no record has a target token within --max-length {max_length}", source=str(data.path)
        )
    return examples


def npo_loss(logp: torch.Tensor, ref_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """`-(2/beta) * mean(logsigmoid(-beta * (logp - ref_logp)))` over a batch of sequence log-probs."""
    return -(2.0 / beta) * torch.nn.functional.logsigmoid(-beta * (logp - ref_logp)).mean()


def sequence_logprobs(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: the summed log-prob of its target tokens, and how many there are."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    targets = labels[:, 1:]
    nll = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2).float(), targets, ignore_index=IGNORE, reduction="none"
    )
    scored = targets != IGNORE
    return -(nll * scored).sum(-1), scored.sum(-1)


def _pad(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, example in enumerate(examples):
        tokens = torch.tensor(example.ids, dtype=torch.long)
        ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1
        labels[row, example.start : len(tokens)] = tokens[example.start :]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class _Pairs(torch.utils.data.Dataset[dict[str, Any]]):
    """Forget sequence `i` (with its reference log-prob) and, for gd, a retain sequence drawn by a
    generator seeded once, so a run with the same seed sees the same pairs."""

    def __init__(
        self, forget: list[Example], ref: list[float] | None, retain: list[Example] | None, seed: int
    ) -> None:
        self.forget, self.ref, self.retain = forget, ref, retain
        self.draw = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.forget)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {"forget": self.forget[index], "ref": self.ref[index] if self.ref else 0.0}
        if self.retain:
            item["retain"] = self.retain[int(torch.randint(len(self.retain), (1,), generator=self.draw))]
        return item


def _collate(pad_id: int) -> Any:
    def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = {f"forget_{k}": v for k, v in _pad([i["forget"] for i in items], pad_id).items()}
        batch["ref_logp"] = torch.tensor([float(i["ref"]) for i in items], dtype=torch.float64)
        if "retain" in items[0]:
            batch.update({f"retain_{k}": v for k, v in _pad([i["retain"] for i in items], pad_id).items()})
        return batch

    return collate


class UnlearnTrainer(Trainer):
    """The Trainer with the ga/gd/npo loss of the module docstring; `last` holds the step's terms."""

    def __init__(self, *args: Any, method: str, beta: float, retain_weight: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.method, self.beta, self.retain_weight = method, beta, retain_weight
        self.last: dict[str, float] = {}

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        logp, count = sequence_logprobs(
            model, inputs["forget_input_ids"], inputs["forget_attention_mask"], inputs["forget_labels"]
        )
        forget_nll = -logp.sum() / count.sum().clamp_min(1)
        if self.method == "npo":
            loss = npo_loss(logp, inputs["ref_logp"].to(logp.dtype), self.beta)
        else:
            loss = -forget_nll
        self.last = {"forget_nll": round(float(forget_nll.detach()), 6)}
        if "retain_input_ids" in inputs:
            retain_logp, retain_count = sequence_logprobs(
                model, inputs["retain_input_ids"], inputs["retain_attention_mask"], inputs["retain_labels"]
            )
            retain_nll = -retain_logp.sum() / retain_count.sum().clamp_min(1)
            loss = loss + self.retain_weight * retain_nll
            self.last["retain_nll"] = round(float(retain_nll.detach()), 6)
        self.last["loss"] = round(float(loss.detach()), 6)
        return (loss, None) if return_outputs else loss


@dataclass
class _Curve(TrainerCallback):
    """Feeds the progress bar and keeps the loss curve with each step's wall time."""

    tracker: Tracker
    task: int | None
    trainer: UnlearnTrainer | None = None
    points: list[dict[str, float]] = field(default_factory=list)
    began: float = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.began = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        assert self.trainer is not None
        seconds = time.perf_counter() - self.began
        self.points.append({"step": state.global_step, **self.trainer.last, "seconds": round(seconds, 4)})
        self.tracker.advance(self.task)
        self.tracker.status(self.task, f"loss {self.trainer.last.get('loss', float('nan')):.4f}")


@torch.no_grad()
def reference_logprobs(
    model: HFTextModel, examples: list[Example], batch_size: int, autocast: torch.dtype | None = None
) -> list[float]:
    """Each sequence's log-prob under the model before any step, computed as training computes it (under
    the same autocast): NPO's frozen reference."""
    model.model.eval()
    pad = int(model.hf_tokenizer.pad_token_id)
    values: list[float] = []
    for start in range(0, len(examples), batch_size):
        batch = {k: v.to(model.device) for k, v in _pad(examples[start : start + batch_size], pad).items()}
        with torch.autocast(model.device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            logp, _ = sequence_logprobs(
                model.model, batch["input_ids"], batch["attention_mask"], batch["labels"]
            )
        values += [float(v) for v in logp]
    return values


HALF = (torch.bfloat16, torch.float16)


def float32_master(model: HFTextModel, lora: bool) -> torch.dtype | None:
    """Cast a half-precision model's weights that will train up to float32 and return the half dtype to
    train under autocast; None for a float32 model. LoRA trains adapters, which peft makes float32, over
    the frozen base in its own dtype."""
    dtype = next(model.model.parameters()).dtype
    if dtype not in HALF:
        return None
    if not lora:
        model.model.float()
    return dtype


@dataclass
class Unlearned:
    """A finished run: the model with its new weights (in memory) and what `unlearn.json` records."""

    model: HFTextModel
    report: dict[str, Any]


def _with_lora(network: Any, rank: int) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise UsageError("--lora needs peft: pip install 'biforget[lora]'") from None
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    return get_peft_model(network, config)


def unlearn_model(
    model: HFTextModel,
    forget: EvalSet,
    config: UnlearnConfig,
    *,
    retain: EvalSet | None = None,
    tracker: Tracker | None = None,
) -> Unlearned:
    """Run `config.steps` optimiser steps of `config.method` on `model`'s own weights (LoRA adapters,
    merged back, with `config.lora`)."""
    tracker = tracker or Tracker()
    qa_format = config.qa_format if qa_tokenizer(model, config.qa_format) is not None else "raw"
    if qa_format != config.qa_format:
        console.warn(f"{model.name} has no chat template: question/answer records train as raw text")
    forget_examples = encode_examples(model, forget, config.max_length, qa_format)
    retain_examples = (
        encode_examples(model, retain, config.max_length, qa_format) if retain is not None else None
    )
    autocast = float32_master(model, config.lora)
    ref = (
        reference_logprobs(model, forget_examples, config.batch_size, autocast)
        if config.method == "npo"
        else None
    )
    network = _with_lora(model.model, config.lora_rank) if config.lora else model.model
    pad = int(model.hf_tokenizer.pad_token_id)
    task = tracker.start(f"unlearning ({config.method})", total=config.steps, unit="steps")
    curve = _Curve(tracker, task)
    with tempfile.TemporaryDirectory(prefix="biforget-unlearn-") as scratch:
        arguments = TrainingArguments(
            output_dir=scratch,
            max_steps=config.steps,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.lr,
            lr_scheduler_type="constant",
            warmup_steps=0,
            weight_decay=0.0,
            seed=config.seed,
            data_seed=config.seed,
            report_to=[],
            save_strategy="no",
            logging_steps=1,
            use_cpu=model.device.type == "cpu",
            bf16=autocast == torch.bfloat16,
            fp16=autocast == torch.float16,
            disable_tqdm=True,
            remove_unused_columns=False,
            dataloader_num_workers=0,
        )
        trainer = UnlearnTrainer(
            model=network,
            args=arguments,
            train_dataset=_Pairs(forget_examples, ref, retain_examples, config.seed),
            data_collator=_collate(pad),
            callbacks=[curve],
            method=config.method,
            beta=config.beta,
            retain_weight=config.retain_weight,
        )
        # Both print the Trainer's logs to stdout, which carries only our own output.
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        curve.trainer = trainer
        began = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - began
    model.model = (network.merge_and_unload() if config.lora else network).eval()
    steps = [p["seconds"] for p in curve.points]
    report = {
        "method": config.method,
        "settings": config.settings(),
        "target": model.name,
        "device": str(model.device),
        "precision": (
            f"float32 weights, {str(autocast).removeprefix('torch.')} autocast"
            if autocast is not None
            else str(next(model.model.parameters()).dtype).removeprefix("torch.")
        ),
        "qa_format": qa_format,
        "retain_term": _retain_term(config, retain is not None),
        "forget": {"path": str(forget.path), "records": len(forget), "sequences": len(forget_examples)},
        "retain": (
            {"path": str(retain.path), "records": len(retain), "sequences": len(retain_examples or ())}
            if retain is not None
            else None
        ),
        "loss_curve": curve.points,
        "seconds": round(seconds, 3),
        "seconds_per_step": round(sum(steps) / len(steps), 4) if steps else None,
    }
    return Unlearned(model, report)


def _retain_term(config: UnlearnConfig, has_retain: bool) -> str:
    if has_retain:
        return f"{config.retain_weight:g} x retain NLL" + (
            " (open-unlearning's NPO with alpha)" if config.method == "npo" else ""
        )
    if config.method == "npo":
        return "none: the NPO paper's loss; open-unlearning's NPO adds alpha x retain NLL (pass --retain)"
    return "none"


def check_out(out: Path, force: bool, inputs: Sequence[str | Path]) -> None:
    """Before any work: `out` is a folder to create, or an empty one, or (with force) one to replace;
    never one of the run's inputs (the target model's folder, a set)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder; --out needs a folder")
    resolved = out.resolve()
    for given in inputs:
        path = Path(given).expanduser()
        if path.exists() and (path.resolve() == resolved or resolved in path.resolve().parents):
            raise UsageError(f"--out {out} holds an input of this run ({given}); write to another folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out}: folder is not empty; pass --force to replace it")
    ancestor = out.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: cannot create the folder in {ancestor}")


def write_model(result: Unlearned, out: Path) -> Path:
    """The model folder (weights, tokenizer, `unlearn.json`), staged beside `out` and renamed into place,
    so `out` is never half-written; a folder already there is replaced only once the new one is whole."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = out.parent / f".{out.name}.unlearn-{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir()
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the folder: {exc.strerror or exc}") from None
    try:
        result.model.model.save_pretrained(str(staging))
        result.model.hf_tokenizer.save_pretrained(str(staging))
        text = json.dumps(result.report, ensure_ascii=False, indent=2) + "\n"
        (staging / REPORT_FILE).write_text(text, encoding="utf-8")
        if out.exists():
            aside = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
            os.replace(out, aside)
            os.replace(staging, out)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(staging, out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"{out}: cannot write the model: {exc.strerror or exc}") from None
    except SafetensorError as exc:
        # The weights writer's own error wraps the OS's (a full disk): its message, not its type.
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"{out}: cannot write the model: {_safetensors_reason(exc)}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _safetensors_reason(exc: BaseException) -> str:
    """What the OS said inside a SafetensorError (`... message: "No space left on device" ...`)."""
    text = str(exc)
    found = re.search(r'message: "([^"]+)"', text)
    return found.group(1) if found else (text.splitlines()[0] if text else type(exc).__name__)
