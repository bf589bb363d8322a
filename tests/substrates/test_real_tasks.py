"""The presets on instances from the real task modules, and tasks that declare their substrates."""

from __future__ import annotations

import json
import re

from substrate_helpers import last_user

from hivethink.backends.fake import ScriptedBackend
from hivethink.metrics import compute_metrics
from hivethink.substrates import SUBSTRATES, Budget, get_substrate
from hivethink.tasks import TASKS, get_task
from hivethink.tasks.agree import AgreeTask
from hivethink.tasks.base import meant_for
from hivethink.tasks.graph import GraphTask, network


def test_agentsnet_on_a_graph_task():
    task = GraphTask(kind="coloring", size=4)
    inst = task.generate(1, 0)[0]
    net = network(inst)

    def script(request, index):
        me = re.search(r"Your name is (\w+)", request.messages[0]["content"]).group(1)
        if "### Final Answer ###" in last_user(request):
            return f"### Final Answer ### {inst.target[me]}"
        return json.dumps({nb: f"hello from {me}" for nb in net.neighbours[me]})

    backend = ScriptedBackend(script)
    res = get_substrate("agentsnet").run(inst, task, backend, workers=2, budget=Budget(), seed=0)
    assert len(backend.calls) == inst.data["rounds"] + 1
    metrics = compute_metrics(res.events, task=task, instance=inst, result=res)
    assert res.agent_answers == inst.target and metrics["score"] == 1.0
    assert metrics["agentsnet_fallbacks"] == 0 and metrics["patho_format_failures"] == 0


def test_consensus_game_on_an_agree_task():
    task = AgreeTask(honest=3, byzantine=1, max_rounds=5)
    inst = task.generate(1, 0)[0]
    target = inst.target[0]

    def script(request, index):
        if "VOTE" in last_user(request):
            return '{"decision": "stop"}'
        return json.dumps({"internal_strategy": "pick the smallest start", "value": target,
                           "public_reasoning": "the smallest start value is a fair focal point"})

    res = get_substrate("consensus-game").run(inst, task, ScriptedBackend(script), workers=4, budget=Budget(), seed=0)
    metrics = compute_metrics(res.events, task=task, instance=inst, result=res)
    assert res.info["ended_by_vote"] and metrics["score"] == 1.0 and metrics["game_result"] == "valid"


def test_tasks_declare_the_substrates_they_are_meant_for():
    subs = {name: get_substrate(name) for name in SUBSTRATES if name != "shared-cache"}
    graph, agree, math = get_task("graph"), get_task("agree"), get_task("math")
    assert sorted(n for n, s in subs.items() if meant_for(graph, s)) == ["agentsnet", "single"]
    assert [n for n, s in subs.items() if meant_for(agree, s)] == ["consensus-game"]
    assert not meant_for(math, subs["agentsnet"]) and not meant_for(math, subs["consensus-game"])
    # llm-program's default program is the evidence one (its math program: program: math)
    assert all(meant_for(math, s) for n, s in subs.items() if n not in ("agentsnet", "consensus-game", "llm-program"))
    assert set(TASKS) >= {"arithmetic", "common-ground", "error-propagation"}
