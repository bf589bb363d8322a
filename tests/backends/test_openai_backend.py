"""OpenAIBackend against a real local HTTP server that can succeed, fail, garble or hang."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from hivethink.backends.base import GenRequest
from hivethink.backends.openai_backend import OpenAIBackend
from tests.loopback_http import DROP, HANG, LoopbackServer, chat_completion

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


class FakeServer(LoopbackServer):
    """Serves /v1/chat/completions; each request takes the next behaviour from ``plan``."""

    def __init__(self) -> None:
        self.plan: list[str] = []
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        super().__init__(self.respond)

    def respond(self, body: dict) -> tuple[int, str] | str:
        with self.lock:
            self.bodies.append(body)
            mode = self.plan.pop(0) if self.plan else "ok"
        if mode in (HANG, DROP):
            return mode
        echo = f"echo {body['messages'][-1]['content']}"
        return {
            "ok": (200, chat_completion(body["model"], echo, USAGE)),
            "nousage": (200, chat_completion(body["model"], echo, None)),
            "500": (500, json.dumps({"error": {"message": "server exploded"}})),
            "400": (400, json.dumps({"error": {"message": "bad request"}})),
            "badjson": (200, '{"id": "x", "choices": [ {"mess'),
            "nochoices": (200, json.dumps({"id": "x", "object": "chat.completion"})),
        }[mode]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    srv = FakeServer()
    yield srv
    srv.close()


def backend(server: FakeServer, **kw: object) -> OpenAIBackend:
    params: dict = {"timeout_s": 2.0, "max_retries": 2, "backoff_s": 0.01, **kw}
    return OpenAIBackend(server.url, "tiny", **params)


def req(text: str, **kw: object) -> GenRequest:
    return GenRequest(messages=[{"role": "user", "content": text}], **kw)


def test_normal_answers_keep_order_and_usage(server: FakeServer) -> None:
    b = backend(server, concurrency=3)
    out = b.generate([req(f"q{i}", max_tokens=5, seed=3, stop=["\n"]) for i in range(5)])
    assert [c.text for c in out] == [f"echo q{i}" for i in range(5)]
    assert all(c.prompt_tokens == 11 and c.completion_tokens == 7 for c in out)
    assert all(c.finish_reason == "stop" and c.error is None for c in out)
    assert b.retries == 0 and b.failures == 0 and b.name == "openai:tiny"
    body = server.bodies[0]
    assert body["model"] == "tiny" and body["max_tokens"] == 5
    assert body["seed"] == 3 and body["stop"] == ["\n"]


def test_missing_usage_falls_back_to_word_counts(server: FakeServer) -> None:
    server.plan = ["nousage"]
    [c] = backend(server).generate([req("a b c")])
    assert c.text == "echo a b c" and c.completion_tokens == 4 and c.prompt_tokens == 3


@pytest.mark.parametrize("mode", ["500", "badjson", "nochoices", "drop", "hang"])
def test_transient_failure_is_retried(server: FakeServer, mode: str) -> None:
    server.plan = [mode]
    b = backend(server, timeout_s=0.3)
    [c] = b.generate([req("hi")])
    assert c.text == "echo hi" and c.error is None
    assert b.retries == 1 and b.failures == 0
    assert len(server.bodies) == 2


@pytest.mark.parametrize("mode", ["500", "badjson", "hang"])
def test_persistent_failure_becomes_error_completion(server: FakeServer, mode: str) -> None:
    server.plan = [mode] * 3
    b = backend(server, timeout_s=0.3, max_retries=2)
    [c] = b.generate([req("hi")])
    assert c.text == "" and c.finish_reason == "error"
    assert c.error is not None and "\n" not in c.error and "after 3 attempts" in c.error
    assert b.retries == 2 and b.failures == 1
    assert len(server.bodies) == 3


def test_client_error_is_not_retried_and_others_still_answer(server: FakeServer) -> None:
    server.plan = ["400"]
    b = backend(server, concurrency=1)
    out = b.generate([req("first"), req("second")])
    assert out[0].finish_reason == "error" and "400" in (out[0].error or "")
    assert out[1].text == "echo second"
    assert b.retries == 0 and b.failures == 1 and len(server.bodies) == 2


def test_unreachable_server_returns_errors_without_raising() -> None:
    srv = FakeServer()
    url = srv.url
    srv.close()
    b = OpenAIBackend(url, "tiny", timeout_s=0.5, max_retries=1, backoff_s=0.01)
    [c] = b.generate([req("hi")])
    assert c.finish_reason == "error" and b.retries == 1 and b.failures == 1


def test_a_json_schema_is_sent_as_a_strict_response_format(server: FakeServer) -> None:
    schema = {"type": "object", "properties": {"decision": {"type": "string", "enum": ["stop", "continue"]}},
              "required": ["decision"], "additionalProperties": False}  # fmt: skip
    b = backend(server)
    b.generate([req("vote", json_schema=schema), req("free text")])
    by_text = {body["messages"][-1]["content"]: body for body in server.bodies}
    assert by_text["vote"]["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": True},
    }  # fmt: skip
    assert "response_format" not in by_text["free text"]


def test_no_temperature_leaves_sampling_to_the_server(server: FakeServer) -> None:
    """A protocol published without a temperature (AgentsNet) sends none, nor top_p."""
    b = backend(server)
    b.generate([req("default", temperature=None), req("set", temperature=0.2)])
    by_text = {body["messages"][-1]["content"]: body for body in server.bodies}
    assert "temperature" not in by_text["default"] and "top_p" not in by_text["default"]
    assert by_text["set"]["temperature"] == 0.2 and by_text["set"]["top_p"] == 1.0
