"""Every default in one place: frozen dataclasses the CLI, the library and the config file all read.

A `--config FILE` (TOML) holds a `[defaults]` table shared by all commands and one table per command;
flags override the file and the file overrides these defaults. The resolved settings travel in each
record's `gen` field.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from biforget.errors import UsageError

DEVICES_HELP = "auto, cpu, cuda or cuda:N"
DTYPES = ("auto", "float32", "bfloat16", "float16")
QUANTIZE = ("none", "8bit", "4bit")


@dataclass(frozen=True)
class ModelOptions:
    """How the target model and the embedder are loaded and batched; shared by every command."""

    model: str = "default"
    device: str = "auto"
    dtype: str = "auto"
    quantize: str = "none"
    # 32 sequences per forward pass: measured on 2 CPU cores, SmolLM2-135M gives ~84 tokens/s at 32
    # against ~12 at batch 1; larger batches add little there and cost memory on long prompts.
    batch_size: int = 32
    chat_template: bool = True
    embedder: str = "default"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.quantize not in QUANTIZE:
            raise UsageError(f"--quantize must be one of {', '.join(QUANTIZE)}, not {self.quantize!r}")
        if self.batch_size < 1:
            raise UsageError("--batch-size must be at least 1")
        device = self.device
        if device not in ("auto", "cpu", "cuda") and not (
            device.startswith("cuda:") and device.removeprefix("cuda:").isdigit()
        ):
            raise UsageError(f"--device must be {DEVICES_HELP}, not {device!r}")


@dataclass(frozen=True)
class SeedsConfig:
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

    def __post_init__(self) -> None:
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
        raise UsageError(f"{flag} must be comma-separated numbers such as 0.6,0.8,1.0, not {value!r}") from None
    if not items:
        raise UsageError(f"{flag} must name at least one value")
    return items


@dataclass(frozen=True)
class SynthesizeConfig:
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

    def __post_init__(self) -> None:
        if not self.templates:
            raise UsageError("--templates must name at least one family or template id")
        if not self.temperatures:
            raise UsageError("--temperatures must name at least one value")
        for temperature in self.temperatures:
            check_sampling(temperature, self.top_p)
        for flag, value in (("--samples", self.samples), ("--max-new-tokens", self.max_new_tokens),
                            ("--rounds", self.rounds), ("--check-every", self.check_every),
                            ("--max-samples", self.max_samples), ("--min-words", self.min_words)):
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
