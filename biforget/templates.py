"""Prompt templates: our own text files under `prompts/`, one template per file.

A template's id is its path below the prompts folder without `.txt` (`seeds/points`); its hash is a
short digest of its text, so provenance says exactly which wording produced a record. Placeholders use
`{name}` (literal braces as `{{` and `}}`) and are checked when the template is loaded, never mid-run.

A line `[reply]` ends the prompt: what follows it is the start of the model's reply, written into the
model's turn for it to continue (`Question:` makes a small model keep the asked-for form far more often
than an instruction alone). The reply start takes the same placeholders and is part of the hash.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from biforget.errors import TemplateError
from biforget.records import short_hash


def prompts_root() -> Path:
    """`biforget/prompts` inside an installed wheel; the repository's `prompts/` in a source checkout."""
    packaged = Path(__file__).resolve().parent / "prompts"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "prompts"


REPLY_MARKER = "[reply]"


@dataclass(frozen=True)
class Template:
    id: str
    text: str
    placeholders: frozenset[str]
    reply_start: str = ""

    @property
    def hash(self) -> str:
        # A template without a reply start keeps the hash of its text alone.
        if not self.reply_start:
            return short_hash(self.text)
        return short_hash(f"{self.text}\n{REPLY_MARKER}\n{self.reply_start}")

    @property
    def family(self) -> str:
        return self.id.rpartition("/")[0]

    def render(self, **values: object) -> str:
        missing = self.placeholders - values.keys()
        if missing:
            raise TemplateError(f"template {self.id}: no value for {', '.join(sorted(missing))}")
        return self.text.format(**{key: values[key] for key in self.placeholders})

    def render_reply(self, **values: object) -> str:
        """The start of the model's reply, with the same values as the prompt ("" when there is none)."""
        return (
            self.reply_start.format(**{key: values[key] for key in self.placeholders})
            if self.reply_start
            else ""
        )

    def provenance(self) -> dict[str, str]:
        return {"template": self.id, "template_hash": self.hash}


def parse_placeholders(text: str, template_id: str) -> frozenset[str]:
    names: set[str] = set()
    try:
        for _, field, spec, conversion in string.Formatter().parse(text):
            if field is None:
                continue
            if not field.isidentifier() or spec or conversion:
                raise TemplateError(
                    f"template {template_id}: placeholder {{{field}}} is not a plain {{name}}"
                )
            names.add(field)
    except ValueError as exc:
        raise TemplateError(
            f"template {template_id}: {exc} (write literal braces as {{{{ and }}}})"
        ) from None
    return frozenset(names)


def load_template(
    path: Path, template_id: str, *, allowed: Iterable[str], required: Iterable[str] = ()
) -> Template:
    """Read and check one template: every placeholder known, every required one present."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"template {path}: cannot read: {exc}") from None
    if not text:
        raise TemplateError(f"template {path}: empty file")
    text, reply_start = split_reply(text, path)
    placeholders = parse_placeholders(text, template_id) | parse_placeholders(reply_start, template_id)
    unknown = placeholders - set(allowed)
    if unknown:
        raise TemplateError(
            f"template {path}: unknown placeholder {', '.join('{' + n + '}' for n in sorted(unknown))}"
            f" (allowed: {', '.join('{' + n + '}' for n in sorted(allowed))})"
        )
    missing = set(required) - placeholders
    if missing:
        raise TemplateError(
            f"template {path}: missing placeholder {', '.join('{' + n + '}' for n in sorted(missing))}"
        )
    return Template(template_id, text, placeholders, reply_start)


def split_reply(text: str, path: Path) -> tuple[str, str]:
    """The prompt and the reply start of a template file's text (see the module docstring)."""
    lines = text.splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip() == REPLY_MARKER]
    if not marks:
        return text, ""
    if len(marks) > 1:
        raise TemplateError(f"template {path}: {REPLY_MARKER} stands on {len(marks)} lines; give it once")
    prompt = "\n".join(lines[: marks[0]]).strip()
    reply = "\n".join(lines[marks[0] + 1 :]).strip()
    if not prompt or not reply:
        raise TemplateError(
            f"template {path}: {REPLY_MARKER} needs the prompt above it and the reply's start below it"
        )
    return prompt, reply


def builtin_template(template_id: str, *, allowed: Iterable[str], required: Iterable[str] = ()) -> Template:
    path = prompts_root() / f"{template_id}.txt"
    if not path.exists():
        raise TemplateError(f"built-in template {template_id} not found under {prompts_root()}")
    return load_template(path, template_id, allowed=allowed, required=required)


def load_folder(
    folder: Path, prefix: str, *, allowed: Iterable[str], required: Iterable[str] = ()
) -> list[Template]:
    """Every `*.txt` template in one folder (none when it does not exist), ids `prefix/stem`."""
    allowed, required = list(allowed), list(required)
    if not folder.is_dir():
        return []
    return [
        load_template(path, f"{prefix}/{path.stem}", allowed=allowed, required=required)
        for path in sorted(folder.glob("*.txt"))
    ]


def load_family(
    family: str, *, allowed: Iterable[str], required: Iterable[str] = (), extra_dir: Path | None = None
) -> list[Template]:
    """Every template of a family (a folder under prompts/), plus a user's own from `extra_dir`."""
    allowed, required = list(allowed), list(required)
    found: list[Template] = []
    folders = [(prompts_root() / family, family)]
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise TemplateError(f"--template-dir {extra_dir}: not a folder")
        folders.append((extra_dir, f"user/{family}"))
    for folder, prefix in folders:
        for path in sorted(folder.glob("*.txt")):
            found.append(load_template(path, f"{prefix}/{path.stem}", allowed=allowed, required=required))
    return found
