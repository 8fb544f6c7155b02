"""Settings of the commands that read sets and load no generator: `export` and `evaluate`."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from biforget.config_base import FromMapping, check_finite, check_positive
from biforget.errors import UsageError
from biforget.formats import FORMATS

EXPORT_FORMATS = tuple(FORMATS)


BENCHMARKS = ("tofu", "muse", "wmdp")


# Records other than points, when --kinds is not given: points are lists of topics, not forget text.
DEFAULT_EXPORT_KINDS = ("sample", "fact", "variant", "statement")


# `--shape`: question/answer records (a `question` and an `answer`) or text-only ones.
EXPORT_SHAPES = ("qa", "text")


# Config names open-unlearning ships: its experiments under configs/experiment/unlearn/<benchmark>/ and
# dataset configs under configs/data/datasets/ outside the benchmark prefixes below. An export named like
# one would overwrite it when copied in, or shadow it.
OU_SHIPPED_NAMES = frozenset(
    name.lower()
    for name in (
        "default",
        "idk",
        "lora",
        "sibl",
        "superloss",
        "scalability",
        "sustainabilty",
        "sustainability",
        "default_superloss",
        "scalability_superloss",
        "sustainabilty_superloss",
        "FACTUAL_QA",
        "FactualDataEdge",
    )
)


# The framework names every dataset config of a benchmark with its prefix (TOFU_QA_retain, MUSE_forget,
# WMDP_forget, ...) and keeps adding to them, so the prefixes are its own.
OU_SHIPPED_PREFIXES = ("tofu_", "muse_", "wmdp_", "pistol_")


@dataclass(frozen=True)
class ExportConfig(FromMapping):
    """`biforget export`: a forget set written in the layout a downstream framework reads."""

    format: str = "muse"
    out: Path = Path("export")
    force: bool = False
    # None: every record but points (records without a `kind` included).
    kinds: tuple[str, ...] | None = None
    # Empty: every stage. `probe` matches `probe/jailbreak` and `probe/mia`.
    stages: tuple[str, ...] = ()
    # None: both shapes; "qa" or "text" keeps one (EXPORT_SHAPES).
    shape: str | None = None
    min_scores: tuple[tuple[str, float], ...] = ()
    keep_unscored: bool = False
    task_id: bool = False
    # open-unlearning only; None picks tofu for question/answer sets and muse for text sets.
    benchmark: str | None = None
    name: str = "biforget"
    # open-unlearning only: the path the dataset YAML points at; None is DIR/forget.jsonl, absolute.
    data_path: str | None = None

    ALIASES: ClassVar[Mapping[str, str]] = {"min_score": "min_scores"}

    def __post_init__(self) -> None:
        check_finite(self)
        if self.format not in EXPORT_FORMATS:
            raise UsageError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, not {self.format!r}")
        if self.kinds is not None:
            if not self.kinds:
                raise UsageError("--kinds must name at least one kind")
            for kind in self.kinds:
                if kind not in ("point", *DEFAULT_EXPORT_KINDS):
                    known = ", ".join(("point", *DEFAULT_EXPORT_KINDS))
                    raise UsageError(f"--kinds: unknown kind {kind!r} (known: {known})")
        if self.shape is not None and self.shape not in EXPORT_SHAPES:
            raise UsageError(f"--shape must be one of {', '.join(EXPORT_SHAPES)}, not {self.shape!r}")
        for name, value in self.min_scores:
            if not name or not math.isfinite(value):
                raise UsageError(f"--min-score needs NAME=VALUE with a finite number, not {name}={value}")
        if self.keep_unscored and not self.min_scores:
            raise UsageError("--keep-unscored only applies with --min-score")
        if self.benchmark is not None:
            if self.benchmark not in BENCHMARKS:
                known = ", ".join(BENCHMARKS)
                raise UsageError(f"--benchmark must be one of {known}, not {self.benchmark!r}")
            if self.format != "open-unlearning":
                raise UsageError("--benchmark applies to --format open-unlearning only")
        if self.data_path is not None and self.format != "open-unlearning":
            raise UsageError("--data-path applies to --format open-unlearning only")
        if self.task_id and self.format != "tofu":
            raise UsageError("--task-id applies to --format tofu only")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", self.name):
            raise UsageError(
                f"--name must start with a letter and hold only letters, digits, _ and -, not {self.name!r}"
            )
        # Compared without case: on a case-insensitive file system `tofu_qa_retain.yaml` replaces the
        # framework's `TOFU_QA_retain.yaml`.
        folded = self.name.lower()
        if self.format == "open-unlearning" and (
            folded in OU_SHIPPED_NAMES or folded.startswith(OU_SHIPPED_PREFIXES)
        ):
            raise UsageError(
                f"--name {self.name!r} is taken by open-unlearning's own configs (its experiments' names, "
                "and dataset names starting TOFU_, MUSE_, WMDP_ or PISTOL_): copied into the framework, the "
                "export would overwrite or shadow them; pick another name, e.g. HP_forget"
            )


@dataclass(frozen=True)
class EvaluateConfig(FromMapping):
    """`biforget evaluate`: relevance, diversity, efficiency, overlap and coverage of sets side by side."""

    # None: the records' own `topic` field when every record that has one agrees.
    topic: str | None = None
    # The paper's chunk size for efficiency and relevance.
    chunk_tokens: int = 128
    # Records per set for diversity, topic-free statistics and coverage: 2000 keeps the exact
    # all-pairs diversity at 2M pairs (a second or two) while its sampling error stays below 0.001.
    sample_size: int = 2000
    relevance_seeds: int = 4
    # The paper's relevance setting: up to 1,000 sampled chunks per set, the 200 nearest to the topic.
    relevance_chunks: int = 1000
    relevance_nearest: int = 200
    clusters: int = 16
    overlap_threshold: float = 0.8
    top_overlaps: int = 5
    # Plain-text sets: one document per line instead of per paragraph.
    lines: bool = False
    names: tuple[str, ...] = ()
    retain: Path | None = None
    drop_overlap: bool = False
    output: Path | None = None
    plots: Path | None = None
    trace: Path | None = None
    seed: int = 0

    ALIASES: ClassVar[Mapping[str, str]] = {"name": "names"}

    def __post_init__(self) -> None:
        check_finite(self)
        if self.topic is not None and not self.topic.strip():
            raise UsageError("--topic must not be empty")
        for flag, value in (
            ("--chunk-tokens", self.chunk_tokens),
            ("--sample-size", self.sample_size),
            ("--relevance-seeds", self.relevance_seeds),
            ("--relevance-chunks", self.relevance_chunks),
            ("--relevance-nearest", self.relevance_nearest),
            ("--clusters", self.clusters),
            ("--top-overlaps", self.top_overlaps),
        ):
            check_positive(flag, value)
        if self.sample_size < 2:
            raise UsageError(
                f"--sample-size must be at least 2 (diversity compares pairs), not {self.sample_size}"
            )
        if self.relevance_nearest > self.relevance_chunks:
            raise UsageError(
                f"--relevance-nearest ({self.relevance_nearest}) must not exceed "
                f"--relevance-chunks ({self.relevance_chunks})"
            )
        if not -1.0 <= self.overlap_threshold <= 1.0:
            raise UsageError(f"--overlap-threshold must lie in [-1, 1], not {self.overlap_threshold}")
        if self.drop_overlap and self.retain is None:
            raise UsageError("--drop-overlap needs --retain FILE to measure the overlap against")
        if self.drop_overlap and self.output is None:
            raise UsageError("--drop-overlap needs -o FILE for the set without its overlapping records")
        if self.output is not None and not self.drop_overlap:
            raise UsageError("-o applies with --drop-overlap only; the report itself goes to stdout")
        if any(not name.strip() for name in self.names):
            raise UsageError("--name must not be empty")

    def settings(self) -> dict[str, Any]:
        values = asdict(self)
        for key in ("retain", "output", "plots", "trace"):
            values[key] = str(values[key]) if values[key] is not None else None
        values["names"] = list(self.names)
        return values
