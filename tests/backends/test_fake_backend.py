"""ScriptedBackend: replies from a list or a callable, records requests and batches."""

import pytest

from hivethink.backends.base import Backend, Completion, GenRequest
from hivethink.backends.fake import ScriptedBackend


def req(text: str) -> GenRequest:
    return GenRequest(messages=[{"role": "user", "content": text}])


def test_list_script_is_consumed_in_order_and_recorded():
    backend = ScriptedBackend(["one two", "three"])
    assert isinstance(backend, Backend)
    out = backend.generate([req("a b c"), req("d")])
    assert [c.text for c in out] == ["one two", "three"]
    assert [c.completion_tokens for c in out] == [2, 1]
    assert [c.prompt_tokens for c in out] == [3, 1]
    assert backend.name == "fake"
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 2
    assert [r.messages[0]["content"] for r in backend.requests] == ["a b c", "d"]
    with pytest.raises(RuntimeError, match="exhausted"):
        backend.generate([req("e")])


def test_callable_script_gets_request_and_global_index():
    backend = ScriptedBackend(lambda r, i: f"{i}:{r.messages[-1]['content']}", name="echo")
    assert [c.text for c in backend.generate([req("x"), req("y")])] == ["0:x", "1:y"]
    assert [c.text for c in backend.generate([req("z")])] == ["2:z"]
    assert len(backend.calls) == 2 and backend.name == "echo"


def test_completion_replies_pass_through():
    failed = Completion(text="", finish_reason="error", error="boom")
    backend = ScriptedBackend([failed])
    assert backend.generate([req("x")]) == [failed]
