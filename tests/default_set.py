"""The records a default `synthesize` run writes, from real default-model outputs of the default templates.

The default templates are the four info templates and the four QA templates, whose replies start with
"Question:". tests/fixtures/smollm2_synthesis_outputs.json holds 48 real info-template outputs (and QA
outputs without the reply start, not used here); tests/fixtures/smollm2_qa_reply_start_outputs.json 24
real QA-template outputs with it. Each is cleaned as synthesize cleans it: a QA output that holds the
form becomes a question/answer record, the others text records, so the set mixes both shapes as a
default run's does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from biforget.parse import clean_output

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
