"""`audit`: did unlearning on a forget set remove the domain, or only the set?

Every set is scored under the original target and under each unlearned model, teacher-forced through
the model layer's `token_logprobs`. Per set and model:

- `nll`: mean over records of the record's mean token NLL (nats per token) over its whole text (a
  question/answer record's text is the question and the answer), for every record whatever its shape;
- `mink`: mean over records of Min-K% (the mean of the lowest `--mink-k` share of token log-probs;
  higher means more likely seen in training, so forgetting lowers it);
- on the set's question/answer records (a set may mix them with text records): `answer_nll`, the mean
  token NLL of the answer given the question, in the format `unlearn` trains on (`--qa-format`), and
  `rouge_l` / `rouge_l_f1`, the Porter-stemmed ROUGE-L recall (TOFU, open-unlearning) and F1 (MUSE) of
  the model's greedy answer against the reference answer.

Per unlearned model, `shift` = unlearned minus target for each set and metric (the mean of the
per-record differences), and on the `nll` shifts: `transfer` = heldout / forget (how much of the set's
forgetting reached the domain's knowledge that was not in the set), `damage` = retain, and
`selectivity` = (heldout - retain) / forget. Transfer and selectivity are null unless the forget shift
clears `--min-forget-shift`: a ratio over a shift that did not happen says nothing. Every shift and
derived number has a paired percentile bootstrap interval over records (`--bootstrap` resamples,
`--seed`): records are drawn with replacement within each set, the same draws for every model.
"""

from __future__ import annotations

import dataclasses
import gc
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

METRICS = ("nll", "mink", "answer_nll", "rouge_l", "rouge_l_f1")
# Scored on a set's question/answer records only.
QA_METRICS = ("answer_nll", "rouge_l", "rouge_l_f1")
# Texts per scoring call: enough to fill the backend's batches, few enough for a moving progress bar.
SCORE_CHUNK = 64
# The share of bootstrap resamples an interval spans.
CONFIDENCE = 0.95


def qa_fields(record: Record) -> tuple[str, str] | None:
    """A record's question and answer, stripped, when it has both; else None."""
    question, answer = record.get("question"), record.get("answer")
    if isinstance(question, str) and isinstance(answer, str) and question.strip() and answer.strip():
        return question.strip(), answer.strip()
    return None


def chat_tokenizer(model: TextModel) -> Any | None:
    """The transformers tokenizer of a model that renders prompts with its chat template (as its
    generation does), else None."""
    tokenizer = getattr(model, "hf_tokenizer", None)
    return tokenizer if tokenizer is not None and getattr(model, "use_chat_template", False) else None


def qa_pair(question: str, answer: str, tokenizer: Any | None) -> tuple[str, str]:
    """(context, target) of a question and answer. With a chat tokenizer: the question as a user turn
    with the assistant turn opened (what generation sends), and the answer with the template's end of
    turn, as the frameworks' QA datasets train and query; without: ("question", " answer"), the space
    keeping the answer's first word the token it is after a question in the record's own text."""
    if tokenizer is None:
        return question, " " + answer
    user = [{"role": "user", "content": question}]
    prompt = str(tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True))
    whole = str(
        tokenizer.apply_chat_template([*user, {"role": "assistant", "content": answer}], tokenize=False)
    )
    if whole.startswith(prompt):
        return prompt, whole[len(prompt) :]
    return prompt, answer + str(tokenizer.eos_token or "")


def record_pair(record: Record, text: str, tokenizer: Any | None = None) -> tuple[str, str]:
    """(context, target) of a record: its question and answer (`qa_pair`), or ("", text)."""
    pair = qa_fields(record)
    return qa_pair(pair[0], pair[1], tokenizer) if pair is not None else ("", text)


def qa_tokenizer(model: TextModel, qa_format: str) -> Any | None:
    """The tokenizer whose chat template frames question/answer records, or None for the raw format
    (asked for, or the model has no chat template)."""
    return chat_tokenizer(model) if qa_format == "chat" else None


@dataclass
class AuditSet:
    """One set under audit: its role, the set as read, and the indices of its question/answer records
    (none with `--as-text`)."""

    role: str
    data: EvalSet
    qa_index: list[int]

    def __len__(self) -> int:
        return len(self.data)

    @property
    def qa(self) -> int:
        return len(self.qa_index)


