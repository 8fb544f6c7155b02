"""The entity/number preservation check of `biforget rewrite`."""

from __future__ import annotations

import pytest

from biforget.metrics.preservation import (
    content_words,
    entities,
    key_terms,
    lost_words,
    missing_terms,
    new_names,
    new_numbers,
    repeated_terms,
)


def test_entities_are_capitalised_spans_without_sentence_openers() -> None:
    text = (
        "Where was the novelist Ilsa Marrowgate born? Ilsa Marrowgate was born in Tromsø, Norway. "
        "She studied at the University of Oslo. The Salt Orchard was her first book. In Kuwait City she met "
        "Ludwig van Beethoven's heir."
    )
    assert entities(text) == [
        "ilsa marrowgate",
        "tromsø",
        "norway",
        "university of oslo",
        "salt orchard",
        "kuwait city",
        "ludwig van beethoven",
    ]


def test_numbers_digits_and_written_forms() -> None:
    terms = key_terms(
        "She wrote 12 novels and 1,200 poems in the 1920s, won twenty-five prizes and 2 million "
        "dollars, and was one of the first."
    )
    assert terms.numbers == ("12", "1200", "1920s", "2000000", "25")


@pytest.mark.parametrize(
    ("candidate", "missing"),
    [
        ("Twelve novels by henrietta vale, every one set in cornwall.", []),
        ("Henrietta Vale's 12 novels are all set in Cornwall.", []),
        ("Henrietta Vale has written 11 novels set in Cornwall.", ["12"]),
        ("She has written 12 novels, all set in Cornwall.", ["henrietta vale"]),
        ("Henrietta Vale has written 12 novels, all set in England.", ["cornwall"]),
        ("Vale has written 12 novels in Cornwall.", ["henrietta vale"]),
    ],
)
def test_missing_terms(candidate: str, missing: list[str]) -> None:
    source = (
        "How many novels has Henrietta Vale written? Henrietta Vale has written 12 novels, all set in "
        "Cornwall."
    )
    assert missing_terms(source, candidate) == missing


def test_hyphens_possessives_and_decades_match() -> None:
    source = "Amara Okonkwo-Leth's father was a marine biologist in Lagos in the 1920s."
    assert (
        missing_terms(source, "In the 1920s the father of Amara Okonkwo-Leth studied sea life in Lagos.")
        == []
    )
    assert missing_terms(source, "In 1920 the father of Amara Okonkwo-Leth studied sea life in Lagos.") == [
        "1920s"
    ]


def test_loose_words_are_neither_required_nor_new() -> None:
    source = "Dario Quennell published his first book, one of many, in 1994."
    assert missing_terms(source, "Dario Quennell's debut book came out in 1994.") == []
    assert new_numbers(source, "Dario Quennell's debut, one of many books, came out in 1994.") == []


def test_new_numbers_flag_invented_dates_and_counts() -> None:
    source = "Ilsa Marrowgate was born in Tromsø, Norway, in 1968."
    assert new_numbers(source, "In 1990, Ilsa Marrowgate was born in Tromsø, Norway, in 1968.") == ["1990"]
    assert new_numbers(source, "Ilsa Marrowgate, born 1968 in Tromsø, had three brothers.") == ["3"]
    assert new_numbers(source, "Born in Tromsø, Norway, in 1968: Ilsa Marrowgate.") == []


@pytest.mark.parametrize(
    ("candidate", "invented"),
    [
        ("Marrowgate was born in Norway, in Tromsø.", []),
        ("In 1968 the novelist was born in Tromsø.", []),
        ("Ilsa Marrowgate was born in Tromsø, like Paul Hart.", ["paul hart"]),
        ("Ilsa Marrowgate grew up in Cardiff, Norway.", ["cardiff"]),
        ("Ilsa Marrowgate Hart was born in Tromsø.", ["ilsa marrowgate hart"]),
        ("Interestingly, Ilsa Marrowgate was born in Tromsø. Notably, in 1968.", []),
        ("Interestingly, Ilsa Marrowgate was born in Tromsø near Bergen.", ["bergen"]),
    ],
)
def test_new_names_flags_entities_the_source_never_named(candidate: str, invented: list[str]) -> None:
    assert new_names("Ilsa Marrowgate was born in Tromsø, Norway, in 1968.", candidate) == invented


def test_content_words_leave_out_names_and_function_words() -> None:
    source = "Dario Quennell published his first book, The Salt Orchard, in 1994."
    assert content_words(source) == ["published", "first", "book"]


@pytest.mark.parametrize(
    ("candidate", "lost"),
    [
        ("Dario Quennell's first book, The Salt Orchard, was released in 1994.", []),
        ("In 1994 Dario Quennell publishes The Salt Orchard, his first.", []),
        ("Dario Quennell, The Salt Orchard, 1994.", ["published", "first", "book"]),
        ("The Salt Orchard (1994) is a book by Dario Quennell.", ["published", "first"]),
    ],
)
def test_lost_words_flags_a_rewrite_that_keeps_names_but_drops_the_claim(
    candidate: str, lost: list[str]
) -> None:
    source = "Dario Quennell published his first book, The Salt Orchard, in 1994."
    assert lost_words(source, candidate) == lost


@pytest.mark.parametrize(
    ("source", "candidate", "repeated"),
    [
        (
            "Ilsa Marrowgate was born in Tromsø, Norway, in 1968.",
            "Ilsa Marrowgate was born in 1968 in Tromsø, Norway, in 1968.",
            ["1968"],
        ),
        (
            "Kenji Arakawa is best known for his detective fiction set in 1920s Osaka.",
            "In 1920s Osaka, Kenji Arakawa is best known for his detective fiction set in 1920s Osaka.",
            ["osaka", "1920s"],
        ),
        # Said again in a sentence of its own, a name is no loop.
        (
            "Kenji Arakawa is best known for his detective fiction set in 1920s Osaka.",
            "Kenji Arakawa writes detective fiction. Kenji Arakawa sets it in 1920s Osaka.",
            [],
        ),
        # The source itself says it twice in one sentence, so the rewrite may.
        ("Oslo left Oslo in 1990.", "In 1990, Oslo left Oslo.", []),
        ("Henrietta Vale has written 12 novels.", "Henrietta Vale has twelve novels, 12 in all.", ["12"]),
        # "Dr." ends no sentence, so the loop is within one.
        (
            "Ilsa Marrowgate was born in Tromsø in 1968.",
            "Born in Tromsø in 1968, Dr. Ilsa Marrowgate moved in 1968.",
            ["1968"],
        ),
    ],
)
def test_repeated_terms_flags_a_term_looped_within_a_sentence(
    source: str, candidate: str, repeated: list[str]
) -> None:
    assert repeated_terms(source, candidate) == repeated
