"""roleplay: alternating instructor/assistant views and each termination rule."""

from __future__ import annotations

import pytest
from substrate_helpers import speaker

from hivethink.backends.fake import ScriptedBackend
from hivethink.substrates import get_substrate
from hivethink.substrates.base import Budget


def play(task, instance, instructor, assistant, budget=None, **params):
    """Run with scripted turns: ``instructor(k)``/``assistant(k)`` give the k-th own message."""
    turns = {"Alice": 0, "Bob": 0}

    def script(request, index):
        who = speaker(request)
        k = turns[who]
        turns[who] += 1
        return (instructor if who == "Alice" else assistant)(k)

    backend = ScriptedBackend(script)
    res = get_substrate("roleplay", **params).run(
        instance, task, backend, workers=5, budget=budget or Budget(), seed=0
    )
    return backend, res


def test_task_done_token_and_views(task, instance):
    backend, res = play(
        task,
        instance,
        lambda k: ["Instruction: add two and two", "Well done <TASK_DONE>"][k],
        lambda k: "Solution: ANSWER: 4",
    )
    assert res.info == {"stop_reason": "task_done", "messages": 3}
    assert res.answer == "4" and res.agent_answers == {"Alice": None, "Bob": "4"}
    first_assistant = backend.requests[1].messages
    assert [m["role"] for m in first_assistant] == ["system", "user"]
    assert first_assistant[1]["content"] == "Instruction: add two and two"
    second_instructor = backend.requests[2].messages
    assert [m["role"] for m in second_instructor] == ["system", "user", "assistant", "user"]
    assert second_instructor[3]["content"] == "Solution: ANSWER: 4"
    roles = [(e.worker, e.text) for e in res.events if e.kind == "role"]
    assert roles == [("Alice", "instructor"), ("Bob", "assistant")]
    msgs = [(e.worker, e.recipients, e.step) for e in res.events if e.kind == "message"]
    assert msgs == [("Alice", ["Bob"], 0), ("Bob", ["Alice"], 1), ("Alice", ["Bob"], 2)]
    assert res.sequential_calls == 3 and [len(b) for b in backend.calls] == [1, 1, 1]


def test_role_flip_stops(task, instance):
    _, res = play(
        task,
        instance,
        lambda k: "Instruction: think",
        lambda k: "Solution: done.\nInstruction: now you check it",
    )
    assert res.info == {"stop_reason": "role_flip", "messages": 2}
    assert [e.worker for e in res.events if e.kind == "error"] == ["Bob"]


def test_no_instruction_for_three_rounds_stops(task, instance):
    script = ["Instruction: a", "thanks", "Instruction: b", "thanks", "cheers", "bye"]
    _, res = play(task, instance, lambda k: script[k], lambda k: "Solution: sure")
    # instructor messages are 0, 2, 4, ...: the idle count resets at "Instruction: b" (index 4)
    assert res.info == {"stop_reason": "no_instruction", "messages": 11}


@pytest.mark.parametrize("limit", [1, 6])
def test_max_messages_stops(task, instance, limit):
    backend, res = play(
        task,
        instance,
        lambda k: f"Instruction: step {k}",
        lambda k: f"Solution: step {k}",
        max_messages=limit,
    )
    assert res.info == {"stop_reason": "max_messages", "messages": limit}
    assert len(backend.requests) == limit and res.answer is None


def test_max_idle_is_configurable_and_budget_stops(task, instance):
    _, res = play(task, instance, lambda k: "hmm", lambda k: "Solution: ok", max_idle=1)
    assert res.info == {"stop_reason": "no_instruction", "messages": 1}
    _, res = play(
        task,
        instance,
        lambda k: "Instruction: one two three",
        lambda k: "Solution: ok",
        budget=Budget(tokens=7),
    )
    assert res.info == {"stop_reason": "budget", "messages": 3}  # 4 + 2 + 4 >= 7
