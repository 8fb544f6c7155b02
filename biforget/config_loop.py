"""Settings of `unlearn` and `audit`: the loop from a forget set to what unlearning on it removes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from biforget.config_base import FromMapping, check_finite, check_positive
from biforget.errors import UsageError

UNLEARN_METHODS = ("ga", "gd", "npo")


@dataclass(frozen=True)
class UnlearnConfig(FromMapping):
    """`biforget unlearn`: a reference unlearner (GA, GD, NPO) for smoke tests and comparing forget sets."""

    method: str = "ga"
    out: Path = Path("unlearned")
    # gd only: descent on this set beside ascent on the forget set.
    retain: Path | None = None
    # The settings of a first measurement on the default model: 79 self-written Alice samples, GA, 30 steps.
    steps: int = 30
    lr: float = 1e-5
    batch_size: int = 4
    max_length: int = 256
    # NPO's inverse temperature; 0.1 is the NPO paper's and open-unlearning's default.
    beta: float = 0.1
    # gd: weight of the retain NLL against the forget term.
    retain_weight: float = 1.0
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
        if self.method != "gd" and self.retain is not None:
            raise UsageError(f"--retain applies to --method gd only, not {self.method}")

    def settings(self) -> dict[str, Any]:
        values = asdict(self)
        values["out"] = str(self.out)
        values["retain"] = str(self.retain) if self.retain is not None else None
        return values


AUDIT_ROLES = ("forget", "heldout", "retain", "paraphrases")


@dataclass(frozen=True)
class AuditConfig(FromMapping):
    """`biforget audit`: how far each unlearned model forgot each set, against the original target."""

    unlearned: tuple[str, ...] = ()
    forget: Path | None = None
    heldout: Path | None = None
    retain: Path | None = None
    paraphrases: Path | None = None
    # One per --unlearned, in order; default: the folder's name.
    names: tuple[str, ...] = ()
    mink_k: float = 0.2
    # QA records: the greedy answer's length budget for ROUGE-L; answers in QA sets are a sentence or two.
    max_new_tokens: int = 64
    rouge: bool = True
    # Score every record as text, so a set mixing QA and text records can be audited as one.
    as_text: bool = False
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

    def set_paths(self) -> dict[str, Path]:
        """The given sets by role, in report order."""
        found = {role: getattr(self, role) for role in AUDIT_ROLES}
        return {role: path for role, path in found.items() if path is not None}

    def settings(self) -> dict[str, Any]:
        values = asdict(self)
        for key in ("forget", "heldout", "retain", "paraphrases", "plots"):
            values[key] = str(values[key]) if values[key] is not None else None
        values["unlearned"] = list(self.unlearned)
        values["names"] = list(self.names)
        return values
