"""sequential: fixed order, each sees predecessors, roles and abstentions, final rules."""

from substrate_helpers import last_user, speaker

from hivethink.backends.fake import ScriptedBackend
from hivethink.substrates import get_substrate

REPLIES = {
    "Alice": "ROLE: solver\n2+2 is ANSWER: 4",
    "Bob": "ABSTAIN",
    "Carol": "\nrole : checker\nI get ANSWER: 5",
    "Dave": "I just think ANSWER: 6",
}


def run(final, task, instance, budget, workers=4):
    backend = ScriptedBackend(lambda r, i: REPLIES[speaker(r)])
    sub = get_substrate("sequential", final=final)
    return backend, sub.run(instance, task, backend, workers=workers, budget=budget, seed=0)


def test_order_visibility_roles_and_last(task, instance, budget):
    backend, res = run("last", task, instance, budget)
    assert [len(b) for b in backend.calls] == [1, 1, 1, 1]
    assert [speaker(r) for r in backend.requests] == ["Alice", "Bob", "Carol", "Dave"]
    seen = [last_user(r) for r in backend.requests]
    assert "(nothing yet)" in seen[0]
    assert "Alice:\nROLE: solver" in seen[1]
    assert "Bob: (abstained)" in seen[2] and "Carol" not in seen[2].split("Work so far")[1]
    assert "role : checker" in seen[3]
    roles = [(e.worker, e.text, e.data["abstain"]) for e in res.events if e.kind == "role"]
    assert roles == [
        ("Alice", "solver", False),
        ("Bob", "", True),
        ("Carol", "checker", False),
        ("Dave", "", False),
    ]
    errors = [e.worker for e in res.events if e.kind == "error"]
    assert errors == ["Dave"]  # no ROLE line
    assert res.agent_answers == {"Alice": "4", "Bob": None, "Carol": "5", "Dave": "6"}
    assert res.answer == "6" and res.info == {"abstained": ["Bob"]}
    assert res.sequential_calls == 4
    assert res.sequential_passes == 6 + 1 + 7 + 5  # each call is its own round


def test_vote_with_tie_goes_to_earliest(task, instance, budget):
    _, res = run("vote", task, instance, budget, workers=3)
    assert res.answer == "4"  # Alice 4 vs Carol 5, Bob abstains


def test_last_skips_abstainers(task, instance, budget):
    _, res = run("last", task, instance, budget, workers=2)
    assert res.answer == "4"
