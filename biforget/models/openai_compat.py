"""The OpenAI-compatible server backend (`openai:URL`): a vLLM, SGLang or TGI server, or a cluster of
them behind a load balancer, driven with the official `openai` client.

`--model openai:http://host:8000/v1 --model-arg model=NAME`. The key comes from `OPENAI_API_KEY`, or
from the variable `--model-arg api_key_env=VAR` names; a key is never taken from the command line, so
it can never reach a record or a shell history. A local server that checks no key gets a placeholder.

Chat requests go to chat completions (the server applies the model's chat template), raw prompts to
completions; `n`, `temperature`, `top_p`, `max_tokens` and a per-request seed are passed through.
Requests of one wave run `concurrency` at a time; the client retries 408/409/429/5xx answers and lost
connections with exponential backoff, each try under `timeout` seconds. A request that still fails
stops the run with one line naming the server; the pipelines have written every earlier wave, so
`--resume` only redoes the wave that was in flight.

Min-K% needs teacher-forced log-probs of given text: completions with `echo` and `logprobs` give them
where the server supports it. One probe at load time finds out, and LOGPROBS is only claimed when it
worked, so `--mia` is refused (exit 2) before anything is generated. Over HTTP there is no full
next-token distribution (no Min-K%++), no hidden states, no tokenizer and no weights.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

import numpy as np

from biforget.config import ModelOptions
from biforget.errors import ModelError, UsageError
from biforget.models.args import boolean, positive_int, whole_number
from biforget.models.base import Capability, GenerationRequest, Tokenizer, TokenLogprobs
from biforget.models.prompting import completion
from biforget.records import derive_seed

NAME = "openai"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
# vLLM and SGLang check no key unless started with one; the client insists on a non-empty string.
NO_KEY = "EMPTY"
DEFAULT_CONCURRENCY = 16
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_RETRIES = 4
# A short, ordinary sentence: any model scores it, and it has enough tokens to see echo work.
PROBE_TEXT = "The quick brown fox jumps over the lazy dog."
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

T = TypeVar("T")


def _non_negative_int(value: str) -> int:
    number = whole_number(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


def _positive_seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"expected a number of seconds, not {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError("must be a positive number of seconds")
    return number


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError("must name an environment variable (the key itself is never passed)")
    return value


MODEL_ARGS: dict[str, Callable[[str], Any]] = {
    "model": str,
    "api_key_env": _env_name,
    "concurrency": positive_int,
    "timeout": _positive_seconds,
    "max_retries": _non_negative_int,
    # Some servers reject `seed` (or, like vLLM's CPU engine, fail on per-request seeds).
    "send_seed": boolean,
}


def request_seed(request: GenerationRequest) -> int:
    """The seed sent with a request: its own seed with its prompt mixed in, so requests that share a
    seed still draw independent samples (as the hf backend does per draw)."""
    return derive_seed(request.seed, "request", request.prompt)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:300]


class OpenAITextModel:
    """A model behind an OpenAI-compatible HTTP server, as a TextModel."""

    backend = NAME

    def __init__(
        self,
        client: Any,
        url: str,
        model: str,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_retries: int = DEFAULT_RETRIES,
        batch_size: int = ModelOptions.batch_size,
        chat_template: bool = True,
        send_seed: bool = True,
        key_env: str = DEFAULT_KEY_ENV,
    ) -> None:
        self.client = client
        self.url = url
        self.served_model = model
        # Records name the model that wrote them; the server's address is deployment, not provenance.
        self.name = model
        self.concurrency = concurrency
        self.max_retries = max_retries
        # A wave must hold at least `concurrency` requests to keep that many in flight.
        self.batch_size = max(batch_size, concurrency)
        self.chat = chat_template
        self.send_seed = send_seed
        self.key_env = key_env
        self.capabilities: frozenset[str] = frozenset()
        # Completion tokens the server reported so far, for rates and benchmarks.
        self.generated_tokens = 0
        self._count_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="biforget-openai")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()

    # ------------------------------------------------------------------------------------ requests

    def _fail(self, exc: Exception, what: str) -> ModelError:
        """One line naming the server, for an answer the client gave up on."""
        import openai

        if isinstance(exc, openai.APITimeoutError):
            reason = f"no answer within the timeout after {self.max_retries} retries"
        elif isinstance(exc, openai.APIConnectionError):
            reason = (
                f"cannot connect after {self.max_retries} retries ({_one_line(str(exc.__cause__ or exc))})"
            )
        elif isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            reason = f"HTTP {exc.status_code}: the server refused the key in ${self.key_env}"
        elif isinstance(exc, openai.NotFoundError):
            reason = f"HTTP 404 for {what} of model {self.served_model!r}: {_one_line(exc.message)}"
        elif isinstance(exc, openai.APIStatusError):
            retried = exc.status_code in (408, 409, 429) or exc.status_code >= 500
            after = f" after {self.max_retries} retries" if retried else ""
            reason = f"HTTP {exc.status_code}{after}: {_one_line(exc.message)}"
        else:
            reason = _one_line(f"{type(exc).__name__}: {exc}")
        return ModelError(f"server {self.url}: {what} failed: {reason}")

    def _run_all(self, calls: Sequence[Callable[[], T]], what: str) -> list[T]:
        """Run calls `concurrency` at a time, results in call order. On the first failure no new call
        starts, the ones in flight finish, and the failure is raised as one ModelError."""
        import openai

        if not calls:
            return []
        futures: list[Future[T]] = [self._pool.submit(call) for call in calls]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is None:
            return [f.result() for f in futures]
        for future in pending:
            future.cancel()
        wait(pending)
        exc = failed.exception()
        assert exc is not None
        if isinstance(exc, openai.OpenAIError):
            raise self._fail(exc, what) from exc
        raise exc

    def _answered(self, ask: Callable[[], Any], what: str) -> Any:
        """The server's answer to `ask()`, with `choices` as a list. A 200 that is no such answer (an
        HTML page from a proxy, JSON cut off mid-way) is retried like a 5xx, then one ModelError
        naming the server and what it answered."""
        for attempt in range(self.max_retries + 1):
            try:
                response = ask()
            except json.JSONDecodeError as exc:
                answered = f"JSON cut off or malformed ({exc.msg}): {_one_line(exc.doc[:120])!r}"
            else:
                if isinstance(getattr(response, "choices", None), list):
                    return response
                answered = _one_line(str(response)[:120])
                answered = f"{answered!r}" if isinstance(response, str | bytes) else f"no choices: {answered}"
            if attempt < self.max_retries:
                time.sleep(min(8.0, 0.5 * 2**attempt))
        retries = f" after {self.max_retries} retries" if self.max_retries else ""
        raise ModelError(f"server {self.url}: {what} failed: not an OpenAI answer{retries}: {answered}")

    def _count(self, usage: Any) -> None:
        tokens = getattr(usage, "completion_tokens", None)
        if tokens:
            with self._count_lock:
                self.generated_tokens += int(tokens)

    def _sampling(self, request: GenerationRequest, n: int) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.served_model,
            "n": n,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_new_tokens,
        }
        if self.send_seed:
            params["seed"] = request_seed(request)
        return params

    def _complete(self, request: GenerationRequest) -> list[str]:
        # Greedy decoding gives one text; asking for n copies would only cost the server work.
        n = request.n if request.temperature > 0 else 1
        start = request.reply_start
        if request.chat and self.chat:
            messages = [{"role": "user", "content": request.prompt}]
            extra: dict[str, Any] = {}
            if start:
                # The reply's start as the model's own unfinished turn: vLLM's chat extension for
                # continuing the last message rather than opening a new one.
                messages.append({"role": "assistant", "content": start})
                extra = {"continue_final_message": True, "add_generation_prompt": False}
            response = self._answered(
                lambda: self.client.chat.completions.create(
                    messages=messages, extra_body=extra or None, **self._sampling(request, n)
                ),
                "generation",
            )
            written = [c.message.content for c in sorted(response.choices, key=lambda c: c.index)]
        else:
            response = self._answered(
                lambda: self.client.completions.create(
                    prompt=request.prompt + start, **self._sampling(request, n)
                ),
                "generation",
            )
            written = [c.text for c in sorted(response.choices, key=lambda c: c.index)]
        texts = [completion(request, text or "") for text in written]
        self._count(response.usage)
        if len(texts) != n:
            raise ModelError(f"server {self.url}: asked for {n} completions, got {len(texts)}")
        return texts if n == request.n else texts * request.n

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        calls = [lambda r=request: self._complete(r) for request in requests]
        return self._run_all(calls, "generation")

    # ------------------------------------------------------------------------------------- scoring

    def _echo_scores(self, text: str, context: str) -> TokenLogprobs:
        """Log-probs of `text`'s tokens after `context`, from a completion that echoes its prompt."""
        prompt = context + text
        response = self._answered(
            lambda: self.client.completions.create(
                model=self.served_model, prompt=prompt, max_tokens=1, temperature=0, echo=True, logprobs=0
            ),
            "scoring",
        )
        return echo_logprobs(response, prompt, len(context))

    def token_logprobs(
        self, texts: Sequence[str], context: Sequence[str] | None = None
    ) -> list[TokenLogprobs]:
        if Capability.LOGPROBS not in self.capabilities:
            raise UsageError(
                f"token log-probs need {Capability.LOGPROBS}, which the server {self.url} does not give"
            )
        if context is not None and len(context) != len(texts):
            raise ValueError("context must give one string per text")
        contexts = list(context) if context is not None else [""] * len(texts)
        calls = [lambda t=t, c=c: self._echo_scores(t, c) for t, c in zip(texts, contexts, strict=True)]
        return self._run_all(calls, "scoring")

    def probe_logprobs(self) -> bool:
        """Whether the server gives prompt log-probs (echo + logprobs on completions). A refusal (4xx)
        or an answer without them means no; a server that cannot be reached is a ModelError."""
        import openai

        try:
            scores = self._echo_scores(PROBE_TEXT, "")
        except (openai.BadRequestError, openai.NotFoundError, openai.UnprocessableEntityError):
            return False
        except ModelError:
            return False
        except openai.OpenAIError as exc:
            raise self._fail(exc, "the start-up probe") from exc
        return len(scores) >= 2 and bool(np.all(np.isfinite(scores.logprobs)))

    @property
    def tokenizer(self) -> Tokenizer:
        raise UsageError(f"the {NAME} backend ({self.url}) has no {Capability.TOKENIZER}")

    def mean_hidden_states(self, texts: Sequence[str]) -> np.ndarray:
        raise UsageError(f"the {NAME} backend ({self.url}) has no {Capability.HIDDEN_STATES}")


