"""``independent``: N workers solve the problem alone; the team answer is their majority vote."""

from __future__ import annotations

from dataclasses import dataclass

from hivethink.answers import majority
from hivethink.backends.base import Backend
from hivethink.names import worker_names
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Recorder, SubstrateBase, conversation
from hivethink.tasks.base import Instance, Task

SYSTEM = "You are {name}. Solve the problem on your own and state your final answer clearly."


@dataclass
class Independent(SubstrateBase):
    """No communication at all; ties in the vote go to the answer of the earliest worker."""

    name = "independent"

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
        calls = [Call(n, conversation(SYSTEM.format(name=n), instance.prompt)) for n in names]
        texts = rec.round(calls, step=0)
        answers = {n: task.extract(t) for n, t in zip(names, texts, strict=True)}
        rec.answers(answers, step=0)
        for n, a in answers.items():
            rec.event("vote", n, a or "", step=0, data={"value": a})
        return rec.finish(majority(answers.values()), agent_answers=answers)
