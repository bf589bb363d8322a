"""Every substrate end to end on the embedded model (tiny instances, a few tokens per call):
each produces a trace and metrics. Protocol logic is asserted exactly against the scripted
backend in the other files; this checks the real engine path under every protocol."""

from __future__ import annotations

import pytest

from hivethink.backends.local import LocalBackend
from hivethink.metrics import compute_metrics
from hivethink.substrates import SUBSTRATES, get_substrate
from hivethink.substrates.base import Budget
from hivethink.tasks import get_task

CASES = {
    "shared-cache": ("math", {}, {}),
    "independent": ("math", {}, {}),
    "single": ("countdown", {"numbers": 3}, {}),
    "chat": ("graph", {"kind": "consensus", "size": 4, "rounds": 1}, {}),
    "blackboard": ("enumerate", {"k": 3, "kind": "primes"}, {}),
    "sequential": ("math", {}, {}),
    "centralized": ("math", {}, {}),
    "debate": ("math", {}, {}),
    "program": ("enumerate", {"k": 3, "kind": "primes"}, {}),
    "roleplay": ("math", {}, {"max_messages": 4}),
    "agree": ("agree", {"agents": 3, "max_rounds": 2}, {}),
    "pair": ("pair", {"probe": True}, {"max_turns": 2}),
}


def test_every_substrate_is_covered():
    assert set(CASES) == set(SUBSTRATES)


@pytest.fixture(scope="module")
def backend(smol):
    return LocalBackend(loaded=smol)


@pytest.mark.parametrize("name", sorted(CASES))
def test_substrate_on_the_embedded_model(name, backend):
    task_name, task_params, params = CASES[name]
    task = get_task(task_name, **task_params)
    inst = task.generate(1, 0)[0]
    res = get_substrate(name, **params).run(inst, task, backend, workers=2,
                                            budget=Budget(max_tokens=8, rounds=1), seed=0)
    assert res.events, name
    assert res.tokens > 0 and res.sequential_passes > 0
    assert any(e.kind == "answer" for e in res.events)
    metrics = compute_metrics(res.events, task=task, instance=inst, result=res)
    assert metrics["tokens"] == res.tokens
    assert 0.0 <= metrics["score"] <= 1.0
