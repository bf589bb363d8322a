"""``self-organizing`` on the scripted backend: what each agent was shown and when, per protocol;
abstention, exclusion by the coordinator, the team output rules, shocks, 256 agents."""

from __future__ import annotations

import json
import time

import pytest
from substrate_helpers import ToyTask, last_user, speaker, text_of

from hivethink.backends.fake import ScriptedBackend
from hivethink.errors import HivethinkError
from hivethink.metrics import compute_metrics
from hivethink.substrates import get_substrate
from hivethink.substrates.base import Budget
from hivethink.tasks.mission import MissionTask

MISSIONS = """missions:
  - {id: one, level: 1, text: Plan the first thing.}
  - {id: two, level: 2, text: Plan the second thing.}
  - {id: three, level: 3, text: Plan the third thing.}
"""


def run(protocol, script, *, workers=4, instance=None, task=None, **params):
    task = task or ToyTask()
    instance = instance or task.generate(1, 0)[0]
    backend = ScriptedBackend(script)
    substrate = get_substrate("self-organizing", protocol=protocol, **params)
    result = substrate.run(instance, task, backend, workers=workers, budget=Budget(max_tokens=32), seed=0)
    return result, backend


def mission_run(tmp_path, n_tasks):
    path = tmp_path / "missions.yaml"
    path.write_text(MISSIONS, encoding="utf-8")
    task = MissionTask(file=str(path), run=n_tasks)
    return task, task.generate(1, 0)[0]


def work_of(name: str) -> str:
    return f"work by {name} ANSWER: {len(name)}"


def roles_script(abstainers=(), silent=()):
    def script(request, _):
        who = speaker(request)
        if who in abstainers:
            return "ABSTAIN"
        if who in silent:
            return work_of(who)
        return f"ROLE: role of {who}\n{work_of(who)}"

    return script


def test_sequential_shows_each_agent_only_the_finished_work_before_it(task):
    result, backend = run("sequential", roles_script(abstainers={"Bob"}))
    assert [len(c) for c in backend.calls] == [1, 1, 1, 1]  # one call after another
    shown = {speaker(r): last_user(r) for r in backend.requests}
    assert "(nothing yet)" in shown["Alice"]
    assert work_of("Alice") in shown["Bob"] and "Bob" not in shown["Bob"].split("Finished work")[1]
    assert work_of("Alice") in shown["Carol"]
    assert "Bob" not in shown["Carol"].split("Finished work")[1]  # an abstention shows nothing
    assert all(work_of(w) in shown["Dave"] for w in ("Alice", "Carol"))
    for later, earlier in (("Alice", "Bob"), ("Bob", "Carol"), ("Carol", "Dave")):
        assert work_of(earlier) not in shown[later]  # never a later agent's work
    assert "ROLE:" not in shown["Dave"].split("Finished work")[1]  # roles are shown, not ROLE lines
    assert "(role of Alice)" in shown["Dave"]
    prompts = [e for e in result.events if e.kind == "prompt"]
    assert [p.seen for p in prompts] == [[], ["Alice"], ["Alice"], ["Alice", "Carol"]]
    roles = [e for e in result.events if e.kind == "role"]
    assert [(e.worker, e.text, e.data["abstain"]) for e in roles] == [
        ("Alice", "role of Alice", False), ("Bob", "", True),
        ("Carol", "role of Carol", False), ("Dave", "role of Dave", False),
    ]  # fmt: skip
    assert result.answer == "4" and result.info["abstained"] == [["Bob"]]
    team = result.events[-1]
    assert team.worker == "team" and team.seen == ["Dave"]  # output: last


def test_sequential_last_is_strict_and_vote_takes_the_majority(task):
    def script(request, _):
        who = speaker(request)
        return {"Alice": "ROLE: a\nANSWER: 7", "Bob": "ROLE: b\nANSWER: 7", "Carol": "ROLE: c\nANSWER: 4",
                "Dave": "ROLE: d\nno answer here"}[who]  # fmt: skip

    last, _ = run("sequential", script)
    assert last.answer is None  # the last contributor compiles; it wrote no answer
    vote, _ = run("sequential", script, output="vote")
    assert vote.answer == "7" and vote.events[-1].seen == ["Alice", "Bob", "Carol", "Dave"]


