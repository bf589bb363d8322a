"""hivethink serve through the official openai client: plain and streaming, n, multi-worker, keys, errors."""

from __future__ import annotations

import json
import time

import openai
import pytest
from serve_helpers import MODEL, OpenStream, post_json, request, running_server, wait_idle

from hivethink.serve import ServeLimits

pytestmark = pytest.mark.slow

LIMITS = ServeLimits(max_tokens=64, max_n=4, max_workers=8, max_body_bytes=100_000)
ASK = [{"role": "user", "content": "What is 2+2?"}]
KEY = "sekrit-key"


@pytest.fixture(scope="module")
def server(smol):
    with running_server(smol, limits=LIMITS) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    c = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
    yield c
    c.close()


def test_health_and_models(server, client):
    status, body = request(server.url, "/health")
    assert status == 200 and body["status"] == "ok" and body["model"] == MODEL
    assert isinstance(body["settled"], bool)  # idle with its freed memory handed back (bench serve waits for it)
    assert [m.id for m in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).owned_by == "hivethink"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-9")


def test_usage_says_which_prompt_tokens_the_prefix_cache_held_and_the_openai_backend_reads_it(server):
    """A prompt of several cache pages asked twice: the first request computes it all, the second
    finds its whole pages cached; OpenAI's ``usage.prompt_tokens_details.cached_tokens`` says so
    and reaches the records through the OpenAI backend (``Completion.cached_tokens``)."""
    from hivethink.backends.base import GenRequest
    from hivethink.backends.openai_backend import OpenAIBackend

    backend = OpenAIBackend(server.base_url, MODEL, max_retries=0)
    ask = GenRequest([{"role": "user", "content": "Name the colour of each of these fruits. " * 30}], max_tokens=2)
    first, second = backend.generate([ask]), backend.generate([ask])
    assert first[0].error is None and second[0].error is None
    assert first[0].cached_tokens == 0
    page = 64  # the engine's page: only whole pages are shared
    assert second[0].prompt_tokens > 2 * page
    assert second[0].cached_tokens == (second[0].prompt_tokens - 1) // page * page


def test_plain_and_streamed_greedy_agree(server, client):
    full = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=8, temperature=0)
    text = full.choices[0].message.content
    assert text and full.choices[0].finish_reason in ("stop", "length")
    assert full.object == "chat.completion" and full.model == MODEL
    assert full.usage.completion_tokens <= 8 and full.usage.prompt_tokens > 0
    assert full.usage.total_tokens == full.usage.prompt_tokens + full.usage.completion_tokens
    pieces, finish, usage = [], None, None
    for chunk in client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=8, temperature=0,
                                                stream=True, stream_options={"include_usage": True}):
        assert chunk.object == "chat.completion.chunk"
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(pieces) == text
    assert finish == full.choices[0].finish_reason
    assert usage is not None and usage.completion_tokens == full.usage.completion_tokens
    # a stop string cuts the text where it starts
    cut = text.split()[2]
    stopped = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=8, temperature=0, stop=cut)
    assert stopped.choices[0].finish_reason == "stop"
    assert text.startswith(stopped.choices[0].message.content) and cut not in stopped.choices[0].message.content


def test_n_choices_are_seeded_and_stream_alike(server, client):
    kw = dict(model=MODEL, messages=ASK, max_tokens=6, temperature=1.0, seed=7, n=2)
    a = client.chat.completions.create(**kw)
    assert [c.index for c in a.choices] == [0, 1]
    b = client.chat.completions.create(**kw)
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]
    streamed = {0: "", 1: ""}
    for chunk in client.chat.completions.create(**kw, stream=True):
        for c in chunk.choices:
            streamed[c.index] += c.delta.content or ""
    assert [streamed[0], streamed[1]] == [c.message.content for c in a.choices]
    assert a.usage.completion_tokens <= 12


