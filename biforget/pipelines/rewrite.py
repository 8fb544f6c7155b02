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

A rewrite is accepted only if it passes the checks of biforget/metrics/checks.py and repeats no
variant already accepted for the fact.

Work runs in blocks of `BLOCK_FACTS` facts. Inside a block, wave 0 asks for `variants` rewrites of every
fact; each later wave asks again only for what a fact still lacks. Every request is seeded from the run
seed and its own identity (fact, round, form, attempt and part), so the whole plan is a deterministic
function of the facts and the settings, whatever the batch size. A block
is written when it is finished (each fact, then its variants), which is what makes `--resume` exact: the
last block a previous run reached is regenerated identically and its records already written are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from biforget import console
from biforget.config import RewriteConfig
from biforget.console import Tracker
from biforget.dedup import Deduplicator
from biforget.errors import NothingProduced
from biforget.io.facts import Fact
from biforget.metrics.checks import Bounds
from biforget.models.base import Embedder, GenerationRequest, TextModel
from biforget.parse import Cleaned, read_prose
from biforget.pipelines.rewrite_judge import Block, FactState, Outcome, Sources, judge, pair
from biforget.pipelines.rewrite_plan import (
    STAGE,
    Attempt,
    RewriteTemplates,
    attempt_plan,
    fact_record,
    load_rewrite_templates,
    rejection,
    variant_record,
)
from biforget.records import Provenance, Record, derive_seed

__all__ = ["STAGE", "Rewriter", "load_rewrite_templates", "rewrite_facts"]

