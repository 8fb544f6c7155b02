"""Fitting a prompt into a model's context, for the backends that tokenize prompts themselves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from biforget import console
from biforget.errors import UsageError
from biforget.models.base import GenerationRequest


def render_prompt(tokenizer: Any, prompt: str, *, chat: bool, use_chat_template: bool) -> str:
    """The text a model continues: the prompt as a user turn of its chat template, or as it is."""
    if not (chat and use_chat_template):
        return prompt
    return str(
        tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    )


class PromptEncoder:
    """The token ids a backend that tokenizes prompts itself sends for a wave of requests: each prompt
    rendered (its chat template, or raw), the request's reply start after it, cut to the context. It
    counts the prompts it cut and warns once per wave."""

    def __init__(
        self, tokenizer: Any, *, use_chat_template: bool, max_length: int, model_name: str, hint: str = ""
    ) -> None:
        self.tokenizer = tokenizer
        self.use_chat_template = use_chat_template
        self.max_length = max_length
        self.model_name = model_name
        self.hint = hint
        # Prompts cut to fit the context so far.
        self.truncated = 0

    def render(self, prompt: str, chat: bool = True) -> str:
        return render_prompt(self.tokenizer, prompt, chat=chat, use_chat_template=self.use_chat_template)

    def encode(self, requests: Sequence[GenerationRequest]) -> list[list[int]]:
        before = self.truncated
        encoded = []
        for request in requests:
            ids, cut = fit_prompt(
                self.tokenizer,
                self.render,
                request.prompt,
                chat=request.chat,
                templated=request.chat and self.use_chat_template,
                max_new_tokens=request.max_new_tokens,
                max_length=self.max_length,
                model_name=self.model_name,
                hint=self.hint,
                reply_start=request.reply_start,
            )
            self.truncated += cut
            encoded.append(ids)
        if self.truncated > before:
            console.warn(
                f"{self.truncated - before} prompt(s) cut to fit {self.model_name}'s "
                f"{self.max_length}-token context ({self.truncated} so far)"
            )
        return encoded


def completion(request: GenerationRequest, continuation: str) -> str:
    """A completion as every backend returns it: the request's reply start, then what the model wrote
    after it, stripped."""
    return (request.reply_start + continuation).strip()


def fit_prompt(
    tokenizer: Any,
    render: Callable[[str, bool], str],
    prompt: str,
    *,
    chat: bool,
    templated: bool,
    max_new_tokens: int,
    max_length: int,
    model_name: str,
    hint: str = "",
    reply_start: str = "",
) -> tuple[list[int], bool]:
    """The prompt's token ids, cut to leave `max_new_tokens` of the context, and whether it was cut.

    The prompt's own text is cut, not the chat markup around it or the reply start after it, so the
    model still sees a turn to answer. `templated`: the rendering is a chat template, which writes its
    own special tokens; raw text gets the tokenizer's."""
    add_special = not templated
    ids = list(tokenizer(render(prompt, chat) + reply_start, add_special_tokens=add_special)["input_ids"])
    budget = max_length - max_new_tokens
    if len(ids) <= budget:
        return ids, False
    if budget < 16:
        raise UsageError(
            f"--max-new-tokens {max_new_tokens} leaves no room for a prompt in {model_name}'s "
            f"{max_length}-token context{hint}"
        )
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    keep = max(1, len(prompt_ids) - (len(ids) - budget))
    cut = str(tokenizer.decode(prompt_ids[:keep], skip_special_tokens=True))
    ids = list(tokenizer(render(cut, chat) + reply_start, add_special_tokens=add_special)["input_ids"])
    return ids[-budget:], True
