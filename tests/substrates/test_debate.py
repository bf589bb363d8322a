"""debate: independent first round, then each agent reads the others; majority at the end."""

from substrate_helpers import last_user, speaker

from hivethink.backends.fake import ScriptedBackend
from hivethink.substrates import get_substrate
from hivethink.substrates.base import Budget

FIRST = {"Alice": "ANSWER: 4", "Bob": "ANSWER: 5", "Carol": "ANSWER: 6"}
SECOND = {"Alice": "still ANSWER: 4", "Bob": "ok ANSWER: 4", "Carol": "ANSWER: 6"}


def script(request, index):
    return (FIRST if len(request.messages) == 2 else SECOND)[speaker(request)]


def test_debate_rounds_visibility_and_vote(task, instance):
    backend = ScriptedBackend(script)
    res = get_substrate("debate").run(
        instance, task, backend, workers=3, budget=Budget(rounds=2), seed=0
    )
    assert [len(b) for b in backend.calls] == [3, 3]
    alice2 = last_user(backend.calls[1][0])
    assert "Bob:\nANSWER: 5" in alice2 and "Carol:\nANSWER: 6" in alice2
    assert "Alice:" not in alice2
    assert backend.calls[1][0].messages[2] == {"role": "assistant", "content": "ANSWER: 4"}
    assert res.answer == "4" and res.agent_answers == {"Alice": "4", "Bob": "4", "Carol": "6"}
    votes = [(e.worker, e.data["value"]) for e in res.events if e.kind == "vote"]
    assert votes == [("Alice", "4"), ("Bob", "4"), ("Carol", "6")]
    assert res.info == {"rounds": 2, "budget_exhausted": False}
    assert res.sequential_calls == 2 and res.sequential_passes == 2 + 3


def test_debate_single_round_is_independent_vote(task, instance):
    backend = ScriptedBackend(script)
    res = get_substrate("debate").run(
        instance, task, backend, workers=3, budget=Budget(rounds=1), seed=0
    )
    assert len(backend.calls) == 1 and res.answer == "4"  # three-way tie: first worker
