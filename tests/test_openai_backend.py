"""The `openai:` backend against a loopback server (tests/loopback.py): request and response mapping,
the key, retries, concurrency, the log-prob probe, and a server that dies mid-run then `--resume`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import biforget.api
from biforget import cli
from biforget.config import ModelOptions
from biforget.errors import ModelError, UsageError
from biforget.models import Capability, GenerationRequest, load_text_model
from biforget.models.openai_compat import OpenAITextModel, request_seed
from tests.loopback import MODEL, Loopback, pick, word_logprob
from tests.scripted import HashEmbedder
from tests.test_synthesize_cli import write_points

SMALL = ["--temperatures", "0.6,1.0", "--samples", "2", "--rounds", "1", "--max-new-tokens", "16"]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loopback]:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with Loopback() as running:
        yield running


@pytest.fixture
def hash_embedder_for_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model is loaded through the real registry; only the embedder is the hashed one."""
    monkeypatch.setattr(biforget.api, "load_embedder", lambda options, target=None: HashEmbedder())


def connect(server: Loopback, *args: str) -> OpenAITextModel:
    # Two retries unless the test sets its own (a key given twice is a usage error).
    default = () if any(arg.startswith("max_retries=") for arg in args) else ("max_retries=2",)
    model = load_text_model(ModelOptions(model=f"openai:{server.url}", model_args=(*default, *args)))
    assert isinstance(model, OpenAITextModel)
    return model


def test_chat_and_raw_requests_map_to_their_endpoints(server: Loopback) -> None:
    model = connect(server, f"model={MODEL}")
    chat = GenerationRequest("Describe Hogwarts.", temperature=0.7, top_p=0.9, max_new_tokens=20, n=2, seed=5)
    raw = GenerationRequest("Question: who is Harry?\nAnswer:", temperature=1.0, n=1, seed=9, chat=False)
    texts = model.generate([chat, raw])
    # The two requests run concurrently, so they may arrive in either order.
    by_path = {p: b for p, b in zip(server.paths, server.bodies, strict=True) if not b.get("echo")}
    assert sorted(by_path) == ["/v1/chat/completions", "/v1/completions"]
    calls = [by_path["/v1/chat/completions"], by_path["/v1/completions"]]
    assert calls[0]["messages"] == [{"role": "user", "content": "Describe Hogwarts."}]
    assert (calls[0]["n"], calls[0]["temperature"], calls[0]["top_p"], calls[0]["max_tokens"]) == (
        2,
        0.7,
        0.9,
        20,
    )
    assert calls[0]["seed"] == request_seed(chat) and calls[0]["model"] == MODEL
    assert calls[1]["prompt"] == raw.prompt and calls[1]["seed"] == request_seed(raw)
    # Texts come back in request and choice order, stripped.
    assert texts == [
        [pick(chat.prompt, request_seed(chat), 0).strip(), pick(chat.prompt, request_seed(chat), 1).strip()],
        [pick(raw.prompt, request_seed(raw), 0).strip()],
    ]
    assert model.generated_tokens == 30


def test_a_reply_start_is_the_assistant_turn_to_continue_or_the_raw_prompt_s_end(server: Loopback) -> None:
    model = connect(server, f"model={MODEL}")
    chat = GenerationRequest("Ask about Hogwarts.", temperature=0.7, seed=5, reply_start="Question:")
    raw = GenerationRequest("Facts about owls.\n", temperature=0.7, seed=6, chat=False, reply_start="1.")
    texts = model.generate([chat, raw])
    by_path = {p: b for p, b in zip(server.paths, server.bodies, strict=True) if not b.get("echo")}
    sent = by_path["/v1/chat/completions"]
    assert sent["messages"] == [
        {"role": "user", "content": "Ask about Hogwarts."},
        {"role": "assistant", "content": "Question:"},
    ]
    assert sent["continue_final_message"] is True and sent["add_generation_prompt"] is False
    assert by_path["/v1/completions"]["prompt"] == "Facts about owls.\n1."
    # The server answers with the continuation only; the start is put back in front of it.
    assert texts == [
        ["Question:" + pick(chat.prompt, request_seed(chat), 0)],
        [("1. " + pick(raw.prompt + "1.", request_seed(raw), 0)).strip()],
    ]
    # Without a start, no extension is sent: a plain OpenAI server gets a plain request.
    model.generate([GenerationRequest("Describe Hogwarts.", temperature=0.7, seed=5)])
    assert "continue_final_message" not in server.generation_calls()[-1]