def prepare_set(data: EvalSet, role: str, as_text: bool) -> AuditSet:
    """Every record is scored as text; the question/answer ones also get the QA metrics, whatever else
    the set holds. `as_text` scores none as QA."""
    if as_text:
        return AuditSet(role, data, [])
    return AuditSet(role, data, [i for i, r in enumerate(data.records) if qa_fields(r) is not None])


@dataclass
class SetScores:
    """Per-record values of one set under one model; None where a record has no scored token. The QA
    metrics hold one value per question/answer record, in the set's order (None with none)."""

    nll: list[float | None]
    mink: list[float | None]
    answer_nll: list[float | None] | None = None
    rouge_l: list[float | None] | None = None
    rouge_l_f1: list[float | None] | None = None
    answers: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "records": len(self.nll),
            "qa_records": len(self.answer_nll) if self.answer_nll is not None else 0,
        }
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


def rouge_l(references: Sequence[str], predictions: Sequence[str]) -> tuple[list[float], list[float]]:
    """Per pair, ROUGE-L recall and F1 with the Porter stemmer: recall is what TOFU and open-unlearning
    report, F1 what MUSE reports."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, pred)["rougeL"] for ref, pred in zip(references, predictions, strict=True)]
    return [float(s.recall) for s in scores], [float(s.fmeasure) for s in scores]


def work_units(sets: Sequence[AuditSet], config: AuditConfig) -> int:
    """Records times passes, the size of one model's progress bar."""
    return sum(len(s) + s.qa * (1 + config.rouge) for s in sets)


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
    qa = [qa_fields(data.records[i]) for i in audit_set.qa_index]
    questions = [pair[0] for pair in qa if pair is not None]
    answers = [pair[1] for pair in qa if pair is not None]
    tokenizer = qa_tokenizer(model, config.qa_format)
    pairs = [qa_pair(q, a, tokenizer) for q, a in zip(questions, answers, strict=True)]
    scores.answer_nll = []
    for start in range(0, len(pairs), SCORE_CHUNK):
        chunk = pairs[start : start + SCORE_CHUNK]
        for scored in model.token_logprobs([t for _, t in chunk], context=[c for c, _ in chunk]):
            scores.answer_nll.append(_nll(scored.logprobs))
        tracker.advance(task, len(chunk))
    if config.rouge:
        wave = wave_size(model)
        for start in range(0, len(questions), wave):
            chunk_questions = questions[start : start + wave]
            requests = [
                GenerationRequest(prompt=q, temperature=0.0, max_new_tokens=config.max_new_tokens, chat=True)
                for q in chunk_questions
            ]
            scores.answers += [texts[0] for texts in model.generate(requests)]
            tracker.advance(task, len(chunk_questions))
        recall, f1 = rouge_l(answers, scores.answers)
        scores.rouge_l, scores.rouge_l_f1 = list(recall), list(f1)
    return scores


def score_sets(
    model: TextModel, sets: Sequence[AuditSet], config: AuditConfig, tracker: Tracker, label: str
) -> dict[str, SetScores]:
    task = tracker.start(f"scoring {label}", total=work_units(sets, config), unit="records")
    return {s.role: score_set(model, s, config, tracker, task) for s in sets}


def paired_differences(before: SetScores, after: SetScores, metric: str) -> np.ndarray:
    """Per record, unlearned minus target, over the records both scored."""
    first, second = getattr(before, metric), getattr(after, metric)
    if first is None or second is None:
        return np.zeros(0)
    return np.array(
        [b - a for a, b in zip(first, second, strict=True) if a is not None and b is not None],
        dtype=np.float64,
    )


