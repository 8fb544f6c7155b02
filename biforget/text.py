"""Text helpers shared by the stages: normalisation for exact dedup, sentence splitting, list parsing for
key points."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pysbd import Segmenter

_SPACES = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")

# A list-item marker: "1.", "1)", "(1)", "a.", "A:", "-", "*", "•", "+".
_MARKER = re.compile(r"^\s*(?:\(?\d{1,3}[.):]|\(?[a-zA-Z][.):](?=\s)|[-*•+·–—])\s*")
# A second label right after the first marker: "* A: Hogwarts", "A: 1. Hogwarts". A letter with a
# period is left alone there, so "1. E. coli" keeps its "E.".
_INNER_MARKER = re.compile(r"^(?:\(?\d{1,3}[.):]|\(?[a-zA-Z][):])\s+")
# A numbered list written on one line: "1. Alpha. 2. Beta. 3. Gamma."
_INLINE_NUMBER = re.compile(r"(?:(?<=\s)|^)(\d{1,2})[.)]\s+")
_PREAMBLE = re.compile(
    r"^(here(?:'s| is| are)|sure|certainly|of course|okay|ok|below|the following|these|this list|"
    r"i hope|note|in summary|in conclusion|let me|as an ai|key points|title)\b",
    re.IGNORECASE,
)
# Explanations after a name: "Hogwarts - the school", "Hogwarts: the school", "Hogwarts (the school)".
_EXPLANATION = re.compile(r"\s+[-–—]\s+|:\s|\s\(")
# The prompts ask for "a short name of two to five words"; one more is still a name.
_NAME_WORDS = 6
# An apposition after a name: "A Christmas Tale, a story of good vs. evil", "Hogwarts, where ...".
_APPOSITION = re.compile(
    r",\s+(?:a|an|the|which|who|whose|where|that|in|from|inspired|featuring|based)\b", re.IGNORECASE
)
_EMPHASIS = re.compile(r"\*\*|__|`|^#+\s*")
_DANGLING = {
    "is",
    "are",
    "include",
    "includes",
    "and",
    "or",
    "the",
    "of",
    "a",
    "an",
    "to",
    "in",
    "on",
    "for",
    "with",
    "by",
    "at",
    "from",
    "&",
}


def normalise(text: str) -> str:
    """Key for exact dedup: Unicode-folded, lower case, punctuation dropped, spaces collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACES.sub(" ", _PUNCT.sub(" ", folded)).strip()


@lru_cache(maxsize=1)
def _segmenter() -> Segmenter:
    # Imported on first use: the CLI's --help and the stages that never split sentences do not pay for it.
    from pysbd import Segmenter

    # clean=False: pysbd must not rewrite the text, so each sentence can be found again where it was.
    return Segmenter(language="en", clean=False)


def sentences(text: str) -> list[str]:
    """The sentences of `text` in order, each with the spaces and line break that follow it, so that
    joined they give `text` back exactly. A line break always ends a sentence (lines are the structure of
    a model's output: labels, list items, a question over its answer); within a line, pysbd's rules
    decide, so "Mr.", "J.K.", "U.S.", initials and decimals do not end one."""
    pieces: list[str] = []
    for line in text.splitlines(keepends=True):
        starts = [0]
        position = 0
        for segment in _segmenter().segment(line):
            found = line.find(segment.strip(), position)
            # pysbd may alter a piece it returns; what it altered stays part of the sentence before it.
            if found < 0 or not segment.strip():
                continue
            if found > starts[-1] and line[:found].strip():
                starts.append(found)
            position = found + len(segment.strip())
        pieces.extend(line[a:b] for a, b in zip(starts, [*starts[1:], len(line)], strict=True))
    return pieces


def _split_inline_numbering(line: str) -> list[str]:
    """Split "1. A. 2. B. 3. C." into items when the numbers run 1, 2, 3, ... on one line."""
    matches = list(_INLINE_NUMBER.finditer(line))
    numbers = [int(m.group(1)) for m in matches]
    if len(matches) < 2 or numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        return [line]
    pieces = [
        line[m.start() : (matches[i + 1].start() if i + 1 < len(matches) else len(line))]
        for i, m in enumerate(matches)
    ]
    head = line[: matches[0].start()].strip()
    return ([head] if head else []) + [p.strip() for p in pieces]


