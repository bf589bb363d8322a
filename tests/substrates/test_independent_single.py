"""independent (one batch, majority vote) and single (one call with the team's budget)."""

from hivethink.backends.fake import ScriptedBackend
from hivethink.substrates import get_substrate
from hivethink.substrates.base import Budget


def test_independent_one_batch_majority(task, instance, budget):
    backend = ScriptedBackend(["ANSWER: 4", "so ANSWER: 5", "ANSWER: 5 ok"])
    res = get_substrate("independent").run(
        instance, task, backend, workers=3, budget=budget, seed=0
    )
    assert [len(b) for b in backend.calls] == [3]
    assert res.answer == "5"
    assert res.agent_answers == {"Alice": "4", "Bob": "5", "Carol": "5"}
    assert res.sequential_calls == 1 and res.sequential_passes == 3 and res.tokens == 2 + 3 + 3
    votes = [(e.worker, e.data["value"]) for e in res.events if e.kind == "vote"]
    assert votes == [("Alice", "4"), ("Bob", "5"), ("Carol", "5")]
    assert all("What is 2+2?" in r.messages[-1]["content"] for r in backend.requests)
    team = res.events[-1]
    assert (team.kind, team.worker, team.text) == ("answer", "team", "5")


def test_independent_tie_goes_to_first_worker(task, instance, budget):
    backend = ScriptedBackend(["no idea", "ANSWER: 7", "ANSWER: 4"])
    res = get_substrate("independent").run(
        instance, task, backend, workers=3, budget=budget, seed=0
    )
    assert res.answer == "7"


def test_single_gets_the_team_budget(task, instance):
    backend = ScriptedBackend(lambda r, i: "ANSWER: 4")
    single = get_substrate("single")
    res = single.run(instance, task, backend, workers=4, budget=Budget(max_tokens=100), seed=0)
    assert res.answer == "4" and res.agent_answers == {"Alice": "4"}
    assert backend.requests[0].max_tokens == 400
    single.run(instance, task, backend, workers=4, budget=Budget(tokens=333), seed=0)
    assert backend.requests[1].max_tokens == 333
    single.run(instance, task, backend, workers=4, budget=Budget(passes=50, tokens=333), seed=0)
    assert backend.requests[2].max_tokens == 50  # one worker: passes are tokens; the tighter wins
    assert len(backend.calls) == 3 and res.sequential_calls == 1 and res.sequential_passes == 2
