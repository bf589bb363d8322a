"""``chat``: synchronous message rounds over a fixed topology, then final answers (any text task).

Each round every agent replies with one JSON object ``{neighbour_name: message}``. Messages reach
only named neighbours and arrive in the NEXT round (messages of the last round arrive with the
final question); a ``null`` message sends nothing. Messages to non-neighbours are dropped
(``error`` event, counted). A reply that holds no JSON object gets ONE retry with a short
correction; if that also fails the agent sends nothing this round (``error`` event, counted).
``topology`` and ``budget.rounds`` apply; the team answer is the majority of the final answers
(ties: earliest agent). The published AgentsNet protocol on graph tasks is the ``agentsnet``
preset; this is our own neighbour chat for problems any agent could solve alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hivethink.answers import majority
from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.names import worker_names
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import (
    Call,
    Messages,
    Recorder,
    SubstrateBase,
    as_text,
    find_json,
)
from hivethink.tasks.base import Instance, Task

TOPOLOGIES = ("complete", "ring", "star")

SYSTEM = (
    "You are {name}, one of {n} agents solving a problem together. You can talk only to your "
    "neighbours ({neighbours}). Messages are exchanged in rounds and arrive one round later. "
    "After the last round every agent answers on its own.\n\nProblem:\n{problem}"
)
ROUND = (
    "Round {round} of {rounds}. Messages you received:\n{inbox}\n\n"
    "Reply with ONE JSON object mapping neighbour names to your message for them, for example "
    "{example}. Your neighbours: {neighbours}."
)
CORRECTION = (
    "Your reply could not be read as a JSON object. Reply again with only one JSON object "
    "mapping neighbour names to messages, for example {example}."
)
FINAL = "The discussion is over. Messages you received:\n{inbox}\n\n{question}"
QUESTION = "Give your final answer to the problem."


def topology_neighbours(names: list[str], topology: str) -> dict[str, list[str]]:
    """Neighbour lists of ``complete`` (everyone), ``ring`` (both sides) or ``star`` (hub first)."""
    n = len(names)
    if topology == "complete":
        return {a: [b for b in names if b != a] for a in names}
    if topology == "ring":
        return {
            a: sorted({names[(i - 1) % n], names[(i + 1) % n]} - {a}, key=names.index)
            for i, a in enumerate(names)
        }
    hub = names[0]
    return {a: names[1:] if a == hub else [hub] for a in names}


def show_inbox(inbox: list[tuple[str, str]]) -> str:
    return "\n".join(f"- from {sender}: {text}" for sender, text in inbox) or "(none)"


def example(neighbours: list[str]) -> str:
    return json.dumps({nb: "..." for nb in neighbours[:2]} or {"Name": "..."})


@dataclass
class Chat(SubstrateBase):
    """Round-based neighbour messaging; ``topology`` = complete | ring | star."""

    name = "chat"
    topology: str = "complete"

    def __post_init__(self) -> None:
        if self.topology not in TOPOLOGIES:
            raise HivethinkError(
                f"chat: unknown topology {self.topology!r} (choose from {', '.join(TOPOLOGIES)})"
            )

    def run(
        self,
        instance: Instance,
        task: Task,
        backend: Backend,
        *,
        workers: int,
        budget: Budget,
        seed: int,
    ) -> SampleResult:
        rec = Recorder(backend, budget, seed=seed, temperature=self.temperature, probe=instance.probe)
        names = worker_names(workers)
        adjacency = topology_neighbours(names, self.topology)
        rounds = budget.rounds
        history: dict[str, Messages] = {
            n: [{"role": "system", "content": SYSTEM.format(
                name=n, n=len(names), neighbours=", ".join(adjacency[n]), problem=instance.prompt)}]
            for n in names
        }  # fmt: skip
        inbox: dict[str, list[tuple[str, str]]] = {n: [] for n in names}
        counts = {"retries": 0, "silent": 0, "dropped": 0, "delivered": 0}
        done = 0
        for r in range(rounds):
            if rec.exhausted:
                break
            for n in names:
                prompt = ROUND.format(
                    round=r + 1,
                    rounds=rounds,
                    inbox=show_inbox(inbox[n]),
                    example=example(adjacency[n]),
                    neighbours=", ".join(adjacency[n]) or "none",
                )
                history[n].append({"role": "user", "content": prompt})
            outgoing = self._messages(rec, names, history, inbox, adjacency, r, counts)
            inbox = self._deliver(rec, names, outgoing, adjacency, r, counts)
            done = r + 1

        for n in names:
            prompt = FINAL.format(inbox=show_inbox(inbox[n]), question=QUESTION)
            history[n].append({"role": "user", "content": prompt})
        texts = rec.round(
            [Call(n, list(history[n]), seen=[s for s, _ in inbox[n]]) for n in names], step=done
        )
        answers = {n: task.extract(t) for n, t in zip(names, texts, strict=True)}
        rec.answers(answers, step=done)
        info: dict[str, Any] = {
            "rounds": done,
            "budget_exhausted": done < rounds,
            "format_errors": counts["silent"] + counts["dropped"],
            **counts,
        }
        return rec.finish(majority(answers.values()), agent_answers=answers, info=info)

    @staticmethod
    def _messages(
        rec: Recorder,
        names: list[str],
        history: dict[str, Messages],
        inbox: dict[str, list[tuple[str, str]]],
        adjacency: dict[str, list[str]],
        r: int,
        counts: dict[str, int],
    ) -> dict[str, dict[str, Any]]:
        """One messaging round with one retry for unparseable replies; returns parsed objects."""
        texts = rec.round(
            [Call(n, list(history[n]), seen=[s for s, _ in inbox[n]]) for n in names], step=r
        )
        parsed: dict[str, dict[str, Any]] = {}
        failed: list[str] = []
        for n, text in zip(names, texts, strict=True):
            history[n].append({"role": "assistant", "content": text})
            obj = find_json(text, dict)
            if obj is None:
                failed.append(n)
                rec.error(n, "reply is not a JSON object; retrying once", step=r)
                history[n].append(
                    {"role": "user", "content": CORRECTION.format(example=example(adjacency[n]))}
                )
            else:
                parsed[n] = obj
        counts["retries"] += len(failed)
        retried = rec.round(
            [Call(n, list(history[n])) for n in failed], step=r, data={"retry": True}
        )
        for n, text in zip(failed, retried, strict=True):
            history[n].append({"role": "assistant", "content": text})
            obj = find_json(text, dict)
            if obj is None:
                counts["silent"] += 1
                rec.error(n, "reply is not a JSON object after retry; sends nothing", step=r)
            else:
                parsed[n] = obj
        return parsed

    @staticmethod
    def _deliver(
        rec: Recorder,
        names: list[str],
        outgoing: dict[str, dict[str, Any]],
        adjacency: dict[str, list[str]],
        r: int,
        counts: dict[str, int],
    ) -> dict[str, list[tuple[str, str]]]:
        """Route messages to neighbours (sender order) for the next round; drop the rest."""
        inbox: dict[str, list[tuple[str, str]]] = {n: [] for n in names}
        for sender in names:
            for recipient, value in outgoing.get(sender, {}).items():
                if value is None:
                    continue  # null: nothing for this neighbour
                text = as_text(value)
                if recipient in adjacency[sender]:
                    inbox[recipient].append((sender, text))
                    counts["delivered"] += 1
                    rec.event("message", sender, text, step=r, recipients=[recipient])
                else:
                    counts["dropped"] += 1
                    rec.error(sender, f"message to non-neighbour {recipient!r} dropped", step=r)
        return inbox
