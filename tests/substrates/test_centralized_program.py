"""centralized (coordinator plans and combines) and program (information hiding)."""

from substrate_helpers import last_user, text_of

from hivethink.backends.fake import ScriptedBackend
from hivethink.substrates import get_substrate


def script(request, index):
    system = request.messages[0]["content"]
    if system.startswith("Combine") or "workers' results" in last_user(request):
        return "Combined: ANSWER: 4"
    if "subtasks" in system and "JSON list" in system:  # the plan call
        return 'Plan: ["add the twos", "double check"] thanks'
    return f"result of <{last_user(request).splitlines()[-1]}>"


def test_centralized(task, instance, budget):
    backend = ScriptedBackend(script)
    res = get_substrate("centralized").run(
        instance, task, backend, workers=3, budget=budget, seed=0
    )
    assert [len(b) for b in backend.calls] == [1, 2, 1]
    assert res.sequential_calls == 3 and res.answer == "4"
    workers = backend.calls[1]
    assert "What is 2+2?" in text_of(workers[0]) and "add the twos" in text_of(workers[0])
    assert "double check" in text_of(workers[1])
    combine = backend.calls[2][0]
    assert combine.messages[2]["role"] == "assistant"  # coordinator keeps its own plan
    assert "result of <add the twos>" in last_user(combine)
    assert "result of <double check>" in last_user(combine)
    msgs = [(e.worker, e.recipients) for e in res.events if e.kind == "message"]
    assert msgs == [
        ("coordinator", ["Alice"]),
        ("coordinator", ["Bob"]),
        ("Alice", ["coordinator"]),
        ("Bob", ["coordinator"]),
    ]
    assert res.info["subtasks"] == ["add the twos", "double check"]


def test_centralized_without_plan_gives_everyone_the_whole_problem(task, instance, budget):
    backend = ScriptedBackend(["no list", "a", "b", "ANSWER: 4"])
    res = get_substrate("centralized").run(
        instance, task, backend, workers=2, budget=budget, seed=0
    )
    assert [len(b) for b in backend.calls] == [1, 2, 1]
    assert [e.kind for e in res.events].count("error") == 1 and res.answer == "4"


def test_program_hides_information(task, instance, budget):
    backend = ScriptedBackend(script)
    res = get_substrate("program").run(instance, task, backend, workers=1, budget=budget, seed=0)
    assert [len(b) for b in backend.calls] == [1, 1, 1]  # workers=1 caps the subtasks
    solver = backend.calls[1][0]
    assert last_user(solver) == "add the twos"
    assert "2+2" not in text_of(solver) and "Plan:" not in text_of(solver)
    combine = backend.calls[2][0]
    assert "Result: result of <add the twos>" in text_of(combine)
    assert "Plan:" not in text_of(combine) and "double check" not in text_of(combine)
    assert res.answer == "4" and res.agent_answers == {"combiner": "4"}


def test_program_without_plan_solves_the_whole_problem(task, instance, budget):
    backend = ScriptedBackend(["???", "ANSWER: 4", "ANSWER: 4"])
    res = get_substrate("program").run(instance, task, backend, workers=3, budget=budget, seed=0)
    assert last_user(backend.calls[1][0]) == "What is 2+2?"
    assert res.answer == "4"
