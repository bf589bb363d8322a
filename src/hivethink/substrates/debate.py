"""``debate``: multi-agent debate (Du et al.): answer, read the others, revise; majority at the end.

``budget.rounds`` rounds in all: in round 0 every agent answers alone; in each later round every
agent (continuing its own conversation) reads the other agents' replies of the previous round
and gives an updated answer. The team answer is the majority of the last round's extracted
answers (ties: earliest agent); each agent's last answer is also recorded as a ``vote``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hivethink.backends.base import Backend
from hivethink.names import worker_names
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import (
    Call,
    Messages,
    Recorder,
    SubstrateBase,
    conversation,
    majority,
)
from hivethink.tasks.base import Instance, Task

SYSTEM = "You are {name}. Solve the problem and state your final answer clearly."
REVISE = (
    "Here are the other agents' latest replies:\n\n{others}\n\nUse their reasoning as extra "
    "advice, check it, and give your updated final answer."
)


@dataclass
class Debate(SubstrateBase):
    """No parameters beyond ``temperature``; rounds come from ``budget.rounds`` (at least 1)."""

    name = "debate"

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
        rec = Recorder(backend, budget, seed=seed, temperature=self.temperature)
        names = worker_names(workers)
        history: dict[str, Messages] = {
            n: conversation(SYSTEM.format(name=n), instance.prompt) for n in names
        }
        latest: dict[str, str] = {}
        rounds = max(1, budget.rounds)
        done = 0
        for r in range(rounds):
            if r > 0:
                if rec.exhausted:
                    break
                for n in names:
                    others = "\n\n".join(f"{m}:\n{latest[m]}" for m in names if m != n)
                    history[n].append({"role": "user", "content": REVISE.format(others=others)})
            calls = [
                Call(n, list(history[n]), seen=[m for m in names if m != n] if r else [])
                for n in names
            ]
            for n, text in zip(names, rec.round(calls, step=r), strict=True):
                history[n].append({"role": "assistant", "content": text})
                latest[n] = text
            done = r + 1
        answers = {n: task.extract(latest[n]) for n in names}
        rec.answers(answers, step=done - 1)
        for n, a in answers.items():
            rec.event("vote", n, a or "", step=done - 1, data={"value": a})
        return rec.finish(
            majority(answers.values()),
            agent_answers=answers,
            info={"rounds": done, "budget_exhausted": done < rounds},
        )
