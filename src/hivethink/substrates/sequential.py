"""``sequential``: a fixed speaking order; each agent picks its own role or abstains.

Agents speak one after another (one backend call per agent, so N sequential rounds). Each sees
the problem and every predecessor's output, and starts with a line ``ROLE: <role>`` or
``ABSTAIN``. A reply without either line counts as taking part with an undeclared role
(``error`` event). The team answer is the last extractable answer of a non-abstaining agent
(``final="last"``) or the majority over non-abstaining agents (``final="vote"``; ties:
earliest). Abstainers' answers are None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hivethink.answers import majority
from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.names import worker_names
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Recorder, SubstrateBase, conversation
from hivethink.tasks.base import Instance, Task

FINALS = ("last", "vote")

SYSTEM = (
    "You are {name}, agent {position} of {n} working on a problem in a fixed order. You see the "
    "work of the agents before you. Choose the role in which you can help most now and begin "
    "your reply with the line 'ROLE: <your role>', then do that work and state the final answer "
    "as the problem asks. If you cannot add anything useful, reply with just 'ABSTAIN'."
)
USER = "Problem:\n{problem}\n\nWork so far:\n{work}"

ROLE_LINE = re.compile(r"^\s*ROLE\s*:\s*(.+?)\s*$", re.IGNORECASE)
ABSTAIN_LINE = re.compile(r"^\s*ABSTAIN\b", re.IGNORECASE)


def parse_role(text: str) -> tuple[str | None, bool]:
    """``(role, abstain)`` from the first non-empty line; ``(None, False)`` when undeclared."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    if ABSTAIN_LINE.match(first):
        return None, True
    match = ROLE_LINE.match(first)
    return (match.group(1), False) if match else (None, False)


@dataclass
class Sequential(SubstrateBase):
    """``final`` = last | vote."""

    name = "sequential"
    final: str = "last"

    def __post_init__(self) -> None:
        if self.final not in FINALS:
            raise HivethinkError(f"sequential: final must be one of {FINALS}, not {self.final!r}")

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
        work: list[str] = []
        answers: dict[str, str | None] = {}
        abstained: list[str] = []
        for i, n in enumerate(names):
            system = SYSTEM.format(name=n, position=i + 1, n=workers)
            user = USER.format(problem=instance.prompt, work="\n\n".join(work) or "(nothing yet)")
            [text] = rec.round([Call(n, conversation(system, user), seen=names[:i])], step=i)
            role, abstain = parse_role(text)
            if role is None and not abstain:
                rec.error(n, "no ROLE or ABSTAIN line", step=i)
            rec.event("role", n, role or "", step=i, data={"abstain": abstain})
            if abstain:
                abstained.append(n)
                answers[n] = None
                work.append(f"{n}: (abstained)")
            else:
                answers[n] = task.extract(text)
                work.append(f"{n}:\n{text}")
        rec.answers(answers, step=len(names))
        if self.final == "last":
            team = next((a for a in reversed(answers.values()) if a is not None), None)
        else:
            team = majority(answers.values())
        return rec.finish(team, agent_answers=answers, info={"abstained": abstained})
