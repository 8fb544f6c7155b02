"""The export formats, one module each: adding a format is a module with `write(staging, items,
config)` (see biforget/formats/base.py) and one line here. Nothing is imported until a format is used,
so the settings can name the formats without loading any writer."""

from __future__ import annotations

import importlib
from types import ModuleType

FORMATS = {
    "muse": "biforget.formats.muse",
    "open-unlearning": "biforget.formats.open_unlearning",
    "rmu": "biforget.formats.rmu",
    "dusk": "biforget.formats.dusk",
    "tofu": "biforget.formats.tofu",
    "hf": "biforget.formats.hf",
    "csv": "biforget.formats.csvfile",
    "txt": "biforget.formats.txt",
}


def load_format(name: str) -> ModuleType:
    """The module writing format `name` (a key of FORMATS; ExportConfig has checked it is one)."""
    return importlib.import_module(FORMATS[name])


def shape(name: str) -> str:
    """What records the format takes: `qa` (question/answer only), `one` (one shape a set) or `any`."""
    return str(getattr(load_format(name), "SHAPE", "any"))
