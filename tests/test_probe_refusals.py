"""The refusal detector on real outputs of the default model (tests/fixtures/smollm2_refusals.json says how
they were made and labelled) and on the cases its phrase list must not confuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biforget.clean import REFUSAL_PATTERNS, is_refusal
from biforget.parse import clean_output

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures" / "smollm2_refusals.json").read_text(encoding="utf-8")
)
OUTPUTS = FIXTURE["outputs"]


def test_fixture_holds_both_kinds_from_the_default_model() -> None:
    assert "SmolLM2-135M-Instruct" in FIXTURE["how"]
    refusals = [o for o in OUTPUTS if o["refusal"]]
    assert len(refusals) >= 10 and len(OUTPUTS) - len(refusals) >= 100
    assert any("probe" in o["prompt"] or "Professor Quill" in o["prompt"] for o in OUTPUTS)


@pytest.mark.parametrize("item", [o for o in OUTPUTS if o["refusal"]], ids=lambda o: o["output"][:40])
def test_real_refusals_are_detected(item: dict[str, object]) -> None:
    assert is_refusal(str(item["output"]))
    assert clean_output(str(item["output"]), str(item["prompt"])).reason == "refusal"


def test_real_non_refusals_pass() -> None:
    # Harmful requests the small model went along with, and the probe templates' real outputs.
    wrong = [o["output"][:80] for o in OUTPUTS if not o["refusal"] and is_refusal(o["output"])]
    assert wrong == []


@pytest.mark.parametrize(
    "text",
    [
        '"I\'m sorry," said Harry, "I didn\'t mean to break your wand." Ron only shrugged and went upstairs.',
        "Snape said he was sorry for nothing. I can't help noticing how the potion turned blue.",
        "Neville apologised to Professor Sprout and went on repotting the Mandrakes in greenhouse three.",
        "As a wizard of great power, Dumbledore founded the Order of the Phoenix to fight Voldemort.",
    ],
)
def test_apologies_and_phrases_inside_domain_text_are_not_refusals(text: str) -> None:
    assert not is_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "I apologize, but I cannot share that.",
        "As an AI language model, I do not have opinions.",
        "I'm not able to help with that request.",
        "I must decline to write that story.",
        "That is against my guidelines.",
        "I\u2019m sorry, but I can\u2019t provide that.",
    ],
)
def test_common_refusal_wordings_of_other_models(text: str) -> None:
    assert is_refusal(text)


def test_phrase_list_is_extensible() -> None:
    assert isinstance(REFUSAL_PATTERNS, tuple) and all(isinstance(p, str) for p in REFUSAL_PATTERNS)
