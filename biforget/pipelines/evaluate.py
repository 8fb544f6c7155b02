"""`evaluate`: relevance, diversity, efficiency, overlap and coverage of several sets on one footing.

Every set goes through the same tokenizer (the target model's) and the same embedder, with samples
seeded per set name, so adding a baseline never changes another set's numbers except where sets are
measured jointly (the t-SNE map and the shared clusters). The report is one JSON object; a metric that
cannot be computed for a set is None there, with the reason under `notes`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from biforget.config import EvaluateConfig
from biforget.console import Tracker
from biforget.errors import UsageError
from biforget.io.sets import EvalSet, TracePoint
from biforget.metrics.coverage import cluster_coverage
from biforget.metrics.diversity import remote_clique
from biforget.metrics.efficiency import Efficiency, chunk_spans, efficiency, token_stream
from biforget.metrics.overlap import Overlap, overlap
from biforget.metrics.relevance import (
    MIN_TSNE_POINTS,
    TsneRelevance,
    nearest_to_anchor,
    topic_similarity,
    tsne_relevance,
)
from biforget.models.base import Embedder, Tokenizer
from biforget.records import Record, derive_seed

if TYPE_CHECKING:
    pass

# Texts per embedder call: large enough to batch well, small enough for a smooth progress bar.
EMBED_BATCH = 256
# Texts per tokenizer call, so tokenizing a large set never holds every encoding object at once.
TOKENIZE_BATCH = 1000
# Offender texts in the report are cut here; the index (and id) leads back to the whole record.
SNIPPET_CHARS = 300

# Which way is better for each metric that has a best set.
DIRECTIONS: dict[str, str] = {
    "chunks": "lower",
    "diversity": "higher",
    "relevance_tsne": "lower",
    "topic_similarity": "higher",
    "clusters_covered": "higher",
    "cluster_entropy": "higher",
    "overlap": "lower",
}


def resolve_topic(config: EvaluateConfig, sets: Sequence[EvalSet]) -> tuple[str | None, str | None, str]:
    """The topic, where it came from (`--topic`, `records` or None), and why there is none."""
    if config.topic is not None:
        return config.topic.strip(), "--topic", ""
    found = sorted(set().union(*(s.topics for s in sets)))
    if len(found) == 1:
        return found[0], "records", ""
    if found:
        shown = ", ".join(repr(t) for t in found[:4]) + (", ..." if len(found) > 4 else "")
        return None, None, f"relevance: the records name several topics ({shown}); pass --topic"
    return None, None, "relevance: no topic; pass --topic (or records with a 'topic' field)"


def _sample(count: int, limit: int, seed: int) -> np.ndarray:
    """Up to `limit` of `count` positions, drawn without replacement and kept in input order."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=limit, replace=False))


@dataclass
class _SetWork:
    """What evaluation holds per set: never the token ids per record, only their concatenation."""

    data: EvalSet
    role: str
    efficiency: Efficiency
    sample: np.ndarray
    embed_all: bool
    chunk_texts: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None
    chunk_vectors: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def sample_vectors(self) -> np.ndarray:
        assert self.vectors is not None
        return self.vectors[self.sample] if self.embed_all else self.vectors


@dataclass
class PlotData:
    """What the figures draw; filled as the metrics are computed."""

    names: list[str]
    sample_vectors: list[np.ndarray]
    topic: str | None = None
    anchor: np.ndarray | None = None
    tsne: TsneRelevance | None = None
    tsne_names: list[str] = field(default_factory=list)
    trace: list[TracePoint] | None = None


@dataclass
class Evaluation:
    report: dict[str, Any]
    plots: PlotData
    kept: list[Record] | None = None


def _tokenize(
    work: Sequence[tuple[EvalSet, str]], tokenizer: Tokenizer, chunk_tokens: int, tracker: Tracker
) -> list[tuple[Efficiency, np.ndarray]]:
    task = tracker.start("tokenizing", total=sum(len(s) for s, _ in work), unit="records")
    results = []
    for data, _role in work:
        counts: list[int] = []
        pieces: list[np.ndarray] = []
        for start in range(0, len(data.texts), TOKENIZE_BATCH):
            batch = tokenizer.encode(data.texts[start : start + TOKENIZE_BATCH])
            counts += [len(ids) for ids in batch]
            pieces.append(token_stream(batch))
            tracker.advance(task, len(batch))
        results.append((efficiency(counts, chunk_tokens), np.concatenate(pieces)))
    return results


