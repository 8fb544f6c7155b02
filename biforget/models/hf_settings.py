"""The hf backend's settings: which shared options it reads and how it checks them.

Kept apart from the backend itself so the checks read on their own; torch is imported here because the
device and dtype answers are torch objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from biforget.config import ModelOptions
from biforget.errors import ModelError
from biforget.models.args import DEVICES_HELP, DTYPES, QUANTIZE, boolean, check_local_options

NAME = "hf"
__all__ = ["DEVICES_HELP", "DTYPES", "NAME", "QUANTIZE", "HFSettings"]
# `--model-arg` keys this backend reads, with their parsers.
MODEL_ARGS: dict[str, Callable[[str], Any]] = {
    "attn_implementation": str,
    "revision": str,
    "device_map": str,
    "trust_remote_code": boolean,
}


@dataclass(frozen=True)
class HFSettings:
    """The shared options this backend reads, validated here rather than for every backend."""

    device: str
    dtype: str
    quantize: str
    extra: dict[str, Any]

    @classmethod
    def from_options(cls, options: ModelOptions) -> HFSettings:
        from biforget.models import parse_model_args

        check_local_options(options)
        return cls(
            options.device, options.dtype, options.quantize, parse_model_args(options, NAME, MODEL_ARGS)
        )


def resolve_device(requested: str) -> str:
    cuda = torch.cuda.is_available()
    if requested == "auto":
        return "cuda" if cuda else "cpu"
    if requested.startswith("cuda"):
        if not cuda:
            raise ModelError(f"--device {requested}: no CUDA GPU is visible to torch; use --device cpu")
        index = int(requested.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ModelError(
                f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) visible; "
                "use --device cuda to shard across all of them"
            )
    return requested


def resolve_dtype(requested: str, device: str) -> torch.dtype:
    if requested == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {
        "float32": torch.float32,
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
        "float64": torch.float64,
    }[requested]


def quantization_config(quantize: str, dtype: torch.dtype) -> Any:
    if quantize == "none":
        return None
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except Exception as exc:
        raise ModelError(
            f"--quantize {quantize} needs a working bitsandbytes ({exc}); use --quantize none"
        ) from None
    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=True,
    )