# Facts per block: a block is written when it is finished. Each fact's rewrites depend on its own
# requests alone, so the block size changes only how often records are flushed, never what they say.
BLOCK_FACTS = 32
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
        self.provenance = Provenance(model.name, embedder.name, config.settings())
        self.bounds = Bounds(config.min_similarity, config.max_similarity)
        self.rejected: dict[str, int] = {}
        self.attempts = 0
        self.accepted = 0
        self.qa_plan = attempt_plan(templates.qa_pairs, len(config.temperatures))
        self.text_plan = attempt_plan(len(templates.text), len(config.temperatures))
        self.statement_attempts = max(1, math.ceil(config.max_attempts / config.variants))

    def attempt(self, index: int, form: str, round_index: int, number: int) -> Attempt:
        temperatures = self.config.temperatures
        if form == "statement":
            t = (number + round_index * self.statement_attempts) % len(temperatures)
            return Attempt(index, form, self.templates.statement, temperatures[t], t, round_index, number)
        plan = self.qa_plan if form == "qa" else self.text_plan
        t, template = plan[(number + round_index * self.config.max_attempts) % len(plan)]
        if form == "qa":
            question, answer = self.templates.qa_pair(template)
            return Attempt(index, form, question, temperatures[t], t, round_index, number, answer)
        return Attempt(index, form, self.templates.text[template], temperatures[t], t, round_index, number)

    @staticmethod
    def prompt(attempt: Attempt, fact: Fact) -> str:
        if attempt.form == "text":
            return attempt.template.render(text=fact.text)
        return attempt.template.render(question=fact.question, answer=fact.answer)

    @staticmethod
    def answer_prompt(attempt: Attempt, fact: Fact) -> str:
        assert attempt.answer_template is not None
        return attempt.answer_template.render(question=fact.question, answer=fact.answer)

    def block(self, facts: Sequence[Fact], records: Sequence[Record]) -> list[list[Record]]:
        """Every round and wave of one block; the accepted variants of each fact, in acceptance order."""
        block = Block(
            facts,
            records,
            Sources(self.embedder, facts, records),
            [Deduplicator(self.config.max_similarity) for _ in facts],
            [[] for _ in facts],
        )
        for round_index in range(self.config.rounds):
            block.states = [FactState(self.config.variants) for _ in facts]
            wave = 0
            while True:
                attempts: list[Attempt] = []
                for index, (fact, state) in enumerate(zip(facts, block.states, strict=True)):
                    form = "qa" if fact.is_qa else "text"
                    take = min(state.wanted - len(state.accepted), self.config.max_attempts - state.used)
                    attempts += [self.attempt(index, form, round_index, state.used + j) for j in range(take)]
                    state.used += max(0, take)
                    if (
                        fact.is_qa
                        and self.config.statements
                        and not state.statement_done
                        and state.statement_used < self.statement_attempts
                    ):
                        attempts.append(self.attempt(index, "statement", round_index, state.statement_used))
                        state.statement_used += 1
                if not attempts:
                    break
                self.run_wave(attempts, wave, block)
                wave += 1
        return block.variants

    def _generate(
        self,
        attempts: Sequence[Attempt],
        prompts: list[str],
        part: str,
        n: int,
        block: Block,
        *,
        chat: bool = True,
        max_new_tokens: int | None = None,
    ) -> list[list[str]]:
        """One request per attempt, seeded from the attempt's own identity and the part it asks for, so a
        rewrite never depends on which facts share its block or batch."""
        if not prompts:
            return []
        return self.model.generate(
            [
                GenerationRequest(
                    prompt=prompt,
                    temperature=attempt.temperature,
                    top_p=self.config.top_p,
                    max_new_tokens=max_new_tokens or self.config.max_new_tokens,
                    n=n,
                    seed=derive_seed(
                        self.config.seed,
                        STAGE,
                        block.records[attempt.fact]["id"],
                        attempt.round,
                        attempt.form,
                        attempt.index,
                        part,
                    ),
                    chat=chat,
                )
                for attempt, prompt in zip(attempts, prompts, strict=True)
            ]
        )

    def run_wave(self, wave_attempts: Sequence[Attempt], wave: int, block: Block) -> None:
        """Generate every attempt of one wave, judge each, and keep or log what it gave."""
        facts = block.facts
        single = [a for a in wave_attempts if a.form != "qa"]
        paired = [a for a in wave_attempts if a.form == "qa"]
        # Both parts of the QA attempts as few-shot completions, `draws` each.
        question_outputs = self._generate(
            paired,
            [self.prompt(a, facts[a.fact]) for a in paired],
            "question",
            self.config.draws,
            block,
            chat=False,
            max_new_tokens=min(QUESTION_TOKENS, self.config.max_new_tokens),
        )
        answer_outputs = self._generate(
            paired,
            [self.answer_prompt(a, facts[a.fact]) for a in paired],
            "answer",
            self.config.draws,
            block,
            chat=False,
            max_new_tokens=min(ANSWER_TOKENS, self.config.max_new_tokens),
        )
        single_outputs = self._generate(
            single, [self.prompt(a, facts[a.fact]) for a in single], "text", 1, block
        )
        self.attempts += len(wave_attempts)
        raws: dict[int, Any] = {}
        read: dict[int, Cleaned] = {}
        for attempt, texts in zip(single, single_outputs, strict=True):
            raws[id(attempt)] = texts[0] if texts else ""
            statement = attempt.form == "statement"
            read[id(attempt)] = read_prose(
                raws[id(attempt)], attempt.template.text, single_paragraph=statement
            )
        for attempt, questions, answers in zip(paired, question_outputs, answer_outputs, strict=True):
            raws[id(attempt)] = {"question": questions, "answer": answers}
        readable = [str(read[id(a)].text) for a in single if read[id(a)].text]
        vectors = iter(self.embedder.embed(readable)) if readable else iter(())
        for attempt in wave_attempts:
            fact, record = facts[attempt.fact], block.records[attempt.fact]
            if attempt.form == "qa":
                outcome = pair(attempt, fact, record, raws[id(attempt)], block, self.embedder, self.bounds)
            else:
                candidate = read[id(attempt)]
                vector = next(vectors) if candidate.text else None
                verdict = judge(attempt, fact, record, candidate, vector, block, self.bounds)
                outcome = Outcome(verdict, candidate)
            self.settle(attempt, fact, record, outcome, raws[id(attempt)], wave, block)

    def settle(
        self,
        attempt: Attempt,
        fact: Fact,
        record: Record,
        outcome: Outcome,
        raw: Any,
        wave: int,
        block: Block,
    ) -> None:
        """Count and log a rejected attempt, or make the accepted one a record of its fact."""
        verdict = outcome.verdict
        if verdict.reason is not None:
            self.rejected[verdict.reason] = self.rejected.get(verdict.reason, 0) + 1
            if self.reject is not None:
                self.reject(rejection(attempt, record, verdict, raw))
            return
        made = variant_record(
            self.provenance,
            attempt,
            fact,
            record,
            outcome.candidate,
            outcome.parts,
            verdict.similarity,
            wave,
            self.config.top_p,
            self.config.seed,
        )
        state = block.states[attempt.fact]
        if attempt.form == "statement":
            state.statement_done = True
        else:
            state.accepted.append(made)
        block.variants[attempt.fact].append(made)
        self.accepted += 1

    def nothing_accepted(self, facts: int) -> NothingProduced:
        """The error of a run in which every rewrite of every fact was rejected."""
        rejected = {r: self.rejected[r] for r in REASONS if r in self.rejected}
        reason = max(rejected, key=lambda r: rejected[r]) if rejected else "empty"
        if reason == "near_copy":
            hint = f"try a higher --max-similarity (now {self.config.max_similarity}) or more --attempts"
        elif reason == "low_similarity":
            hint = f"try a lower --min-similarity (now {self.config.min_similarity}) or more --attempts"
        else:
            hint = f"try more --attempts (now {self.config.max_attempts}) or higher --temperatures"
        return NothingProduced(
            STAGE,
            f"variant accepted for any of {facts} fact(s)",
            f"{self.attempts} attempt(s)",
            rejected,
            hint,
        )

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
    templates: RewriteTemplates | None = None,
) -> Iterator[Record]:
    """Yield each fact's record followed by its accepted variants, block by block.

    `existing` are records a previous run of the same settings wrote (`--resume`): blocks before the last
    one they reach are skipped, that block is regenerated and the caller skips the ids already written.
    """
    tracker = tracker or Tracker()
    templates = templates or load_rewrite_templates()
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
    existing = list(existing)
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
    # Variants of a resumed run's earlier blocks are this run's own records too.
    kept_before = any(r.get("kind") in ("variant", "statement") for r in existing)
    empty = False
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
        if not rewriter.accepted and not kept_before:
            empty = True  # the error's line carries the counts the report would print
            raise rewriter.nothing_accepted(len(unique))
    finally:
        if not empty:
            rewriter.report(len(unique), without)
