"""chat: neighbour-only delivery, next-round arrival, one retry then silence."""

from __future__ import annotations

import json

from substrate_helpers import last_user, speaker

from hivethink.backends.fake import ScriptedBackend
from hivethink.substrates import get_substrate
from hivethink.substrates.base import Budget
from hivethink.substrates.chat import topology_neighbours


def phase(request) -> str:
    last = request.messages[-1]["content"]
    if last.startswith("Round"):
        return last.split(".")[0]  # "Round 1 of 2"
    if "could not be read" in last:
        return "retry"
    return "final"


SCRIPT = {
    ("Alice", "Round 1 of 2"): ['{"Bob": "hi Bob from Alice", "Mallory": "lost"}'],
    ("Bob", "Round 1 of 2"): ["I refuse"],
    ("Carol", "Round 1 of 2"): ["hmm"],
    ("Bob", "retry"): ["still no"],
    ("Carol", "retry"): ['ok: {"Alice": "hello Alice from Carol"}'],
    ("Alice", "Round 2 of 2"): ['{"Carol": "r2 Alice to Carol"}'],
    ("Bob", "Round 2 of 2"): ['{"Alice": "r2 Bob to Alice"}'],
    ("Carol", "Round 2 of 2"): ["{}"],
    ("Alice", "final"): ["ANSWER: 4"],
    ("Bob", "final"): ["ANSWER: 5"],
    ("Carol", "final"): ["ANSWER: 4"],
}


def scripted(request, index):
    return SCRIPT[(speaker(request), phase(request))][0]


def test_complete_chat_protocol(task, instance):
    backend = ScriptedBackend(scripted)
    res = get_substrate("chat").run(
        instance, task, backend, workers=3, budget=Budget(max_tokens=50, rounds=2), seed=0
    )
    assert [len(b) for b in backend.calls] == [3, 2, 3, 3]
    assert res.sequential_calls == 4
    round1, retry, round2, final = backend.calls
    assert [speaker(r) for r in retry] == ["Bob", "Carol"]
    assert all("(none)" in last_user(r) for r in round1)
    by_name = {speaker(r): last_user(r) for r in round2}
    assert "hi Bob from Alice" in by_name["Bob"]
    assert "hello Alice from Carol" in by_name["Alice"]
    assert "(none)" in by_name["Carol"]
    others = [r.messages for r in backend.requests if speaker(r) != "Alice"]
    assert "lost" not in json.dumps(others)
    finals = {speaker(r): last_user(r) for r in final}
    assert "r2 Alice to Carol" in finals["Carol"] and "r2 Bob to Alice" in finals["Alice"]
    assert "r2" not in finals["Bob"]
    # round-1 messages are not re-delivered with the final question
    assert "hi Bob from Alice" not in finals["Bob"]

    messages = [(e.worker, e.recipients, e.step, e.text) for e in res.events if e.kind == "message"]
    assert messages == [
        ("Alice", ["Bob"], 0, "hi Bob from Alice"),
        ("Carol", ["Alice"], 0, "hello Alice from Carol"),
        ("Alice", ["Carol"], 1, "r2 Alice to Carol"),
        ("Bob", ["Alice"], 1, "r2 Bob to Alice"),
    ]
    errors = [(e.worker, e.text) for e in res.events if e.kind == "error"]
    assert len(errors) == 4
    assert ("Bob", "reply is not a JSON object after retry; sends nothing") in errors
    assert res.info == {
        "rounds": 2,
        "budget_exhausted": False,
        "format_errors": 2,
        "retries": 2,
        "silent": 1,
        "dropped": 1,
        "delivered": 4,
    }
    assert res.answer == "4" and res.agent_answers == {"Alice": "4", "Bob": "5", "Carol": "4"}
    steps = [e for e in res.events if e.kind == "step"]
    assert [e.data.get("retry", False) for e in steps].count(True) == 2


def test_ring_drops_messages_to_non_neighbours(task, instance):
    def script(request, index):
        if phase(request).startswith("Round"):
            return json.dumps({"Carol": "x", "Bob": "y", "Dave": "z"})
        return "ANSWER: 4"

    backend = ScriptedBackend(script)
    res = get_substrate("chat", topology="ring").run(
        instance, task, backend, workers=4, budget=Budget(rounds=1), seed=0
    )
    delivered = sorted((e.worker, e.recipients[0]) for e in res.events if e.kind == "message")
    assert delivered == [
        ("Alice", "Bob"),
        ("Alice", "Dave"),
        ("Bob", "Carol"),
        ("Carol", "Bob"),
        ("Carol", "Dave"),
        ("Dave", "Carol"),
    ]
    # Alice->Carol, Bob->Bob, Bob->Dave, Carol->Carol, Dave->Bob, Dave->Dave
    assert res.info["dropped"] == 6 and res.info["format_errors"] == 6


def test_topologies():
    names = ["A", "B", "C", "D"]
    assert topology_neighbours(names, "complete")["A"] == ["B", "C", "D"]
    assert topology_neighbours(names, "ring") == {
        "A": ["B", "D"],
        "B": ["A", "C"],
        "C": ["B", "D"],
        "D": ["A", "C"],
    }
    assert topology_neighbours(names, "star") == {
        "A": ["B", "C", "D"],
        "B": ["A"],
        "C": ["A"],
        "D": ["A"],
    }
    assert topology_neighbours(["A", "B"], "ring") == {"A": ["B"], "B": ["A"]}


def test_budget_cap_stops_rounds(task, instance):
    backend = ScriptedBackend(lambda r, i: '{"Bob": "one two three four"}')
    res = get_substrate("chat").run(
        instance, task, backend, workers=2, budget=Budget(rounds=5, tokens=15), seed=0
    )
    assert res.info["rounds"] == 2 and res.info["budget_exhausted"]  # 5 words x 2 agents a round
    assert len(backend.calls) == 3  # two rounds, then the final question
