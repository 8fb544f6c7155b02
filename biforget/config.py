"""Every default in one place: frozen dataclasses the CLI, the library and the config file all read.

This module holds the shared model options and the generating commands' settings; `export` and
`evaluate` have theirs in biforget/config_sets.py and the machinery in biforget/config_base.py, all
importable from here.

A `--config FILE` (TOML) holds a `[defaults]` table shared by all commands and one table per command;
flags override the file and the file overrides these defaults. The resolved settings travel in each
record's `gen` field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from biforget.config_base import (
    FromMapping,
    check_finite,
    check_positive,
    check_sampling,
    check_unit,
    command_table,
    config_default_map,
    config_from_mapping,
    flag_for,
    load_config_file,
    option_names,
    parse_float_list,
    parse_min_score,
    parse_name_list,
)
from biforget.config_loop import AUDIT_ROLES, UNLEARN_METHODS, AuditConfig, UnlearnConfig
from biforget.config_sets import DEFAULT_EXPORT_KINDS, EXPORT_FORMATS, EvaluateConfig, ExportConfig
from biforget.errors import UsageError

# The shared machinery and the set commands' settings live in their own modules; this one is where a
# caller finds every settings class and helper by its old name.
__all__ = [
    "AUDIT_ROLES",
    "DEFAULT_EXPORT_KINDS",
    "EXPORT_FORMATS",
    "MIA_SCORES",
    "UNLEARN_METHODS",
    "AuditConfig",
    "EvaluateConfig",
    "ExportConfig",
    "FromMapping",
    "ModelOptions",
    "ProbeConfig",
    "RewriteConfig",
    "SeedsConfig",
    "SynthesizeConfig",
    "UnlearnConfig",
    "check_finite",
    "check_positive",
    "check_sampling",
    "check_unit",
    "command_table",
    "config_default_map",
    "config_from_mapping",
    "flag_for",
    "load_config_file",
    "option_names",
    "parse_float_list",
    "parse_min_score",
    "parse_name_list",
]


@dataclass(frozen=True)
class ModelOptions(FromMapping):
    """How the target model and the embedder are loaded and batched; shared by every command.

    `model` names a backend and a model (`hf:ID`, `fake:echo`; a bare id, path or `default` is hf).
    `device`, `dtype` and `quantize` are read and checked by the backends that use them, and
    `model_args` (`KEY=VALUE`) holds each backend's own settings, which that backend validates.
    """

    model: str = "default"
    device: str = "auto"
    dtype: str = "auto"
    quantize: str = "none"
    # 32 sequences per forward pass: measured on 2 CPU cores, SmolLM2-135M gives ~84 tokens/s at 32
    # against ~12 at batch 1; larger batches add little there and cost memory on long prompts.
    batch_size: int = 32
    chat_template: bool = True
    embedder: str = "default"
    # KEY=VALUE backend settings; only their shape is checked here, the backend reading them checks keys.
    model_args: tuple[str, ...] = ()

    ALIASES: ClassVar[Mapping[str, str]] = {"model_arg": "model_args"}

    def __post_init__(self) -> None:
        check_finite(self)
        keys: set[str] = set()
        for item in self.model_args:
            key, sep, _ = item.partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
                raise UsageError(f"--model-arg must be KEY=VALUE such as revision=main, not {item!r}")
            if key in keys:
                raise UsageError(f"--model-arg {key} is given twice; give it once")
            keys.add(key)
        if self.batch_size < 1:
            raise UsageError("--batch-size must be at least 1")


@dataclass(frozen=True)
class SeedsConfig(FromMapping):
    """`biforget seeds`: the domain's key points, expanded level by level."""

    topic: str = ""
    count: int = 6
    depth: int = 2
    max_points: int = 64
    # Two generations per request, merged in order: a 135M model often repeats itself within one list.
    samples: int = 2
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 160
    # Point names are short, so near-duplicates ("Deathly Hallows: Part 1" / "Part 2") sit above 0.9.
    dedup_threshold: float = 0.9
    seed: int = 0

    # The stage of the records this command writes, and the settings a `--resume` may change: they
    # decide how far a run goes, not what its records say.
    STAGE: ClassVar[str] = "seeds"
    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = ("depth", "max_points")

    def __post_init__(self) -> None:
        check_finite(self)
        if not self.topic.strip():
            raise UsageError("--topic must not be empty")
        check_positive("--count", self.count)
        check_positive("--max-points", self.max_points)
        check_positive("--samples", self.samples)
        check_positive("--max-new-tokens", self.max_new_tokens)
        if self.depth < 0:
            raise UsageError("--depth must be 0 or more")
        check_sampling(self.temperature, self.top_p)
        check_unit("--dedup-threshold", self.dedup_threshold)

    def settings(self) -> dict[str, Any]:
        """The settings that shape the output, for provenance and ids (the topic travels separately)."""
        values = asdict(self)
        values.pop("topic")
        return values


