"""Views of a trace that several metrics share: who the agents are and what each one wrote."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from hivethink.names import HELPERS
from hivethink.trace import Event

# Workers that are not agents: the team's combined answer, the lab runner's own records, the
# engine's shared prompt (shown to "all"), and protocol helpers (a belief extractor...).
NON_AGENTS = frozenset({"team", "lab", "system", "all"}) | HELPERS
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

    A worker's outputs are its ``step`` events, plus the sampled (not forced) ``token`` events
    written after its last step (an unfinished step when the budget ran out). A worker with no
    steps contributes its ``message`` and ``post`` events instead (so a substrate that logs a
    generation both as a step and as a message is not counted twice), else its sampled tokens
    joined into one text. Agents that wrote nothing map to an empty list.
    """
    steps: dict[str, list[str]] = {}
    messages: dict[str, list[str]] = {}
    tail: dict[str, list[str]] = {}  # sampled tokens since the worker's last step
    for ev in events:
        if ev.kind == "step":
            steps.setdefault(ev.worker, []).append(ev.text)
            tail.pop(ev.worker, None)
        elif ev.kind in _MESSAGE_KINDS:
            messages.setdefault(ev.worker, []).append(ev.text)
        elif ev.kind == "token" and not ev.data.get("forced"):
            tail.setdefault(ev.worker, []).append(ev.text)
    out: dict[str, list[str]] = {}
    for name in agent_names(events):
        unfinished = ["".join(tail[name])] if "".join(tail.get(name, [])).strip() else []
        if name in steps:
            out[name] = steps[name] + unfinished
        elif name in messages:
            out[name] = messages[name]
        else:
            out[name] = unfinished
    return out


def final_answers(events: Sequence[Event]) -> dict[str, str | None]:
    """Each agent's last ``answer`` event text (blank = None); agents that never answered are absent."""
    out: dict[str, str | None] = {}
    for ev in events:
        if ev.kind == "answer" and ev.worker not in NON_AGENTS:
            out[ev.worker] = ev.text.strip() or None
    return out


def forced_texts(events: Sequence[Event]) -> list[str]:
    """Text the engine wrote into workers' streams rather than the model (step headers, the
    redundancy-check question): each worker's runs of ``token`` events with ``data["forced"]``."""
    runs: list[list[str]] = []
    open_run: dict[str, list[str]] = {}
    for ev in events:
        if ev.kind != "token":
            continue
        if ev.data.get("forced"):
            if ev.worker not in open_run:
                open_run[ev.worker] = []
                runs.append(open_run[ev.worker])
            open_run[ev.worker].append(ev.text)
        else:
            open_run.pop(ev.worker, None)
    return ["".join(run) for run in runs]


def own_pieces(events: Sequence[Event]) -> Callable[[list[str]], list[str]]:
    """A function splitting texts into the pieces the model wrote: text the engine forced into
    the streams (``forced_texts``) is cut out, so no n-gram spans or includes it."""
    forced = sorted({f for f in forced_texts(events) if f.strip()}, key=len, reverse=True)
    if not forced:
        return list
    pattern = re.compile("|".join(re.escape(f) for f in forced))
    return lambda texts: [piece for text in texts for piece in pattern.split(text)]
