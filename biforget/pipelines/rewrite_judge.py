"""Judging a rewrite attempt: the embeddings of a block's facts, the state of each fact in a round, the
drafts of a QA attempt paired with each other and with the fact's pool, and every rewrite put through
the checks of biforget/metrics/checks.py and the fact's deduplicator."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from biforget.dedup import Deduplicator
from biforget.io.facts import Fact
from biforget.metrics.checks import Bounds, Verdict, check_field, check_variant
from biforget.models.base import Embedder
from biforget.parse import Cleaned, read_answer, read_question
from biforget.pipelines.rewrite_plan import Attempt, Part
from biforget.records import Record, qa_text


@dataclass
class FactState:
    wanted: int
    accepted: list[Record] = field(default_factory=list)
    used: int = 0
    statement_done: bool = False
    statement_used: int = 0
    # Passing QA parts of this round not yet in a variant, in the order they were drawn.
    questions: list[Part] = field(default_factory=list)
    answers: list[Part] = field(default_factory=list)


class Sources:
    """Embeddings of each fact of a block: the whole fact and, for QA facts, its question and answer."""

    def __init__(self, embedder: Embedder, facts: Sequence[Fact], records: Sequence[Record]) -> None:
        self.whole = embedder.embed([str(r["text"]) for r in records])
        qa = [i for i, fact in enumerate(facts) if fact.is_qa]
        fields = [str(facts[i].question) for i in qa] + [str(facts[i].answer) for i in qa]
        vectors = embedder.embed(fields) if fields else np.zeros((0, self.whole.shape[1]))
        self.questions = {i: vectors[k] for k, i in enumerate(qa)}
        self.answers = {i: vectors[len(qa) + k] for k, i in enumerate(qa)}


@dataclass
class Block:
    """One block's facts, their records and embeddings, and what each fact has so far: per round its
    state, for the whole block its deduplicator and accepted variants."""

    facts: Sequence[Fact]
    records: Sequence[Record]
    sources: Sources
    dedups: list[Deduplicator]
    variants: list[list[Record]]
    states: list[FactState] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt: the verdict, the rewrite read, and for a QA pairing its drafts."""

    verdict: Verdict
    candidate: Cleaned
    parts: tuple[Part, Part] | None = None


def cosine(vector: np.ndarray, source: np.ndarray) -> float:
    return round(float(np.dot(vector, source)), 4)


def passing_drafts(
    embedder: Embedder, bounds: Bounds, candidates: list[Cleaned], source: str, source_vector: np.ndarray
) -> tuple[list[tuple[str, int]], Verdict | None]:
    """The distinct drafts of one field that pass that field's checks, in draw order, each with the
    index of the draw that first gave it, and the first failure seen."""
    readable = [c for c in candidates if c.text]
    texts = list(dict.fromkeys(str(c.text) for c in readable))
    by_text = dict(zip(texts, embedder.embed(texts), strict=True)) if texts else {}
    passed: dict[str, int] = {}
    failure: Verdict | None = None
    for draw, candidate in enumerate(candidates):
        if candidate.text is None:
            failure = failure or Verdict(candidate.reason or "empty")
            continue
        similarity = cosine(by_text[candidate.text], source_vector)
        verdict = check_field(candidate.text, similarity, source, bounds)
        if verdict.passed:
            passed.setdefault(candidate.text, draw)
        else:
            failure = failure or verdict
    return list(passed.items()), failure


def pair(
    attempt: Attempt,
    fact: Fact,
    record: Record,
    raw: dict[str, list[str]],
    block: Block,
    embedder: Embedder,
    bounds: Bounds,
) -> Outcome:
    """Pair this attempt's passing drafts with each other and with the fact's pool; the first pairing
    that passes the whole-variant checks, or the reason none did (a part's when this attempt drew no
    passing question or answer and the pool has none to lend, else the first pairing's)."""
    answer_template = attempt.answer_template
    assert answer_template is not None
    state, sources = block.states[attempt.fact], block.sources
    questions, question_failure = passing_drafts(
        embedder,
        bounds,
        [read_question(r, attempt.template.text) for r in raw["question"]],
        str(fact.question),
        sources.questions[attempt.fact],
    )
    answers, answer_failure = passing_drafts(
        embedder,
        bounds,
        [read_answer(r, answer_template.text) for r in raw["answer"]],
        str(fact.answer),
        sources.answers[attempt.fact],
    )
    pooled_questions = {p.text for p in state.questions}
    pooled_answers = {p.text for p in state.answers}
    new_questions = [Part(q, attempt, draw) for q, draw in questions if q not in pooled_questions]
    new_answers = [Part(a, attempt, draw) for a, draw in answers if a not in pooled_answers]
    # New with new first, then new with what earlier attempts left, so each pairing is tried once.
    pairings = [
        *itertools.product(new_questions, new_answers),
        *itertools.product(new_questions, state.answers),
        *itertools.product(state.questions, new_answers),
    ]
    state.questions += new_questions
    state.answers += new_answers
    if not pairings:
        sides = (
            ("question", questions, new_questions, question_failure),
            ("answer", answers, new_answers, answer_failure),
        )
        for name, passed, new, failure in sides:
            if new:
                continue
            if passed:
                return Outcome(Verdict("duplicate", f"{name}: repeats an earlier draft"), Cleaned(None))
            reason, detail = (failure.reason, failure.detail) if failure else ("empty", None)
            return Outcome(Verdict(reason, f"{name}: {detail}" if detail else name), Cleaned(None))
    candidates = [Cleaned(qa_text(q.text, a.text), None, q.text, a.text) for q, a in pairings]
    vectors = embedder.embed([str(c.text) for c in candidates])
    first: Verdict | None = None
    for (question, answer), candidate, vector in zip(pairings, candidates, vectors, strict=True):
        verdict = judge(attempt, fact, record, candidate, vector, block, bounds)
        if verdict.passed:
            state.questions.remove(question)
            state.answers.remove(answer)
            return Outcome(verdict, candidate, (question, answer))
        first = first or verdict
    assert first is not None
    return Outcome(first, Cleaned(None))


def judge(
    attempt: Attempt,
    fact: Fact,
    record: Record,
    candidate: Cleaned,
    vector: np.ndarray | None,
    block: Block,
    bounds: Bounds,
) -> Verdict:
    """The first failed check of a whole rewrite, or a passing verdict with its similarity."""
    if candidate.text is None or vector is None:
        return Verdict(candidate.reason or "empty")
    similarity = cosine(vector, block.sources.whole[attempt.fact])
    verdict = check_variant(
        candidate.text,
        similarity,
        str(record["text"]),
        fact.answer,
        bounds,
        statement=attempt.form == "statement",
    )
    if not verdict.passed:
        return verdict
    duplicate = block.dedups[attempt.fact].offer(candidate.text, vector)
    if duplicate is not None:
        return Verdict("duplicate", duplicate, similarity)
    return verdict
