"""The ``self-organizing`` preset with 16 agents on the embedded model (slow): every agent is
called once in the fixed order, each prompt holds exactly the finished work before it, and the
metrics and defect attribution run on the real trace."""

from __future__ import annotations

import pytest

from hivethink.backends.local import LocalBackend
from hivethink.metrics import compute_metrics
from hivethink.metrics.defects import attribute
from hivethink.names import worker_names
from hivethink.substrates import get_substrate
from hivethink.substrates.base import Budget
from hivethink.tasks import get_task

pytestmark = pytest.mark.slow


def test_sixteen_agents_in_a_fixed_order_on_the_embedded_model(smol):
    task = get_task("countdown", numbers=3)
    instance = task.generate(1, 0)[0]
    result = get_substrate("self-organizing", protocol="sequential", temperature=0.0).run(
        instance, task, LocalBackend(loaded=smol), workers=16, budget=Budget(max_tokens=6), seed=0
    )
    prompts = [e for e in result.events if e.kind == "prompt"]
    steps = [e for e in result.events if e.kind == "step"]
    roles = [e for e in result.events if e.kind == "role"]
    names = worker_names(16)
    assert [p.worker for p in prompts] == names and [s.worker for s in steps] == names
    assert result.sequential_calls == 16
    contributed: list[str] = []
    for prompt, step, role in zip(prompts, steps, roles, strict=True):
        assert prompt.seen == contributed  # exactly the finished, non-abstaining work before it
        assert role.worker == step.worker
        if not role.data["abstain"]:
            contributed.append(step.worker)
    metrics = compute_metrics(result.events, task=task, instance=instance, result=result)
    assert metrics["agents"] == 16 and 0.0 <= metrics["abstention_rate"] <= 1.0
    assert result.tokens == sum(s.data["tokens"] for s in steps) and result.prompt_tokens > 0
    found = attribute(result.events, task, instance)
    assert found is not None and found.graph.number_of_nodes() == 17  # 16 agents and the team
