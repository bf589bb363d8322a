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
from hivethink.tasks.base import Instance

pytestmark = pytest.mark.slow  # loads the embedded model

CASES = {
    "shared-cache": ("math", {}, {}),
    "independent": ("math", {}, {}),
    "single": ("countdown", {"numbers": 3}, {}),
    "chat": ("math", {}, {}),
    "blackboard": ("enumerate", {"k": 3, "kind": "primes"}, {}),
    "sequential": ("math", {}, {}),
    "centralized": ("math", {}, {}),
    "debate-du": ("arithmetic", {}, {"rounds": 1, "max_tokens": 8}),
    "program": ("enumerate", {"k": 3, "kind": "primes"}, {}),
    "camel": ("math", {}, {"max_messages": 2, "max_tokens": 8}),
    "agentsnet": ("graph", {"kind": "consensus", "size": 4, "rounds": 1}, {"max_tokens": 8}),
    "consensus-game": ("agree", {"honest": 2, "byzantine": 1, "max_rounds": 1},
                       {"max_tokens": 8, "vote_max_tokens": 8, "retries": 0}),
    "coral": ("pair", {"probe": True}, {"max_turns": 2, "max_tokens": 8, "sycophancy": True}),
}


# AgentsNet's prompts are long and every agent keeps its whole conversation: the smallest
# network (two nodes, one round) keeps the real model's calls few.
INSTANCES = {
    "agentsnet": Instance(task="graph", id="two", prompt="", data={
        "kind": "consensus", "nodes": ["Alice", "Bob"], "edges": [["Alice", "Bob"]], "rounds": 1,
        "colors": None}),
}  # fmt: skip


def test_every_substrate_is_covered():
    assert set(CASES) == set(SUBSTRATES)


@pytest.fixture(scope="module")
def backend(smol):
    return LocalBackend(loaded=smol)


@pytest.mark.parametrize("name", sorted(CASES))
def test_substrate_on_the_embedded_model(name, backend):
    task_name, task_params, params = CASES[name]
    task = get_task(task_name, **task_params)
    inst = INSTANCES.get(name) or task.generate(1, 0)[0]
    res = get_substrate(name, **params).run(inst, task, backend, workers=2,
                                            budget=Budget(max_tokens=8, rounds=1), seed=0)
    assert res.events, name
    assert res.tokens > 0 and res.sequential_passes > 0
    assert any(e.kind == "answer" for e in res.events)
    metrics = compute_metrics(res.events, task=task, instance=inst, result=res)
    assert metrics["tokens"] == res.tokens
    assert 0.0 <= metrics["score"] <= 1.0
