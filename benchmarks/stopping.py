"""Measurements behind Stage I's stopping rule (docs/stopping.md).

`fixture`: on the default model's real synthesis outputs in tests/fixtures (cleaned as synthesize cleans
them, embedded with the default embedder), how close distinct outputs come to each other (the highest
cosine of each to the others, same point and other points), and how much the remote-clique diversity
changes between checks when the outputs arrive interleaved, in random orders.

`replay FILE`: a `synthesize -o FILE` run's records (which carry `gen.offer` and `gen.nearest`) replayed
under other stop settings, with the pipeline's own stop state: where each setting would have stopped.

    python benchmarks/stopping.py fixture
    python benchmarks/stopping.py replay run.jsonl --points points.jsonl --windows 50,100,200
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from biforget.config import ModelOptions, SynthesizeConfig
from biforget.dedup import Deduplicator
from biforget.metrics.diversity import NoveltyTracker, mean_pairwise_cosine_distance
from biforget.models import load_embedder
from biforget.parse import clean_output
from biforget.pipelines.synthesize import Plan, _Stop, coverage_end, select_templates

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "smollm2_synthesis_outputs.json"


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def fixture(orders: int, check_every: int) -> None:
    entries = json.loads(FIXTURE.read_text("utf-8"))
    kept = []
    for entry in entries:
        cleaned = clean_output(entry["output"], entry["prompt"], qa=entry["template"].startswith("qa/"))
        if cleaned.text is not None:
            kept.append((entry["point"], cleaned.text))
    vectors = np.asarray(load_embedder(ModelOptions()).embed([t for _, t in kept]), dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1.0)
    points = [p for p, _ in kept]
    same = [
        max(similarity[i, j] for j in range(len(kept)) if points[j] == points[i]) for i in range(len(kept))
    ]
    other = [
        max(similarity[i, j] for j in range(len(kept)) if points[j] != points[i]) for i in range(len(kept))
    ]
    print(f"{len(kept)} of {len(entries)} fixture outputs survive cleaning; {len(set(points))} points")
    for name, values in (("same point", same), ("other points", other)):
        quantiles = np.quantile(values, [0.1, 0.5, 0.9, 1.0])
        shares = {t: sum(v >= t for v in values) / len(values) for t in (0.7, 0.75, 0.8, 0.85, 0.9)}
        print(
            f"highest cosine to another output, {name}: p10 {quantiles[0]:.3f} median {quantiles[1]:.3f} "
            f"p90 {quantiles[2]:.3f} max {quantiles[3]:.3f}; share at or above "
            + ", ".join(f"{t}: {s:.2f}" for t, s in shares.items())
        )
    # The outputs as a run would offer them (points taking turns), through dedup: how many are new.
    by_point: dict[str, list[int]] = {}
    for index, name in enumerate(points):
        by_point.setdefault(name, []).append(index)
    turns = [i for group in itertools.zip_longest(*by_point.values()) for i in group if i is not None]
    for threshold in (0.7, 0.75, 0.8, 0.85):
        dedup = Deduplicator(SynthesizeConfig.dedup_threshold)
        novelty = NoveltyTracker(window=len(turns), threshold=threshold)
        for i in turns:
            novelty.offer(dedup.consider(kept[i][1], vectors[i].astype(np.float32)).nearest)
        print(
            f"offered in turns through dedup, threshold {threshold}: {novelty.rate or 0:.3f} of "
            f"{novelty.offers} offers new"
        )
    rng = random.Random(0)
    changes: list[float] = []
    below = 0
    for _ in range(orders):
        order = list(range(len(kept)))
        rng.shuffle(order)
        checks = [
            mean_pairwise_cosine_distance(vectors[order[:n]])
            for n in range(check_every, len(kept) + 1, check_every)
        ]
        steps = [b - a for a, b in itertools.pairwise(checks) if a is not None and b is not None]
        changes += steps
        below += sum(step < SynthesizeConfig.epsilon for step in steps)
    print(
        f"diversity change between checks every {check_every} (random interleaved orders, {orders}): "
        f"mean {statistics.mean(changes):+.4f}, sd {statistics.stdev(changes):.4f} "
        f"({statistics.stdev(changes) / SynthesizeConfig.epsilon:.0f}x the default epsilon); "
        f"share below epsilon {below / len(changes):.2f}"
    )


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def replay(
    path: Path,
    points_file: Path,
    thresholds: list[float],
    windows: list[int],
    minimums: list[float],
    check_every: int,
) -> None:
    records = _read(path)
    points = [r for r in _read(points_file) if r.get("kind") == "point"]
    samples = [r for r in records if r.get("kind") == "sample" and r.get("stage") == "synthesize"]
    if not samples or "offer" not in samples[0]["gen"]:
        raise SystemExit(f"{path}: no synthesize samples with gen.offer and gen.nearest")
    base = SynthesizeConfig.from_mapping(samples[0]["gen"]["settings"], strict=False)
    floor = coverage_end(Plan(points, select_templates(base.templates, base.template_dir), base))
    vectors = load_embedder(ModelOptions()).embed([r["text"] for r in samples])
    last = samples[-1]["gen"]
    print(
        f"{path}: {len(samples)} samples from {last['offer']} offers, up to request {last['unit'] + 1}; "
        f"{len(points)} points, coverage floor {floor} requests"
    )
    # The old rule on the same records: they are what a --stop diversity run of the same seed writes.
    old = SynthesizeConfig.from_mapping(
        {**base.settings(), "stop": "diversity", "check_every": check_every, "max_samples": 10**9},
        strict=False,
    )
    state = _Stop(old, floor)
    for record, vector in zip(samples, vectors, strict=True):
        state.replay(record, vector)
        if state.reason is not None:
            print(f"--stop diversity --check-every {check_every}: stops at sample {state.diversity.count}")
            break
    else:
        print(f"--stop diversity --check-every {check_every}: not within the run")
    for row in state.checks:
        print(f"  check: {row}")
    for threshold in thresholds:
        for window in windows:
            for minimum in minimums:
                settings = {
                    **base.settings(),
                    "stop": "novelty",
                    "novelty_threshold": threshold,
                    "window": window,
                    "min_novelty": minimum,
                    "max_samples": 10**9,
                }
                config = SynthesizeConfig.from_mapping(settings, strict=False)
                state = _Stop(config, floor)
                stopped = None
                for record, vector in zip(samples, vectors, strict=True):
                    state.replay(record, vector)
                    if state.reason is not None:
                        stopped = record["gen"]
                        break
                where = (
                    f"stops at sample {state.diversity.count}, offer {stopped['offer']}, "
                    f"request {stopped['unit'] + 1}"
                    if stopped
                    else f"not within the run (novelty {state.novelty.rate:.3f} at its end)"
                )
                print(f"threshold {threshold} window {window} min-novelty {minimum}: {where}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("fixture")
    one.add_argument("--orders", type=int, default=200)
    one.add_argument("--check-every", type=int, default=10)
    two = sub.add_parser("replay")
    two.add_argument("file", type=Path)
    two.add_argument("--points", type=Path, required=True, help="the point records the run was given")
    two.add_argument("--check-every", type=int, default=SynthesizeConfig.check_every)
    two.add_argument("--thresholds", default="0.7,0.75,0.8,0.85,0.9")
    two.add_argument("--windows", default="100,200")
    two.add_argument("--min-novelty", default="0.05,0.1")
    args = parser.parse_args()
    if args.command == "fixture":
        fixture(args.orders, args.check_every)
    else:
        replay(
            args.file,
            args.points,
            _floats(args.thresholds),
            [int(w) for w in args.windows.split(",")],
            _floats(args.min_novelty),
            args.check_every,
        )


if __name__ == "__main__":
    main()
