"""Settings of `unlearn` and `audit`: the loop from a forget set to what unlearning on it removes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from biforget.config_base import FromMapping, check_finite, check_positive
from biforget.errors import UsageError

UNLEARN_METHODS = ("ga", "gd", "npo")
# How a question/answer record is framed for training and for audit's answer NLL: "chat" (the question as
# a user turn of the model's chat template, the answer with its end-of-turn token, as generation and the
# frameworks' QA datasets query it) or "raw" ("question answer", no template, no end token).
QA_FORMATS = ("chat", "raw")


def check_qa_format(value: str) -> None:
    if value not in QA_FORMATS:
        raise UsageError(f"--qa-format must be one of {', '.join(QA_FORMATS)}, not {value!r}")


@dataclass(frozen=True)
class UnlearnConfig(FromMapping):
    """`biforget unlearn`: a reference unlearner (GA, GD, NPO) for smoke tests and comparing forget sets."""

    method: str = "ga"
    out: Path = Path("unlearned")
    # gd (needed) and npo (optional, as open-unlearning's NPO): descent on this set beside the forget term.
    retain: Path | None = None
    # The settings of a first measurement on the default model: 79 self-written Alice samples, GA, 30 steps.
    steps: int = 30
    lr: float = 1e-5
    batch_size: int = 4
    max_length: int = 256
    # NPO's inverse temperature; 0.1 is the NPO paper's and open-unlearning's default.
    beta: float = 0.1
    # gd and npo with --retain: weight of the retain NLL against the forget term (open-unlearning's
    # alpha, 1 by default there too).
    retain_weight: float = 1.0
    qa_format: str = "chat"
    lora: bool = False
    lora_rank: int = 8
    force: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        check_finite(self)
        if self.method not in UNLEARN_METHODS:
            raise UsageError(f"--method must be one of {', '.join(UNLEARN_METHODS)}, not {self.method!r}")
        for flag, value in (
            ("--steps", self.steps),
            ("--batch-size", self.batch_size),
            ("--lora-rank", self.lora_rank),
        ):
            check_positive(flag, value)
        if self.max_length < 2:
            raise UsageError(
                f"--max-length must be at least 2 (a token and its successor), not {self.max_length}"
            )
        for flag, number in (("--lr", self.lr), ("--beta", self.beta)):
            if number <= 0:
                raise UsageError(f"{flag} must be above 0, not {number}")
        if self.retain_weight < 0:
            raise UsageError(f"--retain-weight must be 0 or more, not {self.retain_weight}")
        if not 0 <= self.seed < 2**32:
            # The trainer seeds numpy, whose seeds are unsigned 32-bit numbers.
            raise UsageError(f"--seed must lie in [0, {2**32 - 1}], not {self.seed}")
        if self.method == "gd" and self.retain is None:
            raise UsageError(
                "--method gd needs --retain FILE (the set to keep while ascending on the forget set)"
            )
        if self.method == "ga" and self.retain is not None:
            raise UsageError("--retain applies to --method gd and npo, not ga (gd is ga with a retain term)")
        check_qa_format(self.qa_format)

    def settings(self) -> dict[str, Any]:
        values = asdict(self)
        values["out"] = str(self.out)
        values["retain"] = str(self.retain) if self.retain is not None else None
        return values


AUDIT_ROLES = ("forget", "heldout", "retain", "paraphrases", "nonmember")


@dataclass(frozen=True)
class AuditConfig(FromMapping):
    """`biforget audit`: how far each unlearned model forgot each set, against the original target."""

    unlearned: tuple[str, ...] = ()
    forget: Path | None = None
    heldout: Path | None = None
    retain: Path | None = None
    paraphrases: Path | None = None
    # Text the target never saw: the other side of the membership AUCs (the `leak` block).
    nonmember: Path | None = None
    # One per --unlearned, in order; default: the folder's name.
    names: tuple[str, ...] = ()
    mink_k: float = 0.2
    # QA records: the greedy answer's length budget for ROUGE-L; answers in QA sets are a sentence or two.
    max_new_tokens: int = 64
    rouge: bool = True
    # Score no record as QA: only nll and mink, on every record.
    as_text: bool = False
    # How answer_nll frames a QA record; the same choice as `unlearn --qa-format`.
    qa_format: str = "chat"
    # Transfer and selectivity divide by the forget NLL shift; below this (nats/token) they are null.
    min_forget_shift: float = 0.05
    # Resamples of the paired bootstrap over records behind every interval; 0 gives none.
    bootstrap: int = 1000
    seed: int = 0
    plots: Path | None = None

    ALIASES: ClassVar[Mapping[str, str]] = {"name": "names"}

    def __post_init__(self) -> None:
        check_finite(self)
        if not self.unlearned:
            raise UsageError("give at least one --unlearned DIR (a model folder `biforget unlearn` wrote)")
        if self.forget is None:
            raise UsageError("--forget SET is required: the set the models were unlearned on")
        if self.names and len(self.names) != len(self.unlearned):
            raise UsageError(
                f"--name given {len(self.names)} time(s) for {len(self.unlearned)} --unlearned model(s); "
                "name every model or none"
            )
        if any(not name.strip() for name in self.names):
            raise UsageError("--name must not be empty")
        if not 0.0 < self.mink_k <= 1.0:
            raise UsageError(f"--mink-k must lie in (0, 1], not {self.mink_k}")
        check_positive("--max-new-tokens", self.max_new_tokens)
        check_qa_format(self.qa_format)
        if self.min_forget_shift <= 0:
            raise UsageError(f"--min-forget-shift must be above 0, not {self.min_forget_shift}")
        if self.bootstrap < 0:
            raise UsageError(f"--bootstrap must be 0 or more, not {self.bootstrap}")

    def set_paths(self) -> dict[str, Path]:
        """The given sets by role, in report order."""
        found = {role: getattr(self, role) for role in AUDIT_ROLES}
        return {role: path for role, path in found.items() if path is not None}

    def settings(self) -> dict[str, Any]:
        values = asdict(self)
        for key in (*AUDIT_ROLES, "plots"):
            values[key] = str(values[key]) if values[key] is not None else None
        values["unlearned"] = list(self.unlearned)
        values["names"] = list(self.names)
        return values