def _strip_markers(text: str) -> str:
    """Drop a list marker and a label right after it ("* A: x" -> "x", "A: 1. x" -> "x")."""
    stripped = _MARKER.sub("", text, count=1).strip()
    if stripped != text.strip():
        stripped = _INNER_MARKER.sub("", stripped, count=1).strip()
    return stripped


def is_repetitive(text: str) -> bool:
    """A word or short phrase looping: "Vampires, Vampires, Vampires" or most words repeated."""
    words = normalise(text).split()
    if len(words) >= 3 and any(words[i] == words[i + 1] == words[i + 2] for i in range(len(words) - 2)):
        return True
    return len(words) >= 6 and len(set(words)) / len(words) < 0.5


def clean_point(item: str, *, max_words: int = 12, labels: frozenset[str] = frozenset()) -> str | None:
    """Reduce one list item to a point name, or None when nothing usable is left.

    `labels` are normalised names (the topic, the point being expanded) that a small model writes before
    the name it means: "Harry Potter: The Eye of Hora" names "The Eye of Hora"."""
    text = _EMPHASIS.sub("", item).strip()
    text = _strip_markers(text)
    text = _EMPHASIS.sub("", text).strip()
    split = _EXPLANATION.search(text)
    if split and split.group().startswith(":") and normalise(text[: split.start()]) in labels:
        rest = text[split.end() :].strip()
        after = _EXPLANATION.search(rest)
        name = _APPOSITION.split(rest[: after.start()] if after else rest, maxsplit=1)[0].strip()
        # A name after the label, not a description of it: "Photosynthesis: The process of converting
        # light energy into chemical energy" stays the label, which the caller drops as the topic.
        if name[:1].isupper() and len(name.split()) <= _NAME_WORDS:
            text, split = rest, after
    head = (text[: split.start()] if split else text).strip()
    head = _APPOSITION.split(head, maxsplit=1)[0].strip()
    # "Label: ..." where the label is most of the item is an explanation; an empty head is not.
    text = head or text
    text = text.strip(" \t\"'“”‘’*_").rstrip(".,;:!").strip()
    text = _SPACES.sub(" ", text)
    if len(text) < 2 or is_repetitive(text):
        return None
    words = text.split()
    if len(words) > max_words or words[-1].lower() in _DANGLING:
        return None
    return text


def _cut_off(point: str, others: list[str]) -> bool:
    """A last item that is only the first words of a longer name given before ("Harry" after "Harry
    Potter") is a line the token limit cut, not a name of its own."""
    words = normalise(point).split()
    return any(len(other.split()) > len(words) and other.split()[: len(words)] == words for other in others)


def parse_point_list(output: str, *, max_words: int = 12, labels: tuple[str, ...] = ()) -> list[str]:
    """The point names in a model's list answer, in order, without markers, preambles or explanations.

    When some lines carry list markers, unmarked lines are prose around the list and are ignored;
    when none do, every line that is not a preamble is taken as an item. `labels` (the topic, the point
    a list expands) are dropped where an item opens with one as a label ("Topic: Name"), and a last
    item that is only the start of a label or of an earlier item is taken as cut off.
    """
    known = frozenset(key for key in (normalise(label) for label in labels) if key)
    lines: list[str] = []
    for raw in output.splitlines():
        lines.extend(_split_inline_numbering(raw.strip()))
    lines = [line for line in lines if line.strip()]
    marked = [bool(_MARKER.match(line)) for line in lines]
    any_marked = any(marked)
    points: list[str] = []
    seen: set[str] = set()
    for number, (line, has_marker) in enumerate(zip(lines, marked, strict=True), 1):
        if any_marked and not has_marker:
            continue
        bare = _strip_markers(_EMPHASIS.sub("", line))
        if _PREAMBLE.match(bare) or (not has_marker and bare.endswith(":")):
            continue
        point = clean_point(line, max_words=max_words, labels=known)
        if point is None:
            continue
        key = normalise(point)
        if number == len(lines) and _cut_off(point, [*known, *(normalise(p) for p in points)]):
            continue
        if key and key not in seen:
            seen.add(key)
            points.append(point)
    return points


def word_edits(first: str, second: str) -> int:
    """Words added, dropped or replaced to turn `first` into `second` (both normalised first): zero for
    an exact copy, one for a copy with a word changed, more for a rephrasing or a reordering."""
    before, after = normalise(first).split(), normalise(second).split()
    previous = list(range(len(after) + 1))
    for i, word in enumerate(before, 1):
        current = [i]
        for j, other in enumerate(after, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1]