def test_greedy_asks_once_and_copies(server: Loopback) -> None:
    model = connect(server)
    [texts] = model.generate([GenerationRequest("Name a wizard.", temperature=0.0, n=3)])
    assert len(texts) == 3 and len(set(texts)) == 1
    assert server.generation_calls()[0]["n"] == 1


def test_seed_and_chat_switches(server: Loopback) -> None:
    model = load_text_model(
        ModelOptions(model=f"openai:{server.url}", chat_template=False, model_args=("send_seed=false",))
    )
    model.generate([GenerationRequest("Tell me about dragons.", temperature=0.8)])
    [call] = server.generation_calls()
    assert "seed" not in call and "prompt" in call


def test_model_is_found_when_the_server_lists_one(server: Loopback) -> None:
    model = connect(server)
    assert model.served_model == model.name == MODEL


def test_key_comes_from_the_environment_never_an_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    with Loopback(key="sk-secret-1") as server:
        monkeypatch.setenv("MY_CLUSTER_KEY", "sk-secret-1")
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        model = connect(server, "api_key_env=MY_CLUSTER_KEY")
        model.generate([GenerationRequest("Hello", temperature=0.5)])
        assert set(server.auth) == {"Bearer sk-secret-1"}
        monkeypatch.setenv("OPENAI_API_KEY", "wrong")
        with pytest.raises(ModelError, match=r"HTTP 401.*OPENAI_API_KEY"):
            connect(server)
    with pytest.raises(UsageError, match="not set"):
        load_text_model(
            ModelOptions(model="openai:http://127.0.0.1:9/v1", model_args=("api_key_env=NOPE_X",))
        )
    with pytest.raises(UsageError, match="must name an environment variable"):
        load_text_model(ModelOptions(model="openai:http://127.0.0.1:9/v1", model_args=("api_key_env=sk-1",)))


def test_bad_settings_are_usage_errors() -> None:
    for args, fragment in [
        (("concurrency=0",), "at least 1"),
        (("timeout=-1",), "positive"),
        (("tensor_parallel_size=2",), "does not read it"),
    ]:
        with pytest.raises(UsageError, match=fragment):
            load_text_model(ModelOptions(model="openai:http://127.0.0.1:9/v1", model_args=args))
    with pytest.raises(UsageError, match="base URL"):
        load_text_model(ModelOptions(model="openai:localhost:8000"))
    with pytest.raises(UsageError, match="belong to the server"):
        load_text_model(ModelOptions(model="openai:http://127.0.0.1:9/v1", dtype="float16"))


def test_retries_after_503_and_429(server: Loopback) -> None:
    model = connect(server, "max_retries=3")
    server.fail_next = [503, 429, 503]
    [texts] = model.generate([GenerationRequest("Describe Hermione.", temperature=0.9)])
    assert texts and texts[0]
    posts = server.generation_calls()
    assert len(posts) == 4 and all(p == posts[0] for p in posts)  # the same request, tried again


def test_a_server_that_stays_down_is_one_model_error_naming_it(server: Loopback) -> None:
    model = connect(server, "max_retries=1")
    server.down_after = 0
    with pytest.raises(ModelError) as caught:
        model.generate([GenerationRequest("x", temperature=0.5)] * 3)
    message = str(caught.value)
    assert server.url in message and "HTTP 503 after 1 retries" in message and "\n" not in message


def test_unreachable_server_at_start() -> None:
    with pytest.raises(
        ModelError, match=r"server http://127.0.0.1:9/v1: listing models failed: cannot connect"
    ):
        load_text_model(ModelOptions(model="openai:http://127.0.0.1:9/v1", model_args=("max_retries=0",)))