def echo_logprobs(response: Any, prompt: str, text_start: int) -> TokenLogprobs:
    """The prompt tokens' log-probs in an echoed completion, from the first token that starts at or
    past `text_start` characters (the scored text after its context). The generated token and the
    first prompt token (which has no prediction) are left out. Token ids are not part of the
    protocol's answer, so `token_ids` holds -1 for each scored token."""
    if not response.choices:
        raise ModelError("the server's echoed completion has no choices")
    logprobs = response.choices[0].logprobs
    tokens = getattr(logprobs, "tokens", None)
    values = getattr(logprobs, "token_logprobs", None)
    offsets = getattr(logprobs, "text_offset", None)
    if not tokens or values is None or offsets is None or len(values) != len(tokens):
        raise ModelError("the server did not echo the prompt's token log-probs")
    prompt_tokens = getattr(response.usage, "prompt_tokens", None) if response.usage else None
    if prompt_tokens is None:
        # Without a count, the prompt's tokens are those that start inside it.
        prompt_tokens = sum(1 for offset in offsets if offset < len(prompt))
    prompt_tokens = min(int(prompt_tokens), len(tokens))
    # A token belongs to the text when it ends past the context: a leading-space token (" brews") that
    # starts on the context's trailing space is the text's first word.
    ends = [*offsets[1:prompt_tokens], len(prompt)]
    scored = [
        float(value)
        for value, end in zip(values[:prompt_tokens], ends, strict=True)
        if value is not None and end > text_start
    ]
    array = np.asarray(scored, dtype=np.float64)
    return TokenLogprobs(token_ids=np.full(array.shape[0], -1, dtype=np.int64), logprobs=array)


