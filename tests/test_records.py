"""The record contract: ids, question/answer text, record construction, per-unit seeds."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest

from biforget.records import ID_LENGTH, KINDS, derive_seed, make_id, make_record, qa_text

ORIGIN = {
    "stage": "seeds",
    "kind": "point",
    "topic": "Harry Potter",
    "parent": None,
    "model": "m",
    "depth": 0,
    "position": 1,
    "seed": 0,
}
# Computed once and pinned: an id must not change between runs, processes or machines.
PINNED_ID = "3538bed437e30646"


def test_make_id_is_pinned_and_short_hex() -> None:
    value = make_id(**ORIGIN)
    assert value == PINNED_ID
    assert len(value) == ID_LENGTH
    int(value, 16)


def test_make_id_is_stable_across_processes() -> None:
    # A fresh interpreter with a different hash seed gives the same id: nothing depends on hash().
    code = (
        "from biforget.records import make_id;"
        "print(make_id(stage='seeds', kind='point', topic='Harry Potter', parent=None, model='m',"
        " depth=0, position=1, seed=0))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == PINNED_ID


def test_make_id_ignores_argument_order() -> None:
    reversed_origin = dict(reversed(list(ORIGIN.items())))
    assert list(reversed_origin) != list(ORIGIN)
    assert make_id(**reversed_origin) == make_id(**ORIGIN)


def test_make_id_ignores_nested_key_order() -> None:
    assert make_id(settings={"a": 1, "b": 2}) == make_id(settings={"b": 2, "a": 1})


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("topic", "Photosynthesis"),
        ("model", "m2"),
        ("parent", "0123456789abcdef"),
        ("depth", 1),
        ("position", 2),
        ("seed", 1),
        ("stage", "synthesize"),
        ("kind", "sample"),
    ],
)
def test_make_id_changes_with_every_origin_field(field: str, other: object) -> None:
    assert make_id(**{**ORIGIN, field: other}) != make_id(**ORIGIN)


def test_make_id_distinguishes_types_and_missing_fields() -> None:
    assert make_id(**{**ORIGIN, "depth": "0"}) != make_id(**ORIGIN)
    without_seed = {key: value for key, value in ORIGIN.items() if key != "seed"}
    assert make_id(**without_seed) != make_id(**ORIGIN)


def test_ids_never_collide_across_two_topics() -> None:
    ids = []
    for topic in ("Harry Potter", "Photosynthesis"):
        for depth, position, seed in itertools.product(range(5), range(10), range(10)):
            ids.append(
                make_id(
                    stage="seeds",
                    kind="point",
                    topic=topic,
                    parent=None,
                    model="m",
                    depth=depth,
                    position=position,
                    seed=seed,
                )
            )
    assert len(ids) == 1000
    assert len(set(ids)) == 1000


def test_qa_text() -> None:
    assert qa_text("Who is Harry?", "A wizard.") == "Who is Harry? A wizard."
    assert qa_text("  Who is Harry?\n", "\tA wizard.  ") == "Who is Harry? A wizard."
    assert qa_text("", "A wizard.") == "A wizard."
    assert qa_text("Who?", "") == "Who?"


def _record(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "kind": "fact",
        "stage": "input",
        "gen": {"model": "m"},
        "origin": {"model": "m", "index": 3},
        **overrides,
    }
    return make_record(**values)  # type: ignore[arg-type]


def test_make_record_keeps_question_and_answer() -> None:
    record = _record(
        question=" Who is Harry? ", answer="A wizard.", topic="Harry Potter", scores={"mink": -1.5}
    )
    assert record["question"] == " Who is Harry? "
    assert record["answer"] == "A wizard."
    assert record["text"] == qa_text(" Who is Harry? ", "A wizard.") == "Who is Harry? A wizard."
    assert list(record) == [
        "id",
        "kind",
        "text",
        "question",
        "answer",
        "topic",
        "parent",
        "stage",
        "gen",
        "scores",
    ]
    assert record["parent"] is None
    assert record["scores"] == {"mink": -1.5}


def test_make_record_question_answer_wins_over_text() -> None:
    record = _record(text="stale", question="Q?", answer="A.")
    assert record["text"] == "Q? A."


def test_make_record_plain_text() -> None:
    record = _record(kind="sample", text="Hogwarts is a school.", parent="p1", stage="synthesize")
    assert record["text"] == "Hogwarts is a school."
    assert "question" not in record and "answer" not in record and "topic" not in record
    assert record["parent"] == "p1"
    assert record["scores"] == {}


def test_make_record_id_follows_origin_and_not_text() -> None:
    first = _record(text="one")
    assert _record(text="two")["id"] == first["id"]
    assert _record(text="one", origin={"model": "m", "index": 4})["id"] != first["id"]
    assert _record(text="one", topic="X")["id"] != first["id"]
    assert _record(text="one", parent="p")["id"] != first["id"]
    assert _record(text="one", stage="rewrite")["id"] != first["id"]


def test_make_record_scores_are_copied() -> None:
    scores = {"mink": 1.0}
    record = _record(text="t", scores=scores)
    scores["mink"] = 2.0
    assert record["scores"] == {"mink": 1.0}


def test_every_kind_of_the_contract_is_accepted_and_a_statement_is_text_only() -> None:
    assert KINDS == ("point", "sample", "fact", "variant", "statement")
    for kind in KINDS:
        assert _record(kind=kind, text="t")["kind"] == kind
    statement = _record(kind="statement", text="Ilsa Marrowgate was born in Tromsø in 1968.")
    assert "question" not in statement and "answer" not in statement


def test_make_record_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="kind"):
        _record(kind="essay", text="t")
    with pytest.raises(ValueError, match="text"):
        _record()
    with pytest.raises(ValueError, match="text"):
        _record(question="Q?")  # an answer is missing, and there is no text


def test_derive_seed_is_deterministic_and_31_bit() -> None:
    assert derive_seed(0, "seeds", 0, 0) == 703411548  # pinned: must not change between runs
    values = [
        derive_seed(seed, "seeds", depth, batch)
        for seed in range(5)
        for depth in range(5)
        for batch in range(20)
    ]
    assert all(isinstance(value, int) and 0 <= value < 2**31 for value in values)
    assert len(set(values)) == len(values)
    assert derive_seed(7, "seeds", 1, 2) == derive_seed(7, "seeds", 1, 2)


def test_derive_seed_depends_on_seed_and_every_part() -> None:
    base = derive_seed(1, "seeds", 0, 0)
    assert derive_seed(2, "seeds", 0, 0) != base
    assert derive_seed(1, "synthesize", 0, 0) != base
    assert derive_seed(1, "seeds", 1, 0) != base
    assert derive_seed(1, "seeds", 0, 1) != base
    assert derive_seed(1, "seeds", 0) != base
