"""``blackboard``: agents coordinate only through a shared board of typed entries.

Each round every agent reads the board (every entry, or only the kinds in ``subscribe``) as it
stood at the start of the round, and posts entries as JSON lines ``{"kind": ..., "text": ...}``
with kind one of plan, claim, result, question, answer. Lines that are not valid entries are
ignored (one ``error`` event per reply that posts nothing valid). The board keeps posting order
(rounds, then worker order). The team answer is the latest ``answer`` entry that holds an
extractable answer (``final="latest"``), or the majority of each agent's latest extractable
``answer`` entry (``final="vote"``; ties: earliest agent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hivethink.answers import majority
from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.names import worker_names
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Recorder, SubstrateBase, conversation
from hivethink.tasks.base import Instance, Task

KINDS = ("plan", "claim", "result", "question", "answer")
FINALS = ("latest", "vote")

SYSTEM = (
    "You are {name}, one of {n} agents solving a problem together through a shared blackboard. "
    "You see the board and add entries to it, one JSON object per line: "
    '{{"kind": "<kind>", "text": "<text>"}} with kind one of: plan, claim, result, question, '
    "answer. Split the work, build on others' entries, and post the final answer in an answer "
    "entry, written as the problem asks.\n\nProblem:\n{problem}"
)
ROUND = "Round {round} of {rounds}.{last} The board:\n{board}\n\nPost your entries (JSON lines)."
LAST = " This is the last round: post an answer entry."


@dataclass
class Entry:
    author: str
    kind: str
    text: str


def parse_entries(text: str) -> list[tuple[str, str]]:
    """The valid ``(kind, text)`` entries in a reply, one JSON object per line."""
    entries = []
    for line in text.splitlines():
        try:
            obj = json.loads(line.strip())
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
            continue
        if isinstance(obj, dict) and obj.get("kind") in KINDS and isinstance(obj.get("text"), str):
            entries.append((obj["kind"], obj["text"]))
    return entries


@dataclass
class Blackboard(SubstrateBase):
    """``subscribe`` = kinds each agent reads (None: all); ``final`` = latest | vote."""

    name = "blackboard"
    subscribe: list[str] | None = None
    final: str = "latest"

    def __post_init__(self) -> None:
        if isinstance(self.subscribe, str):
            self.subscribe = [k.strip() for k in self.subscribe.split(",") if k.strip()]
        unknown = sorted(set(self.subscribe or []) - set(KINDS))
        if unknown:
            raise HivethinkError(f"blackboard: unknown entry kinds {unknown} (known: {KINDS})")
        if self.final not in FINALS:
            raise HivethinkError(f"blackboard: final must be one of {FINALS}, not {self.final!r}")

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
        board: list[Entry] = []
        done = 0
        for r in range(budget.rounds):
            if rec.exhausted:
                break
            visible = [e for e in board if self.subscribe is None or e.kind in self.subscribe]
            shown = (
                "\n".join(
                    f"[{i + 1}] {e.author} ({e.kind}): {e.text}" for i, e in enumerate(visible)
                )
                or "(empty)"
            )
            user = ROUND.format(
                round=r + 1,
                rounds=budget.rounds,
                board=shown,
                last=LAST if r == budget.rounds - 1 else "",
            )
            seen = sorted({e.author for e in visible}, key=names.index)
            calls = [
                Call(
                    n,
                    conversation(SYSTEM.format(name=n, n=workers, problem=instance.prompt), user),
                    seen=seen,
                )
                for n in names
            ]
            for n, text in zip(names, rec.round(calls, step=r), strict=True):
                entries = parse_entries(text)
                if not entries:
                    rec.error(n, "reply holds no valid board entry", step=r)
                for kind, entry_text in entries:
                    board.append(Entry(n, kind, entry_text))
                    rec.event("post", n, entry_text, step=r, data={"entry_kind": kind})
            done = r + 1

        extracted = [(e.author, task.extract(e.text)) for e in board if e.kind == "answer"]
        extracted = [(author, a) for author, a in extracted if a is not None]
        answers: dict[str, str | None] = {n: None for n in names}
        for author, a in extracted:
            answers[author] = a
        if self.final == "latest":
            team = extracted[-1][1] if extracted else None
        else:
            team = majority(answers.values())
        rec.answers(answers, step=done)
        return rec.finish(
            team,
            agent_answers=answers,
            info={"rounds": done, "entries": len(board), "budget_exhausted": done < budget.rounds},
        )