def test_sequential_batches_run_groups_in_parallel_and_in_order(task):
    result, backend = run("sequential", roles_script(), batch=2)
    assert [[speaker(r) for r in c] for c in backend.calls] == [["Alice", "Bob"], ["Carol", "Dave"]]
    shown = {speaker(r): last_user(r) for r in backend.requests}
    assert work_of("Alice") not in shown["Bob"]  # the same group: not seen
    assert all(work_of(w) in shown[n] for w in ("Alice", "Bob") for n in ("Carol", "Dave"))
    assert work_of("Carol") not in shown["Dave"]


def test_a_reply_without_a_role_line_takes_part_and_is_a_format_error(task):
    result, _ = run("sequential", roles_script(silent={"Carol"}))
    errors = [e for e in result.events if e.kind == "error"]
    assert [(e.worker, e.text) for e in errors] == [("Carol", "no ROLE or ABSTAIN line")]
    assert result.agent_answers["Carol"] == "5"


def coordinator_script(plan):
    def script(request, _):
        who = speaker(request)
        if "Agents you can assign" in last_user(request):
            return plan
        if "The agents have finished" in last_user(request):
            return "Combined. ANSWER: 4"
        return f"ROLE: whatever\n{work_of(who)}"

    return script


def test_the_coordinator_assigns_roles_and_phases_excludes_and_aggregates(task):
    plan = json.dumps({"Bob": {"role": "researcher", "phase": 1}, "carol": {"role": "writer", "phase": 2},
                       "Zed": {"role": "ghost"}})  # fmt: skip
    result, backend = run("coordinator", coordinator_script(plan))
    called = [[speaker(r) for r in c] for c in backend.calls]
    assert called == [["Alice"], ["Bob"], ["Carol"], ["Alice"]]  # Dave is excluded: never called
    shown = {(speaker(r), i): text_of(r) for i, r in enumerate(backend.requests)}
    assert "researcher" in shown[("Bob", 1)] and work_of("Bob") not in shown[("Bob", 1)]
    assert "writer" in shown[("Carol", 2)] and work_of("Bob") in shown[("Carol", 2)]
    final = backend.requests[3]
    assert final.messages[2] == {"role": "assistant", "content": plan}  # its own conversation
    assert work_of("Bob") in last_user(final) and work_of("Carol") in last_user(final)
    assert result.answer == "4" and result.info["excluded"] == [["Dave"]]
    messages = {e.recipients[0]: e.data for e in result.events if e.kind == "message"}
    assert messages["Dave"] == {"excluded": True, "task": 0}
    assert (messages["Bob"]["role"], messages["Carol"]["phase"]) == ("researcher", 2)
    assert [e.text for e in result.events if e.kind == "error"] == ["assignment names no agent of the team: 'Zed'"]
    roles = {e.worker: (e.text, e.data["phase"]) for e in result.events if e.kind == "role"}
    assert roles == {"Bob": ("researcher", 1), "Carol": ("writer", 2)}
    assert result.events[-1].seen == ["Alice"]


def test_without_a_readable_plan_every_agent_works_in_phase_one(task):
    result, backend = run("coordinator", coordinator_script("I will think about it."))
    assert [[speaker(r) for r in c] for c in backend.calls] == [["Alice"], ["Bob", "Carol", "Dave"], ["Alice"]]
    assert result.info["excluded"] == [[]]
    assert any("no assignment JSON" in e.text for e in result.events if e.kind == "error")
    for request in backend.calls[1]:  # no role given: each chooses its own, as without a coordinator
        assert "Nobody assigns roles" in request.messages[0]["content"]
    assert all(not e.data["assigned"] and e.text == "whatever" for e in result.events if e.kind == "role")


