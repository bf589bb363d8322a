"""The shared-cache substrate on the embedded model, and its refusal of text-only backends."""

from __future__ import annotations

import pytest

from hivethink.backends.fake import ScriptedBackend
from hivethink.backends.local import LocalBackend
from hivethink.errors import HivethinkError
from hivethink.substrates import get_substrate
from hivethink.substrates.base import Budget
from hivethink.tasks import get_task
from hivethink.tasks.math import MathTask


class NoAnswerMath(MathTask):
    """The math task, except that no text holds an answer: a hive can only stop at its budget."""

    def extract(self, text: str) -> str | None:
        return None


@pytest.mark.parametrize(("budget", "passes"), [
    (Budget(max_tokens=12, rounds=2), 24),  # neither limit set: max_tokens x rounds passes
    (Budget(tokens=30), 15),  # a token budget: one token per worker and pass
    (Budget(passes=10, tokens=100), 10),  # both: the tighter one
])
def test_shared_cache_spends_its_budget_then_asks_the_finisher(smol, budget, passes):
    task = NoAnswerMath()
    inst = task.generate(1, 0)[0]
    res = get_substrate("shared-cache", layout="combined", examples=False, extract="task").run(  # the task's reader
        inst, task, LocalBackend(loaded=smol), workers=2, budget=budget, seed=0)
    # no step can hold an answer, so every pass of the budget is spent, then the finisher asks
    assert res.info["finished_by"] == "finisher"
    assert res.sequential_passes == passes
    tokens = [e for e in res.events if e.kind == "token"]
    assert {e.worker for e in tokens} == {"Alice", "Bob"}
    assert res.tokens == 2 * passes  # one sampled token per worker and pass
    assert res.agent_answers == {"Alice": None, "Bob": None}  # nobody finished a step with one
    [fin] = [e for e in res.events if e.kind == "step" and e.data.get("finisher")]
    assert fin.worker == "finisher" and fin.data["tokens"] <= 16  # once, for the team
    [team] = [e for e in res.events if e.kind == "answer" and e.worker == "team"]
    assert team.data["finished_by"] == "finisher" and team.text == (res.answer or "")


def test_shared_cache_needs_the_local_backend():
    task = get_task("math")
    inst = task.generate(1, 0)[0]
    with pytest.raises(HivethinkError, match="needs the local backend"):
        get_substrate("shared-cache").run(inst, task, ScriptedBackend(script=["x"]), workers=2,
                                          budget=Budget(), seed=0)
