"""`parse_point_list`, `normalise` and `is_repetitive` on real SmolLM2-135M outputs and synthetic lists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from biforget.text import is_repetitive, normalise, parse_point_list, word_edits

FIXTURE = Path(__file__).parent / "fixtures" / "smollm2_point_lists.json"
ENTRIES: list[dict[str, object]] = json.loads(FIXTURE.read_text(encoding="utf-8"))

LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[-*•])")
PREAMBLE = re.compile(r"^(here are|here is|here's|sure|certainly)\b", re.IGNORECASE)
DANGLING = {"is", "are", "and", "or", "the", "of", "a", "an", "to", "in", "for", "with", "by", "&"}


def test_fixture_is_the_real_model_output() -> None:
    assert len(ENTRIES) >= 20
    assert {entry["model"] for entry in ENTRIES} == {"SmolLM2-135M-Instruct"}


@pytest.mark.parametrize("index", range(len(ENTRIES)))
def test_fixture_points_are_clean(index: int) -> None:
    output = str(ENTRIES[index]["output"])
    points = parse_point_list(output)
    for point in points:
        assert point == point.strip() and point, point
        assert not LIST_MARKER.match(point), f"list marker left in {point!r}"
        assert "**" not in point, point
        assert not PREAMBLE.match(point), f"preamble taken as a point: {point!r}"
        assert not point.endswith(":"), point
        assert point.split()[-1].lower() not in DANGLING, f"dangling last word in {point!r}"
        assert "\n" not in point
        assert len(point.split()) <= 12
    keys = [normalise(point) for point in points]
    assert len(keys) == len(set(keys)), f"duplicates after normalise: {points}"


# Hand-picked fixture entries with the exact list a careful reader takes from them.
EXPECTED = {
    # Numbered, with repeats: "Photosynthesis" and "Carbon dioxide" appear twice.
    5: [
        "Photosynthesis",
        "Photosensature",
        "Photosynthetic Bacteria",
        "Sunlight",
        "Carbon dioxide",
        "Oxygen",
    ],
    # A "Sure, here are ..." preamble, then "Name: explanation" items, some repeated.
    4: ["Photosynthesis", "Carbon dioxide", "Oxygen", "Photosynthetic processes"],
    # An unmarked title line above dash bullets; the last bullet is cut mid-sentence.
    14: ["Photosynthesis", "Carbon dioxide", "Oxygen", "Chlorophyll", "Glucose"],
    # Bullets each carrying a letter label "A:", "B:", ...; "(removed)" is an explanation.
    10: [
        "Harry Potter",
        "Harry Potter and the Deathly Illness",
        "Harry Potter and the Tonkuna",
        "The Deathly Illness",
        "Harry Potter and Zrr",
        "Harry Potter and the Curse of the Black Riddler",
        "The Deathly Illness II",
        "Harry Potter and the Deathly Illness III",
    ],
    # "A: 1. Name - explanation" on the first line, then "N. Name - explanation".
    6: ["H.P. Boggitch", "Harry Potter"],
    # Numbered items with "(2)"-style suffixes and repeats.
    2: [
        "Harry Potter",
        "Harry Potter's Head",
        "Harry Potter and the Philosopher's Stone",
        "Harry Potter and the Sorcerer's Guild",
    ],
    # Unmarked "Name: explanation" lines; the last line is a bare "Name:" cut off by the token limit.
    13: [
        "Harry Potter",
        "Esprit de la Réscipline",
        "Mortal Shard",
        "Erebus",
        "Harry Potter and the Goblet of Svelre",
    ],
    # Prose around a list: the intro sentence is ignored because the list lines carry markers.
    19: ["Harry Potter", "The series", "The universe within Harry Potter"],
}


@pytest.mark.parametrize("index", sorted(EXPECTED))
def test_fixture_exact_points(index: int) -> None:
    assert parse_point_list(str(ENTRIES[index]["output"])) == EXPECTED[index]


@pytest.mark.parametrize("index", [8, 9, 18])
def test_fixture_prose_without_a_list_gives_nothing(index: int) -> None:
    # These outputs restate the prompt as long sentences; none of it is a point name.
    assert parse_point_list(str(ENTRIES[index]["output"])) == []


def test_fixture_number_only_last_line_is_dropped() -> None:
    output = str(ENTRIES[3]["output"])
    assert output.endswith("\n4.")
    assert parse_point_list(output) == ["The Absolute Minimum Requirements"]


# Synthetic lists: one rule each.


def test_bullets_of_every_kind() -> None:
    output = "- Hogwarts\n* Quidditch\n• Horcruxes\n+ Patronus charm"
    assert parse_point_list(output) == ["Hogwarts", "Quidditch", "Horcruxes", "Patronus charm"]


def test_parenthesis_numbering() -> None:
    assert parse_point_list("1) Hogwarts\n2) Quidditch\n(3) Horcruxes") == [
        "Hogwarts",
        "Quidditch",
        "Horcruxes",
    ]


def test_bold_name_with_explanation() -> None:
    assert parse_point_list("**Hogwarts** - the school") == ["Hogwarts"]
    assert parse_point_list("1. **Hogwarts** - the school\n2. **Quidditch**: a sport on brooms") == [
        "Hogwarts",
        "Quidditch",
    ]


def test_inline_numbering_is_split() -> None:
    assert parse_point_list("1. Gryffindor House. 2. Diagon Alley. 3. Forbidden Forest.") == [
        "Gryffindor House",
        "Diagon Alley",
        "Forbidden Forest",
    ]


def test_inline_numbering_of_single_letters_never_merges_items() -> None:
    # "1. A. 2. B. 3. C." splits into three one-letter items, each too short to be a point; it must not
    # come back as one item "A. 2. B. 3. C".
    assert parse_point_list("1. A. 2. B. 3. C.") == []
    assert parse_point_list("1. Ab. 2. Bc. 3. Cd.") == ["Ab", "Bc", "Cd"]


def test_inline_numbers_out_of_sequence_are_not_split() -> None:
    assert parse_point_list("1. Chapter 3. Escape") == ["Chapter 3. Escape"]


@pytest.mark.parametrize(
    "preamble",
    [
        "Here are the key topics of Harry Potter:",
        "Sure! Here are six topics:",
        "Certainly, here is the list:",
    ],
)
def test_preamble_line_is_dropped(preamble: str) -> None:
    assert parse_point_list(f"{preamble}\n1. Hogwarts\n2. Quidditch") == ["Hogwarts", "Quidditch"]


def test_preamble_dropped_in_unmarked_list() -> None:
    assert parse_point_list("Here are some topics\nHogwarts\nQuidditch") == ["Hogwarts", "Quidditch"]


def test_trailing_explanations_are_cut() -> None:
    output = "1. Hogwarts - the school of magic\n2. Quidditch: a sport on brooms\n3. Horcruxes (dark objects)"
    assert parse_point_list(output) == ["Hogwarts", "Quidditch", "Horcruxes"]


def test_hyphenated_names_are_not_explanations() -> None:
    assert parse_point_list("1. Half-Blood Prince\n2. Muggle-born wizards") == [
        "Half-Blood Prince",
        "Muggle-born wizards",
    ]


def test_repetitive_item_is_dropped() -> None:
    assert parse_point_list("1. Vampires, Vampires, Vampires\n2. Hogwarts") == ["Hogwarts"]


def test_truncated_last_item_is_dropped() -> None:
    output = "1. Hogwarts\n2. Quidditch\n3. The Order of the Phoenix and"
    assert parse_point_list(output) == ["Hogwarts", "Quidditch"]


def test_duplicates_differing_in_case_and_punctuation_are_merged() -> None:
    assert parse_point_list("1. Hogwarts\n2. HOGWARTS.\n3. Hogwarts!\n4. Quidditch") == [
        "Hogwarts",
        "Quidditch",
    ]


def test_unmarked_prose_around_marked_list_is_ignored() -> None:
    output = "Harry Potter is a rich world.\n1. Hogwarts\n2. Quidditch\nI hope this helps."
    assert parse_point_list(output) == ["Hogwarts", "Quidditch"]


def test_letter_period_inside_a_name_is_kept() -> None:
    assert parse_point_list("1. E. coli\n2. Salmonella") == ["E. coli", "Salmonella"]


def test_too_long_item_is_dropped_and_max_words_is_honoured() -> None:
    long_item = "one two three four five six seven eight nine ten eleven twelve thirteen"
    assert parse_point_list(f"1. {long_item}\n2. Hogwarts") == ["Hogwarts"]
    assert parse_point_list("1. Great Hall of Hogwarts\n2. Hogwarts", max_words=3) == ["Hogwarts"]


def test_empty_output() -> None:
    assert parse_point_list("") == []
    assert parse_point_list("\n\n  \n") == []


def test_normalise() -> None:
    assert normalise("  Hogwarts\u2019 School\u2014of  MAGIC!! ") == "hogwarts school of magic"
    # NFKC folds full-width letters.
    assert normalise("\uff28\uff2f\uff27\uff37\uff21\uff32\uff34\uff33") == "hogwarts"
    assert normalise("Straße") == normalise("STRASSE")  # casefold, not lower
    assert normalise("Café") == "café"
    assert normalise("a\tb\n c") == "a b c"
    assert normalise("!!!") == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Vampires, Vampires, Vampires", True),
        ("She is brave, brave, brave", True),
        ("the cat the cat the cat the cat", True),
        ("Harry Potter and the Goblet of Fire", False),
        ("Hogwarts", False),
        ("Vampires, Vampires", False),
        ("Harry Potter and the Harry Potter", False),
    ],
)
def test_is_repetitive(text: str, expected: bool) -> None:
    assert is_repetitive(text) is expected


@pytest.mark.parametrize(
    ("first", "second", "edits"),
    [
        ("Kenji Arakawa is best known.", "kenji arakawa IS best known", 0),
        ("Kenji Arakawa is best known.", "Kenji Arakawa, best known.", 1),
        ("Kenji Arakawa is best known.", "Kenji Arakawa is most famous.", 2),
        ("a b c", "c b a", 2),
        ("", "one two", 2),
    ],
)
def test_word_edits_count_words_added_dropped_or_replaced(first: str, second: str, edits: int) -> None:
    assert word_edits(first, second) == edits == word_edits(second, first)
