"""`biforget rewrite` on the real default model, two facts: records, checks and determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from biforget.config import ModelOptions
from biforget.metrics.preservation import missing_terms, new_names, new_numbers
from biforget.models import load_embedder
from biforget.text import word_edits

pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parent.parent
FACTS = [
    json.loads(line)
    for line in (REPO / "examples" / "facts.jsonl").read_text(encoding="utf-8").splitlines()
    if "Quennell" in line or "Arakawa" in line
]


def rewrite(model_cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "biforget", "rewrite", "--variants", "2", "--seed", "7"],
        input="".join(json.dumps(fact) + "\n" for fact in FACTS),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BIFORGET_CACHE": str(model_cache)},
    )


def test_rewrite_gives_checked_qa_variants_deterministically(
    default_model_dir: Path, model_cache: Path
) -> None:
    assert len(FACTS) == 2
    first = rewrite(model_cache)
    assert first.returncode == 0, first.stderr
    records = [json.loads(line) for line in first.stdout.splitlines()]
    facts = [r for r in records if r["kind"] == "fact"]
    assert [(f["question"], f["task_id"]) for f in facts] == [(f["question"], f["task_id"]) for f in FACTS]
    assert records[0]["kind"] == "fact"
    parents = {f["id"]: f for f in facts}
    variants = [r for r in records if r["kind"] in ("variant", "statement")]
    assert all(v["kind"] == "statement" for v in variants if v["gen"]["form"] == "statement")
    # Seed 7 on the default model gives each fact a QA variant here; most drafts of a 135M model fail.
    assert {v["parent"] for v in variants if v["gen"]["form"] == "qa"} == set(parents), first.stderr
    embedder = load_embedder(ModelOptions())
    for variant in variants:
        fact = parents[variant["parent"]]
        assert records.index(fact) < records.index(variant)
        assert not missing_terms(fact["text"], variant["text"])
        assert not new_numbers(fact["text"], variant["text"]) and not new_names(fact["text"], variant["text"])
        source, text = embedder.embed([fact["text"], variant["text"]])
        assert 0.6 < float(source @ text) < 0.97
        assert variant["scores"]["similarity"] == pytest.approx(float(source @ text), abs=1e-3)
        if variant["gen"]["form"] == "qa":
            assert variant["question"].endswith("?")
            assert word_edits(variant["question"], fact["question"]) >= 2
            assert word_edits(variant["answer"], fact["answer"]) >= 2
    assert "rewrite: 2 fact(s)" in first.stderr
    second = rewrite(model_cache)
    assert second.stdout == first.stdout
