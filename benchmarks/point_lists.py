"""Capture what the default model really writes for the seeds stage's short lists.

Runs the real seeds pipeline (the exact prompts its templates render, its per-request seeds, its sampling
settings) once per setting, with a wrapper that keeps every raw completion, and writes them as JSON: one
entry per completion with the prompt, the settings and the command that reproduces the run. The test
fixture tests/fixtures/smollm2_short_point_lists.json was written by

    python benchmarks/point_lists.py -o tests/fixtures/smollm2_short_point_lists.json

stopped after its first run (the file is rewritten after each one): on a 2-core machine shared with
other jobs the 160-token run and the grid did not finish in time. Rerun it to add them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from biforget.config import ModelOptions, SeedsConfig
from biforget.errors import NothingProduced
from biforget.models import load_embedder, load_text_model
from biforget.models.base import GenerationRequest, TextModel
from biforget.pipelines.seeds import STAGE, generate_points, load_seed_templates
from biforget.records import derive_seed

TOPIC = "Harry Potter"
# (count, depth, max_new_tokens, seed): the two runs issue 24 reported, run through the pipeline.
RUNS: list[tuple[int, int, int, int]] = [
    (3, 1, 48, 5),  # `seeds --count 3 --depth 1 --seed 5 --max-new-tokens 48`
    (3, 1, SeedsConfig.max_new_tokens, 5),  # the listing inside `synthesize --topic ... --count 3 --seed 5`
]
# A grid of top-level short lists (depth 0: one request per run), sent as the pipeline builds them but
# batched, since a request's completions do not depend on its batch.
GRID: list[tuple[int, int, int]] = [(c, t, s) for t in (24, 64) for c in (3, 4, 6) for s in (0, 11)]


class Recorder:
    """The model, keeping each request's raw completions."""

    def __init__(self, model: TextModel) -> None:
        self.model = model
        self.name = model.name
        self.backend = model.backend
        self.capabilities = model.capabilities
        self.batch_size = getattr(model, "batch_size", 1)
        self.seen: list[tuple[GenerationRequest, list[str]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        outputs = self.model.generate(requests)
        self.seen.extend(zip(requests, outputs, strict=True))
        return outputs


def command(count: int, depth: int, tokens: int, seed: int) -> str:
    return (
        f'biforget seeds --topic "{TOPIC}" --count {count} --depth {depth} '
        f"--max-new-tokens {tokens} --seed {seed}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    options = ModelOptions()
    model = load_text_model(options)
    embedder = load_embedder(options, target=model)
    entries: list[dict[str, Any]] = []

    def keep(
        config: SeedsConfig, seen: list[tuple[GenerationRequest, list[str]]], via: str, points: list[str]
    ) -> None:
        name = command(config.count, config.depth, config.max_new_tokens, config.seed)
        print(name, via, "->", points, flush=True)
        for request, outputs in seen:
            for draw, output in enumerate(outputs):
                entries.append(
                    {
                        "model": model.name,
                        "command": name,
                        "via": via,
                        "prompt": request.prompt,
                        "count": config.count,
                        "max_new_tokens": request.max_new_tokens,
                        "seed": config.seed,
                        "request_seed": request.seed,
                        "temperature": request.temperature,
                        "top_p": request.top_p,
                        "draw": draw,
                        "output": output,
                    }
                )
        # Written after every run, so a run cut short keeps what it had.
        args.output.write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    for count, depth, tokens, seed in RUNS:
        recorder = Recorder(model)
        config = SeedsConfig(topic=TOPIC, count=count, depth=depth, max_new_tokens=tokens, seed=seed)
        points: list[str] = []
        try:
            points.extend(r["text"] for r in generate_points(recorder, embedder, config))  # type: ignore[arg-type]
        except NothingProduced as exc:
            print(exc, flush=True)
        keep(config, recorder.seen, "pipeline", points)
    root, _ = load_seed_templates()
    for tokens in sorted({t for _, t, _ in GRID}):
        configs = [
            SeedsConfig(topic=TOPIC, count=c, depth=0, max_new_tokens=t, seed=s)
            for c, t, s in GRID
            if t == tokens
        ]
        requests = [
            GenerationRequest(
                prompt=root.render(topic=TOPIC, count=c.count, point=""),
                temperature=c.temperature,
                top_p=c.top_p,
                max_new_tokens=c.max_new_tokens,
                n=c.samples,
                seed=derive_seed(c.seed, STAGE, 0, None),
            )
            for c in configs
        ]
        for config, request, outputs in zip(configs, requests, model.generate(requests), strict=True):
            keep(config, [(request, outputs)], "batched", [])


if __name__ == "__main__":
    main()