def _check_url(target: str) -> str:
    if not re.match(r"^https?://[^/\s]+", target):
        raise UsageError(f"--model openai:{target}: give the server's base URL, e.g. http://host:8000/v1")
    return target.rstrip("/")


def load(target: str, options: ModelOptions) -> OpenAITextModel:
    """The `openai:` backend's entry in the registry: connect, find the model, probe for log-probs."""
    from biforget.models import parse_model_args

    url = _check_url(target)
    settings = parse_model_args(options, NAME, MODEL_ARGS)
    if options.quantize != "none" or options.dtype != "auto" or options.device != "auto":
        raise UsageError(
            f"--device, --dtype and --quantize belong to the server for the {NAME} backend; "
            "set them where the server is started"
        )
    key_env = settings.get("api_key_env", DEFAULT_KEY_ENV)
    key = os.environ.get(key_env)
    if "api_key_env" in settings and not key:
        raise UsageError(f"--model-arg api_key_env={key_env}: ${key_env} is not set")
    try:
        import openai
    except ImportError:
        raise ModelError(
            "the openai backend needs the openai client: pip install 'biforget[openai]'"
        ) from None

    max_retries = settings.get("max_retries", DEFAULT_RETRIES)
    client = openai.OpenAI(
        base_url=url,
        api_key=key or NO_KEY,
        max_retries=max_retries,
        timeout=settings.get("timeout", DEFAULT_TIMEOUT_S),
    )
    model = OpenAITextModel(
        client,
        url,
        settings.get("model") or "",
        concurrency=settings.get("concurrency", DEFAULT_CONCURRENCY),
        max_retries=max_retries,
        batch_size=options.batch_size,
        chat_template=options.chat_template,
        send_seed=settings.get("send_seed", True),
        key_env=key_env,
    )
    if not model.served_model:
        model.served_model = _only_model(model)
        model.name = model.served_model
    if model.probe_logprobs():
        model.capabilities = frozenset({Capability.LOGPROBS})
    return model


def _only_model(model: OpenAITextModel) -> str:
    """The one model the server lists, when `--model-arg model=` is not given."""
    import openai

    try:
        served = [m.id for m in model.client.models.list()]
    except openai.OpenAIError as exc:
        raise model._fail(exc, "listing models") from exc
    if len(served) != 1:
        listing = ", ".join(served) or "none"
        raise UsageError(f"server {model.url} serves {listing}: name one with --model-arg model=NAME")
    return str(served[0])
