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
    """One call. With ``budget.passes`` or ``budget.tokens`` set it may use all of them (one
    worker: its passes are its tokens); with neither, ``workers * budget.max_tokens`` tokens, the
    compute of an N-worker team that writes one message each."""

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
        rec = Recorder(backend, budget, seed=seed, temperature=self.temperature, probe=instance.probe)
        [name] = worker_names(1)
        if budget.passes is None and budget.tokens is None:
            max_tokens = workers * budget.max_tokens
        else:
            max_tokens = rec.call_cap(1, max(budget.passes or 0, budget.tokens or 0))
        [text] = rec.round(
            [Call(name, conversation(SYSTEM.format(name=name), instance.prompt))],
            step=0,
            max_tokens=max_tokens,
        )
        answer = task.extract(text)
        rec.answers({name: answer}, step=0)
        return rec.finish(answer, agent_answers={name: answer}, info={"max_tokens": max_tokens})