def test_broadcast_shows_every_intention_before_any_work(task):
    def script(request, _):
        who = speaker(request)
        if "Announce your intention" in last_user(request):
            return "ABSTAIN" if who == "Carol" else f"ROLE: part {who}\nI will do part {who}."
        if "Combine the contributions" in last_user(request):
            return "ROLE: compiler\nAll together ANSWER: 4"
        return f"ROLE: part {who}\n{work_of(who)}"

    result, backend = run("broadcast", script)
    intents, works, compile_ = backend.calls
    assert [speaker(r) for r in intents] == ["Alice", "Bob", "Carol", "Dave"]
    assert all("work by" not in text_of(r) for r in intents)  # intentions come first
    assert [speaker(r) for r in works] == ["Alice", "Bob", "Dave"]  # the abstainer does not work
    for request in works:
        assert all(f"I will do part {w}." in last_user(request) for w in ("Alice", "Bob", "Dave"))
        assert "Carol abstains." in last_user(request)
        assert "work by" not in text_of(request)  # intentions, not work
    assert [speaker(r) for r in compile_] == ["Dave"]  # the last contributor compiles
    assert all(work_of(w) in last_user(compile_[0]) for w in ("Alice", "Bob", "Dave"))
    assert result.answer == "4" and result.info["output"] == "compile"
    roles = {e.worker: e.text for e in result.events if e.kind == "role"}
    assert roles == {"Alice": "part Alice", "Bob": "part Bob", "Carol": "", "Dave": "part Dave"}


def test_shared_shows_only_earlier_tasks_of_the_run_in_a_defined_order(tmp_path):
    task, instance = mission_run(tmp_path, 3)

    def script(request, _):
        who = speaker(request)
        current = last_user(request).rsplit("Mission:", 1)[1]  # the memory comes before it
        mission = next(m for m in ("first", "second", "third") if f"Plan the {m} thing" in current)
        if "Combine the contributions" in last_user(request):
            return f"ROLE: compiler\ndeliverable of {mission}"
        return f"ROLE: r-{who}\n{who} on the {mission} mission"

    result, backend = run("shared", script, workers=2, task=task, instance=instance)
    assert [[speaker(r) for r in c] for c in backend.calls] == [["Alice", "Bob"], ["Bob"]] * 3
    order = [m["prompt"] for m in instance.data["run"]]
    firsts = [backend.calls[2 * t][0] for t in range(3)]
    assert "(empty: this is the team's first mission)" in last_user(firsts[0])
    for t, request in enumerate(firsts):
        memory = last_user(request).split("Mission:")[0]
        for earlier in range(3):
            word = mission_of(order[earlier])
            assert (f"Alice on the {word} mission" in memory) == (earlier < t)
        assert f"on the {mission_of(order[t])} mission" not in memory  # nothing of the current task
    # oldest first, worker order within a task
    memory = last_user(firsts[2])
    spots = [memory.index(f"{w} on the {mission_of(order[t])} mission") for t in range(2) for w in ("Alice", "Bob")]
    assert spots == sorted(spots)
    assert result.info["outputs"] == [f"deliverable of {mission_of(p)}" for p in order]
    team_answers = [e for e in result.events if e.kind == "answer" and e.worker == "team"]
    assert [e.data["task"] for e in team_answers] == [0, 1, 2]

    team_only, backend = run("shared", script, workers=2, task=task, instance=instance, memory="team", window=1)
    memory = last_user(backend.calls[4][0]).split("Mission:")[0]
    assert f"deliverable of {mission_of(order[1])}" in memory and "on the" not in memory
    assert mission_of(order[0]) not in memory  # window 1: only the newest earlier task


def mission_of(prompt: str) -> str:
    return prompt.split("Plan the ")[1].split(" ")[0]


def test_role_stability_and_abstention_rate_come_from_the_run(tmp_path):
    task, instance = mission_run(tmp_path, 3)

    def script(request, _):
        who = speaker(request)
        if "Combine" in last_user(request):
            return "done"
        stable = who == "Alice" or "first" in last_user(request)
        return "ABSTAIN" if who == "Carol" else f"ROLE: {'planner' if stable else 'role ' + str(len(last_user(request)))}\ntext"

    result, _ = run("sequential", script, workers=3, task=task, instance=instance)
    metrics = compute_metrics(result.events, task=task, instance=instance, result=result)
    assert metrics["abstention_rate"] == pytest.approx(3 / 9)
    # Alice keeps her role on both pairs of consecutive tasks; Bob changes his at least once
    assert 0.5 <= metrics["role_stability"] < 1.0
    assert metrics["score"] is None  # a mission is scored by the lab's judge


