"""The plan of a probe: its templates, the domain's points, and the attempts that walk the points
round-robin while the templates rotate."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from biforget.records import Record
from biforget.templates import Template, load_family

JAILBREAK = "probe/jailbreak"
MIA = "probe/mia"
PLACEHOLDERS = {"topic", "point"}


def load_probe_templates() -> dict[str, list[Template]]:
    """Both probes' built-in templates, checked now so a bad one stops the run before any model loads."""
    return {stage: load_family(stage, allowed=PLACEHOLDERS, required={"point"}) for stage in (JAILBREAK, MIA)}


def is_qa_probe(template: Template) -> bool:
    """Templates named `qa-*` ask for one question and its answer; their outputs keep that structure."""
    return template.id.rpartition("/")[2].startswith("qa-")


@dataclass(frozen=True)
class Point:
    text: str
    id: str | None = None


def domain_points(inputs: Iterable[Record], point_records: Iterable[Record] | None = None) -> list[Point]:
    """The domain's points: the given point records, else the distinct `gen.point` of the input samples
    (in order of first appearance, with the id of the point as their parent names it)."""
    if point_records is not None:
        found = [
            Point(str(r["text"]), str(r["id"]) if r.get("id") is not None else None) for r in point_records
        ]
    else:
        found = []
        for record in inputs:
            gen = record.get("gen")
            text = gen.get("point") if isinstance(gen, dict) else None
            if isinstance(text, str) and text.strip():
                parent = record.get("parent")
                found.append(Point(text, str(parent) if parent is not None else None))
    unique: dict[str, Point] = {}
    for point in found:
        unique.setdefault(point.text, point)
    return list(unique.values())


@dataclass(frozen=True)
class Attempt:
    index: int
    template: Template
    point: Point | None


def plan_attempts(count: int, templates: Sequence[Template], points: Sequence[Point]) -> list[Attempt]:
    """Attempt i probes point `i mod P` with template `(i div P + i mod P) mod T`: points round-robin,
    templates rotating, so every point meets every template within P x T attempts."""
    slots: Sequence[Point | None] = points or [None]
    plan = []
    for index in range(count):
        position, turn = index % len(slots), index // len(slots)
        plan.append(Attempt(index, templates[(turn + position) % len(templates)], slots[position]))
    return plan
