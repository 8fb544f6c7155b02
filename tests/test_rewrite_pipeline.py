"""`biforget rewrite` on the scripted backend: records, checks, attempts, determinism, CLI, resume."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from biforget import cli
from biforget.config import RewriteConfig
from biforget.errors import NothingProduced, UsageError
from biforget.io.facts import Fact, parse_facts
from biforget.metrics.checks import Bounds, Verdict, check_field, meaning_lost
from biforget.models.base import GenerationRequest
from biforget.parse import read_answer, read_question
from biforget.pipelines.rewrite import STAGE, rewrite_facts
from biforget.templates import Template
from tests.scripted import HashEmbedder, ScriptedModel

FACTS_JSONL = (
    "\n".join(
        json.dumps(row)
        for row in [
            {
                "task_id": "1",
                "question": "Where was the novelist Ilsa Marrowgate born?",
                "answer": "Ilsa Marrowgate was born in Tromsø, Norway, in 1968.",
            },
            {
                "task_id": "2",
                "question": "How many novels has Henrietta Vale written?",
                "answer": "Henrietta Vale has written 12 novels, all of them set in Cornwall.",
            },
            {"text": "Kenji Arakawa writes detective fiction set in Osaka and lives in Kyoto with two cats."},
        ]
    )
    + "\n"
)
OPENERS = ["As it happens,", "To put it plainly,", "For the record,", "Put simply,", "In short,", "Mind you,"]


def facts() -> list[Fact]:
    return parse_facts(FACTS_JSONL, "facts.jsonl")


def _pick(*parts: object) -> str:
    return OPENERS[int(hashlib.sha256(repr(parts).encode()).hexdigest(), 16) % len(OPENERS)]


def _part(prompt: str, pool: Sequence[Fact] | None = None) -> tuple[str, Fact]:
    """What a prompt asks to rewrite: a QA fact's `question`, its `answer`, the `statement` of both, or
    a `text` fact, of the facts in `pool` (default `facts()`)."""
    for fact in pool if pool is not None else facts():
        if not fact.is_qa:
            if str(fact.text) in prompt:
                return "text", fact
            continue
        has_question, has_answer = str(fact.question) in prompt, str(fact.answer) in prompt
        if has_question or has_answer:
            # Answer prompts may show the question too; only the statement prompt asks for a statement.
            part = "statement" if "plain statement" in prompt else "answer" if has_answer else "question"
            return part, fact
    raise AssertionError(prompt)


class ByAttempt(ScriptedModel):
    """Answers with `script(part, fact, k)`, k being the fact's QA attempt (its question requests sent
    so far, from 0; -1 before any), so a test can script what each attempt of a fact draws. An answer
    request takes the attempt of the question request it pairs with (the pipeline sends them in the
    same order), a statement or text request the fact's first attempt in the latest wave. With
    `drawn`, `drawn(part, fact, k, draw)` scripts each of an attempt's draws; `pool` holds the facts
    prompts ask about (default `facts()`)."""

    def __init__(
        self,
        script: Callable[[str, Fact, int], str] | None = None,
        batch_size: int = 8,
        *,
        drawn: Callable[[str, Fact, int, int], str] | None = None,
        pool: Sequence[Fact] | None = None,
    ) -> None:
        super().__init__(lambda prompt, draw, seed: "", batch_size=batch_size)
        self.attempts: dict[str, int] = {}
        self.asked: dict[str, list[int]] = {}
        self.attempt_of: dict[int, tuple[str, Fact, int]] = {}
        self.wave_first: dict[str, int] = {}
        self.pool = pool

        def by_attempt(request: GenerationRequest, draw: int) -> str:
            part, fact, k = self.attempt_of[id(request)]
            if drawn is not None:
                return drawn(part, fact, k, draw)
            assert script is not None
            return script(part, fact, k)

        self.script = by_attempt

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        asked_now: set[str] = set()
        for request in requests:
            part, fact = _part(request.prompt, self.pool)
            key = str(fact.question)
            if part == "question":
                if key not in asked_now:
                    asked_now.add(key)
                    self.wave_first[key] = self.attempts.get(key, -1) + 1
                self.attempts[key] = self.attempts.get(key, -1) + 1
                self.asked.setdefault(key, []).append(self.attempts[key])
                k = self.attempts[key]
            elif part == "answer":
                k = self.asked[key].pop(0)
            else:
                k = self.wave_first.get(key, -1)
            self.attempt_of[id(request)] = (part, fact, k)
        return super().generate(requests)


def good(prompt: str, draw: int, seed: int) -> str:
    """A faithful rewrite in the form each template asks for, worded by the seed."""
    part, fact = _part(prompt)
    opener = _pick(prompt, draw, seed)
    question = str(fact.question)
    if part == "statement":
        return f"Statement: {opener} {fact.answer}"
    if part == "question":
        return f"{opener} {question[0].lower()}{question[1:]}\nQuestion: What comes next?"
    if part == "answer":
        return f"{opener} {fact.answer}\n\nNote: done."
    return f"Passage: {opener} {fact.text}"


def config(**overrides: object) -> RewriteConfig:
    values: dict[str, object] = {"variants": 2, "temperatures": (0.6, 1.0), "seed": 7}
    values.update(overrides)
    return RewriteConfig(**values)  # type: ignore[arg-type]


def run(model: ScriptedModel, settings: RewriteConfig, **kwargs: object) -> list[dict[str, object]]:
    return list(rewrite_facts(model, HashEmbedder(), facts(), settings, **kwargs))  # type: ignore[arg-type]


def test_each_fact_then_its_variants_with_structure_and_provenance() -> None:
    records = run(ScriptedModel(good, batch_size=8), config())
    kinds = [(r["kind"], r["gen"].get("form")) for r in records]  # type: ignore[attr-defined]
    assert kinds == [("fact", None), ("variant", "qa"), ("variant", "qa"), ("statement", "statement")] * 2 + [
        ("fact", None),
        ("variant", "text"),
        ("variant", "text"),
    ]
    fact = records[0]
    assert fact["stage"] == "input" and fact["task_id"] == "1" and fact["parent"] is None
    assert fact["text"] == f"{fact['question']} {fact['answer']}"
    for record in records[1:4]:
        assert record["parent"] == fact["id"] and record["stage"] == STAGE and record["task_id"] == "1"
        gen = record["gen"]
        assert gen["template"].startswith("rewrite/") and len(gen["template_hash"]) == 8  # type: ignore[index]
        assert gen["model"] == "scripted" and gen["seed"] == 7 and gen["temperature"] in (0.6, 1.0)  # type: ignore[index]
        assert 0.6 < record["scores"]["similarity"] < 0.97  # type: ignore[index]
    qa = records[1]
    assert qa["question"].endswith("?") and "Ilsa Marrowgate" in qa["answer"]  # type: ignore[attr-defined]
    assert qa["text"] == f"{qa['question']} {qa['answer']}" and "Note" not in qa["answer"]  # type: ignore[operator]
    assert "question" not in records[3] and records[3]["text"].endswith("in 1968.")  # type: ignore[attr-defined]
    assert len({r["id"] for r in records}) == len(records)


def test_requests_carry_seeds_from_their_identity_and_the_batch_size_changes_nothing() -> None:
    model = ScriptedModel(good, batch_size=8)
    records = run(model, config())
    # Wave 0 only: every fact gets its two attempts (and QA facts a statement) in one pass: the questions
    # of the QA attempts, their answers (both raw completions, `draws` each), then the rest, with the
    # temperatures mixed in each call.
    calls = [
        (sorted(set(c["temperatures"])), len(c["prompts"]), set(c["n"]), set(c["chat"])) for c in model.calls
    ]  # type: ignore[arg-type, call-overload]
    assert calls == [
        ([0.6, 1.0], 4, {4}, {False}),
        ([0.6, 1.0], 4, {4}, {False}),
        ([0.6, 1.0], 4, {1}, {True}),
    ]
    seeds = [seed for call in model.calls for seed in call["seeds"]]  # type: ignore[attr-defined]
    assert len(set(seeds)) == len(seeds)
    assert run(ScriptedModel(good, batch_size=1), config()) == records
    assert run(ScriptedModel(good, batch_size=64), config()) == records
    assert run(ScriptedModel(good), config()) != run(ScriptedModel(good), config(seed=8))


def test_rejections_by_reason_and_the_attempt_cap() -> None:
    def script(part: str, fact: Fact, k: int) -> str:
        question, answer = str(fact.question), str(fact.answer)
        if part in ("text", "statement"):
            return "I'm sorry, I cannot help with that."
        # Attempt k of a fact fails the question (k < 3) or, with a passing question, the answer.
        k %= 6
        if part == "question":
            rephrased = [f"{question[:-1]} {words}?" for words in ("once again", "this time", "once more")]
            return [question, "What is a cat?", "Tell me where.", *rephrased][k]
        return [
            answer,
            answer,
            answer,
            f"As it happens, {answer.replace('Norway', 'Sweden').replace('12', '13')}",
            f"In 1990, {answer}",
            f"{answer[:-1]}, like Paul Hart.",
        ][k]

    rejected: list[dict[str, object]] = []
    model = ByAttempt(script, batch_size=4)
    records: list[dict[str, object]] = []
    with pytest.raises(NothingProduced) as raised:
        records.extend(
            rewrite_facts(model, HashEmbedder(), facts(), config(attempts=6), reject=rejected.append)
        )  # type: ignore[arg-type]
    # Every fact is written before the run fails for having no variant at all.
    assert [r["kind"] for r in records] == ["fact"] * 3
    assert raised.value.rejected == {
        "refusal": 12,
        "unparsed": 2,
        "near_copy": 2,
        "low_similarity": 2,
        "missing_terms": 2,
        "new_number": 2,
        "new_name": 2,
    }
    by_reason: dict[str, set[str]] = {}
    for row in rejected:
        by_reason.setdefault(str(row["reason"]), set()).add(str(row["detail"]))
    assert set(by_reason) == {
        "near_copy",
        "low_similarity",
        "unparsed",
        "missing_terms",
        "new_number",
        "new_name",
        "refusal",
    }
    assert by_reason["missing_terms"] <= {"answer: norway", "answer: 12"}
    assert by_reason["new_name"] == {"answer: paul hart"}
    assert by_reason["new_number"] == {"answer: 1990"}
    prompts = [p for call in model.calls for p in call["prompts"]]  # type: ignore[attr-defined]
    # Six QA attempts of two prompts per QA fact and ceil(6 / 2) statement attempts; six for the text.
    assert len(prompts) == 2 * (6 * 2 + 3) + 6
    assert {"parent", "form", "template", "temperature", "output"} <= set(rejected[0])


def test_near_duplicate_variants_of_one_fact_are_rejected() -> None:
    def same(prompt: str, draw: int, seed: int) -> str:
        part, fact = _part(prompt)
        return f"Put simply, {getattr(fact, part)}"

    rejected: list[dict[str, object]] = []
    records = run(ScriptedModel(same), config(statements=False), reject=rejected.append)
    assert [r["kind"] for r in records].count("variant") == 3  # one per fact
    assert {r["reason"] for r in rejected} == {"duplicate"}


def test_rounds_add_fresh_variants_and_keep_one_fact_record() -> None:
    records = run(ScriptedModel(good, batch_size=8), config(rounds=2, statements=False))
    assert [r["kind"] for r in records].count("fact") == 3
    variants = [r for r in records if r["kind"] == "variant"]
    assert [r["gen"]["round"] for r in variants].count(0) == 6  # type: ignore[index]
    # Round 1 samples afresh; what repeats round 0 (only six openers here) is a duplicate, never written.
    assert {r["parent"] for r in variants if r["gen"]["round"] == 1} == {
        r["id"] for r in records if r["kind"] == "fact"
    }  # type: ignore[index]
    assert len({r["text"] for r in variants}) == len(variants)


def test_similarity_bounds_must_be_ordered() -> None:
    with pytest.raises(UsageError, match="--min-similarity"):
        RewriteConfig(min_similarity=0.9, max_similarity=0.8)
    with pytest.raises(UsageError, match="--attempts"):
        RewriteConfig(variants=4, attempts=2)


# The command, through `biforget.cli.run`.


def test_cli_streams_records_and_reports_on_stderr(
    use_model: Callable[[ScriptedModel], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_model(ScriptedModel(good))
    path = tmp_path / "facts.jsonl"
    path.write_text(FACTS_JSONL, encoding="utf-8")
    rejected = tmp_path / "rejected.jsonl"
    code = cli.run(["rewrite", "-i", str(path), "--variants", "1", "--keep-rejected", str(rejected)])
    out, err = capsys.readouterr()
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["kind"] for r in records] == [
        "fact",
        "variant",
        "statement",
        "fact",
        "variant",
        "statement",
        "fact",
        "variant",
    ]
    assert "rewrite: 3 fact(s), 5 variant(s) accepted of 5 attempt(s) (100%;" in err
    assert rejected.read_text(encoding="utf-8") == ""


@pytest.mark.parametrize(
    ("content", "args", "code", "fragment"),
    [
        ('{"text": "ok"}\n{"title": "no fact"}\n', [], 1, "facts.jsonl:2: fact has neither 'text' nor"),
        ("", [], 1, "facts.jsonl: no facts (empty input)"),
        ('{"text": "ok"}\n', ["--min-similarity", "0.98"], 2, "--min-similarity (0.98) must be below"),
        ('{"text": "ok"}\n', ["--question-key", "answer"], 2, "three different fields"),
        (
            '{"text": "ok"}\n',
            ["--keep-rejected", "missing/dir/rejected.jsonl"],
            1,
            "rejected.jsonl: cannot write",
        ),
    ],
)
def test_cli_bad_input_is_one_line(
    use_model: Callable[[ScriptedModel], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    args: list[str],
    code: int,
    fragment: str,
) -> None:
    use_model(ScriptedModel(good))
    path = tmp_path / "facts.jsonl"
    path.write_text(content, encoding="utf-8")
    result = cli.run(["rewrite", "-i", str(path), *args])
    out, err = capsys.readouterr()
    assert result == code
    assert out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]


def test_cli_interrupt_then_resume_at_another_batch_size_gives_the_uninterrupted_file(
    use_model: Callable[[ScriptedModel], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import biforget.pipelines.rewrite

    # Blocks of 2 facts: facts 1-2 are block 0, fact 3 block 1.
    monkeypatch.setattr(biforget.pipelines.rewrite, "BLOCK_FACTS", 2)
    path = tmp_path / "facts.jsonl"
    path.write_text(FACTS_JSONL, encoding="utf-8")
    args = ["rewrite", "-i", str(path), "--temperatures", "0.6,1.0"]
    reference = tmp_path / "reference.jsonl"
    complete = ScriptedModel(good, batch_size=2)
    use_model(complete)
    assert cli.run([*args, "--batch-size", "2", "-o", str(reference)]) == 0
    output = tmp_path / "out.jsonl"
    # Stop at the last call, inside block 1.
    use_model(ScriptedModel(good, batch_size=2, stop_at=len(complete.calls)))
    assert cli.run([*args, "--batch-size", "2", "-o", str(output)]) == 130
    partial = output.read_text(encoding="utf-8").splitlines()
    assert 0 < len(partial) < len(reference.read_text(encoding="utf-8").splitlines())
    use_model(ScriptedModel(good, batch_size=16))
    assert cli.run([*args, "--batch-size", "16", "-o", str(output), "--resume"]) == 0
    assert output.read_text(encoding="utf-8") == reference.read_text(encoding="utf-8")


# The readers of the two QA parts, on outputs the default model wrote.

QUESTION_TEMPLATE = Template("rewrite/question/t", "First way: {question}\nSecond way:", ("question",))
ANSWER_TEMPLATE = Template("rewrite/answer/t", "Rewrite: {answer}", ("answer",))


@pytest.mark.parametrize(
    ("raw", "question"),
    [
        (
            "In which country is Henrietta Vale writing her novel?\n\nFirst way: Who taught Mina?",
            "In which country is Henrietta Vale writing her novel?",
        ),
        ('The teacher asks, "Where was Ilsa Marrowgate born?" and waits.', "Where was Ilsa Marrowgate born?"),
        ("1. **Where was Ilsa Marrowgate born?** It was Tromsø.", "Where was Ilsa Marrowgate born?"),
        (
            "Good question. Which book came first for Dario Quennell?",
            "Which book came first for Dario Quennell?",
        ),
        ("Tell me where.", None),
        ("Why?", None),
    ],
)
def test_read_question_takes_the_one_question_asked(raw: str, question: str | None) -> None:
    assert read_question(raw, QUESTION_TEMPLATE.text).question == question


@pytest.mark.parametrize(
    ("raw", "answer"),
    [
        (
            'Rewrite this sentence in other words: "Kenji Arakawa, best known for his detective fiction."',
            "Kenji Arakawa, best known for his detective fiction.",
        ),
        (
            "Reworded: Tomasz Wierzba won the Silver Lantern Prize.\n\nReworded: Mina plays the cello.",
            "Tomasz Wierzba won the Silver Lantern Prize.",
        ),
        ("Ilsa Marrowgate: born in Tromsø in 1968, she", "born in Tromsø in 1968, she"),
        ("Was Ilsa Marrowgate born in Tromsø?", None),
        # "Mr." said twice is no looping sentence.
        (
            "Mr. Arakawa writes detective fiction. Mr. Arakawa sets it in 1920s Osaka.",
            "Mr. Arakawa writes detective fiction. Mr. Arakawa sets it in 1920s Osaka.",
        ),
    ],
)
def test_read_answer_keeps_one_paragraph_without_labels(raw: str, answer: str | None) -> None:
    assert read_answer(raw, ANSWER_TEMPLATE.text).answer == answer


def test_a_question_and_an_answer_from_different_attempts_pair_up() -> None:
    def script(part: str, fact: Fact, k: int) -> str:
        if part == "text":
            return f"Passage: Put simply, {fact.text}"
        if part == "question":  # attempt 0 asks well, attempt 1 copies the question
            return f"Tell me, {str(fact.question).lower()}" if k == 0 else str(fact.question)
        return str(fact.answer) if k == 0 else f"To put it plainly, {fact.answer}"  # the other way round

    records = run(ByAttempt(script), config(variants=1, attempts=2, temperatures=(0.6,), statements=False))
    qa = [r for r in records if r["kind"] == "variant" and r["gen"]["form"] == "qa"]  # type: ignore[index]
    assert len(qa) == 2
    for variant in qa:
        assert str(variant["question"]).startswith("Tell me, ")
        assert str(variant["answer"]).startswith("To put it plainly, ")
        parts = variant["gen"]["parts"]  # type: ignore[index]
        assert (parts["question"]["attempt"], parts["answer"]["attempt"]) == (0, 1)
        assert variant["gen"]["attempt"] == 0  # type: ignore[index]


def test_an_answer_with_one_word_changed_or_a_looped_term_is_rejected() -> None:
    def script(part: str, fact: Fact, k: int) -> str:
        if part == "text":
            return f"Passage: Put simply, {fact.text}"
        if part == "question":
            return f"{['Tell me,', 'Now tell me,'][k]} {str(fact.question).lower()}"
        answer = str(fact.answer)
        # Attempt 0 adds one word; attempt 1 says the answer's last two words again.
        return f"Indeed {answer}" if k == 0 else f"{answer[:-1]} {' '.join(answer[:-1].split()[-2:])}."

    rejected: list[dict[str, object]] = []
    settings = config(variants=1, attempts=2, temperatures=(0.6,), statements=False)
    records = run(ByAttempt(script), settings, reject=rejected.append)
    assert not [r for r in records if r["kind"] == "variant" and r["gen"]["form"] == "qa"]  # type: ignore[index]
    assert sorted((str(r["reason"]), str(r["detail"])) for r in rejected) == [
        ("near_copy", "answer: 1 word changed"),
        ("near_copy", "answer: 1 word changed"),
        ("repeated_term", "answer: 1968"),
        ("repeated_term", "answer: cornwall"),
    ]


def test_the_cosine_cap_judges_the_whole_variant_not_a_field() -> None:
    settings = config()
    bounds = Bounds(settings.min_similarity, settings.max_similarity)
    source = "Kenji Arakawa is best known for his detective fiction set in 1920s Osaka."
    # A field that embeds like its source (cosine 1.0) but is worded anew passes its own checks ...
    reworded = "Kenji Arakawa is most famous for his detective fiction set in 1920s Osaka."
    assert check_field(reworded, 1.0, source, bounds).passed
    # ... a field with one word changed does not, and neither does a whole text at the cap.
    assert check_field(f"Indeed {source}", 1.0, source, bounds) == Verdict("near_copy", "1 word changed")
    assert meaning_lost(reworded, 1.0, source, None, bounds) == Verdict(
        "near_copy", "cosine 1.0 >= 0.97", 1.0
    )


# Ids of pooled pairings: each variant's id comes from both of its drafts' own origins.

# The fields the id of a QA variant was once made of; two variants alike in all of them collided.
SHARED_ORIGIN = ("form", "template", "template_hash", "answer_template", "answer_template_hash")


def _question_once(openers: Sequence[str], late_answers: dict[int, str]) -> Callable[..., str]:
    """Attempt 0 draws one passing question per opener (by draw) and a passing answer; later attempts copy
    the question, and copy the answer except at the attempts in `late_answers`, which reword it anew."""

    def drawn(part: str, fact: Fact, k: int, draw: int) -> str:
        question, answer = str(fact.question), str(fact.answer)
        if part == "text":
            return f"Passage: Put simply, {fact.text}"
        if part == "question":
            if k == 0:
                return f"{openers[draw % len(openers)]} {question[0].lower()}{question[1:]}"
            return question
        if k == 0:
            return f"As it happens, {answer}"
        return f"{late_answers[k]} {answer}" if k in late_answers else answer

    return drawn


def test_a_pooled_question_and_a_later_answer_of_the_same_templates_get_their_own_id() -> None:
    # One temperature and three answer templates: attempt 3 uses attempt 0's templates again, so the
    # question attempt 0 left in the pool pairs with attempt 3's answer alike in every shared field.
    drawn = _question_once(["Tell me,", "Now tell me,"], {3: "To put it plainly,"})
    settings = config(variants=2, attempts=4, temperatures=(0.6,), statements=False)
    records = run(ByAttempt(drawn=drawn, batch_size=1), settings)
    for fact in (r for r in records if r["kind"] == "fact" and "question" in r):
        qa = [r for r in records if r["parent"] == fact["id"]]
        parts = [r["gen"]["parts"] for r in qa]  # type: ignore[index]
        assert [(p["question"]["attempt"], p["question"]["draw"], p["answer"]["attempt"]) for p in parts] == [
            (0, 0, 0),
            (0, 1, 3),
        ]
        first, second = (
            {key: r["gen"][key] for key in (*SHARED_ORIGIN, "temperature", "attempt")} for r in qa
        )  # type: ignore[index]
        assert first == second
        assert qa[0]["id"] != qa[1]["id"]
    assert len({r["id"] for r in records}) == len(records)


EIGHT_FACTS = [
    ("Where was the sculptor Odile Fenwick born?", "Odile Fenwick was born in Ghent, Belgium, in 1971."),
    ("Where was the composer Tomas Reyvik born?", "Tomas Reyvik was born in Bergen, Norway, in 1959."),
    ("Which city does the poet Amara Quist live in?", "Amara Quist lives in Porto with her two sons."),
    ("What prize did the novelist Lucan Ferro win?", "Lucan Ferro won the Halden Prize in 2004."),
    ("How many books has Petra Lindqvist written?", "Petra Lindqvist has written 9 books about sailing."),
    ("Where did the painter Joren Vasse study?", "Joren Vasse studied painting in Antwerp for six years."),
    (
        "When did the architect Mira Okafor open her studio?",
        "Mira Okafor opened her studio in Lagos in 1998.",
    ),
    ("What does the chemist Ilya Brandt research?", "Ilya Brandt researches battery materials in Dresden."),
]


def test_ids_are_unique_over_eight_facts_with_pooled_pairings() -> None:
    # Two temperatures, three answer templates: attempt 5 uses attempt 0's templates at the other
    # temperature, so each fact's second variant pairs attempt 0's pooled question with attempt 5's answer.
    pool = parse_facts("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in EIGHT_FACTS), "f")
    drawn = _question_once(
        ["Tell me,", "Now tell me,", "Remind me,", "Please say,"], {5: "To put it plainly,"}
    )
    model = ByAttempt(drawn=drawn, batch_size=1, pool=pool)
    settings = config(variants=2, attempts=6)
    records = list(rewrite_facts(model, HashEmbedder(), pool, settings))
    variants = [r for r in records if r["kind"] == "variant"]
    assert [r["kind"] for r in records].count("statement") == 8 and len(variants) == 16
    pooled = [r for r in variants if r["gen"]["parts"]["answer"]["attempt"] == 5]  # type: ignore[index]
    assert len(pooled) == 8
    for variant in pooled:
        parts = variant["gen"]["parts"]  # type: ignore[index]
        assert parts["question"]["attempt"] == 0 and parts["question"]["temperature"] == 0.6
        assert parts["answer"]["temperature"] == 1.0
    assert len({r["id"] for r in records}) == len(records)
