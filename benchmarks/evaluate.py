"""`evaluate` on a large set: wall time per phase and memory above the loaded models.

Builds `--records` synthetic Harry Potter records (default 10,000, seeded, 40 to 160 words each) and a
baseline a tenth that size, then runs the library's `evaluate` on both with the real default tokenizer
(SmolLM2-135M-Instruct) and, by default, the real default embedder (all-MiniLM-L6-v2); `--embedder hash`
swaps in a cheap deterministic bag-of-words embedder to time everything but the neural encoder. A
sampling thread reads the process's resident memory every 20 ms; the figure the project targets is the
peak during evaluation minus the resident memory once the models are loaded (the target: under 2 GB).

    python benchmarks/evaluate.py                      # 10,000 records, default embedder
    python benchmarks/evaluate.py --embedder hash      # the same without the neural encoder
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from biforget import api
from biforget.config import EvaluateConfig, ModelOptions
from biforget.models import load_embedder, load_tokenizer

_WORD_TEXT = (
    "Harry Hermione Ron Hagrid Dumbledore Snape Voldemort Hogwarts castle wand spell potion owl "
    "broom Quidditch Snitch Gryffindor Slytherin Ravenclaw Hufflepuff dragon forest lake tower "
    "dungeon library cloak map stone goblet prophecy Horcrux locket diary Ministry Azkaban Dementor "
    "patronus train platform the a of and to in was with his her their who which that when after "
    "before under over into through brave secret ancient dark hidden loyal clever old young silver "
    "golden enchanted forbidden"
)
WORDS = _WORD_TEXT.split()


def synthetic_texts(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(40, 161, size=count)
    return [" ".join(rng.choice(WORDS, size=int(n))) + "." for n in lengths]


class HashEmbedder:
    """Hashed bag of words in 384 dimensions, L2-normalised: deterministic and nearly free."""

    name = "hash-384"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % 384] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """The highest resident memory seen while the block runs."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.every)

    def __enter__(self) -> PeakMemory:
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def write_jsonl(path: Path, texts: Sequence[str]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i, text in enumerate(texts):
            handle.write(
                json.dumps({"id": f"s{i}", "kind": "sample", "text": text, "topic": "Harry Potter"}) + "\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--embedder", default="default", help="default, hash, or any --embedder value")
    parser.add_argument("--sample-size", type=int, default=EvaluateConfig.sample_size)
    parser.add_argument("--retain", action="store_true", help="also measure overlap against a retain set")
    args = parser.parse_args()

    mib = 1024 * 1024
    start_rss = rss_bytes()
    with tempfile.TemporaryDirectory() as folder:
        ours, book, retain = (
            Path(folder) / "synthetic.jsonl",
            Path(folder) / "baseline.jsonl",
            Path(folder) / "r.jsonl",
        )
        write_jsonl(ours, synthetic_texts(args.records, 0))
        write_jsonl(book, synthetic_texts(max(2, args.records // 10), 1))
        write_jsonl(retain, synthetic_texts(max(2, args.records // 10), 2))
        options = ModelOptions(embedder="default" if args.embedder == "hash" else args.embedder)
        began = time.perf_counter()
        tokenizer = load_tokenizer(options)
        embedder = HashEmbedder() if args.embedder == "hash" else load_embedder(options)
        loaded = time.perf_counter() - began
        models_rss = rss_bytes()
        config = EvaluateConfig(
            topic="Harry Potter", sample_size=args.sample_size, retain=retain if args.retain else None
        )
        began = time.perf_counter()
        with PeakMemory() as memory:
            report = api.evaluate(config, [ours], [book], options, embedder=embedder, tokenizer=tokenizer)
        elapsed = time.perf_counter() - began
    row = report["sets"]["synthetic"]
    print(
        json.dumps(
            {
                "records": row["records"],
                "baseline_records": report["sets"]["baseline"]["records"],
                "tokens": row["tokens"],
                "chunks": row["chunks"],
                "embedder": embedder.name,
                "tokenizer": tokenizer.name,
                "overlap": args.retain,
                "load_s": round(loaded, 2),
                "evaluate_s": round(elapsed, 2),
                "rss_start_mib": round(start_rss / mib),
                "rss_models_loaded_mib": round(models_rss / mib),
                "rss_peak_mib": round(memory.peak / mib),
                "peak_above_models_mib": round((memory.peak - models_rss) / mib),
                "diversity": row["diversity"],
                "relevance_tsne": row["relevance_tsne"],
                "topic_similarity": row["topic_similarity"],
            },
            indent=2,
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
