"""`audit`: did unlearning on a forget set remove the domain, or only the set?

Every set is scored under the original target and under each unlearned model, teacher-forced through
the model layer's `token_logprobs`. Per set and model:

- `nll`: mean over records of the record's mean token NLL (nats per token) over its whole text (a
  question/answer record's text is the question and the answer);
- `mink`: mean over records of Min-K% (the mean of the lowest `--mink-k` share of token log-probs;
  higher means more likely seen in training, so forgetting lowers it);
- QA sets only: `answer_nll`, the mean token NLL of the answer given the question (what `unlearn` trains
  on), and `rouge_l`, the mean ROUGE-L recall of the model's greedy answer against the reference answer
  (as TOFU and MUSE measure knowledge).

Per unlearned model, `shift` = unlearned minus target for each set and metric, and on the `nll` shifts:
`transfer` = heldout / forget (how much of the set's forgetting reached the domain's knowledge that
was not in the set), `damage` = retain, and `selectivity` = heldout minus retain.
"""

from __future__ import annotations

import dataclasses
import gc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biforget import console
from biforget.config import AuditConfig, ModelOptions
from biforget.console import Tracker
from biforget.errors import InputError, UsageError
from biforget.io.sets import EvalSet
from biforget.metrics.mink import mink
from biforget.models.base import Capability, GenerationRequest, TextModel, require
from biforget.pipelines import wave_size
from biforget.records import Record

METRICS = ("nll", "mink", "answer_nll", "rouge_l")
# Texts per scoring call: enough to fill the backend's batches, few enough for a moving progress bar.
SCORE_CHUNK = 64


def qa_fields(record: Record) -> tuple[str, str] | None:
    """A record's question and answer, stripped, when it has both; else None."""
    question, answer = record.get("question"), record.get("answer")
    if isinstance(question, str) and isinstance(answer, str) and question.strip() and answer.strip():
        return question.strip(), answer.strip()
    return None


def scored_pair(record: Record, text: str) -> tuple[str, str]:
    """(context, target) of a record: (question, " " + answer) for QA, ("", text) otherwise. The space
    keeps the answer's first word the token it is after a question, as in the record's own text."""
    pair = qa_fields(record)
    return (pair[0], " " + pair[1]) if pair is not None else ("", text)


@dataclass
class AuditSet:
    """One set under audit: its role, the set as read, and whether it is scored as QA."""

    role: str
    data: EvalSet
    qa: bool

    def __len__(self) -> int:
        return len(self.data)


def prepare_set(data: EvalSet, role: str, as_text: bool) -> AuditSet:
    """A set is QA when every record has a question and an answer, text when none has; a mix is an
    error, since its QA metrics would silently leave part of the set out."""
    if as_text:
        return AuditSet(role, data, qa=False)
    has_qa = [qa_fields(record) is not None for record in data.records]
    if all(has_qa):
        return AuditSet(role, data, qa=True)
    if any(has_qa):
        first = has_qa.index(False) + 1
        raise InputError(
            f"--{role}: mixes question/answer records with text-only ones (record {first} has no question "
            "and answer); split the set, or pass --as-text to score every record as text",
            source=str(data.path),
        )
    return AuditSet(role, data, qa=False)


@dataclass
class SetScores:
    """Per-record values of one set under one model; None where a record has no scored token."""

    nll: list[float | None]
    mink: list[float | None]
    answer_nll: list[float | None] | None = None
    rouge_l: list[float | None] | None = None
    answers: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        row: dict[str, Any] = {"records": len(self.nll)}
        for metric in METRICS:
            values = getattr(self, metric)
            row[metric] = _mean(values) if values is not None else None
        row["unscored"] = sum(v is None for v in self.nll)
        return row


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(float(np.mean(kept)), 6) if kept else None


def _nll(logprobs: np.ndarray) -> float | None:
    return float(-np.mean(logprobs.astype(np.float64))) if logprobs.shape[0] else None


def _rouge_recall(references: Sequence[str], predictions: Sequence[str]) -> list[float | None]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return [
        float(scorer.score(ref, pred)["rougeL"].recall)
        for ref, pred in zip(references, predictions, strict=True)
    ]


def work_units(sets: Sequence[AuditSet], config: AuditConfig) -> int:
    """Records times passes, the size of one model's progress bar."""
    return sum(len(s) * (1 + (s.qa * (1 + config.rouge))) for s in sets)


def score_set(
    model: TextModel, audit_set: AuditSet, config: AuditConfig, tracker: Tracker, task: int | None
) -> SetScores:
    """One set's per-record scores under `model`."""
    data = audit_set.data
    nll: list[float | None] = []
    lowest: list[float | None] = []
    for start in range(0, len(data), SCORE_CHUNK):
        for scored in model.token_logprobs(data.texts[start : start + SCORE_CHUNK]):
            nll.append(_nll(scored.logprobs))
            lowest.append(mink(scored, config.mink_k))
        tracker.advance(task, len(data.texts[start : start + SCORE_CHUNK]))
    scores = SetScores(nll, lowest)
    if not audit_set.qa:
        return scores
    pairs = [scored_pair(r, t) for r, t in zip(data.records, data.texts, strict=True)]
    scores.answer_nll = []
    for start in range(0, len(pairs), SCORE_CHUNK):
        chunk = pairs[start : start + SCORE_CHUNK]
        for scored in model.token_logprobs([t for _, t in chunk], context=[c for c, _ in chunk]):
            scores.answer_nll.append(_nll(scored.logprobs))
        tracker.advance(task, len(chunk))
    if config.rouge:
        wave = wave_size(model)
        for start in range(0, len(pairs), wave):
            chunk = pairs[start : start + wave]
            requests = [
                GenerationRequest(prompt=q, temperature=0.0, max_new_tokens=config.max_new_tokens, chat=True)
                for q, _ in chunk
            ]
            scores.answers += [texts[0] for texts in model.generate(requests)]
            tracker.advance(task, len(chunk))
        references = [a.strip() for _, a in pairs]
        scores.rouge_l = list(_rouge_recall(references, scores.answers))
    return scores


