"""The records a default `synthesize` run writes, from real default-model outputs of the default templates.

The default templates are the four info templates and the four QA templates, whose replies start with
"Question:". tests/fixtures/smollm2_synthesis_outputs.json holds 48 real info-template outputs (and QA
outputs without the reply start, not used here); tests/fixtures/smollm2_qa_reply_start_outputs.json 24
real QA-template outputs with it. Each is cleaned as synthesize cleans it: a QA output that holds the
form becomes a question/answer record, the others text records, so the set mixes both shapes as a
default run's does.

`Replay` answers a request with the output recorded for its prompt, temperature and reply start, so
`biforget synthesize` itself can run on the real outputs (the `default_set` fixture in conftest.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from biforget.models.base import GenerationRequest
from biforget.parse import clean_output
from biforget.records import make_record
from tests.scripted import ScriptedModel

FIXTURES = Path(__file__).parent / "fixtures"


def default_set_rows() -> list[dict[str, Any]]:
    info = [
        e
        for e in json.loads((FIXTURES / "smollm2_synthesis_outputs.json").read_text("utf-8"))
        if str(e["template"]).startswith("info/")
    ]
    started = json.loads((FIXTURES / "smollm2_qa_reply_start_outputs.json").read_text("utf-8"))
    rows = []
    for entry in [*info, *started]:
        qa = str(entry["template"]).startswith("qa/")
        raw = str(entry.get("reply_start", "")) + str(entry["output"])
        cleaned = clean_output(raw, str(entry["prompt"]), qa=qa)
        if cleaned.text is None:
            continue
        row: dict[str, Any] = {"text": cleaned.text}
        if cleaned.question is not None and cleaned.answer is not None:
            row |= {"question": cleaned.question, "answer": cleaned.answer}
        rows.append(row)
    return rows


def write_default_set(path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in default_set_rows()), encoding="utf-8")
    return path


RECORDED: dict[tuple[str, float, str], list[str]] = {}
for _name in ("smollm2_synthesis_outputs.json", "smollm2_qa_reply_start_outputs.json"):
    for _entry in json.loads((FIXTURES / _name).read_text(encoding="utf-8")):
        _key = (str(_entry["prompt"]), float(_entry["temperature"]), str(_entry.get("reply_start", "")))
        RECORDED.setdefault(_key, []).append(str(_entry["output"]))
POINTS = ("Hogwarts School of Witchcraft and Wizardry", "Lord Voldemort", "Quidditch")


class Replay(ScriptedModel):
    """Answers a request with the default model's recorded outputs for its prompt, temperature and reply
    start, one a draw; with nothing where none is recorded."""

    def __init__(self) -> None:
        super().__init__(lambda prompt, draw, seed: "")
        self.script = self._recorded

    @staticmethod
    def _recorded(request: GenerationRequest, draw: int) -> str:
        outputs = RECORDED.get((request.prompt, request.temperature, request.reply_start), [])
        return outputs[draw] if draw < len(outputs) else ""


def write_points(path: Path, names: Sequence[str] = POINTS, topic: str = "Harry Potter") -> Path:
    """`point` records of `names` as `biforget seeds` writes them, one JSON line each."""
    records = [
        make_record(
            kind="point",
            text=name,
            topic=topic,
            parent=None,
            stage="seeds",
            gen={},
            origin={"position": name},
        )
        for name in names
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
