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
from biforget.models.base import Embedder, GenerationRequest, TextModel
from biforget.pipelines import wave_size
from biforget.records import Provenance, Record, derive_seed, make_record
from biforget.templates import Template, builtin_template
from biforget.text import parse_point_list

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


def _merged_candidates(outputs: list[str]) -> list[str]:
    """Points from several generations for one request, in order of first appearance."""
    merged: list[str] = []
    for output in outputs:
        merged.extend(point for point in parse_point_list(output) if not is_refusal(point))
    return merged


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
    dedup.add(config.topic, embedder.embed([config.topic])[0])
    settings = config.settings()
    # Ids hash what shapes a point's text; how deep or how far a run goes does not, so a deeper re-run
    # with --resume keeps the points it already has.
    origin_settings = {k: v for k, v in settings.items() if k not in ("depth", "max_points")}
    provenance = Provenance(model.name, embedder.name, settings, origin_settings)
    kept = 0
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
            candidates = [_merged_candidates(texts) for texts in outputs]
            flat = [text for texts in candidates for text in texts]
            vectors = iter(embedder.embed(flat)) if flat else iter(())
            for request, texts in zip(batch, candidates, strict=True):
                position = 0
                parent_id = request.parent["id"] if request.parent else None
                for text in texts:
                    vector = next(vectors)
                    if position >= config.count or kept >= config.max_points:
                        continue
                    if dedup.offer(text, vector) is not None:
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