def score_sets(
    model: TextModel, sets: Sequence[AuditSet], config: AuditConfig, tracker: Tracker, label: str
) -> dict[str, SetScores]:
    task = tracker.start(f"scoring {label}", total=work_units(sets, config), unit="records")
    return {s.role: score_set(model, s, config, tracker, task) for s in sets}


def _difference(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else round(after - before, 6)


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom == 0 or not math.isfinite(top / bottom):
        return None
    return round(top / bottom, 6)


def model_row(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One unlearned model's part of the report, from the summaries of every set under both models."""
    shift = {
        role: {metric: _difference(after[role][metric], before[role][metric]) for metric in METRICS}
        for role in before
    }

    def nll_shift(role: str) -> float | None:
        return shift[role]["nll"] if role in shift else None

    heldout, retain = nll_shift("heldout"), nll_shift("retain")
    return {
        "sets": after,
        "shift": shift,
        "transfer": _ratio(heldout, nll_shift("forget")),
        "damage": retain,
        "selectivity": _difference(heldout, retain),
    }


@dataclass
class AuditPlots:
    """What the figures draw: per-record forget NLLs under each model (the target first)."""

    forget_nll: dict[str, list[float]] = field(default_factory=dict)


def build_report(
    config: AuditConfig,
    sets: Sequence[AuditSet],
    target: tuple[str, dict[str, SetScores]],
    models: Sequence[tuple[str, str, str, dict[str, SetScores]]],
) -> tuple[dict[str, Any], AuditPlots]:
    """The JSON report (shape in docs/loop.md) and the plot data.

    `target` is (model name, scores by role); `models` (report name, spec, model name, scores)."""
    target_name, target_scores = target
    before = {role: scores.summary() for role, scores in target_scores.items()}
    settings = config.settings()
    settings["target"] = target_name
    settings["models"] = {name: {"path": spec, "model": model_name} for name, spec, model_name, _ in models}
    settings["sets"] = {
        s.role: {"path": str(s.data.path), "records": len(s), "format": s.data.format, "qa": s.qa}
        for s in sets
    }
    plots = AuditPlots({"target": [v for v in target_scores["forget"].nll if v is not None]})
    rows = {}
    for name, _spec, _model_name, scores in models:
        rows[name] = model_row(before, {role: s.summary() for role, s in scores.items()})
        plots.forget_nll[name] = [v for v in scores["forget"].nll if v is not None]
    notes = []
    if "heldout" not in before:
        notes.append("no --heldout set: transfer and selectivity are null")
    if "retain" not in before:
        notes.append("no --retain set: damage and selectivity are null")
    report = {"settings": settings, "target": before, "models": rows, "notes": notes}
    return report, plots


def run_audit(
    config: AuditConfig,
    options: ModelOptions,
    load: Callable[[ModelOptions], TextModel],
    *,
    target: TextModel | None = None,
    tracker: Tracker | None = None,
) -> dict[str, Any]:
    """Read and check every set and model path, then score under the target and each unlearned model
    (`load`ed with `options` but `model`), one model in memory at a time."""
    from biforget.io.sets import read_set
    from biforget.models import split_model_spec
    from biforget.models.sources import resolve_model

    tracker = tracker or Tracker()
    names = list(config.names) or [Path(spec).name or spec for spec in config.unlearned]
    if len(set(names)) != len(names) or "target" in names:
        raise UsageError(
            f"the --unlearned models need distinct names other than 'target' ({', '.join(names)}); "
            "give each a --name"
        )
    sets = [
        prepare_set(read_set(path, name=role), role, config.as_text)
        for role, path in config.set_paths().items()
    ]
    for spec in config.unlearned:
        backend, location = split_model_spec(spec)
        if backend == "hf":
            resolve_model(location)  # a folder that is no model fails here, before anything is scored
    purpose = "audit (teacher-forced NLL and Min-K%)"
    if target is None:
        console.info(f"loading target {options.model!r}")
        target = load(options)
    require(target, Capability.LOGPROBS, purpose)
    target_name = target.name
    target_scores = score_sets(target, sets, config, tracker, "target")
    del target
    gc.collect()
    scored = []
    for name, spec in zip(names, config.unlearned, strict=True):
        console.info(f"loading unlearned model {name!r} ({spec})")
        model = load(dataclasses.replace(options, model=spec))
        require(model, Capability.LOGPROBS, purpose)
        scored.append((name, spec, model.name, score_sets(model, sets, config, tracker, name)))
        del model
        gc.collect()
    report, plots = build_report(config, sets, (target_name, target_scores), scored)
    if config.plots is not None:
        from biforget.pipelines.audit_report import write_plots

        report["plots"] = [str(path) for path in write_plots(report, plots, config.plots)]
    return report
