"""Cleaning of model outputs before they become records.

Small models echo the prompt, open with labels ("Sure! Here is a passage:"), loop on a word or a
sentence, and stop mid-sentence when the token budget runs out. Each rule below removes one of those
faults. The readers that turn an output into a record's fields, and drop it with a reason when it is
empty, a refusal or too short, are in biforget/parse.py.
"""

from __future__ import annotations

import re

from biforget.text import normalise, sentences

# Phrases that open a refusal or a deflection. An apology alone is not one: dialogue in domain text says
# "I'm sorry," too, so an apology counts only in the forms refusals take ("I'm sorry for any confusion",
# "I'm sorry, but", "I'm sorry. How can I help"). Checked on real outputs of the default model
# (tests/fixtures/smollm2_refusals.json); extend the tuple for other models' wording.
REFUSAL_PATTERNS = (
    r"\bi(?:'m| am) (?:so |very |truly |really )?sorry(?: for (?:any|the) (?:confusion|inconvenience|"
    r"misunderstanding)|,? but\b|[.,]? i (?:cannot|can't|am unable|'m unable|don't|do not|won't))",
    r"\bi(?:'m| am) sorry\.\s+how (?:can|may) i (?:help|assist)",
    r"\bi apologi[sz]e(?: for (?:any|the)\b|,? but\b)",
    r"\bi (?:cannot|can't|can not|won't|will not|am unable to|'m unable to|am not able to) "
    # "help" only as help you / help with / help. ("I can't help noticing" is narration, not a refusal).
    r"(?:help(?:\s+(?:you|with)\b|[.!,])|assist|provide|write|create|generate|answer|comply|fulfil|fulfill|"
    r"do that|share)",
    r"\bas an? (?:[\w-]+ )?(?:ai|chatbot|language model)\b",
    r"\bi (?:do not|don't) have (?:access|information|personal|the (?:ability|capability|capacity|means))",
    r"\bi(?:'m| am) not (?:able|equipped|designed|programmed|allowed|permitted) to\b",
    r"\bnot able to (?:provide|help|assist)",
    r"\bagainst (?:my|our) (?:guidelines|policy|policies)\b",
    r"\bi (?:must|have to) (?:decline|refuse)\b",
)
_REFUSAL = re.compile("|".join(REFUSAL_PATTERNS), re.IGNORECASE)
_LABEL_WORDS = (
    r"passage|summary|paragraph|text|explanation|output|response|answer|rewrite|rewritten text|paraphrase|"
    r"details"
)
_LABEL = re.compile(
    rf"^\s*(?:\*\*)?(?:{_LABEL_WORDS}|here(?:'s| is| are)[^:\n]{{0,80}}|sure[^:\n]{{0,80}}|"
    r"certainly[^:\n]{0,80})"
    r"\s*:(?:\*\*)?\s*",
    re.IGNORECASE,
)
# A line that is nothing but a label, wherever it stands: "Answer:", "**Summary:**", "Question 2:".
_LABEL_LINE = re.compile(
    rf"^[^\w\n]*(?:{_LABEL_WORDS}|question|q|a)[ \t]*\d*[ \t]*:[^\w\n]*$\n?", re.IGNORECASE | re.MULTILINE
)
# A sentence is finished when it ends in . ! ? or an ellipsis, maybe inside quotes, brackets or emphasis.
_FINISHED = re.compile(r"[.!?…][\"'”’)\]*_]*$")
_BLANK_RUN = re.compile(r"\n{3,}")
_WORD_LOOP = re.compile(r"\b((?:\w+[\s,;]+){1,3}?)\1+", re.IGNORECASE)
MIN_WORDS = 12
# A sentence repeated is a loop only when it says something: a short one ("Yes.", "Thank you.") may come
# back in real text.
MIN_LOOP_WORDS = 4


def is_refusal(text: str) -> bool:
    """A refusal or an AI disclaimer in the opening of the text (where models put them)."""
    # Curly apostrophes ("I’m sorry") are as common in model output as straight ones.
    return bool(_REFUSAL.search(text[:300].replace("\u2019", "'")))


def strip_echo(text: str, prompt: str) -> str:
    """Remove the prompt, or any of its lines, when the model repeats it."""
    stripped = text.strip()
    if prompt and stripped.startswith(prompt.strip()):
        stripped = stripped[len(prompt.strip()) :].strip()
    prompt_lines = {normalise(line) for line in prompt.splitlines() if line.strip()}
    kept = [line for line in stripped.splitlines() if not line.strip() or normalise(line) not in prompt_lines]
    return "\n".join(kept).strip()


def strip_opening_labels(text: str) -> str:
    previous = None
    while previous != text:
        previous = text
        text = _LABEL.sub("", text, count=1).strip()
    return text


def strip_labels(text: str) -> str:
    """Drop an opening label or preamble such as "Passage:" or "Sure! Here is a summary:", and every line
    that is only a label ("Answer:" over the answer it names)."""
    return strip_opening_labels(_LABEL_LINE.sub("", strip_opening_labels(text)))


def cut_word_loops(text: str) -> str:
    """Cut a phrase said three or more times in a row back to its first occurrence."""
    position = 0
    while match := _WORD_LOOP.search(text, position):
        turn = match.group(1)
        unit = turn.rstrip(" ,;")
        end = match.end()
        turns = (end - match.start()) // len(turn)
        # The loop's last turn ends in punctuation, not a separator: "brave, brave, brave."
        after = text[end + len(unit) : end + len(unit) + 1]
        if text[end : end + len(unit)].lower() == unit.lower() and not (after.isalnum() or after == "_"):
            end += len(unit)
            turns += 1
        if turns < 3:
            # Twice is how people write too ("very, very good").
            position = match.start() + 1
            continue
        text = text[: match.start()] + unit + text[end:]
        position = match.start()
    return text


def drop_repeated_sentences(text: str, *, min_words: int = MIN_LOOP_WORDS) -> str:
    """Keep each sentence once: a sentence of `min_words` words or more that comes back means the model is
    looping, so cut there. Line breaks are kept."""
    seen: set[str] = set()
    out: list[str] = []
    for sentence in sentences(text):
        key = normalise(sentence)
        if len(key.split()) >= min_words:
            if key in seen:
                break
            seen.add(key)
        out.append(sentence)
    return "".join(out).strip()


def cut_unfinished(text: str) -> str:
    """Cut a trailing sentence the token budget interrupted; keep the text if no sentence ever ends."""
    pieces = sentences(text.rstrip())
    finished = [bool(_FINISHED.search(piece.rstrip())) for piece in pieces]
    if not pieces or finished[-1] or not any(finished):
        return text.rstrip()
    return "".join(pieces[:-1]).rstrip()


def tidy_lines(text: str) -> str:
    """Trailing spaces off every line and one blank line at most between paragraphs."""
    return _BLANK_RUN.sub("\n\n", "\n".join(line.rstrip() for line in text.splitlines())).strip()


def clean_body(text: str) -> str:
    return tidy_lines(cut_unfinished(drop_repeated_sentences(cut_word_loops(strip_labels(text)))))
