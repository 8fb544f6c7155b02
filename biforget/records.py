"""The JSONL record contract (docs/records.md): ids, text of question/answer records, record construction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]

# `statement`: the text-only restatement `rewrite` adds to a QA fact, a kind of its own so filters can
# keep a QA set's question/answer records apart from it.
KINDS = ("point", "sample", "fact", "variant", "statement")
ID_LENGTH = 16


def make_id(**origin: Any) -> str:
    """A short, stable hash of every field a record was made from.

    Canonical JSON (sorted keys, no whitespace) makes the hash independent of argument order, so a
    re-run with the same settings gives the same ids and any differing origin field gives a new one.
    """
    canonical = json.dumps(origin, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:ID_LENGTH]


def derive_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed for one unit of work (a batch, a level), fixed by the run seed and its position."""
    digest = hashlib.sha256(":".join(str(part) for part in (seed, *parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def qa_text(question: str, answer: str) -> str:
    """The `text` of a question/answer record; every stage builds it here so all agree."""
    return f"{question.strip()} {answer.strip()}".strip()


@dataclass(frozen=True)
class Provenance:
    """Who makes a stage's records and with which settings; builds each record's `gen` and `origin`.

    `gen` reads: model, template, the stage's own fields, embedder, how it was scored, settings.
    `origin` holds what the id is made from; `origin_settings` leaves out the settings that decide
    only which records are kept or when a run stops (None: all of them)."""

    model: str
    embedder: str
    settings: Mapping[str, Any]
    origin_settings: Mapping[str, Any] | None = None

    def gen(
        self,
        template: Mapping[str, Any],
        fields: Mapping[str, Any],
        scoring: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "model": self.model,
            **template,
            **fields,
            "embedder": self.embedder,
            **(scoring or {}),
            "settings": self.settings,
        }

    def origin(self, template: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
        settings = self.settings if self.origin_settings is None else self.origin_settings
        return {
            "model": self.model,
            "embedder": self.embedder,
            "template": dict(template),
            **fields,
            "settings": settings,
        }


def make_record(
    *,
    kind: str,
    text: str | None = None,
    question: str | None = None,
    answer: str | None = None,
    topic: str | None = None,
    parent: str | None = None,
    stage: str,
    gen: dict[str, Any],
    origin: dict[str, Any],
    scores: dict[str, float] | None = None,
) -> Record:
    """Build a record in the field order of the contract. `origin` feeds the id and nothing else."""
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}")
    if question is not None and answer is not None:
        text = qa_text(question, answer)
    if not text:
        raise ValueError("a record needs text, or a question and an answer")
    record: Record = {
        "id": make_id(stage=stage, kind=kind, topic=topic, parent=parent, **origin),
        "kind": kind,
    }
    record["text"] = text
    if question is not None and answer is not None:
        record["question"] = question
        record["answer"] = answer
    if topic is not None:
        record["topic"] = topic
    record["parent"] = parent
    record["stage"] = stage
    record["gen"] = gen
    record["scores"] = dict(scores or {})
    return record


def unique_ids(records: Iterable[Record]) -> Iterator[Record]:
    """Every record with a string id no earlier record of the stream has.

    Generated records carry unique hashes already; passthrough input may have no id, a number, or one
    another record shares, and `--resume` finds work by id, so those get an id derived from what the
    record was (its old id, its text, how often that pair came before). The same input in the same order
    gives the same ids, which is what lets a resumed run skip them."""
    seen: set[str] = set()
    for record in records:
        old = record.get("id")
        current = str(old) if isinstance(old, int) and not isinstance(old, bool) else old
        if not isinstance(current, str) or not current or current in seen:
            occurrence = 0
            current = make_id(stage="input", previous=old, text=record.get("text"))
            while current in seen:
                occurrence += 1
                current = make_id(stage="input", previous=old, text=record.get("text"), occurrence=occurrence)
        if current != old:
            record = {**record, "id": current} if "id" in record else {"id": current, **record}
        seen.add(current)
        yield record
