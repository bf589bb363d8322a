"""Self-organisation metrics: abstention rate, the role stability index, hybrid facts."""

from __future__ import annotations

import pytest

from hivethink.metrics.selforg import role_stability, selforg_metrics
from hivethink.trace import Event


def role(worker, text, task, abstain=False, **data):
    return Event(kind="role", worker=worker, text=text, data={"abstain": abstain, "task": task, **data})


def test_role_stability_counts_consecutive_tasks_where_an_agent_named_a_role_in_both():
    events = [
        role("Alice", "Planner", 0), role("Alice", "planner.", 1), role("Alice", "planner", 2),  # 2 of 2
        role("Bob", "writer", 0), role("Bob", "critic", 1), role("Bob", "", 2, abstain=True),  # 0 of 1
        role("Carol", "tester", 0), role("Carol", "tester", 2),  # not consecutive: no pair
        role("team", "x", 0), role("team", "x", 1),  # not an agent
    ]
    assert role_stability(events) == pytest.approx(2 / 3)
    assert role_stability([role("Alice", "a", 0), role("Bob", "b", 0)]) is None  # one task
    reinvented = [role("Alice", f"role {t}", t) for t in range(4)]
    assert role_stability(reinvented) == 0.0
    sas = [role("solo", "a", 0, **{"as": "Alice"}), role("solo", "b", 0, **{"as": "Bob"}),
           role("solo", "a", 1, **{"as": "Alice"}), role("solo", "c", 1, **{"as": "Bob"})]  # fmt: skip
    assert role_stability(sas) == 0.5  # per member the one agent stands in for


def test_abstention_rate_and_the_hybrid_facts():
    events = [role("Alice", "a", 0), role("Bob", "", 0, abstain=True), role("Carol", "c", 0),
              role("Dave", "", 0, abstain=True), role("Eve", "", 0)]  # fmt: skip
    metrics = selforg_metrics(events, {"escalated": True, "route": "mas", "difficulty": 7})
    assert metrics["abstention_rate"] == 0.4
    assert metrics["roles_named"] == 2  # Eve took part without naming a role
    assert (metrics["escalated"], metrics["routed_mas"], metrics["difficulty"]) == (1.0, 1.0, 7)
    assert selforg_metrics([], {"route": "sas"})["routed_mas"] == 0.0
    bare = selforg_metrics([], {})
    assert bare["abstention_rate"] is None and bare["roles_named"] is None and bare["escalated"] is None and bare["shocked"] is None
    assert selforg_metrics([], {"protocol": "shared", "tasks": 3, "shock": {"at": 1}})["shocked"] == 1.0
    assert selforg_metrics([], {"protocol": "shared", "tasks": 1, "shock": {"at": 1}})["shocked"] == 0.0
