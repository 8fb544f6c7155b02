"""Template files: the prompt, the `[reply]` start of the model's turn, placeholders and hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from biforget.errors import TemplateError
from biforget.pipelines.synthesize import select_templates
from biforget.templates import load_template

ALLOWED = ("point", "topic")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_reply_section_splits_off_the_start_of_the_model_s_turn(tmp_path: Path) -> None:
    path = write(tmp_path, "Ask about {point} in {topic}.\nQuestion: <q>\n[reply]\nQuestion about {point}:\n")
    template = load_template(path, "user/t", allowed=ALLOWED)
    assert template.render(point="Quidditch", topic="Harry Potter") == (
        "Ask about Quidditch in Harry Potter.\nQuestion: <q>"
    )
    assert template.render_reply(point="Quidditch", topic="Harry Potter") == "Question about Quidditch:"
    # The start is part of what produced a record, so it is part of the hash.
    bare = load_template(
        write(tmp_path, "Ask about {point} in {topic}.\nQuestion: <q>\n"), "user/t", allowed=ALLOWED
    )
    assert bare.reply_start == "" and bare.render_reply(point="x", topic="y") == ""
    assert bare.hash != template.hash


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Ask.\n[reply]\nQuestion:\n[reply]\nAgain:", r"\[reply\] stands on 2 lines"),
        ("[reply]\nQuestion:", "needs the prompt above it"),
        ("Ask about {point}.\n[reply]\n", "needs the prompt above it and the reply's start below it"),
        ("Ask about {point}.\n[reply]\nOn {place}:", r"unknown placeholder \{place\}"),
    ],
)
def test_a_malformed_reply_section_is_a_template_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        load_template(write(tmp_path, text), "user/t", allowed=ALLOWED)


def test_the_shipped_qa_templates_start_the_reply_with_the_question_label() -> None:
    templates = select_templates(["info", "qa"])
    starts = {t.id: t.reply_start for t in templates}
    assert {i for i, s in starts.items() if s == "Question:"} == {
        i for i in starts if i.startswith("synthesize/qa/")
    }
    assert all(s == "" for i, s in starts.items() if i.startswith("synthesize/info/"))
