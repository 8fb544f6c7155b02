"""Hugging Face library settings shared by the transformers backend, the embedders and the model cache.

No torch import here: the cache and the tokenizer-only path of `evaluate` use it too.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from typing import Any
from urllib.parse import urlparse

from biforget.errors import ModelError


def quiet_hf_libraries(*, offline: bool) -> None:
    """Silence other libraries' progress bars and info logs; they would otherwise share stderr with ours.

    The hub's offline switch is read when huggingface_hub is first imported, so this runs before that.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", module="transformers")
    warnings.filterwarnings("ignore", module="bitsandbytes")
    # bitsandbytes reports through `logging`, not `warnings`: on CPU its 8-bit matmul logs a float16-cast
    # warning on every call of every quantised layer (hundreds of stderr lines per forward pass), and its
    # import logs a missing optional `kernels` package. Keep its errors only.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host resolves and accepts a connection; a closed network fails in milliseconds
    here, where the hub client would retry for most of a minute."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    port = urlparse(endpoint).port or 443
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def first_line(exc: BaseException, limit: int = 400) -> str:
    """The library's message on one line: its lines joined (a first line such as "...from one of:"
    says nothing alone), cut at `limit` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def from_pretrained(loader: Any, location: str, name: str, *, local: bool, **kwargs: Any) -> Any:
    """Load from a local source, or from a hub id: the local HF cache first, then the hub if reachable."""
    if local:
        return loader.from_pretrained(location, **kwargs)
    try:
        return loader.from_pretrained(location, local_files_only=True, **kwargs)
    except OSError:
        if not hub_reachable():
            raise ModelError(
                f"cannot load model {name!r}: not in the local Hugging Face cache and the hub is "
                "unreachable; pass a local folder or .gguf file, or --model default"
            ) from None
    return loader.from_pretrained(location, **kwargs)
