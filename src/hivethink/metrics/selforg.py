"""Self-organisation and single-or-multi metrics of one sample (protocols.md §8 and §11).

From the ``role`` events (``data["abstain"]``, ``data["task"]``: the task of a run) and the
protocol facts a substrate reports in ``info``:

- ``abstention_rate``: abstentions / agent turns that declared a role or abstained (None when no
  agent was asked to);
- ``roles_named``: the turns that named a role (a turn that took part without a ROLE line names
  none; ``roles_declared`` counts every turn that did not abstain);
- ``role_stability``: the role stability index across the tasks of a run: of the pairs
  (agent, task t, task t+1) where the agent named a role in both, the share with the same role
  (normalised text: case, whitespace, a trailing full stop). 0 when agents reinvent their roles
  every task, 1 when each keeps one; None for a run of one task. A single agent standing in for
  team members (``sas``: ``data["as"]``) is counted per member;
- ``escalated`` (cascade: the checker failed the SAS answer and the MAS ran), ``routed_mas``
  (router: the request went to the MAS), ``difficulty`` (the router's rating), ``shocked``
  (a shock took effect in the run).

Unique roles are ``distinct_roles`` (:func:`hivethink.metrics.coordination.role_metrics`); the
chain depth is ``chain_depth`` (:mod:`hivethink.metrics.defects`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hivethink.metrics.outcome import Metrics
from hivethink.metrics.text import normalize
from hivethink.metrics.views import NON_AGENTS
from hivethink.trace import Event


def role_stability(events: Sequence[Event]) -> float | None:
    """The role stability index (module docstring)."""
    roles: dict[tuple[str, int], str | None] = {}  # (agent, task) -> role, None when abstained
    for ev in events:
        if ev.kind != "role" or ev.worker in NON_AGENTS:
            continue
        who = str(ev.data.get("as", ev.worker))
        role = None if ev.data.get("abstain") or not ev.text.strip() else normalize(ev.text)
        roles[(who, int(ev.data.get("task", 0)))] = role
    pairs = [
        (role, roles[(who, t + 1)])
        for (who, t), role in roles.items()
        if role is not None and roles.get((who, t + 1)) is not None
    ]
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else None


def _flag(value: Any) -> float | None:
    return None if value is None else (1.0 if bool(value) else 0.0)


def _shocked(info: dict[str, Any]) -> float | None:
    """1 when a shock took effect within the run (its task index was reached), 0 when the run
    had a shock that never came, None without one."""
    shock = info.get("shock")
    if not isinstance(shock, dict):
        return None
    return float(int(shock.get("at", 0)) < int(info.get("tasks", 1)))


def selforg_metrics(events: Sequence[Event], info: dict[str, Any] | None = None) -> Metrics:
    """The metrics of the module docstring."""
    info = info or {}
    turns = [e for e in events if e.kind == "role" and e.worker not in NON_AGENTS]
    abstained = sum(1 for e in turns if e.data.get("abstain"))
    route = info.get("route")
    difficulty = info.get("difficulty")
    return {
        "abstention_rate": abstained / len(turns) if turns else None,
        "roles_named": sum(1 for e in turns if not e.data.get("abstain") and e.text.strip())
        if turns
        else None,
        "role_stability": role_stability(events),
        "escalated": _flag(info.get("escalated")),
        "routed_mas": None if route is None else float(route == "mas"),
        "difficulty": difficulty
        if isinstance(difficulty, int) and not isinstance(difficulty, bool)
        else None,
        "shocked": _shocked(info),
    }
