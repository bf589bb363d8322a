"""Metrics of the probes (``hivethink.tasks.probes``), from the trace and the team answer.

Common ground (a ``revision`` probe): ``probe_shown`` (the revision reached some agent),
``probe_follows_revision`` (the team answer is right for the revised problem: the score),
``probe_first_frame`` (the team answer is the one the first premise leads to).

Error propagation (a ``seed`` probe): the seeded agent is the one whose prompts carry the claim.
``probe_repeaters``: other agents whose outputs contain the claim's wrong number;
``probe_repeat_share``: their share of the other agents; ``probe_rounds_to_repeat``: rounds from
the seeded agent's first prompt to the first repetition by another agent (None: none repeated);
``probe_team_misled``: the team answer is the one the wrong claim leads to.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from hivethink.metrics.outcome import Metrics
from hivethink.metrics.views import agent_names
from hivethink.tasks.base import Instance, Task
from hivethink.trace import Event

_OUTPUT_KINDS = ("step", "message", "post")


def _matches(task: Task, instance: Instance, target: str, answer: str | None) -> float:
    return float(task.score(dataclasses.replace(instance, target=target, probe=None), answer))


def first_repeats(events: Sequence[Event], seeded: str, marker: str) -> dict[str, int]:
    """For every agent other than ``seeded`` that wrote ``marker`` (as a whole number), the
    first round (event step) in which it did."""
    pattern = re.compile(rf"(?<![\d.]){re.escape(marker)}(?![\d])")
    agents = set(agent_names(events)) - {seeded}
    out: dict[str, int] = {}
    for e in events:
        fresh = e.kind in _OUTPUT_KINDS and e.worker in agents and e.worker not in out
        if fresh and pattern.search(e.text):
            out[e.worker] = e.step or 0
    return out


def probe_metrics(
    events: Sequence[Event], task: Task, instance: Instance, answer: str | None
) -> Metrics:
    probe = instance.probe
    if probe is None:
        return {}
    shown = [e for e in events if e.kind == "prompt" and e.data.get("probe") == probe.kind]
    misled = _matches(task, instance, probe.misled, answer)
    if probe.kind == "revision":
        return {
            "probe_shown": float(bool(shown)),
            "probe_follows_revision": float(task.score(instance, answer)),
            "probe_first_frame": misled,
        }
    metrics: Metrics = {
        "probe_shown": float(bool(shown)),
        "probe_repeaters": None,
        "probe_repeat_share": None,
        "probe_rounds_to_repeat": None,
        "probe_team_misled": misled,
    }
    if not shown or not probe.marker:
        return metrics
    seeded = shown[0].worker
    others = [a for a in agent_names(events) if a != seeded]
    repeats = first_repeats(events, seeded, probe.marker)
    metrics["probe_repeaters"] = len(repeats)
    metrics["probe_repeat_share"] = len(repeats) / len(others) if others else None
    if repeats:
        metrics["probe_rounds_to_repeat"] = min(repeats.values()) - (shown[0].step or 0)
    return metrics
