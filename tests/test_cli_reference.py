"""docs/cli.md is generated from the Typer app; these tests keep the two from drifting apart."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import typer

from biforget.cli import app

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "cli_reference.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cli_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_cli_md_matches_the_app() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_every_command_and_option_is_on_the_page() -> None:
    page = _script().render()
    group = typer.main.get_command(app)
    commands = getattr(group, "commands", {})
    assert {"seeds", "synthesize", "probe", "rewrite", "evaluate", "export", "unlearn", "audit"} <= set(
        commands
    )
    for name, command in commands.items():
        assert f"## biforget {name}\n" in page
        for parameter in command.params:
            for flag in getattr(parameter, "opts", []):
                if flag.startswith("-"):
                    assert flag in page, f"{name} {flag} missing from docs/cli.md"


def test_the_check_fails_on_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "cli.md"
    stale.write_text(_script().render().replace("--max-points", "--max-pointz"), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--path", str(stale)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "out of date" in result.stderr
