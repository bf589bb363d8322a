"""``program``: an explicit algorithm holds the control flow (LLM Programs, information hiding).

plan (one call lists at most ``workers`` self-contained subtasks as a JSON list) -> solve (one
parallel batch; each solver sees ONLY its subtask text, not the problem or the plan) -> combine
(one fresh call that sees the problem statement and the subtask results, nothing else). Without
a usable plan the single subtask is the whole problem (``error`` event).
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

PLANNER, COMBINER = "planner", "combiner"

PLAN_SYSTEM = (
    "Break the problem into at most {n} subtasks. Each subtask goes to a solver that sees ONLY "
    "the subtask text, so state every fact it needs. Reply with only a JSON list of strings."
)
SOLVE_SYSTEM = "Solve the task below and give its result concisely."
COMBINE_SYSTEM = (
    "Combine the results of the subtasks into the final answer, written as the problem asks."
)
COMBINE_USER = "Problem:\n{problem}\n\nSubtask results:\n{results}"


@dataclass
class Program(SubstrateBase):
    """No parameters beyond ``temperature``; ``workers`` caps the number of subtasks."""

    name = "program"

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
        [plan] = rec.round(
            [Call(PLANNER, conversation(PLAN_SYSTEM.format(n=workers), instance.prompt))], step=0
        )
        subtasks = parse_subtasks(plan, workers)
        if not subtasks:
            rec.error(PLANNER, "no subtask list; solving the whole problem as one subtask", step=0)
            subtasks = [instance.prompt]
        names = worker_names(len(subtasks))
        for n, subtask in zip(names, subtasks, strict=True):
            rec.event("message", PLANNER, subtask, step=0, recipients=[n])

        results = rec.round(
            [
                Call(n, conversation(SOLVE_SYSTEM, s), seen=[PLANNER])
                for n, s in zip(names, subtasks, strict=True)
            ],
            step=1,
        )
        shown = "\n\n".join(
            f"{i + 1}. {s}\nResult: {r}"
            for i, (s, r) in enumerate(zip(subtasks, results, strict=True))
        )
        [final] = rec.round(
            [
                Call(
                    COMBINER,
                    conversation(
                        COMBINE_SYSTEM, COMBINE_USER.format(problem=instance.prompt, results=shown)
                    ),
                    seen=names,
                )
            ],
            step=2,
        )
        answer = task.extract(final)
        rec.answers({COMBINER: answer}, step=2)
        return rec.finish(answer, agent_answers={COMBINER: answer}, info={"subtasks": subtasks})