class _Embedding:
    """Embeds every text the evaluation needs under one progress bar, in batches."""

    def __init__(self, embedder: Embedder, total: int, tracker: Tracker) -> None:
        self.embedder = embedder
        self.tracker = tracker
        self.task = tracker.start(f"embedding ({embedder.name})", total=total, unit="texts")

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), EMBED_BATCH):
            batch = list(texts[start : start + EMBED_BATCH])
            parts.append(np.asarray(self.embedder.embed(batch), dtype=np.float32))
            self.tracker.advance(self.task, len(batch))
        return np.vstack(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def _snippet(text: str) -> str:
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"


def _offenders(found: Overlap, data: EvalSet, retain: EvalSet, limit: int) -> list[dict[str, Any]]:
    rows = []
    for index in found.worst(limit):
        neighbour = int(found.neighbour[index])
        row: dict[str, Any] = {"index": index}
        record_id = data.records[index].get("id")
        if record_id is not None:
            row["id"] = record_id
        row.update(
            text=_snippet(data.texts[index]),
            retain_index=neighbour,
            retain_text=_snippet(retain.texts[neighbour]),
            similarity=_round(found.similarity[index]),
        )
        rows.append(row)
    return rows


def best_sets(sets: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The best set per metric (first in order on ties); metrics no set defines are left out."""
    best: dict[str, str] = {}
    for metric, direction in DIRECTIONS.items():
        values = []
        for name, row in sets.items():
            value = row.get(metric)
            if isinstance(value, dict):
                value = value.get("share")
            if value is not None:
                values.append((value, name))
        if not values:
            continue
        pick = min if direction == "lower" else max
        target = pick(v for v, _ in values)
        best[metric] = next(name for v, name in values if v == target)
    return best


def evaluate_sets(
    sets: Sequence[EvalSet],
    roles: Sequence[str],
    config: EvaluateConfig,
    *,
    embedder: Embedder,
    tokenizer: Tokenizer,
    retain: EvalSet | None = None,
    trace: list[TracePoint] | None = None,
    tracker: Tracker | None = None,
) -> Evaluation:
    """Score every set; `roles` tells the sets under study (`set`) from the baselines (`against`)."""
    tracker = tracker or Tracker()
    if not sets:
        raise UsageError("no sets to evaluate")
    topic, topic_source, topic_note = resolve_topic(config, sets)
    pairs = list(zip(sets, roles, strict=True))
    tokenized = _tokenize(pairs, tokenizer, config.chunk_tokens, tracker)
    works: list[_SetWork] = []
    for (data, role), (counted, stream) in zip(pairs, tokenized, strict=True):
        sample = _sample(len(data), config.sample_size, derive_seed(config.seed, "sample", data.name))
        work = _SetWork(data, role, counted, sample, embed_all=retain is not None)
        if topic is not None:
            spans = chunk_spans(len(stream), config.chunk_tokens)
            picked = _sample(
                len(spans), config.relevance_chunks, derive_seed(config.seed, "chunks", data.name)
            )
            work.chunk_texts = [tokenizer.decode(stream[spans[i][0] : spans[i][1]].tolist()) for i in picked]
        if len(sample) < len(data) and not work.embed_all:
            work.notes.append(
                f"diversity and coverage on a seeded sample of {len(sample)} of {len(data)} records"
            )
        works.append(work)

    total = sum((len(w.data) if w.embed_all else len(w.sample)) + len(w.chunk_texts) for w in works)
    total += (1 if topic is not None else 0) + (len(retain) if retain is not None else 0)
    embed = _Embedding(embedder, total, tracker)
    anchor = embed([topic])[0] if topic is not None else None
    for work in works:
        texts = work.data.texts if work.embed_all else [work.data.texts[i] for i in work.sample]
        work.vectors = embed(texts)
        if work.chunk_texts:
            work.chunk_vectors = embed(work.chunk_texts)
    retain_vectors = embed(retain.texts) if retain is not None else None

    rows: dict[str, dict[str, Any]] = {}
    for work in works:
        diversity = remote_clique(work.sample_vectors)
        if diversity is None:
            work.notes.append("diversity: needs at least 2 records")
        rows[work.data.name] = {
            "records": work.efficiency.records,
            "tokens": work.efficiency.tokens,
            "chunks": work.efficiency.chunks,
            "diversity": _round(diversity),
            "relevance_tsne": None,
            "relevance_tsne_std": None,
            "topic_similarity": None,
            "clusters_covered": None,
            "cluster_entropy": None,
            "overlap": None,
        }

    plots = PlotData(
        [w.data.name for w in works], [w.sample_vectors for w in works], topic, anchor, trace=trace
    )
    tsne_seeds = [config.seed + i for i in range(config.relevance_seeds)]
    if anchor is None:
        for work in works:
            work.notes.append(topic_note)
    else:
        groups = []
        for work in works:
            assert work.chunk_vectors is not None
            rows[work.data.name]["topic_similarity"] = _round(topic_similarity(work.chunk_vectors, anchor))
            groups.append(
                work.chunk_vectors[nearest_to_anchor(work.chunk_vectors, anchor, config.relevance_nearest)]
            )
        if sum(len(g) for g in groups) + 1 < MIN_TSNE_POINTS:
            for work in works:
                work.notes.append(
                    f"relevance_tsne: fewer than {MIN_TSNE_POINTS - 1} chunks in all sets, "
                    "too few for a t-SNE map"
                )
        else:
            task = tracker.start("t-SNE relevance", total=len(tsne_seeds), unit="maps")
            mapped = tsne_relevance(groups, anchor, tsne_seeds, on_seed=lambda: tracker.advance(task))
            for work, mean, std in zip(works, mapped.mean, mapped.std, strict=True):
                rows[work.data.name]["relevance_tsne"] = _round(mean)
                rows[work.data.name]["relevance_tsne_std"] = _round(std)
            plots.tsne = mapped
            plots.tsne_names = [w.data.name for w in works]

    coverage = cluster_coverage([w.sample_vectors for w in works], config.clusters, config.seed)
    for work, covered, entropy in zip(works, coverage.covered, coverage.entropy, strict=True):
        rows[work.data.name]["clusters_covered"] = covered
        rows[work.data.name]["cluster_entropy"] = _round(entropy)
    if coverage.clusters < config.clusters:
        for work in works:
            work.notes.append(
                f"coverage: only {coverage.clusters} distinct record(s) in all sets, so "
                f"{coverage.clusters} cluster(s) instead of {config.clusters}"
            )

    kept: list[Record] | None = None
    if retain is not None:
        assert retain_vectors is not None
        for work in works:
            assert work.vectors is not None
            found = overlap(work.vectors, retain_vectors, config.overlap_threshold)
            rows[work.data.name]["overlap"] = {
                "share": _round(found.share),
                "records": found.count,
                "top": _offenders(found, work.data, retain, config.top_overlaps),
            }
            if config.drop_overlap and work.role == "set":
                kept = [r for r, flagged in zip(work.data.records, found.flagged, strict=True) if not flagged]

    settings = config.settings()
    settings.update(
        topic=topic,
        topic_source=topic_source,
        tokenizer=tokenizer.name,
        embedder=embedder.name,
        relevance_tsne_seeds=tsne_seeds if anchor is not None else [],
        clusters_used=coverage.clusters,
        cluster_entropy_unit="bits",
        sets={
            w.data.name: {"path": str(w.data.path), "role": w.role, "format": w.data.format} for w in works
        },
        retain=str(retain.path) if retain is not None else None,
    )
    report = {
        "settings": settings,
        "sets": rows,
        "best": best_sets(rows),
        "notes": {w.data.name: w.notes for w in works},
    }
    return Evaluation(report, plots, kept)


def check_names(sets: Sequence[EvalSet]) -> None:
    seen: dict[str, EvalSet] = {}
    for data in sets:
        if data.name in seen:
            raise UsageError(
                f"two sets are named {data.name!r} ({seen[data.name].path} and {data.path}); "
                "give each a --name"
            )
        seen[data.name] = data
