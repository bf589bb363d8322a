"""Smoke runs of the game substrates on instances from the real task modules."""

from __future__ import annotations

import json
import re

from substrate_helpers import last_user, speaker

from hivethink.backends.fake import ScriptedBackend
from hivethink.substrates import Budget, get_substrate
from hivethink.tasks.agree import AgreeTask
from hivethink.tasks.graph import GraphTask, neighbours
from hivethink.tasks.pair import PairTask


def test_chat_on_a_graph_task():
    task = GraphTask(kind="coloring", size=4)
    inst = task.generate(1, 0)[0]

    def script(request, index):
        me = speaker(request)
        if "Message passing is over" in last_user(request):
            return f"ANSWER: {inst.target[me]}"
        return json.dumps({nb: f"hello from {me}" for nb in neighbours(inst, me)})

    backend = ScriptedBackend(script)
    res = get_substrate("chat").run(inst, task, backend, workers=2, budget=Budget(), seed=0)
    assert len(backend.calls) == inst.data["rounds"] + 1
    assert res.agent_answers == inst.target
    assert res.info["score"] == 1.0 and task.score(inst, res.answer) == 1.0
    assert res.info["format_errors"] == 0


def test_agree_on_an_agree_task():
    task = AgreeTask(agents=4, byzantine=1, max_rounds=5)
    inst = task.generate(1, 0)[0]
    honest = [a for a in inst.data["agents"] if a not in inst.data["byzantine"]]
    target = inst.data["start_values"][honest[0]]

    def script(request, index):
        if "Should the game stop" in last_user(request):
            return '{"vote": "stop"}'
        return json.dumps({"value": target, "reasoning": "pick the first honest start"})

    res = get_substrate("agree").run(
        inst, task, ScriptedBackend(script), workers=4, budget=Budget(), seed=0
    )
    assert res.info["ended_by_vote"] and task.score(inst, res.answer) == 1.0


def test_pair_probe_on_a_pair_task():
    task = PairTask(probe=True)
    inst = task.generate(1, 0)[0]
    wrong = inst.data["wrong_answer"]

    def script(request, index):
        said = re.search(r"the answer is (\S+?)\.", last_user(request))
        return f"\\boxed{{{said.group(1) if said else inst.target}}}"

    res = get_substrate("pair").run(
        inst, task, ScriptedBackend(script), workers=2, budget=Budget(), seed=0
    )
    assert res.info["initial_answer"] == inst.target
    assert res.info["wrong_answer"] == wrong
    assert res.info["flipped"] and res.info["agreed"] and res.info["turns"] == 3
