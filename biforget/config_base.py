"""The machinery every settings dataclass shares: flags named from fields, value checks, `from_mapping`
and the `--config FILE` (TOML) reader. The command settings themselves live in biforget/config.py."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any, Self, TypeVar

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
        normalised: dict[str, Any] = {}
        for key, value in table.items():
            if _normalise_key(key) in normalised:
                raise UsageError(
                    f"{path}: [{name}] sets {_normalise_key(key)!r} twice (as - and as _); keep one"
                )
            normalised[_normalise_key(key)] = value
        tables[name] = normalised
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
    parts = value.split(",")
    if len(parts) > 1 and not all(part.strip() for part in parts):
        raise UsageError(f"{flag} has an empty item in {value!r}; give numbers such as 0.6,0.8,1.0")
    try:
        items = tuple(float(part) for part in parts if part.strip())
    except ValueError:
        raise UsageError(
            f"{flag} must be comma-separated numbers such as 0.6,0.8,1.0, not {value!r}"
        ) from None
    if not items:
        raise UsageError(f"{flag} must name at least one value")
    return items


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
