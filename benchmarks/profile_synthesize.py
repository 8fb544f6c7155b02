"""Where a `synthesize --topic` run spends its wall time, phase by phase.

    python benchmarks/profile_synthesize.py                      # the default command on the default model
    python benchmarks/profile_synthesize.py --count 3 --depth 1 --max-samples 64 --max-new-tokens 64

Runs the library as `biforget synthesize --topic TOPIC -o FILE` does (model and embedder loaded once, the
points listed, then Stage I) and times each phase. Loading and listing points are timed whole (listing
includes its own generation and embedding). Inside Stage I every phase is timed exclusively: a phase's
time excludes the time of phases it calls, so the rows add up to the wall time, and what no phase covers
(planning, record building, the loop itself) is `other`. One table on stderr, with the command and the
load average at the start and end, since a shared machine moves every figure.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from biforget import api
from biforget.config import ModelOptions, SeedsConfig, SynthesizeConfig
from biforget.dedup import Deduplicator
from biforget.io.jsonl import RecordWriter
from biforget.metrics.diversity import DiversityTracker, NoveltyTracker
from biforget.pipelines import synthesize as synthesize_module
from biforget.pipelines.seeds import generate_points

PHASES = (
    "loading",
    "listing points",
    "generation",
    "cleaning and parsing",
    "embedding",
    "deduplication",
    "stop checks (novelty, diversity)",
    "writing",
    "other",
)


class Stopwatch:
    """Exclusive time per phase: a nested call's time is charged to its own phase only."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._children: list[float] = []

    def wrap(self, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._children.append(0.0)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                nested = self._children.pop()
                self.seconds[phase] += elapsed - nested
                self.calls[phase] += 1
                if self._children:
                    self._children[-1] += elapsed

        return timed

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start
            self.calls[name] += 1


@contextmanager
def patched(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", default="Harry Potter")
    parser.add_argument("--count", type=int, default=SeedsConfig.count)
    parser.add_argument("--depth", type=int, default=SeedsConfig.depth)
    parser.add_argument("--max-points", type=int, default=SeedsConfig.max_points)
    parser.add_argument("--max-samples", type=int, default=SynthesizeConfig.max_samples)
    parser.add_argument("--max-new-tokens", type=int, default=SynthesizeConfig.max_new_tokens)
    parser.add_argument("--batch-size", type=int, default=ModelOptions.batch_size)
    parser.add_argument("--model", default=ModelOptions.model)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", type=Path, help="keep the records here (default: a temp file)")
    return parser.parse_args()


def main() -> None:
    args = _parse()
    load_before = os.getloadavg()
    options = ModelOptions(model=args.model, batch_size=args.batch_size)
    seeds_config = SeedsConfig(
        topic=args.topic,
        count=args.count,
        depth=args.depth,
        max_points=args.max_points,
        seed=args.seed,
    )
    config = SynthesizeConfig(
        topic=args.topic, max_samples=args.max_samples, max_new_tokens=args.max_new_tokens, seed=args.seed
    )
    watch = Stopwatch()
    wall = time.perf_counter()
    with watch.phase("loading"):
        model, embedder = api.load_models(options)
    with watch.phase("listing points"):
        points = list(generate_points(model, embedder, seeds_config))
    output = args.output or Path(tempfile.mkdtemp()) / "profile.jsonl"
    written = 0
    with (
        patched(model, "generate", watch.wrap("generation", model.generate)),
        patched(embedder, "embed", watch.wrap("embedding", embedder.embed)),
        patched(
            synthesize_module,
            "clean_output",
            watch.wrap("cleaning and parsing", synthesize_module.clean_output),
        ),
        patched(Deduplicator, "consider", watch.wrap("deduplication", Deduplicator.consider)),
        patched(
            DiversityTracker,
            "add",
            watch.wrap("stop checks (novelty, diversity)", DiversityTracker.add),
        ),
        patched(
            NoveltyTracker,
            "offer",
            watch.wrap("stop checks (novelty, diversity)", NoveltyTracker.offer),
        ),
        patched(RecordWriter, "write", watch.wrap("writing", RecordWriter.write)),
    ):
        writer = RecordWriter(output)
        stage_one = watch.wrap(
            "other",
            lambda: [
                writer.write(record)
                for record in api.synthesize(config, records=points, model=model, embedder=embedder)
            ],
        )
        written = len(stage_one())
        writer.close()
    total = time.perf_counter() - wall
    load_after = os.getloadavg()
    _report(args, watch, total, len(points), written, output, load_before, load_after)


def _report(
    args: argparse.Namespace,
    watch: Stopwatch,
    total: float,
    points: int,
    written: int,
    output: Path,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    command = " ".join(sys.argv)
    lines = [
        f"command: python {command}",
        f"{points} point(s), {written} record(s) in {output}; wall time {total:.1f} s",
        f"load average (1 min) {load_before[0]:.2f} at the start, {load_after[0]:.2f} at the end; "
        f"{os.cpu_count()} CPU(s)",
        "",
        "| phase | seconds | share of wall time | calls |",
        "|---|---|---|---|",
    ]
    for phase in PHASES:
        seconds = watch.seconds.get(phase, 0.0)
        lines.append(
            f"| {phase} | {seconds:.1f} | {100 * seconds / total:.1f}% | {watch.calls.get(phase, 0)} |"
        )
    print("\n".join(lines), file=sys.stderr)


if __name__ == "__main__":
    main()
