"""Reading model outputs into the fields a record holds: one home for every output parser.

`clean_output` reads a synthesis or probe output (prose, or the templates' "Question: ...\nAnswer: ..."
form); `read_question`, `read_answer` and `read_prose` read a rewrite's completion. Each returns a
`Cleaned`: the text and fields, or None with the reason the output could not be read. The rules they
share (refusals, echoes, labels, loops, cut-off sentences) are in biforget/clean.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from biforget.clean import (
    MIN_WORDS,
    clean_body,
    cut_unfinished,
    cut_word_loops,
    drop_repeated_sentences,
    is_refusal,
    strip_echo,
    strip_labels,
    strip_opening_labels,
    tidy_lines,
)
from biforget.records import qa_text
from biforget.text import sentences


@dataclass(frozen=True)
class Cleaned:
    text: str | None
    reason: str | None = None
    question: str | None = None
    answer: str | None = None


# QA labels open a line: "Question: ...", "**Q1:** ...", "Answer - ...", "A) ...", and the way the default
# model often writes them, "The question is: ..." and "The answer: ...". A bare "q"/"a" needs : ) or .
# after it, so a line that opens with the article ("A wizard ...") is no answer label.
_QUESTION_LABEL = re.compile(
    r"^[^\w\n]*(?:question\s*\d*\s*[:.)-]|the\s+question(?:\s+is)?\s*:|q\s*\d*\s*[:.)])[\s*_]*", re.IGNORECASE
)


_ANSWER_LABEL = re.compile(
    r"^[^\w\n]*(?:answer\s*\d*\s*[:.)-]|the\s+answer(?:\s+is)?\s*:|a\s*\d*\s*[:.)])[\s*_]*", re.IGNORECASE
)


# Either label, at the start of any line.
_QA_LABEL_ANYWHERE = re.compile(
    "^(?:{}|{})".format(*(label.pattern.removeprefix("^") for label in (_QUESTION_LABEL, _ANSWER_LABEL))),
    re.IGNORECASE | re.MULTILINE,
)


# The answer written on the question's own line, after the question ends: "Question: Who is he? Answer:
# The headmaster." ("What is the answer: yes or no?" asks on.)
_INLINE_ANSWER = re.compile(
    r"(?<=[?.!\"”’*)])\s+(?:\*\*)?(?:the\s+)?answer(?:\s+is)?\s*:[\s*_]*", re.IGNORECASE
)


# A line of asterisks, dashes or the like: the model closing one example before it writes another.
_SEPARATOR = re.compile(r"^\s*(?:[*\-_=#~]\s*){3,}$")


def _question_line(line: str) -> str:
    return " ".join(line.split()).strip(" \"'“”‘’*_")


def parse_qa(text: str) -> tuple[str, str] | None:
    """The question and the answer of an output in the templates' form, "Question: ...\nAnswer: ...",
    or None. The question is one line that asks something (has a "?"), on its label's line or under a
    bare label; the answer runs, line breaks kept, up to the next question or answer label or a separator
    line. Lead-in lines that end in a colon ("The question and answer are as follows:") may come first;
    other prose may not."""
    lines = text.strip().splitlines()
    index = 0
    while index < len(lines) and not _QUESTION_LABEL.match(lines[index]):
        if lines[index].strip() and not lines[index].rstrip().endswith(":"):
            return None
        index += 1
    if index == len(lines):
        return None
    rest = lines[index + 1 :]
    question = _QUESTION_LABEL.sub("", lines[index], count=1)
    if not question.strip():
        while rest and not rest[0].strip():
            rest.pop(0)
        if not rest or _ANSWER_LABEL.match(rest[0]):
            return None
        question = rest.pop(0)
    inline = _INLINE_ANSWER.search(question)
    if inline:
        rest = [question[inline.end() :], *rest]
        question = question[: inline.start()]
    else:
        while rest and not rest[0].strip():
            rest.pop(0)
        if not rest or not _ANSWER_LABEL.match(rest[0]):
            return None
        rest[0] = _ANSWER_LABEL.sub("", rest[0], count=1)
    answer: list[str] = []
    for position, line in enumerate(rest):
        opens_another = position > 0 and (_QUESTION_LABEL.match(line) or _ANSWER_LABEL.match(line))
        if opens_another or _SEPARATOR.match(line):
            break
        answer.append(line.rstrip())
    pair = _question_line(question), tidy_lines("\n".join(answer))
    # A "question" that asks nothing is a statement under a label, not the first half of a QA pair.
    if "?" not in pair[0] or len(pair[1].split()) < 2:
        return None
    return pair


def clean_output(text: str, prompt: str = "", *, qa: bool = False, min_words: int = MIN_WORDS) -> Cleaned:
    """Apply every rule in order; return the cleaned text, or None with the reason it was dropped.

    With `qa`, an output in the question/answer form becomes a question and an answer, each cleaned on its
    own; one that is not in that form is cleaned as prose."""
    if is_refusal(text):
        return Cleaned(None, "refusal")
    text = strip_opening_labels(strip_echo(text, prompt))
    # Read the QA form first, while its labels still stand at the starts of their lines.
    pair = parse_qa(text) if qa else None
    if pair is not None:
        question, answer = pair[0], clean_body(pair[1])
        if len(answer.split()) >= 2:
            if len(qa_text(question, answer).split()) < min_words:
                return Cleaned(None, "too_short")
            return Cleaned(qa_text(question, answer), None, question, answer)
    if qa:
        # Read as prose, the labels of a pair that did not hold together are no part of the text.
        text = _QA_LABEL_ANYWHERE.sub("", text)
    cleaned = clean_body(text)
    if not cleaned:
        return Cleaned(None, "empty")
    if len(cleaned.split()) < min_words:
        return Cleaned(None, "too_short")
    return Cleaned(cleaned)


# A line that opens a labelled question or answer: a prose rewrite holding one has broken format.
_LABELLED_QA_LINE = re.compile(
    r"^\W*(?:\*\*)?\s*(?:new |reworded |rephrased |rewritten )?(?P<label>question|answer|q|a)\s*\d*\s*[:.)]",
    re.IGNORECASE | re.MULTILINE,
)


_STATEMENT_LABEL = re.compile(
    r"^\W*(?:statement|fact|passage|rewritten passage|new passage|sentence|reworded|again|said aloud|answer)"
    r"\s*:\s*",
    re.IGNORECASE,
)


# What small models put before the question they were asked for: a list number, a label, or a short
# lead-in ending in a colon ("A student asked:", "Amara Okonkwo-Leth:").
_QUESTION_LEAD = re.compile(r"^(?:\d+[.)]\s*|[^:?\n]{1,60}:\s+)")


_QUOTED_QUESTION = re.compile(r"[\"“]([^\"“”?]{8,}\?)")


# A speaker, label or echoed instruction before a rephrased answer ("Ilsa Marrowgate:", "Fun fact:",
# "Rewrite this sentence in different words:"), at most seven words.
_ANSWER_LEAD = re.compile(r"^(?:[^\s:?.]+\s+){0,6}[^\s:?.]+:\s+")


def _tidy_paragraph(text: str) -> str:
    return cut_unfinished(drop_repeated_sentences(cut_word_loops(" ".join(text.split()))))


def first_completion_line(raw: str, prompt: str) -> str:
    """The first non-blank line of a completion, echoed prompt lines removed: what a few-shot prompt asked
    for, before the model runs on into an example of its own."""
    lines = [line for line in strip_echo(raw, prompt).splitlines() if line.strip()]
    return lines[0] if lines else ""


def read_question(raw: str, prompt: str) -> Cleaned:
    """The question a question-rewrite output asks: its first line, lead-ins, quotes and emphasis removed,
    cut after its first question mark."""
    if is_refusal(raw):
        return Cleaned(None, reason="refusal")
    first = first_completion_line(raw, prompt)
    if not first:
        return Cleaned(None, reason="empty")
    line = first.replace("**", "").strip()
    while True:
        shorter = _QUESTION_LEAD.sub("", line, count=1).strip()
        if shorter == line or "?" not in shorter:
            break
        line = shorter
    # 'The teacher asks, "Where ...?"': the quoted question is the answer, not the narration around it.
    quoted = _QUOTED_QUESTION.search(line)
    if quoted:
        line = quoted.group(1)
    line = line.strip(" \"'“”‘’")
    if "?" not in line:
        return Cleaned(None, reason="unparsed")
    # The last sentence up to the first question mark: an opening remark before it is not the question.
    question = sentences(line[: line.index("?") + 1])[-1].strip(" \"'“”‘’")
    if len(question.split()) < 3:
        return Cleaned(None, reason="unparsed")
    return Cleaned(question, question=question)


def read_answer(raw: str, prompt: str) -> Cleaned:
    """The rephrased answer: the first line of the completion, prose that is not itself a question."""
    found = read_prose(first_completion_line(raw, prompt), prompt, single_paragraph=True)
    if found.text is None:
        return found
    text = _ANSWER_LEAD.sub("", found.text, count=1).strip().strip('"“”')
    if not text:
        return Cleaned(None, reason="empty")
    return Cleaned(text, answer=text)


def read_prose(raw: str, prompt: str, *, single_paragraph: bool) -> Cleaned:
    """A prose rewrite: labels and echoes stripped, loops and a cut-off sentence removed."""
    if is_refusal(raw):
        return Cleaned(None, reason="refusal")
    text = strip_labels(strip_echo(raw, prompt))
    text = _STATEMENT_LABEL.sub("", text).strip()
    if single_paragraph:
        text = re.split(r"\n\s*\n", text, maxsplit=1)[0]
    paragraphs = [_tidy_paragraph(p) for p in re.split(r"\n\s*\n", text) if p.strip()]
    text = "\n\n".join(p for p in paragraphs if p)
    if not text:
        return Cleaned(None, reason="empty")
    if _LABELLED_QA_LINE.search(text) or (single_paragraph and text.rstrip().endswith("?")):
        return Cleaned(None, reason="unparsed")
    return Cleaned(text)
