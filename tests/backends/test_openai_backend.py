"""OpenAIBackend against a real local HTTP server that can succeed, fail, garble or hang."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hivethink.backends.base import GenRequest
from hivethink.backends.openai_backend import OpenAIBackend


class FakeServer:
    """Serves /v1/chat/completions; each request takes the next behaviour from ``plan``."""

    def __init__(self) -> None:
        self.plan: list[str] = []
        self.bodies: list[dict] = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.bodies.append(body)
                    mode = server.plan.pop(0) if server.plan else "ok"
                if mode == "hang":
                    server.release.wait(timeout=5)
                    return
                if mode == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                status, payload = {
                    "ok": (200, json.dumps(completion(body))),
                    "nousage": (200, json.dumps({**completion(body), "usage": None})),
                    "500": (500, json.dumps({"error": {"message": "server exploded"}})),
                    "400": (400, json.dumps({"error": {"message": "bad request"}})),
                    "badjson": (200, '{"id": "x", "choices": [ {"mess'),
                    "nochoices": (200, json.dumps({"id": "x", "object": "chat.completion"})),
                }[mode]
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(body: dict) -> dict:
    last = body["messages"][-1]["content"]
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": f"echo {last}"},
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


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
