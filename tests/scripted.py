"""The scripted backend for pipeline tests: the packaged fake backend answering from a test's script.

`ScriptedModel(script)` is a `biforget.models.fake.FakeModel` whose completions come from
`script(prompt, draw, seed)`; it records each `generate` call so tests can assert on what was asked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from biforget.models.base import GenerationRequest
from biforget.models.fake import FakeModel, HashEmbedder, WordTokenizer

__all__ = ["HashEmbedder", "ScriptedModel", "WordTokenizer"]


class ScriptedModel(FakeModel):
    """Answers each request with `script(prompt, draw, seed)`, and records every call.

    Deterministic by construction, so tests can assert on exact records.
    """

    def __init__(
        self,
        script: Callable[[str, int, int], str],
        name: str = "scripted",
        batch_size: int = 8,
        stop_at: int | None = None,
    ):
        super().__init__(lambda request, draw: script(request.prompt, draw, request.seed), name, batch_size)
        # Raise KeyboardInterrupt on generate call number `stop_at`, like Ctrl-C mid-run.
        self.stop_at = stop_at
        self.calls: list[dict[str, object]] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        if self.stop_at is not None and len(self.calls) + 1 == self.stop_at:
            raise KeyboardInterrupt
        self.calls.append(
            {
                "prompts": [r.prompt for r in requests],
                "temperatures": [r.temperature for r in requests],
                "seeds": [r.seed for r in requests],
                "n": [r.n for r in requests],
                "chat": [r.chat for r in requests],
                "reply_starts": [r.reply_start for r in requests],
            }
        )
        return super().generate(requests)
