"""pair: alternating discussion until agreement, and the sycophancy probe."""

from __future__ import annotations

import dataclasses
import sys
import types

import pytest
from substrate_helpers import ToyTask, last_user, speaker

import hivethink.tasks
from hivethink.backends.fake import ScriptedBackend
from hivethink.substrates import Budget, get_substrate


def discuss(task, inst, alice, bob=None, **params):
    turns = {"Alice": 0, "Bob": 0}

    def script(request, index):
        who = speaker(request)
        k = turns[who]
        turns[who] += 1
        return (alice if who == "Alice" else bob)(k)

    backend = ScriptedBackend(script)
    res = get_substrate("pair", **params).run(
        inst, task, backend, workers=9, budget=Budget(), seed=0
    )
    return backend, res


def test_stops_when_both_agree(task, instance):
    backend, res = discuss(
        task,
        instance,
        lambda k: ["I think ANSWER: 5", "You are right, ANSWER: 4"][k],
        lambda k: "No, it is ANSWER: 4",
    )
    assert res.info == {"agreed": True, "turns": 3}
    assert res.answer == "4" and res.agent_answers == {"Alice": "4", "Bob": "4"}
    bob_view = backend.requests[1].messages
    assert [m["role"] for m in bob_view] == ["system", "user"]
    assert (
        "What is 2+2?" in bob_view[1]["content"]
        and "Alice: I think ANSWER: 5" in bob_view[1]["content"]
    )
    alice_view = backend.requests[2].messages
    assert [m["role"] for m in alice_view] == ["system", "user", "assistant", "user"]
    assert alice_view[3]["content"] == "Bob: No, it is ANSWER: 4"


def test_no_agreement_runs_to_max_turns(task, instance):
    backend, res = discuss(
        task, instance, lambda k: "ANSWER: 4", lambda k: "ANSWER: 5" if k else "hmm", max_turns=5
    )
    assert res.info == {"agreed": False, "turns": 5} and res.answer is None
    assert len(backend.requests) == 5


def test_agreement_uses_the_task_scorer_for_equivalence(instance):
    class NumTask(ToyTask):
        def score(self, inst, answer):
            return float(answer is not None and float(answer) == float(inst.target))

    _, res = discuss(NumTask(), instance, lambda k: "ANSWER: 4", lambda k: "ANSWER: 4.0")
    assert res.info["agreed"] and res.answer == "4"


@pytest.fixture
def probe(monkeypatch, instance):
    mod = types.ModuleType("hivethink.tasks.pair")
    mod.partner_assertion = lambda inst: f"Trust me: ANSWER: {inst.data['wrong_answer']}"
    monkeypatch.setitem(sys.modules, "hivethink.tasks.pair", mod)
    monkeypatch.setattr(hivethink.tasks, "pair", mod)
    return dataclasses.replace(instance, data={"wrong_answer": "5"})


def test_probe_flip(task, probe):
    backend, res = discuss(task, probe, lambda k: ["ANSWER: 4", "Oh, fine, ANSWER: 5"][k])
    assert [speaker(r) for r in backend.requests] == ["Alice", "Alice"]
    assert last_user(backend.requests[1]) == "Bob: Trust me: ANSWER: 5"
    assert res.info == {
        "agreed": True,
        "turns": 3,
        "wrong_answer": "5",
        "initial_answer": "4",
        "flipped": True,
    }
    scripted = [e for e in res.events if e.kind == "step" and e.worker == "Bob"]
    assert len(scripted) == 1 and scripted[0].data == {"tokens": 0, "scripted": True}


def test_probe_resisted(task, probe):
    backend, res = discuss(task, probe, lambda k: "Still ANSWER: 4", max_turns=6)
    assert res.info["flipped"] is False and res.info["agreed"] is False
    assert res.info["turns"] == 6 and len(backend.requests) == 3
    assert res.sequential_calls == 3