def resample_means(values: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """The mean of `values` under each row of `draws`, a (resamples, n) matrix of fractions in [0, 1)
    turned into record indices, so sets of any size share one seeded stream of draws."""
    return values[(draws[:, : len(values)] * len(values)).astype(np.int64)].mean(axis=1)


def _interval(replicates: np.ndarray) -> list[float] | None:
    kept = replicates[np.isfinite(replicates)]
    if kept.size == 0:
        return None
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(kept, [tail, 100 - tail])
    return [round(float(low), 6), round(float(high), 6)]


def derived(
    forget: float | None, heldout: float | None, retain: float | None, floor: float
) -> dict[str, float | None]:
    """transfer, damage and selectivity from the three NLL shifts; a ratio over the forget shift only
    where that shift is at least `floor`."""
    cleared = forget is not None and forget >= floor
    transfer = heldout / forget if cleared and heldout is not None else None  # type: ignore[operator]
    selectivity = (
        (heldout - retain) / forget  # type: ignore[operator]
        if cleared and heldout is not None and retain is not None
        else None
    )
    return {
        "transfer": None if transfer is None else round(transfer, 6),
        "damage": retain,
        "selectivity": None if selectivity is None else round(selectivity, 6),
    }


def model_row(
    before: dict[str, SetScores], after: dict[str, SetScores], config: AuditConfig
) -> tuple[dict[str, Any], list[str]]:
    """One unlearned model's part of the report, with its bootstrap intervals, and its notes."""
    shift: dict[str, dict[str, float | None]] = {}
    shift_ci: dict[str, dict[str, list[float] | None]] = {}
    replicates: dict[str, np.ndarray] = {}
    for r, role in enumerate(before):
        shift[role], shift_ci[role] = {}, {}
        # One stream per set, the same for every model, so models are compared on the same resamples.
        draws = np.random.default_rng([config.seed, r]).random((config.bootstrap, len(before[role].nll)))
        for metric in METRICS:
            values = paired_differences(before[role], after[role], metric)
            if values.size == 0:
                shift[role][metric], shift_ci[role][metric] = None, None
                continue
            shift[role][metric] = round(float(values.mean()), 6)
            means = resample_means(values, draws) if config.bootstrap else np.zeros(0)
            shift_ci[role][metric] = _interval(means)
            if metric == "nll":
                replicates[role] = means

    def nll_shift(role: str) -> float | None:
        return shift[role]["nll"] if role in shift else None

    floor = config.min_forget_shift
    row: dict[str, Any] = {
        "sets": {role: s.summary() for role, s in after.items()},
        "shift": shift,
        **derived(nll_shift("forget"), nll_shift("heldout"), nll_shift("retain"), floor),
    }
    ci: dict[str, Any] = {"shift": shift_ci, "transfer": None, "damage": None, "selectivity": None}
    if "retain" in replicates:
        ci["damage"] = _interval(replicates["retain"])
    notes = []
    forget = nll_shift("forget")
    if forget is not None and forget < floor:
        notes.append(
            f"forget NLL shift {forget:+.4f} is below --min-forget-shift {floor:g}: transfer and "
            "selectivity are null (a ratio over a shift that did not happen says nothing)"
        )
    elif "forget" in replicates and config.bootstrap:
        cleared = replicates["forget"] >= floor
        share = float(cleared.mean())
        if share >= CONFIDENCE + (1 - CONFIDENCE) / 2:
            f = np.where(cleared, replicates["forget"], np.nan)
            if "heldout" in replicates and row["transfer"] is not None:
                ci["transfer"] = _interval(replicates["heldout"] / f)
            if "heldout" in replicates and "retain" in replicates and row["selectivity"] is not None:
                ci["selectivity"] = _interval((replicates["heldout"] - replicates["retain"]) / f)
        else:
            notes.append(
                f"the forget NLL shift clears --min-forget-shift {floor:g} in only {share:.0%} of the "
                "bootstrap resamples: transfer and selectivity have no interval"
            )
    row["ci"] = ci
    return row, notes


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
        s.role: {"path": str(s.data.path), "records": len(s), "format": s.data.format, "qa_records": s.qa}
        for s in sets
    }
    plots = AuditPlots({"target": [v for v in target_scores["forget"].nll if v is not None]})
    rows = {}
    notes = []
    for name, _spec, _model_name, scores in models:
        rows[name], own = model_row(target_scores, scores, config)
        notes += [f"{name}: {note}" for note in own]
        plots.forget_nll[name] = [v for v in scores["forget"].nll if v is not None]
    if "heldout" not in before:
        notes.append("no --heldout set: transfer and selectivity are null")
    if "retain" not in before:
        notes.append("no --retain set: damage and selectivity are null")
    heldout_nll = before.get("heldout", {}).get("nll")
    retain_nll = before.get("retain", {}).get("nll")
    if heldout_nll is not None and retain_nll is not None and heldout_nll >= retain_nll:
        # Transfer asks whether forgetting reached what the model knows of the domain; on text it knows
        # no better than unrelated text there is nothing known to reach.
        notes.append(
            f"--heldout is not better known than --retain under the target (NLL {heldout_nll:.3f} vs "
            f"{retain_nll:.3f}): transfer on it says little; hold out text the target knows about the domain"
        )
    for s in sets:
        if 0 < s.qa < len(s):
            notes.append(
                f"--{s.role}: the QA metrics cover its {s.qa} question/answer record(s) of {len(s)}; "
                "nll and mink cover all"
            )
    report = {"settings": settings, "target": before, "models": rows, "notes": notes}
    if "nonmember" in target_scores:
        from biforget.pipelines.audit_leak import leak_change, leak_of

        leak = {"target": leak_of(target_scores)}
        for name, _spec, _model_name, scores in models:
            leak[name] = leak_of(scores)
            leak[name]["change"] = leak_change(leak[name], leak["target"])
        report["leak"] = leak
    return report, plots


