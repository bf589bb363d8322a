"""blackboard: typed JSON-line posts, round-start snapshots, subscriptions, final answer rules."""

from __future__ import annotations

import json

from substrate_helpers import last_user, speaker

from hivethink.backends.fake import ScriptedBackend
from hivethink.substrates import get_substrate
from hivethink.substrates.base import Budget


def post(kind: str, text: str) -> str:
    return json.dumps({"kind": kind, "text": text})


SCRIPT = {
    ("Alice", 1): post("plan", "Alice adds") + "\n" + post("claim", "it is even"),
    ("Bob", 1): "I have nothing in JSON",
    ("Carol", 1): "notes\n" + post("answer", "ANSWER: 5") + '\n{"kind": "gossip", "text": "x"}',
    ("Alice", 2): post("answer", "ANSWER: 4"),
    ("Bob", 2): post("answer", "ANSWER: 5") + "\n" + post("question", "sure?"),
    ("Carol", 2): post("result", "no answer here"),
}


def script(request, index):
    round_no = int(last_user(request).split()[1])
    return SCRIPT[(speaker(request), round_no)]


def run(**params):
    backend = ScriptedBackend(script)
    from substrate_helpers import ToyTask

    task = ToyTask()
    inst = task.generate(1, 0)[0]
    res = get_substrate("blackboard", **params).run(
        inst, task, backend, workers=3, budget=Budget(rounds=2), seed=0
    )
    return backend, res


def test_board_protocol_and_latest_answer():
    backend, res = run()
    assert [len(b) for b in backend.calls] == [3, 3]
    assert all("(empty)" in last_user(r) for r in backend.calls[0])
    board2 = last_user(backend.calls[1][0])
    assert "[1] Alice (plan): Alice adds" in board2
    assert "[2] Alice (claim): it is even" in board2
    assert "[3] Carol (answer): ANSWER: 5" in board2
    assert "gossip" not in board2 and "last round" in board2
    # posts of round 2 are not visible to other agents in round 2 (snapshot at round start)
    assert all("sure?" not in last_user(r) for r in backend.calls[1])
    posts = [(e.worker, e.data["entry_kind"], e.step) for e in res.events if e.kind == "post"]
    assert posts == [
        ("Alice", "plan", 0),
        ("Alice", "claim", 0),
        ("Carol", "answer", 0),
        ("Alice", "answer", 1),
        ("Bob", "answer", 1),
        ("Bob", "question", 1),
        ("Carol", "result", 1),
    ]
    errors = [(e.worker, e.step) for e in res.events if e.kind == "error"]
    assert errors == [("Bob", 0)]
    assert res.answer == "5"  # Bob's answer entry is the latest one
    assert res.agent_answers == {"Alice": "4", "Bob": "5", "Carol": "5"}
    assert res.info == {"rounds": 2, "entries": 7, "budget_exhausted": False}


def test_vote_and_subscription():
    backend, res = run(final="vote", subscribe=["answer"])
    assert res.answer == "5"  # Alice 4, Bob 5, Carol 5
    board2 = last_user(backend.calls[1][0])
    assert "Carol (answer)" in board2 and "plan" not in board2.split("The board:")[1]
    assert "[1] Carol (answer)" in board2
