"""``centralized``: a coordinator splits the problem, workers solve, the coordinator combines.

Three sequential rounds: the coordinator lists subtasks (a JSON list, at most one per worker);
the workers each solve one subtask in parallel, seeing the problem and their subtask; the
coordinator, continuing its own conversation, reads every result and gives the team answer.
Without a usable list every worker gets the whole problem (``error`` event).
"""

from __future__ import annotations

from dataclasses import dataclass

from hivethink.backends.base import Backend
from hivethink.names import worker_names
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import (
    Call,
    Recorder,
    SubstrateBase,
    conversation,
    parse_subtasks,
)
from hivethink.tasks.base import Instance, Task

COORDINATOR = "coordinator"
WHOLE = "Solve the whole problem."

PLAN_SYSTEM = (
    "You coordinate {n} workers. Split the problem into at most {n} subtasks, one per worker. "
    'Reply with only a JSON list of strings, e.g. ["subtask 1", "subtask 2"].'
)
WORKER_SYSTEM = "You are {name}, a worker. Do only the subtask you are given and report the result."
WORKER_USER = "Problem:\n{problem}\n\nYour subtask:\n{subtask}"
COMBINE = (
    "The workers' results:\n{results}\n\nCombine them and give the final answer to the problem, "
    "written as the problem asks."
)


@dataclass
class Centralized(SubstrateBase):
    """No parameters beyond ``temperature``; ``workers`` = number of workers (plus coordinator)."""

    name = "centralized"

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
        history = conversation(PLAN_SYSTEM.format(n=workers), instance.prompt)
        [plan] = rec.round([Call(COORDINATOR, list(history))], step=0)
        history.append({"role": "assistant", "content": plan})
        subtasks = parse_subtasks(plan, workers)
        if not subtasks:
            rec.error(COORDINATOR, "no subtask list; every worker gets the whole problem", step=0)
            subtasks = [WHOLE] * workers
        names = worker_names(len(subtasks))
        for n, subtask in zip(names, subtasks, strict=True):
            rec.event("message", COORDINATOR, subtask, step=0, recipients=[n])

        calls = [
            Call(
                n,
                conversation(
                    WORKER_SYSTEM.format(name=n),
                    WORKER_USER.format(problem=instance.prompt, subtask=s),
                ),
                seen=[COORDINATOR],
            )
            for n, s in zip(names, subtasks, strict=True)
        ]
        results = rec.round(calls, step=1)
        for n, result in zip(names, results, strict=True):
            rec.event("message", n, result, step=1, recipients=[COORDINATOR])

        shown = "\n\n".join(
            f"{n} (subtask: {s}):\n{r}" for n, s, r in zip(names, subtasks, results, strict=True)
        )
        history.append({"role": "user", "content": COMBINE.format(results=shown)})
        [final] = rec.round([Call(COORDINATOR, history, seen=names)], step=2)
        answer = task.extract(final)
        rec.answers({COORDINATOR: answer}, step=2)
        return rec.finish(answer, agent_answers={COORDINATOR: answer}, info={"subtasks": subtasks})
