"""Shared substrate helpers: votes, JSON finding, the round recorder and its cost arithmetic."""

from hivethink.backends.fake import ScriptedBackend
from hivethink.names import worker_names
from hivethink.substrates.base import Budget
from hivethink.substrates.common import (
    Call,
    Recorder,
    conversation,
    find_json,
    majority,
    parse_subtasks,
)


def test_majority_ignores_none_and_breaks_ties_by_first_appearance():
    assert majority(["5", "4", "4", "5", None]) == "5"
    assert majority([None, "4", "5", "5"]) == "5"
    assert majority(["b", "a"]) == "b"
    assert majority([None, None]) is None
    assert majority([]) is None


def test_find_json_skips_prose_and_broken_values():
    assert find_json('Sure! {"Bob": "hi"} done', dict) == {"Bob": "hi"}
    assert find_json('{broken {"a": 1}', dict) == {"a": 1}
    assert find_json("```json\n[1, 2]\n```", list) == [1, 2]
    assert find_json("[1, 2]", dict) is None
    assert find_json("nothing here", list) is None
    assert parse_subtasks('Plan: ["a", "", {"x": 1}, "c"]', 2) == ["a", '{"x": 1}']


def test_worker_names():
    assert worker_names(3) == ["Alice", "Bob", "Carol"]
    names = worker_names(18)
    assert names[15] == "Sybil" and names[16:] == ["Alice2", "Bob2"]


def test_recorder_batches_a_round_and_sums_costs():
    backend = ScriptedBackend(["a b c", "a b c d e", "x y"])
    rec = Recorder(backend, Budget(max_tokens=9, tokens=10), seed=1, temperature=0.5)
    calls = [Call(n, conversation("sys", f"hello {n}")) for n in ("Alice", "Bob")]
    assert rec.round(calls, step=0) == ["a b c", "a b c d e"]
    assert not rec.exhausted
    assert rec.round([Call("Alice", conversation("sys", "again"))], step=1) == ["x y"]
    assert [len(b) for b in backend.calls] == [2, 1]
    assert rec.sequential_calls == 2
    assert rec.sequential_passes == 5 + 2  # longest of each round
    assert rec.tokens == 10 and rec.exhausted
    assert rec.prompt_tokens == 3 + 3 + 2
    # each call gets an equal share of the tokens left: 10 // 2, then 10 - 8
    assert [r.max_tokens for r in backend.requests] == [5, 5, 2]
    assert {r.temperature for r in backend.requests} == {0.5}
    assert len({r.seed for r in backend.requests}) == 3
    kinds = [(e.kind, e.worker) for e in rec.events]
    assert kinds == [
        ("prompt", "Alice"),
        ("prompt", "Bob"),
        ("step", "Alice"),
        ("step", "Bob"),
        ("prompt", "Alice"),
        ("step", "Alice"),
    ]
    assert "hello Alice" in rec.events[0].text
    assert rec.events[2].data["tokens"] == 3 and rec.events[4].step == 1
    times = [e.t for e in rec.events]
    assert times == sorted(times)
    result = rec.finish("4", agent_answers={"Alice": "4"}, info={"k": 1})
    assert result.events[-1].kind == "answer" and result.events[-1].worker == "team"
    assert result.sequential_passes == 7 and result.tokens == 10 and result.info == {"k": 1}


def test_failed_completion_is_recorded_as_error():
    from hivethink.backends.base import Completion

    backend = ScriptedBackend([Completion(text="", finish_reason="error", error="timeout")])
    rec = Recorder(backend, Budget(), seed=0, temperature=0.0)
    assert rec.round([Call("Alice", conversation("s", "u"))], step=0) == [""]
    errors = [e for e in rec.events if e.kind == "error"]
    assert len(errors) == 1 and errors[0].data["reason"] == "timeout"