def test_multi_worker_plain(server, client):
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "system", "content": "Be brief."}, *ASK],
                                       max_tokens=6, temperature=0,
                                       extra_body={"hivethink": {"workers": 2, "layout": "combined",
                                                                 "examples": False}})
    ext = r.model_extra["hivethink"]
    assert set(ext["workers"]) == {"Alice", "Bob"}
    assert all(w["text"].startswith(f"**{name} [1]:**") for name, w in ext["workers"].items())
    assert ext["finished_by"] in ("answer", "transcript", "finisher") and 1 <= ext["steps"] <= 6
    assert ext["visibility"] == "instant"
    assert r.choices[0].message.content == (ext["answer"] or "")
    assert r.usage.completion_tokens == sum(w["tokens"] for w in ext["workers"].values())


def test_multi_worker_streaming(server, client):
    per_worker: dict[str, str] = {}
    chunks: dict[str, int] = {}
    final = None
    for chunk in client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=5, temperature=0, stream=True,
                                                extra_body={"hivethink": {"workers": 3, "layout": "interleaved",
                                                                          "examples": False}}):
        ext = chunk.model_extra["hivethink"]
        if ext.get("final"):
            final = (chunk, ext)
        elif ext["worker"] is not None:
            per_worker[ext["worker"]] = per_worker.get(ext["worker"], "") + chunk.choices[0].delta.content
            chunks[ext["worker"]] = chunks.get(ext["worker"], 0) + 1
    assert set(per_worker) == {"Alice", "Bob", "Carol"} and all(per_worker.values())
    assert final is not None
    chunk, ext = final
    assert chunk.choices[0].delta.content == (ext["answer"] or "")
    assert chunk.choices[0].finish_reason in ("stop", "length")
    # each worker's whole stream: its forced text (step headers) as well as its sampled tokens
    for name, w in ext["workers"].items():
        assert 1 <= w["tokens"] <= 5 and chunks[name] > w["tokens"]
        assert per_worker[name].startswith(f"**{name} [1]:** ")


