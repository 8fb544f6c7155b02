"""`seeds`: the target model lists the domain's key points, then really expands them level by level.

Level 0 asks for the domain's key points; each later level asks, for every point of the level before,
for points that belong to it. Lists are parsed robustly, and a point is kept only if it is neither an
exact (normalised) nor a near (embedding cosine) duplicate of the topic or of any point kept so far.
Each level's requests are one per parent, seeded from the run seed, the level and the parent, so the
same settings give the same points and ids whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from biforget.clean import is_refusal
from biforget.config import SeedsConfig
from biforget.console import Tracker
from biforget.dedup import Deduplicator
from biforget.errors import NothingProduced
from biforget.models.base import Embedder, GenerationRequest, TextModel
from biforget.pipelines import wave_size
from biforget.records import Provenance, Record, derive_seed, make_record
from biforget.templates import Template, builtin_template
from biforget.text import normalise, parse_point_list

ROOT_TEMPLATE = "seeds/points"
CHILD_TEMPLATE = "seeds/subpoints"
STAGE = "seeds"


def load_seed_templates() -> tuple[Template, Template]:
    root = builtin_template(ROOT_TEMPLATE, allowed={"topic", "count"}, required={"topic"})
    child = builtin_template(CHILD_TEMPLATE, allowed={"topic", "count", "point"}, required={"point"})
    return root, child


@dataclass(frozen=True)
class _Request:
    parent: Record | None
    prompt: str


def _merged_candidates(outputs: list[str], labels: tuple[str, ...], rejected: dict[str, int]) -> list[str]:
    """Points from several generations for one request, in order of first appearance; lists that give
    no point and items that refuse are counted in `rejected`. `labels` are the topic and the point the
    list expands, which the model often writes before each name ("Harry Potter: The Eye of Hora")."""
    merged: list[str] = []
    for output in outputs:
        items = parse_point_list(output, labels=labels)
        points = [point for point in items if not is_refusal(point)]
        _count(rejected, "refusal", len(items) - len(points))
        if not items:
            _count(rejected, "refusal_list" if is_refusal(output) else "no_list_item")
        merged.extend(points)
    return merged


def _count(counter: dict[str, int], reason: str, amount: int = 1) -> None:
    if amount:
        counter[reason] = counter.get(reason, 0) + amount


def _hint(rejected: dict[str, int], config: SeedsConfig) -> str:
    """The setting most likely to give points, from the reason that rejected the most."""
    reason = max(rejected, key=lambda r: rejected[r]) if rejected else "no_list_item"
    if reason.startswith("duplicate") or reason == "topic":
        return f"try a higher --count (now {config.count}) or more --samples (now {config.samples})"
    if reason.startswith("refusal"):
        return f"try more --samples (now {config.samples}) or another --seed"
    return f"try a larger --max-new-tokens (now {config.max_new_tokens}) or more --samples"


def generate_points(
    model: TextModel,
    embedder: Embedder,
    config: SeedsConfig,
    tracker: Tracker | None = None,
    *,
    templates: tuple[Template, Template] | None = None,
) -> Iterator[Record]:
    """Yield `point` records level by level (breadth first), at most `config.max_points` of them.
    `templates` are `load_seed_templates()`, when the caller has loaded them already."""
    tracker = tracker or Tracker()
    root, child = templates or load_seed_templates()
    dedup = Deduplicator(config.dedup_threshold)
    # The topic itself is never a point of itself.
    topic_vector = embedder.embed([config.topic])[0]
    dedup.add(config.topic, topic_vector)
    settings = config.settings()
    # Ids hash what shapes a point's text; how deep or how far a run goes does not, so a deeper re-run
    # with --resume keeps the points it already has.
    origin_settings = {k: v for k, v in settings.items() if k not in ("depth", "max_points")}
    provenance = Provenance(model.name, embedder.name, settings, origin_settings)
    kept = 0
    lists = 0
    rejected: dict[str, int] = {}
    parents: list[Record | None] = [None]
    step = wave_size(model)
    for depth in range(config.depth + 1):
        template = root if depth == 0 else child
        requests = [
            _Request(
                parent,
                template.render(
                    topic=config.topic, count=config.count, point=parent["text"] if parent else ""
                ),
            )
            for parent in parents
        ]
        task = tracker.start(f"seeds: level {depth}", total=len(requests), unit="lists")
        next_parents: list[Record | None] = []
        for start in range(0, len(requests), step):
            if kept >= config.max_points:
                break  # the cap is reached: generating the level's remaining lists would be wasted
            batch = requests[start : start + step]
            outputs = model.generate(
                [
                    GenerationRequest(
                        prompt=request.prompt,
                        temperature=config.temperature,
                        top_p=config.top_p,
                        max_new_tokens=config.max_new_tokens,
                        n=config.samples,
                        seed=derive_seed(
                            config.seed, STAGE, depth, request.parent["id"] if request.parent else None
                        ),
                    )
                    for request in batch
                ]
            )
            lists += sum(len(texts) for texts in outputs)
            candidates = [
                _merged_candidates(
                    texts,
                    (config.topic, request.parent["text"]) if request.parent else (config.topic,),
                    rejected,
                )
                for request, texts in zip(batch, outputs, strict=True)
            ]
            flat = [text for texts in candidates for text in texts]
            vectors = iter(embedder.embed(flat)) if flat else iter(())
            for request, texts in zip(batch, candidates, strict=True):
                position = 0
                parent_id = request.parent["id"] if request.parent else None
                for text in texts:
                    vector = next(vectors)
                    if position >= config.count or kept >= config.max_points:
                        continue
                    verdict = dedup.offer(text, vector)
                    if verdict is not None:
                        # Which kept text it repeats is not known; the topic is worth telling apart.
                        same = normalise(text) == normalise(config.topic)
                        topic = same or float(vector @ topic_vector) >= config.dedup_threshold
                        _count(rejected, "topic" if topic else f"duplicate_{verdict}")
                        continue
                    gen = provenance.gen(
                        template.provenance(),
                        {
                            "temperature": config.temperature,
                            "top_p": config.top_p,
                            "seed": config.seed,
                            "depth": depth,
                        },
                    )
                    if request.parent is not None:
                        gen["parent_point"] = request.parent["text"]
                    record = make_record(
                        kind="point",
                        text=text,
                        topic=config.topic,
                        parent=parent_id,
                        stage=STAGE,
                        gen=gen,
                        origin=provenance.origin(
                            template.provenance(), {"depth": depth, "position": position}
                        ),
                    )
                    position += 1
                    kept += 1
                    next_parents.append(record)
                    yield record
            tracker.advance(task, len(batch))
            tracker.status(task, f"{kept} points")
        parents = next_parents
        if not parents or kept >= config.max_points:
            break
    if not kept:
        # Every later stage needs points: an empty list is never a result.
        raise NothingProduced(
            STAGE, f"point for {config.topic!r}", f"{lists} list(s)", rejected, _hint(rejected, config)
        )
