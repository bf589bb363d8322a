"""Views of a trace that several metrics share: who the agents are and what each one wrote."""

from __future__ import annotations

from collections.abc import Sequence

from hivethink.trace import Event

# Workers that are not agents: the team's combined answer and the lab runner's own records.
NON_AGENTS = frozenset({"team", "lab", "system"})
# Kinds that carry a worker's own generated text, used when a worker has no `step` events.
_MESSAGE_KINDS = ("message", "post")


def agent_names(events: Sequence[Event]) -> list[str]:
    """Every worker that took part (any event), in order of first appearance, minus non-agents."""
    seen: dict[str, None] = {}
    for ev in events:
        if ev.worker not in NON_AGENTS:
            seen.setdefault(ev.worker, None)
    return list(seen)


def worker_outputs(events: Sequence[Event]) -> dict[str, list[str]]:
    """Each agent's generated texts in trace order.

    A worker's outputs are its ``step`` events; a worker with no steps contributes its
    ``message`` and ``post`` events instead (so a substrate that logs a generation both as a step
    and as a message is not counted twice); a worker with only ``token`` events contributes its
    tokens joined into one text. Agents that wrote nothing map to an empty list.
    """
    steps: dict[str, list[str]] = {}
    messages: dict[str, list[str]] = {}
    tokens: dict[str, list[str]] = {}
    for ev in events:
        if ev.kind == "step":
            steps.setdefault(ev.worker, []).append(ev.text)
        elif ev.kind in _MESSAGE_KINDS:
            messages.setdefault(ev.worker, []).append(ev.text)
        elif ev.kind == "token":
            tokens.setdefault(ev.worker, []).append(ev.text)
    out: dict[str, list[str]] = {}
    for name in agent_names(events):
        if name in steps:
            out[name] = steps[name]
        elif name in messages:
            out[name] = messages[name]
        elif name in tokens:
            out[name] = ["".join(tokens[name])]
        else:
            out[name] = []
    return out


def final_answers(events: Sequence[Event]) -> dict[str, str | None]:
    """Each agent's last ``answer`` event text (blank = None); agents that never answered are absent."""
    out: dict[str, str | None] = {}
    for ev in events:
        if ev.kind == "answer" and ev.worker not in NON_AGENTS:
            out[ev.worker] = ev.text.strip() or None
    return out