def test_a_shock_removes_an_agent_from_a_given_task_on(tmp_path):
    task, instance = mission_run(tmp_path, 3)
    result, backend = run("sequential", roles_script(), workers=3, task=task, instance=instance,
                          shock={"at": 1, "kind": "remove", "agent": 0})  # fmt: skip
    called = [speaker(c[0]) for c in backend.calls]
    assert called == ["Alice", "Bob", "Carol", "Bob", "Carol", "Bob", "Carol"]
    assert result.info["shock"] == {"at": 1, "kind": "remove", "agent": "Alice"}
    note = next(e for e in result.events if e.kind == "message" and e.worker == "system")
    assert note.data == {"shock": "remove", "agent": "Alice", "task": 1}
    metrics = compute_metrics(result.events, task=task, instance=instance, result=result)
    assert metrics["shocked"] == 1.0


def test_a_shock_swaps_in_another_model_for_one_agent(tmp_path):
    task, instance = mission_run(tmp_path, 2)
    other = {"kind": "fake", "name": f"swap-{time.time_ns()}", "script": ["ROLE: swapped\nfrom the other model"] * 4}
    result, backend = run("broadcast", roles_script(), workers=2, task=task, instance=instance, output="last",
                          shock={"at": 1, "kind": "swap", "agent": "Bob", "model": other})  # fmt: skip
    steps = [(e.worker, e.data["task"], e.text) for e in result.events if e.kind == "step"]
    bob = [text for who, t, text in steps if who == "Bob"]
    assert bob[:2] == ["ROLE: role of Bob\nwork by Bob ANSWER: 3"] * 2  # task 0: his own model
    assert bob[2:] == ["ROLE: swapped\nfrom the other model"] * 2  # task 1: the other model
    assert all(text.startswith("ROLE: role of Alice") for who, _, text in steps if who == "Alice")
    assert len(backend.requests) == 6  # Bob's task-1 calls went elsewhere


@pytest.mark.parametrize("protocol", ["sequential", "broadcast"])
def test_256_agents_on_the_scripted_backend(protocol, task):
    t0 = time.perf_counter()
    result, backend = run(protocol, roles_script(abstainers={f"Alice{k}" for k in range(2, 17)}), workers=256)
    assert time.perf_counter() - t0 < 20
    agents = {speaker(r) for r in backend.requests}
    assert len(agents) == 256
    calls = [len(c) for c in backend.calls]
    assert calls == ([1] * 256 if protocol == "sequential" else [256, 241, 1])
    metrics = compute_metrics(result.events, task=task, instance=task.generate(1, 0)[0], result=result)
    assert metrics["abstention_rate"] == pytest.approx(15 / 256)
    assert metrics["agents"] == 256 and metrics["graph_nodes"] is not None
    if protocol == "sequential":
        assert last_user(backend.requests[-1]).count("work by") == 255 - 15


@pytest.mark.parametrize(("params", "message"), [
    ({"protocol": "anarchy"}, "unknown protocol 'anarchy'"),
    ({"protocol": "coordinator", "output": "last"}, "output does not apply"),
    ({"protocol": "sequential", "output": "best"}, "unknown output 'best'"),
    ({"protocol": "broadcast", "batch": 2}, "batch is an option of protocol sequential only"),
    ({"protocol": "sequential", "batch": 0}, "batch must be an integer >= 1"),
    ({"protocol": "shared", "memory": "all"}, "unknown memory 'all'"),
    ({"protocol": "sequential", "window": 2}, "window is an option of protocol shared only"),
    ({"protocol": "sequential", "shock": {"at": 1, "kind": "quake"}}, "shock.kind must be one of"),
    ({"protocol": "sequential", "shock": {"at": -1, "kind": "remove"}}, "shock.at must be a task index"),
    ({"protocol": "sequential", "shock": {"at": 1, "kind": "swap"}}, "kind swap needs model"),
    ({"protocol": "sequential", "shock": {"at": 1, "kind": "remove", "model": {"kind": "echo"}}}, "model is for kind swap only"),
    ({"protocol": "sequential", "shock": {"at": 1, "kind": "swap", "model": {"kind": "llama"}}}, "unknown backend kind"),
    ({"protocol": "sequential", "shock": {"at": 1, "kind": "remove", "when": 2}}, "has no option when"),
])  # fmt: skip
def test_bad_options_are_one_line_errors(params, message):
    with pytest.raises(HivethinkError, match=message) as err:
        get_substrate("self-organizing", **params)
    assert "\n" not in str(err.value)
