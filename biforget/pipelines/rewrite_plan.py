"""The pieces of a rewrite run: its templates, the attempts of the plan, the drafted parts of a QA
attempt, and the fact and variant records they become. The scheduler that runs them is
biforget/pipelines/rewrite.py."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from biforget.errors import TemplateError
from biforget.io.facts import Fact
from biforget.metrics.checks import Verdict
from biforget.parse import Cleaned
from biforget.records import Provenance, Record, make_record
from biforget.templates import Template, builtin_template, load_family

STAGE = "rewrite"
INPUT_STAGE = "input"


# Fields the record contract owns; an input fact's own values for them are replaced, never passed through.
RESERVED = frozenset(
    {"id", "kind", "text", "question", "answer", "topic", "parent", "stage", "gen", "scores"}
)


@dataclass(frozen=True)
class RewriteTemplates:
    question: list[Template]
    answer: list[Template]
    text: list[Template]
    statement: Template

    @property
    def qa_pairs(self) -> int:
        """QA attempts cycle through (question, answer) template pairs, index i taking each family's i-th."""
        return max(len(self.question), len(self.answer))

    def qa_pair(self, index: int) -> tuple[Template, Template]:
        return self.question[index % len(self.question)], self.answer[index % len(self.answer)]


def load_rewrite_templates() -> RewriteTemplates:
    """Every rewrite template, placeholders checked, so a bad one stops the run before a model loads."""
    question = load_family("rewrite/question", allowed={"question", "answer"}, required={"question"})
    answer = load_family("rewrite/answer", allowed={"question", "answer"}, required={"answer"})
    text = load_family("rewrite/text", allowed={"text"}, required={"text"})
    statement = builtin_template(
        "rewrite/statement", allowed={"question", "answer"}, required={"question", "answer"}
    )
    if not question or not answer or not text:
        raise TemplateError("the rewrite templates are missing from the prompts folder")
    return RewriteTemplates(question, answer, text, statement)


def fact_record(fact: Fact) -> Record:
    """The `fact` record of an input fact: id from its content, its other fields passed through."""
    origin: dict[str, Any] = (
        {"question": fact.question, "answer": fact.answer} if fact.is_qa else {"text": fact.text}
    )
    topic = fact.extra.get("topic")
    record = make_record(
        kind="fact",
        text=fact.text,
        question=fact.question,
        answer=fact.answer,
        topic=topic if isinstance(topic, str) else None,
        parent=None,
        stage=INPUT_STAGE,
        gen={"source": fact.source, "line": fact.line},
        origin=origin,
    )
    record.update(passthrough(fact))
    return record


def passthrough(fact: Fact) -> dict[str, Any]:
    return {key: value for key, value in fact.extra.items() if key not in RESERVED}


@dataclass(frozen=True)
class Attempt:
    """One attempt of the plan: a fact, a form (`qa`, `text` or `statement`), its template(s) and a
    temperature.

    For `qa`, `template` rephrases the question and `answer_template` the answer."""

    fact: int
    form: str
    template: Template
    temperature: float
    temperature_index: int
    round: int
    # The attempt's number among its fact's attempts of the round (of its form).
    index: int
    answer_template: Template | None = None

    def provenance(self) -> dict[str, str]:
        found = self.template.provenance()
        if self.answer_template is not None:
            found["answer_template"] = self.answer_template.id
            found["answer_template_hash"] = self.answer_template.hash
        return found


@dataclass(frozen=True)
class Part:
    """A drafted question or answer that passed its own field's checks, the attempt that drew it and its
    sample index among that attempt's `draws`."""

    text: str
    attempt: Attempt
    draw: int

    def provenance(self, template: Template) -> dict[str, Any]:
        return {
            "template": template.id,
            "template_hash": template.hash,
            "temperature": self.attempt.temperature,
            "round": self.attempt.round,
            "attempt": self.attempt.index,
            "draw": self.draw,
        }


def attempt_plan(templates: int, temperatures: int) -> list[tuple[int, int]]:
    """(temperature index, template index) per attempt: every temperature before any repeats, and the
    template shifted along, so consecutive attempts vary both and all pairs come before any pair twice."""
    return [(t, (t + shift) % templates) for shift in range(templates) for t in range(temperatures)]


def variant_record(
    provenance: Provenance,
    attempt: Attempt,
    fact: Fact,
    record: Record,
    candidate: Cleaned,
    parts: tuple[Part, Part] | None,
    similarity: float | None,
    wave: int,
    top_p: float,
    seed: int,
) -> Record:
    """The `variant` (or `statement`) record of an accepted rewrite of `fact`, whose record is `record`."""
    if parts is not None:
        # The variant's template and temperature are its question's; the answer's are named apart.
        question, answer = parts
        assert answer.attempt.answer_template is not None
        attempt = dataclasses.replace(question.attempt, answer_template=answer.attempt.answer_template)
    template = attempt.provenance()
    gen = provenance.gen(
        template,
        {
            "form": attempt.form,
            "temperature": attempt.temperature,
            "top_p": top_p,
            "round": attempt.round,
            "attempt": attempt.index,
            "wave": wave,
            "seed": seed,
        },
    )
    fields: dict[str, Any] = {
        "form": attempt.form,
        "temperature": attempt.temperature,
        "round": attempt.round,
        "attempt": attempt.index,
    }
    if parts is not None:
        assert attempt.answer_template is not None
        gen["parts"] = {
            "question": parts[0].provenance(attempt.template),
            "answer": parts[1].provenance(attempt.answer_template),
        }
        # A question left in the pool pairs with the answers of later attempts, which may share its
        # attempt's templates and temperature: only both drafts' own origins tell those pairings apart.
        fields["parts"] = gen["parts"]
    variant = make_record(
        kind="statement" if attempt.form == "statement" else "variant",
        text=candidate.text,
        question=candidate.question,
        answer=candidate.answer,
        topic=record.get("topic"),
        parent=str(record["id"]),
        stage=STAGE,
        gen=gen,
        origin=provenance.origin(template, fields),
        scores={"similarity": similarity or 0.0},
    )
    # Fields such as TOFU's task_id describe the fact, so its variants carry them too.
    variant.update(passthrough(fact))
    return variant


def rejection(attempt: Attempt, record: Record, verdict: Verdict, raw: Any) -> dict[str, Any]:
    """The `--keep-rejected` row of a rejected attempt: its fact, why, the attempt and what it wrote."""
    return {
        "parent": record["id"],
        "reason": verdict.reason,
        "detail": verdict.detail,
        "form": attempt.form,
        **attempt.provenance(),
        "temperature": attempt.temperature,
        "round": attempt.round,
        "attempt": attempt.index,
        "similarity": verdict.similarity,
        "output": raw,
    }
