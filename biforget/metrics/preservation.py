"""Does a rewrite keep the facts? A cheap check: every named entity and number of the source is still there,
and no name the source lacks came in.

No tagger model is loaded; the heuristic is deliberately simple and tested:

- **Named entities** are spans of capitalised words ("Ilsa Marrowgate", "Kuwait City", "The Salt Orchard"),
  with lower-case joiners inside a span ("University of Oslo", "Ludwig van Beethoven"). A comma or other
  punctuation ends a span, so "Tromsø, Norway" is two entities. A leading article is dropped ("Salt
  Orchard"), a possessive `'s` is ignored, and a capitalised common word ("The", "Her", "In", "Which")
  never opens a name. Matching is case- and punctuation-insensitive on whole words, so
  "Okonkwo-Leth's" in the source is found as "Okonkwo Leth" in the rewrite.
- **Numbers** are digits ("12", "1,200", "3.5", "1920s", "21st") and written cardinals: zero to nineteen,
  the tens, their compounds ("twenty-five") and a following hundred/thousand/million/billion ("2 million",
  "two million"). Each is reduced to a value, so "12" in the source is kept by "twelve" in the rewrite and
  the other way round.
- "one" and written ordinals ("first", "second") are too often ordinary words ("one of her books", "her
  first novel" rewritten as "her debut novel") to be required from the source or flagged as new; they
  still count as a match when the source wrote the digit ("1", "1st").

A rewrite may also not bring in a number or a name the source never had: small models copy the example
dates and people of a prompt into their answers, and a new date or person changes the fact.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from biforget.text import sentences

# Capitalised words that open sentences and questions without naming anything.
_STARTER_WORDS = """
    a an the this that these those there here it its he she they we you i his her their our your my in
    on at of for from by with to into after before during since when where which who whom whose what why
    how while as if although though because but and or so yet also then however today now once is are
    was were has have had do does did can could will would shall should may might must be born known
    best both each every all many most some several no not one two name list tell give describe yes well
    indeed besides moreover furthermore instead meanwhile later earlier eventually despite throughout
    being growing having according among following unlike like only just please question answer
