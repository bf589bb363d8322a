"""agree: propose/vote rounds, 2/3 stop vote vs deadline, unreadable replies, Byzantine agents."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from substrate_helpers import last_user, speaker

from hivethink.backends.fake import ScriptedBackend
from hivethink.errors import HivethinkError
from hivethink.substrates import Budget, get_substrate
from hivethink.tasks.base import Instance


def game(agents, starts, byzantine=(), max_rounds=3) -> Instance:
    data = {
        "agents": list(agents),
        "start_values": dict(zip(agents, starts, strict=True)),
        "byzantine": list(byzantine),
        "max_rounds": max_rounds,
    }
    return Instance(task="agree", id="agree-test-0", prompt="agree on a value", data=data)


def play(inst, propose: Callable[[str, int], str], vote: Callable[[str, int], str], seed=0):
    """``propose(name, round)``/``vote(name, round)`` script the honest agents (rounds from 1)."""

    def script(request, index):
        prompt = last_user(request)
        round_no = int(prompt.split()[1])
        if "Should the game stop" in prompt:
            return vote(speaker(request), round_no)
        return propose(speaker(request), round_no)

    backend = ScriptedBackend(script)
    res = get_substrate("agree").run(inst, None, backend, workers=1, budget=Budget(), seed=seed)
    return backend, res


def proposal(value) -> str:
    return json.dumps({"value": value, "reasoning": "closest to the middle"})


def test_two_thirds_stop_vote_ends_the_game():
    inst = game(["Alice", "Bob", "Carol"], [10, 20, 30])
    backend, res = play(
        inst,
        lambda n, r: proposal(20),
        lambda n, r: '{"vote": "continue"}' if n == "Carol" else '{"vote": "stop"}',
    )
    assert [len(b) for b in backend.calls] == [3, 3]
    assert "Your current value: 10" in last_user(backend.calls[0][0])
    vote_prompt = last_user(backend.calls[1][1])
    assert "- Alice: 20\n- Bob: 20\n- Carol: 20" in vote_prompt
    assert res.info == {
        "rounds": 1,
        "timeout": False,
        "ended_by_vote": True,
        "score": 1.0,
        "byzantine": [],
        "budget_exhausted": False,
    }
    assert json.loads(res.answer) == {
        "final_values": {"Alice": 20, "Bob": 20, "Carol": 20},
        "ended_by_vote": True,
    }
    assert res.agent_answers == {"Alice": "20", "Bob": "20", "Carol": "20"}
    votes = [(e.worker, e.data["value"]) for e in res.events if e.kind == "vote"]
    assert votes == [("Alice", "stop"), ("Bob", "stop"), ("Carol", "continue")]
    msgs = [e for e in res.events if e.kind == "message"]
    assert [(m.worker, m.recipients) for m in msgs][0] == ("Alice", ["Bob", "Carol"])


def test_deadline_is_a_timeout_and_proposals_arrive_next_round():
    inst = game(["Alice", "Bob", "Carol"], [10, 20, 30], max_rounds=3)
    backend, res = play(
        inst,
        lambda n, r: proposal({"Alice": 1, "Bob": 2, "Carol": 3}[n] + r),
        lambda n, r: "stop" if n == "Alice" else "I vote continue",
    )
    assert len(backend.calls) == 6  # propose + vote, three rounds
    assert res.info["rounds"] == 3 and res.info["timeout"] and not res.info["ended_by_vote"]
    assert res.info["score"] == 0.0
    round2 = last_user(backend.calls[2][0])
    assert "Round 2 of 3. Your current value: 2." in round2
    assert "- Alice: 2\n- Bob: 3\n- Carol: 4" in round2
    assert "(none yet)" in last_user(backend.calls[0][0])


def test_unreadable_proposal_keeps_value_and_unreadable_vote_continues():
    inst = game(["Alice", "Bob", "Carol"], [10, 20, 30], max_rounds=1)
    _, res = play(
        inst,
        lambda n, r: "no idea" if n == "Carol" else proposal(20),
        lambda n, r: "hmm" if n == "Bob" else '{"vote": "stop"}',
    )
    assert res.agent_answers["Carol"] == "30"
    errors = [(e.worker, e.text) for e in res.events if e.kind == "error"]
    assert errors == [
        ("Carol", "unreadable proposal; keeps its value"),
        ("Bob", "unreadable vote; counts as continue"),
    ]
    assert res.info["ended_by_vote"]  # 2 of 3 is exactly two thirds


def test_byzantine_agents_are_scripted_and_seeded():
    inst = game(["Alice", "Bob", "Carol", "Dave"], [5, 6, 7, 8], byzantine=["Dave"])
    runs = [play(inst, lambda n, r: proposal(6), lambda n, r: "stop", seed=s) for s in (1, 1, 2)]
    backend, res = runs[0]
    assert {speaker(r) for r in backend.requests} == {"Alice", "Bob", "Carol"}
    assert res.info["ended_by_vote"] and res.info["byzantine"] == ["Dave"]
    assert res.agent_answers == {"Alice": "6", "Bob": "6", "Carol": "6"}
    assert res.info["score"] == 1.0

    def dave(r):
        [event] = [e for e in r.events if e.kind == "message" and e.worker == "Dave"]
        assert event.data["scripted"] and 0 <= event.data["value"] <= 50
        return event.data["value"]

    assert dave(runs[0][1]) == dave(runs[1][1])
    assert "Dave" in [e.worker for e in res.events if e.kind == "vote"]


def test_other_tasks_are_refused(task, instance):
    with pytest.raises(HivethinkError, match="needs an agree-task instance"):
        get_substrate("agree").run(
            instance, task, ScriptedBackend([]), workers=2, budget=Budget(), seed=0
        )
