"""Cleaning of model outputs, on real SmolLM2-135M synthesis outputs and on the cases of each rule.

tests/fixtures/smollm2_synthesis_outputs.json holds one entry per output, with the template, prompt and
temperature that produced it. tests/fixtures/smollm2_qa_reply_start_outputs.json holds 24 outputs of the
QA templates with the reply started as "Question:" (each `output` is the model's continuation after that
start, as the hf backend returned it, stripped)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from biforget.clean import cut_unfinished, cut_word_loops, drop_repeated_sentences, strip_labels
from biforget.parse import clean_output, parse_qa
from biforget.text import sentences

FIXTURE = Path(__file__).parent / "fixtures" / "smollm2_synthesis_outputs.json"
OUTPUTS: list[dict[str, object]] = json.loads(FIXTURE.read_text(encoding="utf-8"))
STARTED: list[dict[str, object]] = json.loads(
    (FIXTURE.parent / "smollm2_qa_reply_start_outputs.json").read_text(encoding="utf-8")
)

# The opening of Harry Potter and the Philosopher's Stone, and the issue's own example: abbreviations
# that come back must not read as a loop.
DURSLEY = (
    "Mr. and Mrs. Dursley, of number four, Privet Drive, were proud to say that they were perfectly "
    "normal, thank you very much. Mr. Dursley was the director of a firm called Grunnings, which made drills."
)
FOUNDERS = "Four wizards and witches founded it a thousand years ago."
ROWLING = (
    "J.K. Rowling wrote seven Harry Potter books between 1997 and 2007. J.K. Rowling now lives in Edinburgh, "
    "Scotland."
)


def _cleaned(entry: dict[str, object]) -> str | None:
    qa = str(entry["template"]).startswith("qa/")
    return clean_output(str(entry["output"]), str(entry["prompt"]), qa=qa).text


def _output(template: str, opening: str) -> dict[str, object]:
    """The fixture entry of `template` whose output opens with `opening`."""
    found = [o for o in OUTPUTS if o["template"] == template and str(o["output"]).startswith(opening)]
    assert len(found) == 1
    return found[0]


def test_fixture_is_real_output_of_every_template() -> None:
    assert {o["model"] for o in OUTPUTS} == {"SmolLM2-135M-Instruct"}
    templates = {str(o["template"]) for o in OUTPUTS}
    assert {t.split("/")[0] for t in templates} == {"info", "qa"}
    qa_prompts = [str(o["prompt"]) for o in OUTPUTS if str(o["template"]).startswith("qa/")]
    form = "Question: <the question>\nAnswer: <the answer>"
    assert qa_prompts and all(p.endswith(form) for p in qa_prompts)


@pytest.mark.parametrize("index", range(len(OUTPUTS)))
def test_sentences_join_back_to_the_text(index: int) -> None:
    output = str(OUTPUTS[index]["output"])
    pieces = sentences(output)
    assert "".join(pieces) == output
    assert all("\n" not in piece.rstrip("\n") for piece in pieces)


def test_sentences_know_abbreviations_initials_and_decimals() -> None:
    assert [s.strip() for s in sentences(DURSLEY)] == [
        "Mr. and Mrs. Dursley, of number four, Privet Drive, were proud to say that they were perfectly "
        "normal, thank you very much.",
        "Mr. Dursley was the director of a firm called Grunnings, which made drills.",
    ]
    assert len(sentences(ROWLING)) == 2
    assert len(sentences("Dr. Smith moved to the U.S. in May. A pint costs 3.5 dollars there.")) == 2


@pytest.mark.parametrize("index", range(len(OUTPUTS)))
def test_line_breaks_are_kept(index: int) -> None:
    """No two lines of the output run together in the cleaned text (the old join glued "books?" onto the
    "Answer:" under it)."""
    output, cleaned = str(OUTPUTS[index]["output"]), _cleaned(OUTPUTS[index])
    if cleaned is None:
        return
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    glued = [f"{a[-12:]}{b[:12]}" for a, b in itertools.pairwise(lines)]
    assert [g for g in glued if g in cleaned and g not in output] == []


def test_many_fixture_outputs_keep_a_line_break() -> None:
    kept = [c for c in map(_cleaned, OUTPUTS) if c is not None and "\n" in c]
    assert len(kept) >= 20


def test_a_real_qa_output_becomes_a_question_and_an_answer() -> None:
    entry = _output("qa/who-what", "The question and answer are as follows:")
    cleaned = clean_output(str(entry["output"]), str(entry["prompt"]), qa=True)
    assert cleaned.question == "What is Lord Voldemort?"
    # The second example the model wrote after "***" is no part of the first answer.
    assert cleaned.answer == (
        "In the original Harry Potter series, Lord Voldemort is the dark and terrifying protector of a dark "
        "and malevolent entity known as Voldemort."
    )
    assert cleaned.text == f"{cleaned.question} {cleaned.answer}"


def test_a_real_qa_output_keeps_the_answers_line_breaks() -> None:
    entry = _output("qa/why-how", "Question: Why is Quidditch considered as a dangerous hobby?")
    cleaned = clean_output(str(entry["output"]), str(entry["prompt"]), qa=True)
    assert cleaned.question == "Why is Quidditch considered as a dangerous hobby?"
    assert cleaned.answer is not None and cleaned.answer.startswith("(The answer: [revised to:")
    assert "\n\nThe answer is not possible due to The Mafia.\n\n" in cleaned.answer
    # The answer ends where the model starts a second pair (cut off by the token budget).
    assert cleaned.answer.endswith("controls many major countries, including Quidditch.")
    assert "How does Quidditch" not in str(cleaned.text)


def test_qa_outputs_without_an_answer_stay_prose() -> None:
    entry = _output("qa/significance", "Question: What does")
    assert parse_qa(str(entry["output"])) is None
    assert clean_output(str(entry["output"]), str(entry["prompt"]), qa=True).question is None


def test_started_replies_mostly_hold_the_form_and_loose_ones_lose_the_label() -> None:
    assert {o["model"] for o in STARTED} == {"SmolLM2-135M-Instruct"} and len(STARTED) == 24
    read = [
        clean_output(str(o["reply_start"]) + str(o["output"]), str(o["prompt"]), qa=True) for o in STARTED
    ]
    paired = [c for c in read if c.question is not None]
    # Without the start, 2 of the 48 QA-template outputs in the other fixture hold the form.
    assert len(paired) == 11
    assert all(c.question and "?" in c.question and c.answer for c in paired)
    by_question = {c.question: c for c in paired}
    assert by_question["Who or what is Quidditch?"].answer == (
        "Quidditch is a fictional magical sport played by a team of wizarding players in Harry Potter."
    )
    loose = [c for c in read if c.text is not None and c.question is None]
    assert len(loose) == 10
    assert not any(
        line.lstrip(' "').lower().startswith(("question:", "answer:"))
        for c in loose
        for line in str(c.text).splitlines()
    )


def test_the_templates_qa_form_is_parsed_before_any_cleaning() -> None:
    raw = (
        "Question: Who is Albus Dumbledore in the Harry Potter books?\n"
        "Answer: He is the headmaster of Hogwarts School of Witchcraft and Wizardry. He leads the Order "
        "of the"
    )
    cleaned = clean_output(raw, qa=True)
    assert cleaned.question == "Who is Albus Dumbledore in the Harry Potter books?"
    assert cleaned.answer == "He is the headmaster of Hogwarts School of Witchcraft and Wizardry."
    # Without qa the same output is prose, its line break kept and its cut-off sentence trimmed.
    assert clean_output(raw).text == (
        "Question: Who is Albus Dumbledore in the Harry Potter books?\n"
        "Answer: He is the headmaster of Hogwarts School of Witchcraft and Wizardry."
    )


@pytest.mark.parametrize(
    "raw",
    [
        f"Question:\nWho founded Hogwarts?\nAnswer:\n{FOUNDERS}",
        f"**Question 1:** Who founded Hogwarts?\n\n**Answer 1:** {FOUNDERS}",
        f"Q: Who founded Hogwarts? Answer: {FOUNDERS}",
        # How the default model often labels the pair in synthesize runs.
        f'The question is: "Who founded Hogwarts?"\nThe answer is: {FOUNDERS}',
        f"The question: Who founded Hogwarts? The answer: {FOUNDERS}",
        f"Here is a question and its answer:\nQ: Who founded Hogwarts?\nA: {FOUNDERS}\nQ: Who teaches "
        "Potions?\nA: Severus Snape.",
    ],
)
def test_qa_label_forms(raw: str) -> None:
    assert parse_qa(raw) == ("Who founded Hogwarts?", FOUNDERS)


def test_an_answer_label_inside_the_question_is_no_answer() -> None:
    raw = "Question: What is the answer: a spell or a potion?\nAnswer: A spell, cast with a wand."
    assert parse_qa(raw) == ("What is the answer: a spell or a potion?", "A spell, cast with a wand.")


@pytest.mark.parametrize(
    "raw",
    [
        "Question: Who founded Hogwarts?\nA wizard never tells anyone who founded the school, they say.",
        "Some prose first.\nQuestion: Who founded Hogwarts?\nAnswer: Four wizards and witches founded it.",
        "Question: Who founded Hogwarts?",
        # A statement under the question label asks nothing.
        f"Question: Hogwarts is a school of magic.\nAnswer: {FOUNDERS}",
    ],
)
def test_not_the_qa_form(raw: str) -> None:
    assert parse_qa(raw) is None


def test_abbreviations_that_come_back_are_no_loop() -> None:
    assert clean_output(DURSLEY).text == DURSLEY
    assert clean_output(ROWLING).text == ROWLING


def test_a_word_loop_is_cut() -> None:
    assert cut_word_loops("She is brave, brave, brave.") == "She is brave."
    assert cut_word_loops("Vampires, Vampires, Vampires and more") == "Vampires and more"
    assert cut_word_loops("He is a very, very good seeker.") == "He is a very, very good seeker."
    assert cut_word_loops("Go, go, gone.") == "Go, go, gone."
    hermione = "Hermione Granger is a young witch in Harry Potter's year at Hogwarts."
    assert clean_output(f"{hermione} She is brave, brave, brave.").text == f"{hermione} She is brave."


def test_a_repeated_sentence_is_cut_there() -> None:
    kept = "Quidditch is played on broomsticks.\nEach team has seven players."
    looped = f"{kept} Quidditch is played on broomsticks. Each team has seven players."
    assert drop_repeated_sentences(looped) == kept


def test_a_real_repeated_sentence_is_cut_at_the_repeat() -> None:
    entry = _output("qa/why-how", "The question about Hogwarts School of Witchcraft and Wizardry, known as")
    repeat = 'The "The Potions of Endearment" or the "Berenstained Prophecies"'
    assert str(entry["output"]).count(repeat) == 2
    cleaned = _cleaned(entry)
    assert cleaned is not None and cleaned.count(repeat) == 1
    assert cleaned.endswith("The answer to this question would look like:\n" + repeat)


def test_a_short_sentence_that_comes_back_is_no_loop() -> None:
    text = "Is Hogwarts real? No. It is a school in a story. Is it in Scotland? No. Nobody says where it is."
    assert drop_repeated_sentences(text) == text


def test_an_unfinished_sentence_after_a_kept_line_break_is_trimmed() -> None:
    text = "Hogwarts is a school of magic.\nIt stands in Scotland.\nIts four houses were founded by"
    assert cut_unfinished(text) == "Hogwarts is a school of magic.\nIt stands in Scotland."
    # An abbreviation is no sentence end to cut back to.
    dursley = "Harry lives with Mr. Dursley."
    assert cut_unfinished(f"{dursley} He meets Mr. Weasley and") == dursley
    # No sentence ever ends: nothing to cut back to.
    assert cut_unfinished("Hogwarts\nQuidditch and the") == "Hogwarts\nQuidditch and the"


def test_a_real_cut_off_paragraph_behind_a_line_break_is_trimmed() -> None:
    entry = _output("info/rewrite", "Wizwing, Oxfordshire, England, 1984.")
    cleaned = _cleaned(entry)
    assert cleaned is not None
    assert cleaned.endswith("surrounded by the rest of the school.")
    assert "After a few days" not in cleaned


def test_labels_on_their_own_line_are_stripped() -> None:
    text = "Passage:\nHogwarts is a school of magic.\n\n**Summary:**\nIt trains young witches and wizards."
    assert strip_labels(text) == "Hogwarts is a school of magic.\n\nIt trains young witches and wizards."
    real = _output("qa/significance", "When was it: 2020")
    cleaned = _cleaned(real)
    assert cleaned is not None and "Explanation:" not in cleaned
    assert cleaned.endswith("The answer is 2020.\nThis answer is 2020.")


def test_blank_line_runs_are_one_blank_line() -> None:
    first, second = "Hogwarts is a school of magic in Scotland.", "It has four houses and a great hall."
    assert clean_output(f"{first}\n\n\n\n{second}  ").text == f"{first}\n\n{second}"