# Texts whose token ids tell tokenizers apart: words, digits, accents, CJK, whitespace and markup.
TOKENIZER_PROBE = (
    "The quick brown fox jumps over 13 lazy dogs in 2024.",
    'naïve café – Zürich, 東京, Москва; x² ≥ 0 {"k": [1, 2]}\n\t  <|im_end|></s>',
)


def tokenizer_fingerprint(model: Any) -> tuple[Any, ...] | None:
    """What must match between a target and an unlearned model for their scores to be comparable:
    the vocabulary and special tokens of a transformers tokenizer, else the ids of a probe text."""
    tokenizer = getattr(model, "hf_tokenizer", None)
    if tokenizer is not None:
        vocabulary = tuple(sorted(tokenizer.get_vocab().items()))
        return ("hf", vocabulary, tokenizer.bos_token_id, tokenizer.eos_token_id)
    if Capability.TOKENIZER in getattr(model, "capabilities", ()):
        return ("ids", tuple(tuple(ids) for ids in model.tokenizer.encode(list(TOKENIZER_PROBE))))
    return None


def check_tokenizer(target: tuple[Any, ...] | None, other: Any, spec: str, target_name: str) -> None:
    mine = tokenizer_fingerprint(other)
    if target is not None and mine is not None and mine != target:
        raise UsageError(
            f"--unlearned {spec}: its tokenizer differs from the target's ({target_name}), so its scores "
            "cannot be compared; audit a model unlearned from this target"
        )


def read_role(path: Path, role: str) -> EvalSet:
    from biforget.io.sets import read_set

    try:
        return read_set(path, name=role)
    except InputError as exc:
        # An AUC against no non-member text is a request that cannot be met, not bad data.
        if role == "nonmember" and str(exc).endswith("empty set (no records)"):
            raise UsageError(f"--nonmember {path}: empty set; give text the target never saw") from None
        raise


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
        prepare_set(read_role(path, role), role, config.as_text) for role, path in config.set_paths().items()
    ]
    hf_specs = []
    for spec in config.unlearned:
        backend, location = split_model_spec(spec)
        if backend == "hf":
            resolve_model(location)  # a folder that is no model fails here, before anything is scored
            hf_specs.append((spec, location))
    purpose = "audit (teacher-forced NLL and Min-K%)"
    if target is None:
        console.info(f"loading target {options.model!r}")
        target = load(options)
    require(target, Capability.LOGPROBS, purpose)
    target_name = target.name
    fingerprint = tokenizer_fingerprint(target)
    if fingerprint is not None and fingerprint[0] == "hf":
        from biforget.models.hf import load_tokenizer

        # A tokenizer loads in a second; a mismatch is refused before minutes of scoring.
        for spec, location in hf_specs:
            check_tokenizer(fingerprint, load_tokenizer(location, options), spec, target_name)
    target_scores = score_sets(target, sets, config, tracker, "target")
    del target
    gc.collect()
    scored = []
    for name, spec in zip(names, config.unlearned, strict=True):
        console.info(f"loading unlearned model {name!r} ({spec})")
        model = load(dataclasses.replace(options, model=spec))
        require(model, Capability.LOGPROBS, purpose)
        check_tokenizer(fingerprint, model, spec, target_name)
        scored.append((name, spec, model.name, score_sets(model, sets, config, tracker, name)))
        del model
        gc.collect()
    report, plots = build_report(config, sets, (target_name, target_scores), scored)
    if config.plots is not None:
        from biforget.pipelines.audit_report import write_plots

        report["plots"] = [str(path) for path in write_plots(report, plots, config.plots)]
    return report
