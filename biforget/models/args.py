"""Parsers for `--model-arg KEY=VALUE` values that several backends read; each raises ValueError with
what the value must be, which `parse_model_args` turns into a usage error naming the setting."""

from __future__ import annotations

from biforget.config import ModelOptions
from biforget.errors import UsageError

# The local-weights options (hf, and the fake backend that stands in for it in dry runs).
DTYPES = ("auto", "float32", "bfloat16", "float16", "float64")
QUANTIZE = ("none", "8bit", "4bit")
DEVICES_HELP = "auto, cpu, cuda or cuda:N"


def check_local_options(options: ModelOptions) -> None:
    """--device, --dtype and --quantize as the hf backend reads them; torch-free, so a dry run on the
    fake backend refuses what a real run would."""
    if options.dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, not {options.dtype!r}")
    if options.quantize not in QUANTIZE:
        raise UsageError(f"--quantize must be one of {', '.join(QUANTIZE)}, not {options.quantize!r}")
    device = options.device
    if device not in ("auto", "cpu", "cuda") and not (
        device.startswith("cuda:") and device.removeprefix("cuda:").isdigit()
    ):
        raise UsageError(f"--device must be {DEVICES_HELP}, not {device!r}")


def boolean(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def whole_number(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected a whole number, not {value!r}") from None


def positive_int(value: str) -> int:
    number = whole_number(value)
    if number < 1:
        raise ValueError("must be at least 1")
    return number
