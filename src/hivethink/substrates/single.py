"""``single``: one worker with the whole team's token budget (the baseline every team needs)."""

from __future__ import annotations

from dataclasses import dataclass

from hivethink.backends.base import Backend
from hivethink.names import worker_names
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Recorder, SubstrateBase, conversation
from hivethink.tasks.base import Instance, Task

SYSTEM = "You are {name}. Solve the problem carefully and state your final answer clearly."


@dataclass
class Single(SubstrateBase):
    """One call of ``budget.total_tokens`` tokens, or ``workers * budget.max_tokens`` if unset."""

    name = "single"

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
        [name] = worker_names(1)
        max_tokens = budget.total_tokens or workers * budget.max_tokens
        [text] = rec.round(
            [Call(name, conversation(SYSTEM.format(name=name), instance.prompt))],
            step=0,
            max_tokens=max_tokens,
        )
        answer = task.extract(text)
        rec.answers({name: answer}, step=0)
        return rec.finish(answer, agent_answers={name: answer}, info={"max_tokens": max_tokens})