def test_concurrency_bounds_requests_in_flight(server: Loopback) -> None:
    model = connect(server, "concurrency=3")
    server.delay_s = 0.15
    requests = [GenerationRequest(f"Prompt {i}", temperature=0.5, seed=i) for i in range(9)]
    texts = model.generate(requests)
    assert server.max_in_flight == 3
    # Order is the requests' order whatever order the answers came in.
    assert texts == [[pick(r.prompt, request_seed(r), 0).strip()] for r in requests]
    assert model.batch_size >= 3


def test_echo_logprobs_score_the_text_after_its_context(server: Loopback) -> None:
    model = connect(server)
    assert Capability.LOGPROBS in model.capabilities
    alone = model.token_logprobs(["Snape brews a potion", "brews a potion"])
    [after] = model.token_logprobs(["brews a potion"], context=["Snape "])
    assert alone[0].logprobs.tolist() == [word_logprob(w) for w in ["brews", "a", "potion"]]
    assert alone[1].logprobs.tolist() == [word_logprob(w) for w in ["a", "potion"]]
    # The context's words are not scored; the text's first word now has a prediction.
    assert after.logprobs.tolist() == [word_logprob(w) for w in ["brews", "a", "potion"]]
    assert after.expected is None and np.all(after.token_ids == -1)


def test_server_without_prompt_logprobs_refuses_mia_before_generating(
    monkeypatch: pytest.MonkeyPatch, hash_embedder_for_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with Loopback(echo=False) as server:
        model = connect(server)
        assert Capability.LOGPROBS not in model.capabilities
        with pytest.raises(UsageError):
            model.token_logprobs(["a b"])
        before = len(server.generation_calls())
        code = cli.run(
            [
                "probe",
                "--topic",
                "Harry Potter",
                "--jailbreak",
                "0",
                "--mia",
                "8",
                "--model",
                f"openai:{server.url}",
            ]
        )
        err = capsys.readouterr().err
        assert code == 2 and "--mia (Min-K% scoring) needs token log-probs" in err and "openai" in err
        assert len(server.generation_calls()) == before


def test_probe_mia_over_the_server(
    server: Loopback, hash_embedder_for_cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.run(
        [
            *["probe", "--topic", "Harry Potter", "--jailbreak", "0", "--mia", "8", "--max-new-tokens", "32"],
            *["--model", f"openai:{server.url}"],
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert records and all(r["stage"] == "probe/mia" for r in records)
    assert any(b.get("echo") for b in server.bodies[1:])  # candidates were scored over echo


def test_server_killed_mid_run_then_resume_completes_the_set(
    server: Loopback,
    hash_embedder_for_cli: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-in-a-record")
    points = write_points(tmp_path / "p.jsonl")
    model_args = [
        "--model",
        f"openai:{server.url}",
        "--model-arg",
        "max_retries=1",
        "--model-arg",
        "concurrency=4",
    ]
    reference = tmp_path / "reference.jsonl"
    assert cli.run(["synthesize", "-i", str(points), *SMALL, *model_args, "-o", str(reference)]) == 0
    capsys.readouterr()
    # 64 requests in waves of 32 after the start-up probe: the server dies in the second wave.
    output = tmp_path / "out.jsonl"
    server.answered = 0
    server.down_after = 1 + 32 + 5
    assert cli.run(["synthesize", "-i", str(points), *SMALL, *model_args, "-o", str(output)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert server.url in err[-1] and "503" in err[-1]
    partial = output.read_text(encoding="utf-8").splitlines()
    full = reference.read_text(encoding="utf-8").splitlines()
    assert 0 < len(partial) < len(full)
    server.restore()
    assert cli.run(["synthesize", "-i", str(points), *SMALL, *model_args, "-o", str(output), "--resume"]) == 0
    completed = output.read_text(encoding="utf-8")
    ids = [json.loads(line)["id"] for line in completed.splitlines()]
    assert len(ids) == len(set(ids)) == len(full)
    assert sorted(completed.splitlines()) == sorted(full)
    assert "sk-never-in-a-record" not in completed
