"""The package's shape: the library names every command, no module-level import circle, template
problems are TemplateErrors."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import biforget
from biforget.errors import TemplateError
from biforget.pipelines import rewrite_plan

PACKAGE = Path(biforget.__file__).resolve().parent
COMMANDS = ("seeds", "synthesize", "probe", "rewrite", "export", "evaluate")


def test_the_library_exports_a_function_and_a_config_per_command() -> None:
    for command in COMMANDS:
        assert command in biforget.__all__
        assert callable(getattr(biforget, command))
        config = f"{command.capitalize()}Config"
        assert config in biforget.__all__
        assert getattr(biforget, config).__name__ == config
    for name in biforget.__all__:
        assert getattr(biforget, name) is not None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """The biforget modules `path` imports when it is imported (not inside functions or TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import mod` imports the module pkg.mod; `from pkg import name` the package.
            names = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                for alias in node.names
            ]
        found.update(name for name in names if name in modules)
    return found


def test_no_module_level_import_circle() -> None:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: _top_level_imports(path, set(paths)) - {name} for name, path in paths.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_missing_rewrite_templates_are_a_template_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rewrite_plan, "load_family", lambda *args, **kwargs: [])
    with pytest.raises(TemplateError, match="rewrite templates are missing"):
        rewrite_plan.load_rewrite_templates()


def test_every_export_format_has_a_writer() -> None:
    from biforget.config import EXPORT_FORMATS
    from biforget.formats import FORMATS, load_format

    assert tuple(FORMATS) == EXPORT_FORMATS
    for name in FORMATS:
        assert callable(importlib.import_module(FORMATS[name]).write)
        assert load_format(name).__name__ == FORMATS[name]