"""
_STARTERS = frozenset(_STARTER_WORDS.split())
# Lower-case words that may sit inside a name: "University of Oslo", "Vincent van Gogh".
_JOINER_WORDS = "of de da di del della der den van von la le du al el bin ibn y and & for the"
_JOINERS = frozenset(_JOINER_WORDS.split())
_ARTICLES = frozenset({"the", "a", "an"})

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
# Written forms that are matched when present but never required or flagged (see the module notes).
_LOOSE = frozenset({"one", *_ORDINALS})

_TOKEN = re.compile(r"\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th|s)?\b|[^\W\d_][\w'’\-]*|[.!?;:,()\"“”]", re.UNICODE)
_DIGITS = re.compile(r"^(\d[\d,]*(?:\.\d+)?)(st|nd|rd|th|s)?$")
_SENTENCE_END = frozenset('.!?:;"“”')
_BREAK = frozenset(",()")


@dataclass(frozen=True)
class KeyTerms:
    """What a text asserts, reduced for matching: entity word tuples and number values."""

    entities: tuple[str, ...]
    numbers: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.entities or self.numbers)


def _fold(word: str) -> str:
    word = unicodedata.normalize("NFKC", word).casefold()
    word = re.sub(r"['’]s$", "", word)
    return " ".join(re.sub(r"[^\w]", " ", word).split())


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFKC", text))


def _is_capitalised(token: str) -> bool:
    return token[:1].isupper()


def entities(text: str) -> list[str]:
    """Capitalised spans, in order, each as its folded words ("kuwait city"), without duplicates."""
    found: list[str] = []
    span: list[str] = []

    def close() -> None:
        while span and span[-1].lower() in _JOINERS:
            span.pop()
        while span and span[0].lower() in _ARTICLES:
            span.pop(0)
        key = " ".join(_fold(word) for word in span).strip()
        if key and key not in found:
            found.append(key)
        span.clear()

    tokens = _tokens(text)
    for index, token in enumerate(tokens):
        if token in _SENTENCE_END or token in _BREAK or token[:1].isdigit():
            close()
            continue
        if _is_capitalised(token):
            # A capitalised common word ("The", "Her", "In", "Which") opens sentences, not names.
            if not span and _fold(token) in _STARTERS:
                continue
            span.append(token)
            continue
        nxt = tokens[index + 1] if index + 1 < len(tokens) else ""
        if span and token.lower() in _JOINERS and nxt[:1].isupper():
            span.append(token)
            continue
        close()
    close()
    return found


def _written_number(words: list[str], start: int) -> tuple[int | None, int, bool]:
    """A written number at `words[start]`: its value, how many words it used, whether it is loose."""
    word = words[start]
    parts = word.split("-")
    value: int | None = None
    loose = False
    if len(parts) == 2 and parts[0] in _TENS and parts[1] in _UNITS:
        value = _TENS[parts[0]] + _UNITS[parts[1]]
    elif word in _UNITS:
        value, loose = _UNITS[word], word in _LOOSE
    elif word in _TENS:
        value = _TENS[word]
        if start + 1 < len(words) and words[start + 1] in _UNITS and _UNITS[words[start + 1]] < 10:
            return value + _UNITS[words[start + 1]], 2, False
    elif word in _ORDINALS:
        return _ORDINALS[word], 1, True
    if value is None:
        return None, 0, False
    return value, 1, loose


def _number_list(text: str) -> list[tuple[str, bool]]:
    """Number values of a text in order, each with whether it is loose (see the module notes)."""
    found: list[tuple[str, bool]] = []
    words = [token.lower() for token in _tokens(text)]
    index = 0
    while index < len(words):
        word = words[index]
        digits = _DIGITS.match(word)
        value: float | None = None
        used = 1
        is_loose = False
        suffix = ""
        if digits:
            raw = digits.group(1).replace(",", "")
            value = float(raw) if "." in raw else int(raw)
            suffix = "s" if digits.group(2) == "s" else ""  # "1920s" is a decade, not 1920
        else:
            written, used, is_loose = _written_number(words, index)
            value = written
        if value is None:
            index += 1
            continue
        following = words[index + used] if index + used < len(words) else ""
        if following in _SCALES and not suffix:
            value = value * _SCALES[following]
            used += 1
            is_loose = False
        key = f"{value:g}" if isinstance(value, float) else str(value)
        found.append((key + suffix, is_loose))
        index += used
    return found


def _numbers(text: str) -> tuple[set[str], set[str]]:
    """Number values of a text: (firm, loose). Firm ones must survive a rewrite; loose ones only match."""
    found = _number_list(text)
    return {key for key, loose in found if not loose}, {key for key, loose in found if loose}


def key_terms(text: str) -> KeyTerms:
    """The named entities and the firm numbers of a text."""
    firm, _ = _numbers(text)
    return KeyTerms(tuple(entities(text)), tuple(sorted(firm)))


def _occurrences(words: list[str], phrase: str) -> int:
    target = phrase.split()
    width = len(target)
    return sum(words[i : i + width] == target for i in range(len(words) - width + 1))


def _contains(words: list[str], phrase: str) -> bool:
    return _occurrences(words, phrase) > 0


def missing_terms(source: str, candidate: str) -> list[str]:
    """Entities and numbers of `source` that `candidate` lost, in source order (empty when all kept)."""
    terms = key_terms(source)
    words = " ".join(_fold(token) for token in _tokens(candidate)).split()
    missing = [entity for entity in terms.entities if not _contains(words, entity)]
    firm, loose = _numbers(candidate)
    missing += [number for number in terms.numbers if number not in firm | loose]
    return missing


def new_numbers(source: str, candidate: str) -> list[str]:
    """Firm numbers of `candidate` that `source` never had: an invented date or count."""
    firm_source, loose_source = _numbers(source)
    firm, _ = _numbers(candidate)
    return sorted(number for number in firm if number not in firm_source | loose_source)


def new_names(source: str, candidate: str) -> list[str]:
    """Named entities of `candidate` with a word `source` never has: a name copied from a prompt's
    examples or made up. Shortened or reordered names ("Marrowgate" for "Ilsa Marrowgate") pass, and so
    does a lone capitalised word opening a sentence ("Interestingly, ..."), which is rarely a name."""
    known = set(" ".join(_fold(token) for token in _tokens(source)).split())
    tokens = _tokens(candidate)
    openers = {
        _fold(token) for index, token in enumerate(tokens) if index == 0 or tokens[index - 1] in _SENTENCE_END
    }
    return [
        entity
        for entity in entities(candidate)
        if any(w not in known for w in entity.split()) and not (" " not in entity and entity in openers)
    ]


def _most_per_sentence(text: str, terms: KeyTerms) -> dict[str, int]:
    """For each term, the most times one sentence of `text` says it."""
    most = dict.fromkeys((*terms.entities, *terms.numbers), 0)
    for sentence in sentences(unicodedata.normalize("NFKC", text)):
        words = " ".join(_fold(token) for token in _tokens(sentence)).split()
        numbers = Counter(key for key, _ in _number_list(sentence))
        for entity in terms.entities:
            most[entity] = max(most[entity], _occurrences(words, entity))
        for number in terms.numbers:
            most[number] = max(most[number], numbers[number])
    return most


def repeated_terms(source: str, candidate: str) -> list[str]:
    """Entities and numbers of `source` that one sentence of `candidate` says more often than any
    sentence of `source` does: the loop of a small model ("born in 1968 in Tromsø, Norway, in 1968",
    "In 1920s Osaka, ... set in 1920s Osaka"), which the other checks take for a faithful rewrite."""
    terms = key_terms(source)
    allowed = _most_per_sentence(source, terms)
    said = _most_per_sentence(candidate, terms)
    return [term for term in allowed if said[term] > max(1, allowed[term])]


# Frequent words that carry no fact of their own; the rest of a source's lower-case words are its content.
_FUNCTION_WORD_LIST = """
    about above after again also among around because been before being below between both could does
    doing down during each either ever from further have having here into itself just many more most
    much must never only other over same should since some such than that their them themselves then
    there these they this those through under until upon very well were what when where whether which
    while whom whose will with within without would your
"""
_FUNCTION_WORDS = frozenset(_FUNCTION_WORD_LIST.split())


def content_words(text: str) -> list[str]:
    """Lower-case words of four letters or more that are no function word and not part of a name."""
    names = {word for entity in entities(text) for word in entity.split()}
    words = (_fold(token) for token in _tokens(text))
    kept = (w for w in words if len(w) >= 4 and w.isalpha() and w not in _FUNCTION_WORDS | names)
    return list(dict.fromkeys(kept))


def lost_words(source: str, candidate: str, keep: float = 0.5) -> list[str]:
    """The content words of `source` that `candidate` dropped, when it kept fewer than `keep` of them
    (empty otherwise). Words match on their first five letters, so "published" keeps "publish".

    Catches what entity and number checks cannot: "Dario Quennell, The Salt Orchard, 1994." keeps every
    name and the year of "Dario Quennell published his first book, The Salt Orchard, in 1994." and says
    nothing."""
    wanted = content_words(source)
    stems = {word[:5] for word in " ".join(_fold(t) for t in _tokens(candidate)).split()}
    lost = [word for word in wanted if word[:5] not in stems]
    return lost if wanted and len(wanted) - len(lost) < keep * len(wanted) else []
