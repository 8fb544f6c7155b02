"""Every default in one place: frozen dataclasses the CLI, the library and the config file all read.

A `--config FILE` (TOML) holds a `[defaults]` table shared by all commands and one table per command;
flags override the file and the file overrides these defaults. The resolved settings travel in each
record's `gen` field.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, Field, asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from biforget.errors import UsageError

ConfigT = TypeVar("ConfigT")


def flag_for(config_type: type, name: str) -> str:
    """The command-line flag of a setting: `max_points` is `--max-points`, an aliased field its alias."""
    aliases: Mapping[str, str] = getattr(config_type, "ALIASES", {})
    option = next((alias for alias, field_name in aliases.items() if field_name == name), name)
    return "--" + option.replace("_", "-")


def check_finite(config: Any) -> None:
    """No NaN or infinity in any number: they pass every range check (NaN compares false) and end up
    in records as `NaN`/`Infinity`, which is not JSON."""
    for item in fields(config):
        values = getattr(config, item.name)
        stack = list(values) if isinstance(values, tuple) else [values]
        while stack:
            value = stack.pop()
            if isinstance(value, tuple):
                stack.extend(value)
            elif isinstance(value, float) and not math.isfinite(value):
                raise UsageError(f"{flag_for(type(config), item.name)} must be a finite number, not {value}")


def _coerce(config_type: type, item: Field[Any], value: Any) -> Any:
    """A value from a TOML table or the CLI's parsed options, in the field's own type."""
    flag = flag_for(config_type, item.name)
    kind = str(item.type)
    if value is None:
        if "None" in kind:
            return None
        if kind.startswith("tuple"):
            return _default(item)
        raise UsageError(f"{flag} needs a value")
    if kind.startswith("tuple[float"):
        return parse_float_list(flag, value)
    if kind.startswith("tuple[tuple[str, float]"):
        items = [value] if isinstance(value, str) else list(value)
        return tuple(parse_min_score(str(entry)) for entry in items)
    if kind.startswith("tuple[str"):
        if isinstance(value, str):
            return parse_name_list(flag, value)
        return tuple(str(entry) for entry in value)
    if kind.startswith("Path"):
        return Path(value)
    if kind.startswith("bool"):
        if not isinstance(value, bool):
            raise UsageError(f"{flag} must be true or false, not {value!r}")
        return value
    if kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{flag} must be a whole number, not {value!r}")
        return value
    if kind.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"{flag} must be a number, not {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise UsageError(f"{flag} must be text, not {value!r}")
    return value


def _default(item: Field[Any]) -> Any:
    if item.default is not MISSING:
        return item.default
    return item.default_factory()  # type: ignore[operator]


def config_from_mapping(
    config_type: type[ConfigT], mapping: Mapping[str, Any], *, strict: bool = True
) -> ConfigT:
    """A settings dataclass from option-style keys: a TOML table (dashes or underscores), or the options
    a command parsed. `strict=False` ignores keys the dataclass does not have (other commands' options,
    the model options beside a command's own); values are checked as flags are."""
    known = {item.name: item for item in fields(config_type)}  # type: ignore[arg-type]
    aliases: Mapping[str, str] = getattr(config_type, "ALIASES", {})
    values: dict[str, Any] = {}
    for key, value in mapping.items():
        name = aliases.get(_normalise_key(key), _normalise_key(key))
        if name not in known:
            if strict:
                raise UsageError(f"unknown setting {key!r} for {config_type.__name__}")
            continue
        values[name] = _coerce(config_type, known[name], value)
    return config_type(**values)


class FromMapping:
    """`from_mapping` on every settings dataclass, so a library user builds them from the same TOML."""

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *, strict: bool = True) -> Self:
        return config_from_mapping(cls, mapping, strict=strict)


def command_table(path: Path, command: str) -> dict[str, Any]:
    """The file's settings for one command: `[defaults]`, then the command's own table over it.

    `SeedsConfig.from_mapping(table, strict=False)` and `ModelOptions.from_mapping(table, strict=False)`
    then give a library run the settings `biforget seeds --config FILE` would use."""
    tables = load_config_file(path)
    return {**tables.get("defaults", {}), **tables.get(command, {})}


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
        for item in self.model_args:
            key, sep, _ = item.partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
                raise UsageError(f"--model-arg must be KEY=VALUE such as revision=main, not {item!r}")
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


def check_positive(flag: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"{flag} must be at least 1, not {value}")


