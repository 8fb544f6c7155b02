"""A small OpenAI-compatible server on 127.0.0.1 for the `openai:` backend's tests (stdlib only).

It speaks the JSON shapes of `/v1/models`, `/v1/completions` (with `echo` + `logprobs`) and
`/v1/chat/completions`. Its completions are real outputs of the default model (the SmolLM2 fixtures),
picked deterministically from the prompt, the seed and the choice index, so a request asked twice gets
the same text. Echoed log-probs are per whitespace word, a fixed function of the word. Tests steer it:
`fail_next` answers the next requests with an error status, `garble_next` with a 200 no server
should give (HTML, cut-off JSON), `down_after` fails every request after a
count until `restore()`, `delay_s` holds each answer to measure concurrency, `echo=False` refuses
echo like a server without prompt log-probs.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
MODEL = "smollm2-loopback"


def _outputs() -> tuple[list[str], list[str]]:
    lists = [e["output"] for e in json.loads((FIXTURES / "smollm2_point_lists.json").read_text("utf-8"))]
    texts = [
        e["output"] for e in json.loads((FIXTURES / "smollm2_synthesis_outputs.json").read_text("utf-8"))
    ]
    return lists, texts


POINT_LISTS, TEXTS = _outputs()


def pick(prompt: str, seed: object, index: int) -> str:
    """A real model output for this request: a numbered list when the prompt asks for one."""
    pool = POINT_LISTS if re.search(r"numbered list|key topics|subtopics", prompt) else TEXTS
    digest = hashlib.sha256(f"{prompt}|{seed}|{index}".encode()).digest()
    return pool[int.from_bytes(digest[:4], "big") % len(pool)]


def word_logprob(word: str) -> float:
    return -0.25 - (sum(map(ord, word)) % 37) / 4.0


def echo_logprobs(prompt: str) -> dict[str, Any]:
    """The completions API's `logprobs` object for an echoed prompt, one token per word (spaces go
    with the word they precede), plus one generated token."""
    tokens, offsets, values = [], [], []
    for match in re.finditer(r"\s*\S+", prompt):
        tokens.append(match.group(0))
        offsets.append(match.start())
        values.append(word_logprob(match.group(0).strip()) if tokens[:-1] else None)
    tokens.append(" end")
    offsets.append(len(prompt))
    values.append(-1.0)
    return {"tokens": tokens, "token_logprobs": values, "text_offset": offsets, "top_logprobs": None}


class Loopback:
    """The server and the steering state its handler reads."""

    def __init__(self, *, echo: bool = True, key: str | None = None) -> None:
        self.echo = echo
        self.key = key
        self.delay_s = 0.0
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.auth: list[str | None] = []
        self.fail_next: list[int] = []
        # Bodies to answer the next requests with, status 200: a reply no OpenAI server would give.
        self.garble_next: list[tuple[str, bytes]] = []
        self.down_after: int | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.answered = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> Loopback:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def restore(self) -> None:
        with self.lock:
            self.down_after = None
            self.fail_next.clear()

    def generation_calls(self) -> list[dict[str, Any]]:
        """Bodies of the generation requests (not the echo probes and scoring)."""
        return [b for b in self.bodies if not b.get("echo")]

    def _answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path.endswith("/completions") and not path.endswith("/chat/completions"):
            if body.get("echo"):
                if not self.echo:
                    return 400, {"error": {"message": "echo is not supported", "type": "invalid_request"}}
                prompt = str(body["prompt"])
                choice = {"index": 0, "text": prompt + " end", "logprobs": echo_logprobs(prompt)}
                usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": 1}
                return 200, {
                    "id": "c",
                    "object": "text_completion",
                    "model": MODEL,
                    "choices": [choice],
                    "usage": usage,
                }
            choices = [
                {
                    "index": i,
                    "text": " " + pick(str(body["prompt"]), body.get("seed"), i),
                    "finish_reason": "stop",
                }
                for i in range(int(body.get("n", 1)))
            ]
            usage = {"prompt_tokens": 1, "completion_tokens": 10 * len(choices)}
            return 200, {
                "id": "c",
                "object": "text_completion",
                "model": MODEL,
                "choices": choices,
                "usage": usage,
            }
        if path.endswith("/chat/completions"):
            prompt = str(next(m for m in reversed(body["messages"]) if m["role"] == "user")["content"])
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": pick(prompt, body.get("seed"), i)},
                    "finish_reason": "stop",
                }
                for i in range(int(body.get("n", 1)))
            ]
            usage = {"prompt_tokens": 1, "completion_tokens": 10 * len(choices)}
            return 200, {
                "id": "c",
                "object": "chat.completion",
                "model": MODEL,
                "choices": choices,
                "usage": usage,
            }
        return 404, {"error": {"message": f"no route {path}"}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                header = self.headers.get("Authorization")
                owner.auth.append(header)
                if owner.key is not None and header != f"Bearer {owner.key}":
                    self._send(401, {"error": {"message": "bad key"}})
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self._authorised():
                    return
                with owner.lock:
                    owner.bodies.append(body)
                    owner.paths.append(self.path)
                    failure = owner.fail_next.pop(0) if owner.fail_next else None
                    garbled = owner.garble_next.pop(0) if owner.garble_next and failure is None else None
                if garbled is not None:
                    kind, data = garbled
                    self.send_response(200)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                with owner.lock:
                    if (
                        failure is None
                        and owner.down_after is not None
                        and owner.answered >= owner.down_after
                    ):
                        failure = 503
                    owner.in_flight += 1
                    owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
                try:
                    if owner.delay_s:
                        time.sleep(owner.delay_s)
                    if failure is not None:
                        # Retry-After: 0 keeps the client's backoff out of the test's wall time.
                        self._send(failure, {"error": {"message": "injected failure"}}, {"Retry-After": "0"})
                        return
                    status, payload = owner._answer(self.path, body)
                    with owner.lock:
                        owner.answered += 1
                    self._send(status, payload)
                finally:
                    with owner.lock:
                        owner.in_flight -= 1

        return Handler


class FailingProxy:
    """A loopback proxy in front of a real server that answers the first `failures` POSTs with 503
    and forwards everything else unchanged, to watch the client retry against a real engine."""

    def __init__(self, upstream: str, failures: int = 2) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.failures = failures
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FailingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        import http.client

        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def _forward(self, method: str, body: bytes | None) -> None:
                connection = http.client.HTTPConnection(owner.host, owner.port, timeout=300)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection.request(method, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                connection.close()
                with owner.lock:
                    owner.statuses.append(answer.status)

            def do_GET(self) -> None:
                self._forward("GET", None)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner.lock:
                    fail = owner.failures > 0
                    owner.failures -= int(fail)
                if fail:
                    data = b'{"error": {"message": "injected 503"}}'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    with owner.lock:
                        owner.statuses.append(503)
                    return
                self._forward("POST", body)

        return Handler
