"""The acceptance checks of a rewrite, in the order they are applied, and the one `Verdict` they give.

A rewrite is accepted only if it is no near copy of its source (not equal after normalisation and not
one word away from it; cosine below the upper bound), keeps the meaning (cosine above the lower bound,
every named entity and number of the source still there, no number or name the source lacks, none said
twice in a sentence that said it once and, where asked, at least half of the other content words kept)
and repeats no variant accepted before. The term checks themselves are in biforget/metrics/preservation.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from biforget.metrics.preservation import lost_words, missing_terms, new_names, new_numbers, repeated_terms
from biforget.text import word_edits

# A field changed in fewer words than this is a copy of its source with a word swapped or dropped.
MIN_WORD_EDITS = 2


@dataclass(frozen=True)
class Verdict:
    """A check's outcome: `reason` (None when every check passed), what failed, and the cosine to the
    source when one was measured."""

    reason: str | None = None
    detail: str | None = None
    similarity: float | None = None

    @property
    def passed(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class Bounds:
    """The cosine window a rewrite must fall in: above `low` (meaning kept), below `high` (no copy)."""

    low: float
    high: float


def copied(text: str, source: str) -> str | None:
    """Why `text` is a copy of `source` (equal after normalisation, or one word changed), or None."""
    edits = word_edits(text, source)
    if edits >= MIN_WORD_EDITS:
        return None
    return "equal after normalisation" if edits == 0 else f"{edits} word changed"


def meaning_lost(
    text: str,
    similarity: float,
    source: str,
    content_of: str | None,
    bounds: Bounds,
    *,
    capped: bool = True,
) -> Verdict:
    """The checks a field and a whole variant share, in order: cosine bounds (the upper one when
    `capped`), entities and numbers kept, the content words of `content_of` kept (when given), no
    number or name invented, none said again within a sentence."""
    if capped and similarity >= bounds.high:
        return Verdict("near_copy", f"cosine {similarity} >= {bounds.high}", similarity)
    if similarity <= bounds.low:
        return Verdict("low_similarity", f"cosine {similarity} <= {bounds.low}", similarity)
    failures = (
        ("missing_terms", lambda: missing_terms(source, text)),
        ("lost_content", lambda: lost_words(content_of, text) if content_of is not None else []),
        ("new_number", lambda: new_numbers(source, text)),
        ("new_name", lambda: new_names(source, text)),
        ("repeated_term", lambda: repeated_terms(source, text)),
    )
    for reason, find in failures:
        found = find()
        if found:
            return Verdict(reason, ", ".join(found), similarity)
    return Verdict(similarity=similarity)


def check_field(text: str, similarity: float, source: str, bounds: Bounds) -> Verdict:
    """One rephrased field (a question or an answer) against its source field: changed in two words or
    more, close in meaning, every entity and number kept, most of its other content words kept, and no
    number or name invented or looped.

    The cosine cap judges the whole variant, not a field: on a one-sentence field the embedder puts
    real rephrasings above it ("is most famous for" for "is best known for" at 0.99, a reordering of
    the fact's two clauses at 0.98), and a variant whose question is rephrased as well falls below."""
    found = copied(text, source)
    if found:
        return Verdict("near_copy", found)
    return meaning_lost(text, similarity, source, content_of=source, bounds=bounds, capped=False)


def check_variant(
    text: str, similarity: float, source: str, answer: str | None, bounds: Bounds, *, statement: bool
) -> Verdict:
    """A whole variant against the fact (`source`; `answer` the answer of a QA fact): no copy of either,
    and the meaning kept. A statement restates the answer, so it must keep the answer's content words
    too, not only its names."""
    # A statement that is the answer with a word changed rephrased nothing. The fields of a QA pairing
    # each passed `check_field`, which holds them to the same rule against their own source.
    found = copied(text, source) or copied(text, str(answer))
    if found:
        return Verdict("near_copy", found, similarity)
    return meaning_lost(text, similarity, source, answer if statement else None, bounds)
