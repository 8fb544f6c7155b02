"""biforget: forget sets for LLM unlearning, written by the target model itself.

The library API mirrors the CLI: `biforget.seeds(SeedsConfig(topic=...))` yields the records that
`biforget seeds --topic ...` prints. Names are resolved lazily so importing the package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "seeds": "biforget.api",
    "load_models": "biforget.api",
    "ModelOptions": "biforget.config",
    "SeedsConfig": "biforget.config",
    "synthesize": "biforget.api",
    "SynthesizeConfig": "biforget.config",
    "rewrite": "biforget.api",
    "RewriteConfig": "biforget.config",
    "read_facts": "biforget.io.facts",
    "probe": "biforget.api",
    "ProbeConfig": "biforget.config",
    "export": "biforget.api",
    "ExportConfig": "biforget.config",
    "evaluate": "biforget.api",
    "EvaluateConfig": "biforget.config",
    "unlearn": "biforget.api_loop",
    "UnlearnConfig": "biforget.config",
    "audit": "biforget.api_loop",
    "AuditConfig": "biforget.config",
    "load_text_model": "biforget.models",
    "load_embedder": "biforget.models",
    "RecordWriter": "biforget.io.jsonl",
    "open_input": "biforget.io.jsonl",
    "iter_records": "biforget.io.jsonl",
    "read_all": "biforget.io.jsonl",
    "BiforgetError": "biforget.errors",
    "InputError": "biforget.errors",
    "ModelError": "biforget.errors",
    "UsageError": "biforget.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'biforget' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