def test_api_key_is_required_when_set(smol):
    with running_server(smol, api_key=KEY, limits=LIMITS, max_batch=2) as s:
        for key in ("wrong", None):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            status, body = request(s.url, "/health", headers=headers)
            assert status == 401 and body["error"]["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=s.base_url, api_key="wrong", max_retries=0).models.list()
        good = openai.OpenAI(base_url=s.base_url, api_key=KEY, max_retries=0)
        r = good.chat.completions.create(model=MODEL, messages=ASK, max_tokens=2, temperature=0)
        assert r.choices[0].message.content
        assert request(s.url, "/health", headers={"Authorization": f"Bearer {KEY}"})[0] == 200


BASE = {"model": MODEL, "messages": ASK, "max_tokens": 2}


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({**BASE, "n": 5}, 400, "n"),
        ({**BASE, "n": 0}, 400, "n"),
        ({**BASE, "max_tokens": 65}, 400, "max_tokens"),
        ({**BASE, "max_completion_tokens": 10_000}, 400, "max_completion_tokens"),
        ({**BASE, "hivethink": {"workers": 0}}, 400, "hivethink.workers"),
        ({**BASE, "hivethink": {"workers": 100}}, 400, "hivethink.workers"),
        ({**BASE, "hivethink": {"workers": 2, "layout": "spiral"}}, 400, "hivethink.layout"),
        ({**BASE, "hivethink": {"workers": "2"}}, 400, "hivethink.workers"),
        ({**BASE, "hivethink": {"workers": 2, "colour": "red"}}, 400, "hivethink.colour"),
        ({**BASE, "hivethink": {"workers": 2}, "n": 2}, 400, "n"),
        ({**BASE, "temperature": "hot"}, 400, "temperature"),
        ({**BASE, "temperature": 3}, 400, "temperature"),
        ({**BASE, "max_tokens": "2"}, 400, "max_tokens"),
        ({**BASE, "stream": "yes"}, 400, "stream"),
        ({**BASE, "messages": "hi"}, 400, "messages"),
        ({**BASE, "messages": []}, 400, "messages"),
        ({**BASE, "messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages.0.role"),
        ({**BASE, "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
        ({**BASE, "stop": [""]}, 400, "stop"),
        ({**BASE, "logprobs": True}, 400, "logprobs"),
        ({**BASE, "tools": [{"type": "function"}]}, 400, "tools"),
        ({"messages": ASK}, 400, "model"),
        ({**BASE, "model": "gpt-9"}, 404, "model"),
        ([1, 2], 400, None),
    ],
)
def test_bad_input_gets_a_json_error(server, body, status, param):
    got, reply = post_json(server.url, body)
    assert got == status, reply
    err = reply["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    assert err["param"] == param


def test_malformed_oversized_and_unknown(server):
    for raw in (b"{not json", b"", b'{"model": "smollm2", "messages": [}'):
        status, reply = request(server.url, "/v1/chat/completions", raw)
        assert status == 400 and reply["error"]["code"] == "invalid_json", reply
    big = json.dumps({**BASE, "messages": [{"role": "user", "content": "x" * 200_000}]}).encode()
    status, reply = request(server.url, "/v1/chat/completions", big)
    assert status == 413 and reply["error"]["code"] == "request_too_large"
    status, reply = request(server.url, "/v1/nowhere")
    assert status == 404 and "error" in reply
    status, reply = request(server.url, "/v1/chat/completions", method="GET")
    assert status == 405 and "error" in reply


def test_client_hanging_up_cancels_its_request(server):
    before = server.engine.passes
    stream = OpenStream(server.url, {**BASE, "max_tokens": 64, "temperature": 0, "stream": True, "messages": [
        {"role": "user", "content": "Count from one to a hundred in words."}]})
    seen = stream.read_events(4)  # the role chunk and a few pieces, then hang up
    assert seen.startswith(b"HTTP/1.1 200")
    stream.close()
    assert wait_idle(server), server.engine.load
    assert server.engine.passes - before < 48  # it stopped well before its 64 tokens
    before = server.engine.passes  # the same without streaming: the server polls for a hang-up
    plain = OpenStream(server.url, {**BASE, "max_tokens": 64, "temperature": 0, "messages": [
        {"role": "user", "content": "Count from one to a hundred in words."}]})
    deadline = time.monotonic() + 10
    while server.engine.load == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    plain.close()
    assert wait_idle(server), server.engine.load
    assert server.engine.passes - before < 48


def test_busy_server_answers_429_and_hung_up_hive_jobs_stop(smol):
    limits = ServeLimits(max_tokens=64, max_hive_jobs=1)
    long = {**BASE, "max_tokens": 64, "temperature": 0, "stream": True}
    with running_server(smol, limits=limits, max_batch=1, max_waiting=1) as s:
        first = OpenStream(s.url, long)
        first.read_events(3)  # running
        second = OpenStream(s.url, long)  # waits for the only row
        deadline = time.monotonic() + 10
        while s.engine.load != (1, 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        status, reply = post_json(s.url, BASE)
        assert status == 429 and reply["error"]["code"] == "server_busy"
        first.close()
        second.close()
        assert wait_idle(s)
        # a hive decodes all its rows in one pass: more than this server's one is refused at once
        status, reply = post_json(s.url, {**BASE, "hivethink": {"workers": 2}})
        assert status == 400 and "--max-batch" in reply["error"]["message"]
    hive_req = {**long, "hivethink": {"workers": 2, "examples": False}}
    with running_server(smol, limits=limits, max_batch=4) as s:
        hive = OpenStream(s.url, hive_req)
        assert b'"worker":"' in hive.read_events(4)
        status, reply = post_json(s.url, {**BASE, "hivethink": {"workers": 2, "examples": False}})
        assert status == 429 and "multi-worker" in reply["error"]["message"]
        t0 = time.monotonic()
        hive.close()
        while request(s.url, "/health")[1]["hive_jobs"] and time.monotonic() - t0 < 10:
            time.sleep(0.02)
        assert request(s.url, "/health")[1]["hive_jobs"] == 0
        status, reply = post_json(s.url, {**BASE, "hivethink": {"workers": 2, "examples": False}})
        assert status == 200 and set(reply["hivethink"]["workers"]) == {"Alice", "Bob"}
