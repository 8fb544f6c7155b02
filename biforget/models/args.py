"""Parsers for `--model-arg KEY=VALUE` values that several backends read; each raises ValueError with
what the value must be, which `parse_model_args` turns into a usage error naming the setting."""

from __future__ import annotations


def boolean(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be at least 1")
    return number
