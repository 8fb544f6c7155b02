"""`generate_points` on the scripted backend: exact point records, expansion, dedup, batching, seeds."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from biforget.config import SeedsConfig
from biforget.dedup import Deduplicator
from biforget.errors import NothingProduced
from biforget.pipelines.seeds import generate_points
from biforget.records import derive_seed, short_hash
from tests.scripted import HashEmbedder, ScriptedModel

PROMPTS = Path(__file__).resolve().parent.parent / "prompts" / "seeds"
ROOT_PROMPT = re.compile(r"^Give a numbered list of (?P<count>\d+) key topics of (?P<topic>.+)\. Each line")
CHILD_PROMPT = re.compile(
    r"^Give a numbered list of (?P<count>\d+) subtopics of (?P<point>.+) \(from (?P<topic>.+)\)\."
)
TOPIC = "Harry Potter"

# Sub-point names are the parent's name plus one word of the level; the words never repeat across
# levels, so no sub-point is a near duplicate of its parent in the bag-of-words embedder.
LEVEL_WORDS = {1: ("Alpha", "Beta", "Gamma", "Delta"), 2: ("One", "Two", "Three", "Four")}


def root_list(draw: int) -> str:
    if draw == 0:
        # A preamble, a point, a near-duplicate candidate later, the topic itself, an exact duplicate.
        return "Here are the key topics:\n1. Hogwarts\n2. Quidditch Pitch\n3. Harry Potter\n4. HOGWARTS."
    # The same words as an accepted point, the topic reworded, then two new points (one over the cap).
    return "1. Pitch Quidditch\n2. Potter Harry\n3. Horcruxes\n4. Diagon Alley"


def child_list(point: str, draw: int) -> str:
    depth = point.count(" ") + 1 - (1 if point.startswith("Quidditch Pitch") else 0)
    first, second, third, fourth = LEVEL_WORDS[depth]
    if draw == 0:
        return f"1. {point} {first}\n2. {point} {second}\n3. {point}"
    return f"- {point} {third}\n- {point} {fourth}"


def script(prompt: str, draw: int, seed: int) -> str:
    child = CHILD_PROMPT.match(prompt)
    if child:
        assert child["topic"] == TOPIC
        return child_list(child["point"], draw)
    root = ROOT_PROMPT.match(prompt)
    assert root, f"unexpected prompt {prompt!r}"
    assert root["topic"] == TOPIC
    return root_list(draw)


def run(config: SeedsConfig, **model_args: object) -> tuple[list[dict[str, object]], ScriptedModel]:
    model = ScriptedModel(script, **model_args)  # type: ignore[arg-type]
    return list(generate_points(model, HashEmbedder(dim=1024), config)), model


def make_config(**overrides: object) -> SeedsConfig:
    values: dict[str, object] = {"topic": TOPIC, "count": 3, "depth": 2, **overrides}
    return SeedsConfig(**values)  # type: ignore[arg-type]


def expected_tree() -> list[tuple[int, str, str | None]]:
    """(depth, text, parent text) in output order: breadth first, parents in order, children in order."""
    roots = ["Hogwarts", "Quidditch Pitch", "Horcruxes"]
    out: list[tuple[int, str, str | None]] = [(0, text, None) for text in roots]
    level1 = [(f"{parent} {word}", parent) for parent in roots for word in LEVEL_WORDS[1][:3]]
    out += [(1, text, parent) for text, parent in level1]
    out += [(2, f"{parent} {word}", parent) for parent, _ in level1 for word in LEVEL_WORDS[2][:3]]
    return out


def test_exact_points_over_three_levels() -> None:
    records, _ = run(make_config())
    got = [(record["gen"]["depth"], record["text"], record["gen"].get("parent_point")) for record in records]
    assert got == expected_tree()
    assert len(records) == 3 + 9 + 27


def test_parents_are_points_of_the_level_above() -> None:
    records, _ = run(make_config())
    by_id = {record["id"]: record for record in records}
    assert len(by_id) == len(records)  # ids are unique
    for record in records:
        depth = record["gen"]["depth"]
        if depth == 0:
            assert record["parent"] is None
            assert "parent_point" not in record["gen"]
            continue
        parent = by_id[record["parent"]]
        assert parent["gen"]["depth"] == depth - 1
        assert parent["text"] == record["gen"]["parent_point"]
        assert records.index(parent) < records.index(record)


def test_at_most_count_points_per_parent() -> None:
    for count in (1, 2, 3):
        records, _ = run(make_config(count=count, depth=1))
        per_parent: dict[object, int] = {}
        for record in records:
            per_parent[record["parent"]] = per_parent.get(record["parent"], 0) + 1
        assert set(per_parent.values()) == {count}
        assert len(records) == count + count * count


def test_prompts_carry_count_topic_and_parent_point() -> None:
    _, model = run(make_config(count=3, depth=1))
    root_call, child_call = model.calls
    assert root_call["prompts"] == [(PROMPTS / "points.txt").read_text().strip().format(count=3, topic=TOPIC)]
    child_template = (PROMPTS / "subpoints.txt").read_text().strip()
    assert child_call["prompts"] == [
        child_template.format(count=3, topic=TOPIC, point=point)
        for point in ("Hogwarts", "Quidditch Pitch", "Horcruxes")
    ]


def test_duplicates_and_the_topic_are_dropped() -> None:
    records, _ = run(make_config(depth=0, count=10))
    # HOGWARTS (exact), Pitch Quidditch (same words), Harry Potter / Potter Harry (the topic) are gone.
    assert [record["text"] for record in records] == [
        "Hogwarts",
        "Quidditch Pitch",
        "Horcruxes",
        "Diagon Alley",
    ]


def test_a_point_repeated_under_another_parent_is_dropped() -> None:
    def repeating(prompt: str, draw: int, seed: int) -> str:
        if CHILD_PROMPT.match(prompt):
            return "1. Sorting Hat\n2. Hogwarts\n3. Great Hall"
        return "1. Hogwarts\n2. Quidditch"

    model = ScriptedModel(repeating)
    records = list(generate_points(model, HashEmbedder(dim=1024), make_config(depth=1)))
    assert [(record["gen"]["depth"], record["text"]) for record in records] == [
        (0, "Hogwarts"),
        (0, "Quidditch"),
        (1, "Sorting Hat"),
        (1, "Great Hall"),
    ]
    assert records[2]["parent"] == records[0]["id"]  # first come, first kept: under Hogwarts


@pytest.mark.parametrize(
    ("max_points", "calls"), [(1, 1), (3, 1), (5, 2), (12, 2), (13, 3), (39, 3), (64, 3)]
)
def test_max_points_is_honoured(max_points: int, calls: int) -> None:
    records, model = run(make_config(max_points=max_points))
    assert [record["text"] for record in records] == [text for _, text, _ in expected_tree()[:max_points]]
    # Nothing more is asked of the model once the cap is reached: not the next level (each level's
    # lists, 1, 3 and 9 of them, fit one wave of requests).
    assert len(model.calls) == calls


def test_depth_zero_asks_once() -> None:
    records, model = run(make_config(depth=0))
    assert [record["text"] for record in records] == ["Hogwarts", "Quidditch Pitch", "Horcruxes"]
    assert len(model.calls) == 1


@pytest.mark.parametrize(
    ("output", "rejected"),
    [
        ("", {"no_list_item": 2}),
        ("Here are the key topics of Harry Potter:", {"no_list_item": 2}),
        ("1. Harry Potter\n2. HARRY POTTER", {"topic": 2}),
    ],
)
def test_no_points_is_an_error_with_counts(output: str, rejected: dict[str, int]) -> None:
    model = ScriptedModel(lambda prompt, draw, seed: output)
    with pytest.raises(NothingProduced) as raised:
        list(generate_points(model, HashEmbedder(), make_config(depth=3)))
    assert raised.value.rejected == rejected
    assert len(model.calls) == 1


def test_record_fields() -> None:
    config = make_config(temperature=0.5, top_p=0.9, seed=4)
    records, _ = run(config)
    root_hash = short_hash((PROMPTS / "points.txt").read_text(encoding="utf-8").strip())
    child_hash = short_hash((PROMPTS / "subpoints.txt").read_text(encoding="utf-8").strip())
    for record in records:
        assert list(record) == ["id", "kind", "text", "topic", "parent", "stage", "gen", "scores"]
        assert record["kind"] == "point"
        assert record["stage"] == "seeds"
        assert record["topic"] == TOPIC
        assert record["scores"] == {}
        gen = record["gen"]
        assert gen["model"] == "scripted"
        assert gen["embedder"] == "hash-embedder"
        assert gen["temperature"] == 0.5 and gen["top_p"] == 0.9 and gen["seed"] == 4
        if gen["depth"] == 0:
            assert (gen["template"], gen["template_hash"]) == ("seeds/points", root_hash)
        else:
            assert (gen["template"], gen["template_hash"]) == ("seeds/subpoints", child_hash)
        assert gen["settings"] == {
            "count": 3,
            "depth": 2,
            "max_points": 64,
            "samples": 2,
            "temperature": 0.5,
            "top_p": 0.9,
            "max_new_tokens": 160,
            "dedup_threshold": 0.9,
            "seed": 4,
        }
    assert root_hash != child_hash


def test_model_gets_the_sampling_settings() -> None:
    _, model = run(make_config(temperature=1.1, samples=3))
    assert {t for call in model.calls for t in call["temperatures"]} == {1.1}  # type: ignore[attr-defined]
    assert {n for call in model.calls for n in call["n"]} == {3}  # type: ignore[attr-defined]


def test_ids_are_reproducible_and_follow_the_seed_and_topic() -> None:
    first, _ = run(make_config(seed=1))
    again, _ = run(make_config(seed=1))
    other_seed, _ = run(make_config(seed=2))
    assert first == again  # whole records, ids included
    assert [record["text"] for record in other_seed] == [record["text"] for record in first]
    assert not {record["id"] for record in first} & {record["id"] for record in other_seed}
    assert len({record["id"] for record in first}) == len(first)


def test_ids_differ_between_models() -> None:
    first, _ = run(make_config(depth=0))
    other, _ = run(make_config(depth=0), name="another-model")
    assert not {record["id"] for record in first} & {record["id"] for record in other}


def test_request_seeds_follow_the_run_seed_level_and_parent() -> None:
    records, model = run(make_config(seed=5))
    _, again = run(make_config(seed=5))
    _, other = run(make_config(seed=6))
    seeds = [seed for call in model.calls for seed in call["seeds"]]  # type: ignore[attr-defined]
    # Level 0: 1 list; level 1: 3 lists; level 2: 9 lists, each level one wave.
    assert [len(call["prompts"]) for call in model.calls] == [1, 3, 9]  # type: ignore[arg-type]
    parents = (
        [None]
        + [r["id"] for r in records if r["gen"]["depth"] == 0]
        + [r["id"] for r in records if r["gen"]["depth"] == 1]
    )
    depths = [0] + [1] * 3 + [2] * 9
    assert seeds == [
        derive_seed(5, "seeds", depth, parent) for depth, parent in zip(depths, parents, strict=True)
    ]
    assert seeds == [seed for call in again.calls for seed in call["seeds"]]  # type: ignore[attr-defined]
    assert all(0 <= seed < 2**31 for seed in seeds)
    assert len(set(seeds)) == len(seeds)
    assert not set(seeds) & {seed for call in other.calls for seed in call["seeds"]}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("batch_size", "samples"), [(1, 2), (5, 2), (8, 1), (64, 3)])
def test_the_batch_size_changes_no_point(batch_size: int, samples: int) -> None:
    records, model = run(make_config(samples=samples), batch_size=batch_size)
    reference, _ = run(make_config(samples=samples), batch_size=8)
    assert records == reference
    assert all(n == samples for call in model.calls for n in call["n"])  # type: ignore[attr-defined]
    prompts = [prompt for call in model.calls for prompt in call["prompts"]]  # type: ignore[attr-defined]
    assert len(prompts) == len(set(prompts))


def test_ids_do_not_depend_on_how_deep_or_how_far_a_run_goes() -> None:
    # A deeper or longer re-run with --resume must recognise the points it already has.
    full, _ = run(make_config(depth=2, max_points=64))
    shallow, _ = run(make_config(depth=0))
    capped, _ = run(make_config(depth=2, max_points=5))
    assert [record["id"] for record in shallow] == [record["id"] for record in full[:3]]
    assert [record["id"] for record in capped] == [record["id"] for record in full[:5]]
    wider, _ = run(make_config(depth=0, count=4))
    assert not {record["id"] for record in wider} & {record["id"] for record in shallow}


def test_deduplicator_exact_near_and_growth() -> None:
    dedup = Deduplicator(0.95)
    basis = np.eye(40, dtype=np.float32)
    assert [dedup.offer(f"point {i}", basis[i]) for i in range(40)] == [None] * 40  # past the first 16 rows
    assert len(dedup) == 40
    assert dedup.offer("another", basis[37]) == "near"
    assert dedup.offer("POINT 3!", basis[0] * 0) == "exact"
    close = basis[5] * 0.96 + basis[6] * np.sqrt(1 - 0.96**2)
    assert dedup.offer("close", close.astype(np.float32)) == "near"  # cosine 0.96
    below = basis[7] * 0.94 + basis[8] * np.sqrt(1 - 0.94**2)
    assert dedup.offer("below", below.astype(np.float32)) is None
    assert dedup.offer("text only", None) is None
    assert dedup.offer("Text  only", None) == "exact"
    assert len(dedup) == 42
