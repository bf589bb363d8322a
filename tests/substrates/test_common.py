"""Shared substrate helpers: votes, JSON finding, the round recorder and its cost arithmetic."""

from hivethink.answers import majority
from hivethink.backends.fake import ScriptedBackend
from hivethink.names import worker_names
from hivethink.substrates.base import Budget
from hivethink.substrates.common import (
    Call,
    Recorder,
    conversation,
    find_json,
    parse_subtasks,
)
from hivethink.tasks.base import Probe


def test_majority_ignores_none_and_breaks_ties_by_first_appearance():
    assert majority(["5", "4", "4", "5", None]) == "5"
    assert majority([None, "4", "5", "5"]) == "5"
    assert majority(["b", "a"]) == "b"
    assert majority([None, None]) is None
    assert majority([]) is None
    assert majority(["", None, "x"]) == "x"  # an empty answer does not vote


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


def test_a_round_can_set_temperature_cap_and_a_json_schema_per_call():
    backend = ScriptedBackend(["{}", "{}"])
    rec = Recorder(backend, Budget(), seed=0, temperature=0.7)
    schema = {"type": "object"}
    rec.round([Call("Alice", conversation("s", "u"), json_schema=schema), Call("Bob", conversation("s", "u"))],
              step=0, temperature=0.3, max_tokens=200)  # fmt: skip
    assert [(r.temperature, r.max_tokens, r.json_schema) for r in backend.requests] == [
        (0.3, 200, schema), (0.3, 200, None),
    ]


def test_the_recorder_shows_probes_to_agents_but_not_to_helpers():
    revision = Probe("revision", "CHANGED", misled="1", start=1)
    backend = ScriptedBackend(lambda r, i: "ok")
    rec = Recorder(backend, Budget(), seed=0, temperature=0.0, probe=revision)
    for step in range(3):
        rec.round([Call("helper", conversation("s", "h"), helper=True)], step=step)  # no agent round
        rec.round([Call("Alice", conversation("s", "u")), Call("Bob", [{"role": "system", "content": "s"}])], step=step)
    agent_calls = [b for b in backend.calls if len(b) == 2]
    assert [["CHANGED" in str(r.messages) for r in b] for b in agent_calls] == [[False, False], [True, True], [True, True]]
    assert agent_calls[1][0].messages[-1] == {"role": "user", "content": "u\n\nCHANGED"}
    assert agent_calls[1][1].messages[-1] == {"role": "user", "content": "CHANGED"}  # no user turn: one added
    assert not any("CHANGED" in str(b[0].messages) for b in backend.calls if len(b) == 1)

    seed = Probe("seed", "CLAIM", misled="1", marker="47")
    backend = ScriptedBackend(lambda r, i: "ok")
    rec = Recorder(backend, Budget(), seed=0, temperature=0.0, probe=seed)
    rec.round([Call("helper", conversation("s", "h"), helper=True)], step=0)
    rec.round([Call("Bob", conversation("s", "u")), Call("Alice", conversation("s", "u"))], step=0)
    rec.round([Call("Alice", conversation("s", "u")), Call("Bob", conversation("s", "u"))], step=1)
    assert rec.seeded == "Bob"  # the first agent called, helpers aside
    marks = [(e.worker, e.step, e.data.get("probe")) for e in rec.events if e.kind == "prompt"]
    assert marks == [("helper", 0, None), ("Bob", 0, "seed"), ("Alice", 0, None), ("Alice", 1, None), ("Bob", 1, "seed")]