@dataclass(frozen=True)
class SynthesizeConfig(FromMapping):
    """`biforget synthesize`: Stage I, seed-guided synthesis until diversity converges."""

    topic: str | None = None
    templates: tuple[str, ...] = ("info", "qa")
    template_dir: Path | None = None
    temperatures: tuple[float, ...] = (0.6, 0.8, 1.0, 1.2)
    top_p: float = 0.95
    samples: int = 4
    max_new_tokens: int = 300
    rounds: int = 4
    dedup_threshold: float = 0.95
    min_words: int = 12
    # What stops a run (docs/stopping.md): `novelty`, when fewer than `min_novelty` of the last `window`
    # offers came below `novelty_threshold` cosine to everything kept, and only once every point was asked
    # at every temperature; `diversity`, the original scripts' rule, when the remote-clique diversity
    # gains less than `epsilon` between checks. Checks every `check_every` accepted samples write the trace.
    stop: str = "novelty"
    window: int = 200
    novelty_threshold: float = 0.8
    min_novelty: float = 0.05
    check_every: int = 100
    epsilon: float = 0.001
    max_samples: int = 5000
    seed: int = 0

    STAGE: ClassVar[str] = "synthesize"
    STOPS: ClassVar[tuple[str, ...]] = ("novelty", "diversity")
    # Settings that decide only when a run stops, never what a sample says.
    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        "rounds",
        "stop",
        "window",
        "novelty_threshold",
        "min_novelty",
        "check_every",
        "epsilon",
        "max_samples",
    )

    def __post_init__(self) -> None:
        check_finite(self)
        if not self.templates:
            raise UsageError("--templates must name at least one family or template id")
        if not self.temperatures:
            raise UsageError("--temperatures must name at least one value")
        for temperature in self.temperatures:
            check_sampling(temperature, self.top_p)
        for flag, value in (
            ("--samples", self.samples),
            ("--max-new-tokens", self.max_new_tokens),
            ("--rounds", self.rounds),
            ("--check-every", self.check_every),
            ("--window", self.window),
            ("--max-samples", self.max_samples),
            ("--min-words", self.min_words),
        ):
            check_positive(flag, value)
        check_unit("--dedup-threshold", self.dedup_threshold)
        check_unit("--novelty-threshold", self.novelty_threshold)
        check_unit("--min-novelty", self.min_novelty)
        if self.stop not in self.STOPS:
            raise UsageError(f"--stop must be one of {', '.join(self.STOPS)}, not {self.stop!r}")
        if self.novelty_threshold > self.dedup_threshold:
            # A near duplicate is refused unwritten; only if it can never count as new can --resume
            # rebuild the novelty window from the records.
            raise UsageError(
                f"--novelty-threshold ({self.novelty_threshold}) must not exceed --dedup-threshold "
                f"({self.dedup_threshold}): a near duplicate is never new"
            )
        if self.epsilon < 0:
            raise UsageError(f"--epsilon must be 0 or more, not {self.epsilon}")

    def settings(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("topic")
        values["template_dir"] = str(self.template_dir) if self.template_dir else None
        values["templates"] = list(self.templates)
        values["temperatures"] = list(self.temperatures)
        return values


@dataclass(frozen=True)
class RewriteConfig(FromMapping):
    """`biforget rewrite`: meaning-preserving variants of each fact to forget."""

    variants: int = 4
    temperatures: tuple[float, ...] = (0.6, 0.8, 1.0, 1.2)
    top_p: float = 0.95
    # None: three generations per wanted variant, so a weak model gets retries without running forever.
    attempts: int | None = None
    statements: bool = True
    rounds: int = 1
    # Samples of each part (question, answer) a QA attempt draws; the first passing pairing is kept.
    draws: int = 4
    min_similarity: float = 0.6
    max_similarity: float = 0.97
    # Facts are a sentence or two; a rewrite that needs more has wandered off.
    max_new_tokens: int = 96
    seed: int = 0

    # Every setting enters the variants' ids, so a resumed rewrite must repeat them all.
    STAGE: ClassVar[str] = "rewrite"
    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        check_finite(self)
        check_positive("--variants", self.variants)
        check_positive("--rounds", self.rounds)
        check_positive("--draws", self.draws)
        check_positive("--max-new-tokens", self.max_new_tokens)
        if self.attempts is not None and self.attempts < self.variants:
            raise UsageError(f"--attempts ({self.attempts}) must be at least --variants ({self.variants})")
        if not self.temperatures:
            raise UsageError("--temperatures must name at least one value")
        for temperature in self.temperatures:
            check_sampling(temperature, self.top_p)
        bounds = (("--min-similarity", self.min_similarity), ("--max-similarity", self.max_similarity))
        for flag, value in bounds:
            if not -1.0 <= value <= 1.0:
                raise UsageError(f"{flag} must lie in [-1, 1], not {value}")
        if self.min_similarity >= self.max_similarity:
            raise UsageError(
                f"--min-similarity ({self.min_similarity}) must be below --max-similarity "
                f"({self.max_similarity})"
            )

    @property
    def max_attempts(self) -> int:
        return self.attempts if self.attempts is not None else 3 * self.variants

    def settings(self) -> dict[str, Any]:
        values = asdict(self)
        values["attempts"] = self.max_attempts
        values["temperatures"] = list(self.temperatures)
        return values


MIA_SCORES = ("mink", "mink++")


@dataclass(frozen=True)
class ProbeConfig(FromMapping):
    """`biforget probe`: Stage II, jailbreak and membership-inference probing of the domain."""

    topic: str = ""
    jailbreak: int = 1000
    mia: int = 1000
    temperature: float = 0.9
    top_p: float = 0.95
    max_new_tokens: int = 300
    min_relevance: float = 0.25
    dedup_threshold: float = 0.95
    min_words: int = 12
    mink_k: float = 0.2
    mia_score: str = "mink"
    mia_threshold: float | None = None
    mia_calibrate: Path | None = None
    mia_fpr: float = 0.05
    mia_keep: float = 0.5
    seed: int = 0

    STAGE: ClassVar[str] = "probe"
    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = ("jailbreak", "mia")

    def __post_init__(self) -> None:
        check_finite(self)
        if not self.topic.strip():
            raise UsageError("--topic must not be empty")
        for flag, count in (("--jailbreak", self.jailbreak), ("--mia", self.mia)):
            if count < 0:
                raise UsageError(f"{flag} must be 0 or more, not {count}")
        check_positive("--max-new-tokens", self.max_new_tokens)
        check_positive("--min-words", self.min_words)
        check_sampling(self.temperature, self.top_p)
        if not -1.0 <= self.min_relevance <= 1.0:
            raise UsageError(f"--min-relevance must lie in [-1, 1], not {self.min_relevance}")
        check_unit("--dedup-threshold", self.dedup_threshold)
        if not 0.0 < self.mink_k <= 1.0:
            raise UsageError(f"--mink-k must lie in (0, 1], not {self.mink_k}")
        if self.mia_score not in MIA_SCORES:
            raise UsageError(f"--mia-score must be one of {', '.join(MIA_SCORES)}, not {self.mia_score!r}")
        if self.mia_threshold is not None and self.mia_calibrate is not None:
            raise UsageError("--mia-threshold and --mia-calibrate exclude each other: give one")
        if self.mia_threshold is not None and not math.isfinite(self.mia_threshold):
            raise UsageError(f"--mia-threshold must be a finite number, not {self.mia_threshold}")
        if not 0.0 <= self.mia_fpr < 1.0:
            raise UsageError(f"--mia-fpr must lie in [0, 1), not {self.mia_fpr}")
        if not 0.0 < self.mia_keep <= 1.0:
            raise UsageError(f"--mia-keep must lie in (0, 1], not {self.mia_keep}")

    @property
    def mia_mode(self) -> str:
        """How the membership threshold is set: `threshold` (given), `calibrate` or `keep` (top fraction)."""
        if self.mia_threshold is not None:
            return "threshold"
        return "calibrate" if self.mia_calibrate is not None else "keep"

    def settings(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("topic")
        values["mia_calibrate"] = str(self.mia_calibrate) if self.mia_calibrate else None
        return values