def check_unit(flag: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{flag} must lie in [0, 1], not {value}")


def check_sampling(temperature: float, top_p: float) -> None:
    if temperature < 0:
        raise UsageError(f"temperature must be 0 or more, not {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise UsageError(f"--top-p must lie in (0, 1], not {top_p}")


def option_names(config_type: type) -> set[str]:
    return {field.name for field in fields(config_type)}


def _normalise_key(key: str) -> str:
    return key.replace("-", "_")


def load_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """Parse the TOML file into `{table: {key: value}}` with option-style keys normalised."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: config file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    tables: dict[str, dict[str, Any]] = {}
    for name, table in raw.items():
        if not isinstance(table, dict):
            raise UsageError(f"{path}: top-level key {name!r} must be a table such as [defaults] or [seeds]")
        tables[name] = {_normalise_key(key): value for key, value in table.items()}
    return tables


def config_default_map(
    path: Path, commands: Mapping[str, Sequence[str]], *, file_only: Sequence[str] = ("config",)
) -> dict[str, dict[str, Any]]:
    """Defaults per command from the file: `[defaults]` first, then the command's own table.

    `commands` maps each command to the option names it takes. A key no command takes, or a key in a
    command's table that the command does not take, is an error that names it.
    """
    tables = load_config_file(path)
    every_option = {name for names in commands.values() for name in names} - set(file_only)
    for table, values in tables.items():
        if table != "defaults" and table not in commands:
            known = ", ".join(["defaults", *sorted(commands)])
            raise UsageError(f"{path}: unknown table [{table}] (known: {known})")
        accepted = every_option if table == "defaults" else set(commands[table]) - set(file_only)
        for key in values:
            if key not in accepted:
                raise UsageError(f"{path}: unknown key {key!r} in [{table}]")
    shared = tables.get("defaults", {})
    result: dict[str, dict[str, Any]] = {}
    for command, names in commands.items():
        merged = {key: value for key, value in shared.items() if key in names}
        merged.update(tables.get(command, {}))
        if merged:
            result[command] = merged
    return result


def parse_float_list(flag: str, value: str | Sequence[float]) -> tuple[float, ...]:
    """`0.6,0.8,1.0` or a sequence of numbers, as a tuple; an unparsable item is a usage error."""
    if not isinstance(value, str):
        return tuple(float(v) for v in value)
    try:
        items = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise UsageError(
            f"{flag} must be comma-separated numbers such as 0.6,0.8,1.0, not {value!r}"
        ) from None
    if not items:
        raise UsageError(f"{flag} must name at least one value")
    return items


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
    check_every: int = 100
    epsilon: float = 0.001
    max_samples: int = 5000
    seed: int = 0

    STAGE: ClassVar[str] = "synthesize"
    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = ("rounds", "check_every", "epsilon", "max_samples")

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
            ("--max-samples", self.max_samples),
            ("--min-words", self.min_words),
        ):
            check_positive(flag, value)
        check_unit("--dedup-threshold", self.dedup_threshold)
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


EXPORT_FORMATS = ("muse", "open-unlearning", "rmu", "dusk", "tofu", "hf", "csv", "txt")
BENCHMARKS = ("tofu", "muse", "wmdp")
# Records other than points, when --kinds is not given: points are lists of topics, not forget text.
DEFAULT_EXPORT_KINDS = ("sample", "fact", "variant", "statement")
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


def parse_min_score(value: str) -> tuple[str, float]:
    """`mink=-3.5` as `("mink", -3.5)`; anything else is a usage error naming the flag."""
    name, sep, number = value.partition("=")
    try:
        threshold = float(number)
    except ValueError:
        threshold = math.nan
    if not sep or not name.strip() or not math.isfinite(threshold):
        raise UsageError(f"--min-score must be NAME=VALUE such as mink=-3.5, not {value!r}")
    return name.strip(), threshold


def parse_name_list(flag: str, value: str | None) -> tuple[str, ...] | None:
    """`sample,variant` as a tuple of names; None stays None (the option was not given)."""
    if value is None:
        return None
    items = tuple(part.strip() for part in value.split(",") if part.strip())
    if not items:
        raise UsageError(f"{flag} must name at least one value")
    return items


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


UNLEARN_METHODS = ("ga", "gd", "npo")


@dataclass(frozen=True)
class UnlearnConfig(FromMapping):
    """`biforget unlearn`: a reference unlearner (GA, GD, NPO) for smoke tests and comparing forget sets."""

    method: str = "ga"
    out: Path = Path("unlearned")
    # gd only: descent on this set beside ascent on the forget set.
    retain: Path | None = None
    # The settings of the first measurement of a self-written Alice set on the default model (SPEC 6b).
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
