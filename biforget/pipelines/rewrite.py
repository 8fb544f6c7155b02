"""`rewrite`: the instance level, meaning-preserving variants of each fact to forget.

Each fact goes through our templates (another perspective, structure or style) at several temperatures
until `variants` of its rewrites are accepted or `attempts` attempts are spent. A QA fact gets QA
variants and, with `statements`, one declarative statement more, a record of kind `statement` (text only,
so a QA export can leave it out by kind). A QA attempt rephrases the question and
the answer in two separate generations of `draws` samples each: small models asked for a whole pair mostly
answer the question or break the format, while each part alone they rephrase often enough. Each part is
checked against its own source field. Passing parts stay in a pool of the fact for the round, so a
question drawn in one attempt can pair with an answer drawn in another: the first pairing that passes the
checks on the whole is the variant, and its two parts leave the pool. Both parts are drawn from
few-shot completion prompts sent as raw text: the default 135M model rephrased a question in 24 and 46
of 72 continuations of our two such prompts and in under 10 of 72 chat replies to an instruction, which
it mostly answers instead. Of 144 answer drafts per prompt (six facts, six drafts at each of four
temperatures), our three few-shot answer prompts gave 19, 22 and 28 that pass the checks below, and the
two chat instructions they replace 2 and 10.

A rewrite is accepted only if it is no refusal, parses, is no near copy of the fact (not equal after
normalisation and not one word away from it, field by field; the whole variant's cosine to the fact below
`max_similarity`), keeps the meaning (cosine above `min_similarity`, every named entity and number of the
fact still there, no number or name the fact lacks, none said twice in a sentence that said it once, and
for the short QA fields and statements at least half of the other content words kept, which is what
catches "Dario Quennell, The Salt Orchard, 1994." for "Dario Quennell published his first book, The Salt
Orchard, in 1994.") and does not repeat a variant already accepted for the fact.

Work runs in blocks of `BLOCK_FACTS` facts. Inside a block, wave 0 asks for `variants` rewrites of every
fact; each later wave asks again only for what a fact still lacks. Every request is seeded from the run
seed and its own identity (fact, round, form, attempt and part), so the whole plan is a deterministic
function of the facts and the settings, whatever the batch size. A block
is written when it is finished (each fact, then its variants), which is what makes `--resume` exact: the
last block a previous run reached is regenerated identically and its records already written are skipped.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biforget import console
from biforget.clean import (
    cut_unfinished,
    cut_word_loops,
    drop_repeated_sentences,
    is_refusal,
    strip_echo,
    strip_labels,
)
from biforget.config import RewriteConfig
from biforget.console import Tracker
from biforget.dedup import Deduplicator
from biforget.io.facts import Fact
from biforget.metrics.preservation import (
    lost_words,
    missing_terms,
    new_names,
    new_numbers,
    repeated_terms,
)
from biforget.models.base import Embedder, GenerationRequest, TextModel
from biforget.records import Record, derive_seed, make_record, qa_text
from biforget.templates import Template, builtin_template, load_family
from biforget.text import word_edits

STAGE = "rewrite"
# Facts per block: a block is written when it is finished. Each fact's rewrites depend on its own
# requests alone, so the block size changes only how often records are flushed, never what they say.
BLOCK_FACTS = 32
INPUT_STAGE = "input"
# Fields the record contract owns; an input fact's own values for them are replaced, never passed through.
RESERVED = frozenset(
    {"id", "kind", "text", "question", "answer", "topic", "parent", "stage", "gen", "scores"}
)
REASONS = (
    "refusal",
    "empty",
    "unparsed",
    "near_copy",
    "low_similarity",
    "missing_terms",
    "lost_content",
    "new_number",
    "new_name",
    "repeated_term",
    "duplicate",
)

Reject = Callable[[dict[str, Any]], None]
# A rephrased question or answer is one line; a completion prompt runs on to its token cap (into an
# example of its own), so keep that short.
QUESTION_TOKENS = 48
ANSWER_TOKENS = 64
# A field changed in fewer words than this is a copy of its source with a word swapped or dropped.
MIN_WORD_EDITS = 2


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
        raise RuntimeError("the rewrite templates are missing from the prompts folder")
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
class Unit:
    """One attempt: a fact, a form (`qa`, `text` or `statement`), its template(s) and a temperature.

    For `qa`, `template` rephrases the question and `answer_template` the answer."""

    fact: int
    form: str
    template: Template
    temperature: float
    temperature_index: int
    round: int
    attempt: int
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
    unit: Unit
    draw: int

    def provenance(self, template: Template) -> dict[str, Any]:
        return {
            "template": template.id,
            "template_hash": template.hash,
            "temperature": self.unit.temperature,
            "round": self.unit.round,
            "attempt": self.unit.attempt,
            "draw": self.draw,
        }


@dataclass
class _FactState:
    wanted: int
    accepted: list[Record] = field(default_factory=list)
    used: int = 0
    statement_done: bool = False
    statement_used: int = 0
    # Passing QA parts of this round not yet in a variant, in the order they were drawn.
    questions: list[Part] = field(default_factory=list)
    answers: list[Part] = field(default_factory=list)


def attempt_plan(templates: int, temperatures: int) -> list[tuple[int, int]]:
    """(temperature index, template index) per attempt: every temperature before any repeats, and the
    template shifted along, so consecutive attempts vary both and all pairs come before any pair twice."""
    return [(t, (t + shift) % templates) for shift in range(templates) for t in range(temperatures)]


@dataclass
class Candidate:
    """A cleaned rewrite before the checks: its fields, or the reason it could not be read."""

    text: str | None
    question: str | None = None
    answer: str | None = None
    reason: str | None = None
    # For a QA pairing: the drafts its question and answer came from.
    parts: tuple[Part, Part] | None = None


# A line that opens a labelled question or answer: a prose rewrite holding one has broken format.
_LABEL_LINE = re.compile(
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
_SENTENCE_BREAK = re.compile(r"(?<=[.!])\s+")
# A speaker, label or echoed instruction before a rephrased answer ("Ilsa Marrowgate:", "Fun fact:",
# "Rewrite this sentence in different words:"), at most seven words.
_ANSWER_LEAD = re.compile(r"^(?:[^\s:?.]+\s+){0,6}[^\s:?.]+:\s+")


def _tidy(text: str) -> str:
    return cut_unfinished(drop_repeated_sentences(cut_word_loops(" ".join(text.split()))))


def _first_line(raw: str, template: Template) -> str:
    """The first non-blank line of a completion, echoed prompt lines removed: what a few-shot prompt asked
    for, before the model runs on into an example of its own."""
    lines = [line for line in strip_echo(raw, template.text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def read_question(raw: str, template: Template) -> Candidate:
    """The question a question-rewrite output asks: its first line, lead-ins, quotes and emphasis removed,
    cut after its first question mark."""
    if is_refusal(raw):
        return Candidate(None, reason="refusal")
    first = _first_line(raw, template)
    if not first:
        return Candidate(None, reason="empty")
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
        return Candidate(None, reason="unparsed")
    # The last sentence up to the first question mark: an opening remark before it is not the question.
    question = _SENTENCE_BREAK.split(line[: line.index("?") + 1])[-1].strip(" \"'“”‘’")
    if len(question.split()) < 3:
        return Candidate(None, reason="unparsed")
    return Candidate(question, question=question)


def read_answer(raw: str, template: Template) -> Candidate:
    """The rephrased answer: the first line of the completion, prose that is not itself a question."""
    found = read_text(_first_line(raw, template), template, single_paragraph=True)
    if found.text is None:
        return found
    text = _ANSWER_LEAD.sub("", found.text, count=1).strip().strip('"“”')
    if not text:
        return Candidate(None, reason="empty")
    return Candidate(text, answer=text)


def read_text(raw: str, template: Template, *, single_paragraph: bool) -> Candidate:
    """A prose rewrite: labels and echoes stripped, loops and a cut-off sentence removed."""
    if is_refusal(raw):
        return Candidate(None, reason="refusal")
    text = strip_labels(strip_echo(raw, template.text))
    text = _STATEMENT_LABEL.sub("", text).strip()
    if single_paragraph:
        text = re.split(r"\n\s*\n", text, maxsplit=1)[0]
    paragraphs = [_tidy(p) for p in re.split(r"\n\s*\n", text) if p.strip()]
    text = "\n\n".join(p for p in paragraphs if p)
    if not text:
        return Candidate(None, reason="empty")
    if _LABEL_LINE.search(text) or (single_paragraph and text.rstrip().endswith("?")):
        return Candidate(None, reason="unparsed")
    return Candidate(text)


def _copied(text: str, source: str) -> str | None:
    """Why `text` is a copy of `source` (equal after normalisation, or one word changed), or None."""
    edits = word_edits(text, source)
    if edits >= MIN_WORD_EDITS:
        return None
    return "equal after normalisation" if edits == 0 else f"{edits} word changed"


def _answer_prompt(unit: Unit, fact: Fact) -> str:
    assert unit.answer_template is not None
    return unit.answer_template.render(question=fact.question, answer=fact.answer)


class _Sources:
    """Embeddings of each fact of a block: the whole fact and, for QA facts, its question and answer."""

    def __init__(self, embedder: Embedder, facts: Sequence[Fact], records: Sequence[Record]) -> None:
        self.whole = embedder.embed([str(r["text"]) for r in records])
        qa = [i for i, fact in enumerate(facts) if fact.is_qa]
        fields = [str(facts[i].question) for i in qa] + [str(facts[i].answer) for i in qa]
        vectors = embedder.embed(fields) if fields else np.zeros((0, self.whole.shape[1]))
        self.questions = {i: vectors[k] for k, i in enumerate(qa)}
        self.answers = {i: vectors[len(qa) + k] for k, i in enumerate(qa)}


class Rewriter:
    """Runs the block plan over a list of facts; the public entry is `rewrite_facts`."""

    def __init__(
        self,
        model: TextModel,
        embedder: Embedder,
        config: RewriteConfig,
        templates: RewriteTemplates,
        reject: Reject | None,
        tracker: Tracker,
    ) -> None:
        self.model = model
        self.embedder = embedder
        self.config = config
        self.templates = templates
        self.reject = reject
        self.tracker = tracker
        self.settings = config.settings()
        self.rejected: dict[str, int] = {}
        self.attempts = 0
        self.accepted = 0
        self.qa_plan = attempt_plan(templates.qa_pairs, len(config.temperatures))
        self.text_plan = attempt_plan(len(templates.text), len(config.temperatures))
        self.statement_attempts = max(1, math.ceil(config.max_attempts / config.variants))
        self.fact_ids: dict[int, str] = {}

    def unit(self, index: int, fact: Fact, form: str, round_index: int, attempt: int) -> Unit:
        temperatures = self.config.temperatures
        if form == "statement":
            t = (attempt + round_index * self.statement_attempts) % len(temperatures)
            return Unit(index, form, self.templates.statement, temperatures[t], t, round_index, attempt)
        plan = self.qa_plan if form == "qa" else self.text_plan
        t, template = plan[(attempt + round_index * self.config.max_attempts) % len(plan)]
        if form == "qa":
            question, answer = self.templates.qa_pair(template)
            return Unit(index, form, question, temperatures[t], t, round_index, attempt, answer)
        return Unit(index, form, self.templates.text[template], temperatures[t], t, round_index, attempt)

    def prompt(self, unit: Unit, fact: Fact) -> str:
        if unit.form == "text":
            return unit.template.render(text=fact.text)
        return unit.template.render(question=fact.question, answer=fact.answer)

    def block(self, facts: Sequence[Fact], records: Sequence[Record]) -> list[list[Record]]:
        """Every round and wave of one block; the accepted variants of each fact, in acceptance order."""
        sources = _Sources(self.embedder, facts, records)
        dedups = [Deduplicator(self.config.max_similarity) for _ in facts]
        variants: list[list[Record]] = [[] for _ in facts]
        for round_index in range(self.config.rounds):
            states = [_FactState(self.config.variants) for _ in facts]
            wave = 0
            while True:
                units: list[Unit] = []
                for index, (fact, state) in enumerate(zip(facts, states, strict=True)):
                    form = "qa" if fact.is_qa else "text"
                    take = min(state.wanted - len(state.accepted), self.config.max_attempts - state.used)
                    units += [self.unit(index, fact, form, round_index, state.used + j) for j in range(take)]
                    state.used += max(0, take)
                    if (
                        fact.is_qa
                        and self.config.statements
                        and not state.statement_done
                        and state.statement_used < self.statement_attempts
                    ):
                        units.append(self.unit(index, fact, "statement", round_index, state.statement_used))
                        state.statement_used += 1
                if not units:
                    break
                self.run_batch(units, wave, facts, records, sources, states, dedups, variants)
                wave += 1
        return variants

    def _generate(
        self,
        units: Sequence[Unit],
        prompts: list[str],
        part: str,
        n: int,
        *,
        chat: bool = True,
        max_new_tokens: int | None = None,
    ) -> list[list[str]]:
        """One request per unit, seeded from the unit's own identity and the part it asks for, so a
        rewrite never depends on which facts share its block or batch."""
        if not prompts:
            return []
        return self.model.generate(
            [
                GenerationRequest(
                    prompt=prompt,
                    temperature=unit.temperature,
                    top_p=self.config.top_p,
                    max_new_tokens=max_new_tokens or self.config.max_new_tokens,
                    n=n,
                    seed=derive_seed(
                        self.config.seed,
                        STAGE,
                        self.fact_ids[id(unit)],
                        unit.round,
                        unit.form,
                        unit.attempt,
                        part,
                    ),
                    chat=chat,
                )
                for unit, prompt in zip(units, prompts, strict=True)
            ]
        )

    def run_batch(
        self,
        batch: Sequence[Unit],
        wave: int,
        facts: Sequence[Fact],
        records: Sequence[Record],
        sources: _Sources,
        states: list[_FactState],
        dedups: list[Deduplicator],
        variants: list[list[Record]],
    ) -> None:
        self.fact_ids = {id(u): records[u.fact]["id"] for u in batch}
        single = [u for u in batch if u.form != "qa"]
        paired = [u for u in batch if u.form == "qa"]
        # Both parts of the QA attempts as few-shot completions, `draws` each.
        question_outputs = self._generate(
            paired,
            [self.prompt(u, facts[u.fact]) for u in paired],
            "question",
            self.config.draws,
            chat=False,
            max_new_tokens=min(QUESTION_TOKENS, self.config.max_new_tokens),
        )
        answer_outputs = self._generate(
            paired,
            [_answer_prompt(u, facts[u.fact]) for u in paired],
            "answer",
            self.config.draws,
            chat=False,
            max_new_tokens=min(ANSWER_TOKENS, self.config.max_new_tokens),
        )
        single_outputs = self._generate(single, [self.prompt(u, facts[u.fact]) for u in single], "text", 1)
        self.attempts += len(batch)
        outcomes: dict[int, tuple[Candidate, np.ndarray | None, Any]] = {}
        for unit, texts in zip(single, single_outputs, strict=True):
            raw = texts[0] if texts else ""
            candidate = read_text(raw, unit.template, single_paragraph=unit.form == "statement")
            outcomes[id(unit)] = (candidate, None, raw)
        for unit, questions, answers in zip(paired, question_outputs, answer_outputs, strict=True):
            outcomes[id(unit)] = (Candidate(None), None, {"question": questions, "answer": answers})
        readable = [c.text for c, _, _ in (outcomes[id(u)] for u in single) if c.text]
        vectors = iter(self.embedder.embed(readable)) if readable else iter(())
        for unit in single:
            candidate, _, raw = outcomes[id(unit)]
            outcomes[id(unit)] = (candidate, next(vectors) if candidate.text else None, raw)
        for unit in batch:
            fact, record, state = facts[unit.fact], records[unit.fact], states[unit.fact]
            candidate, vector, raw = outcomes[id(unit)]
            if unit.form == "qa":
                reason, detail, similarity, candidate = self.pair(
                    unit, fact, record, raw, sources, dedups[unit.fact], state
                )
            else:
                reason, detail, similarity = self.check(
                    unit, fact, record, candidate, vector, sources.whole[unit.fact], dedups[unit.fact]
                )
            if reason is not None:
                self.rejected[reason] = self.rejected.get(reason, 0) + 1
                if self.reject is not None:
                    self.reject(
                        {
                            "parent": record["id"],
                            "reason": reason,
                            "detail": detail,
                            "form": unit.form,
                            **unit.provenance(),
                            "temperature": unit.temperature,
                            "round": unit.round,
                            "attempt": unit.attempt,
                            "similarity": similarity,
                            "output": raw,
                        }
                    )
                continue
            made = self.variant(unit, fact, record, candidate, similarity, wave)
            if unit.form == "statement":
                state.statement_done = True
            else:
                state.accepted.append(made)
            variants[unit.fact].append(made)
            self.accepted += 1

    def pair(
        self,
        unit: Unit,
        fact: Fact,
        record: Record,
        raw: dict[str, list[str]],
        sources: _Sources,
        dedup: Deduplicator,
        state: _FactState,
    ) -> tuple[str | None, str | None, float | None, Candidate]:
        """Pair this attempt's passing drafts with each other and with the fact's pool; the first pairing
        that passes the whole-variant checks, or the reason none did (a part's when this attempt drew no
        passing question or answer and the pool has none to lend, else the first pairing's)."""
        answer_template = unit.answer_template
        assert answer_template is not None
        questions, question_failure = self.parts(
            [read_question(r, unit.template) for r in raw["question"]],
            str(fact.question),
            sources.questions[unit.fact],
        )
        answers, answer_failure = self.parts(
            [read_answer(r, answer_template) for r in raw["answer"]],
            str(fact.answer),
            sources.answers[unit.fact],
        )
        pooled_questions = {p.text for p in state.questions}
        pooled_answers = {p.text for p in state.answers}
        new_questions = [Part(q, unit, draw) for q, draw in questions if q not in pooled_questions]
        new_answers = [Part(a, unit, draw) for a, draw in answers if a not in pooled_answers]
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
                    return "duplicate", f"{name}: repeats an earlier draft", None, Candidate(None)
                reason, detail = failure or ("empty", None)
                return reason, f"{name}: {detail}" if detail else name, None, Candidate(None)
        candidates = [Candidate(qa_text(q.text, a.text), q.text, a.text, parts=(q, a)) for q, a in pairings]
        vectors = self.embedder.embed([str(c.text) for c in candidates])
        first: tuple[str | None, str | None, float | None] | None = None
        for candidate, vector in zip(candidates, vectors, strict=True):
            verdict = self.check(unit, fact, record, candidate, vector, sources.whole[unit.fact], dedup)
            if verdict[0] is None:
                assert candidate.parts is not None
                question, answer = candidate.parts
                state.questions.remove(question)
                state.answers.remove(answer)
                return (*verdict, candidate)
            first = first or verdict
        assert first is not None
        return (*first, Candidate(None))

    def parts(
        self, candidates: list[Candidate], source: str, source_vector: np.ndarray
    ) -> tuple[list[tuple[str, int]], tuple[str, str | None] | None]:
        """The distinct drafts of one field that pass that field's checks, in draw order, each with the
        index of the draw that first gave it, and the first failure seen (reason, detail)."""
        readable = [c for c in candidates if c.text]
        texts = list(dict.fromkeys(str(c.text) for c in readable))
        by_text = dict(zip(texts, self.embedder.embed(texts), strict=True)) if texts else {}
        passed: dict[str, int] = {}
        failure: tuple[str, str | None] | None = None
        for draw, candidate in enumerate(candidates):
            if candidate.text is None:
                failure = failure or (candidate.reason or "empty", None)
                continue
            verdict = self.check_part(candidate.text, by_text[candidate.text], source, source_vector)
            if verdict is None:
                passed.setdefault(candidate.text, draw)
            else:
                failure = failure or verdict
        return list(passed.items()), failure

    def check_part(
        self, text: str, vector: np.ndarray, source: str, source_vector: np.ndarray
    ) -> tuple[str, str] | None:
        """One rephrased field against its source field: changed in two words or more, close in meaning,
        every entity and number kept, most of its other content words kept, and no number or name
        invented or looped.

        The cosine cap judges the whole variant, not a field: on a one-sentence field the embedder puts
        real rephrasings above it ("is most famous for" for "is best known for" at 0.99, a reordering of
        the fact's two clauses at 0.98), and a variant whose question is rephrased as well falls below."""
        copied = _copied(text, source)
        if copied:
            return "near_copy", copied
        similarity = round(float(np.dot(vector, source_vector)), 4)
        return self.meaning_lost(text, similarity, source, content_of=source, capped=False)

    def meaning_lost(
        self, text: str, similarity: float, source: str, content_of: str | None, *, capped: bool = True
    ) -> tuple[str, str] | None:
        """The checks a field and a whole variant share, in order: cosine bounds (the upper one when
        `capped`), entities and numbers kept, the content words of `content_of` kept (when given), no
        number or name invented, none said again within a sentence."""
        if capped and similarity >= self.config.max_similarity:
            return "near_copy", f"cosine {similarity} >= {self.config.max_similarity}"
        if similarity <= self.config.min_similarity:
            return "low_similarity", f"cosine {similarity} <= {self.config.min_similarity}"
        missing = missing_terms(source, text)
        if missing:
            return "missing_terms", ", ".join(missing)
        lost = lost_words(content_of, text) if content_of is not None else []
        if lost:
            return "lost_content", ", ".join(lost)
        invented = new_numbers(source, text)
        if invented:
            return "new_number", ", ".join(invented)
        named = new_names(source, text)
        if named:
            return "new_name", ", ".join(named)
        repeated = repeated_terms(source, text)
        if repeated:
            return "repeated_term", ", ".join(repeated)
        return None

    def check(
        self,
        unit: Unit,
        fact: Fact,
        record: Record,
        candidate: Candidate,
        vector: np.ndarray | None,
        source: np.ndarray,
        dedup: Deduplicator,
    ) -> tuple[str | None, str | None, float | None]:
        """The first failed check as (reason, detail, similarity), or (None, None, similarity)."""
        if candidate.text is None or vector is None:
            return candidate.reason or "empty", None, None
        similarity = round(float(np.dot(vector, source)), 4)
        source_text = str(record["text"])
        # A statement that is the answer with a word changed rephrased nothing. The fields of a QA
        # pairing each passed `check_part`, which holds them to the same rule against their own source.
        copied = _copied(candidate.text, source_text) or _copied(candidate.text, str(fact.answer))
        if copied:
            return "near_copy", copied, similarity
        # A statement restates the answer, so it must keep the answer's claim, not only its names.
        content_of = str(fact.answer) if unit.form == "statement" else None
        failure = self.meaning_lost(candidate.text, similarity, source_text, content_of)
        if failure is not None:
            return (*failure, similarity)
        verdict = dedup.offer(candidate.text, vector)
        if verdict is not None:
            return "duplicate", verdict, similarity
        return None, None, similarity

    def variant(
        self,
        unit: Unit,
        fact: Fact,
        record: Record,
        candidate: Candidate,
        similarity: float | None,
        wave: int,
    ) -> Record:
        if candidate.parts is not None:
            # The variant's template and temperature are its question's; the answer's are named apart.
            question, answer = candidate.parts
            assert answer.unit.answer_template is not None
            unit = dataclasses.replace(question.unit, answer_template=answer.unit.answer_template)
        gen = {
            "model": self.model.name,
            **unit.provenance(),
            "form": unit.form,
            "temperature": unit.temperature,
            "top_p": self.config.top_p,
            "round": unit.round,
            "attempt": unit.attempt,
            "wave": wave,
            "seed": self.config.seed,
            "embedder": self.embedder.name,
            "settings": self.settings,
        }
        if candidate.parts is not None:
            gen["parts"] = {
                "question": candidate.parts[0].provenance(unit.template),
                "answer": candidate.parts[1].provenance(unit.answer_template),  # type: ignore[arg-type]
            }
        origin: dict[str, Any] = {
            "model": self.model.name,
            "embedder": self.embedder.name,
            "template": unit.provenance(),
            "form": unit.form,
            "temperature": unit.temperature,
            "round": unit.round,
            "attempt": unit.attempt,
            "settings": self.settings,
        }
        if candidate.parts is not None:
            # A question left in the pool pairs with the answers of later attempts, which may share its
            # attempt's templates and temperature: only both drafts' own origins tell those pairings apart.
            origin["parts"] = gen["parts"]
        variant = make_record(
            kind="statement" if unit.form == "statement" else "variant",
            text=candidate.text,
            question=candidate.question,
            answer=candidate.answer,
            topic=record.get("topic"),
            parent=str(record["id"]),
            stage=STAGE,
            gen=gen,
            origin=origin,
            scores={"similarity": similarity or 0.0},
        )
        # Fields such as TOFU's task_id describe the fact, so its variants carry them too.
        variant.update(passthrough(fact))
        return variant

    def report(self, facts: int, without: int) -> None:
        rate = f"{100 * self.accepted / self.attempts:.0f}%" if self.attempts else "n/a"
        console.info(
            f"rewrite: {facts} fact(s), {self.accepted} variant(s) accepted of {self.attempts} "
            f"attempt(s) ({rate}; a QA attempt draws {self.config.draws} questions and "
            f"{self.config.draws} answers)"
        )
        if self.rejected:
            reasons = ", ".join(f"{r} {self.rejected[r]}" for r in REASONS if r in self.rejected)
            console.info(f"rewrite: rejected {sum(self.rejected.values())}: {reasons}")
        if without:
            console.warn(f"rewrite: {without} fact(s) got no accepted variant; try more --attempts")


def rewrite_facts(
    model: TextModel,
    embedder: Embedder,
    facts: Sequence[Fact],
    config: RewriteConfig,
    *,
    existing: Iterable[Record] = (),
    reject: Reject | None = None,
    tracker: Tracker | None = None,
) -> Iterator[Record]:
    """Yield each fact's record followed by its accepted variants, block by block.

    `existing` are records a previous run of the same settings wrote (`--resume`): blocks before the last
    one they reach are skipped, that block is regenerated and the caller skips the ids already written.
    """
    tracker = tracker or Tracker()
    templates = load_rewrite_templates()
    unique: list[Fact] = []
    records: list[Record] = []
    seen: set[str] = set()
    for fact in facts:
        record = fact_record(fact)
        if record["id"] in seen:
            console.warn(f"{fact.source}:{fact.line}: skipped a repeated fact")
            continue
        seen.add(record["id"])
        unique.append(fact)
        records.append(record)
    size = BLOCK_FACTS
    blocks = [range(start, min(start + size, len(unique))) for start in range(0, len(unique), size)]
    written = {str(r.get("id")) for r in existing} | {str(r.get("parent")) for r in existing}
    first = max(
        (b for b, block in enumerate(blocks) if any(records[i]["id"] in written for i in block)), default=0
    )
    if first:
        console.info(
            f"resuming at block {first + 1} of {len(blocks)} ({first * size} fact(s) already written)"
        )
    rewriter = Rewriter(model, embedder, config, templates, reject, tracker)
    task = tracker.start("rewrite", total=len(unique), unit="facts")
    tracker.skip(task, min(first * size, len(unique)))
    without = 0
    try:
        for block_index in range(first, len(blocks)):
            indices = blocks[block_index]
            variants = rewriter.block([unique[i] for i in indices], [records[i] for i in indices])
            for position, index in enumerate(indices):
                yield records[index]
                found = variants[position]
                without += not any(v["gen"]["form"] != "statement" for v in found)
                yield from sorted(found, key=lambda v: (v["gen"]["round"], v["gen"]["form"] == "statement"))
                tracker.advance(task)
            tracker.status(task, f"{rewriter.accepted} variants")
    finally:
        rewriter.report(len(unique), without)
