"""``roleplay``: CAMEL role-play: an instructor guides an assistant, one message per turn.

The instructor (first name) gives one ``Instruction: ...`` per message; the assistant (second
name) answers each with ``Solution: ...``. The conversation stops at the first rule that fires,
checked after every message (``info["stop_reason"]``):

- ``task_done``: a message contains ``done_token``;
- ``role_flip``: the assistant writes an instruction line;
- ``no_instruction``: ``max_idle`` instructor messages in a row carry no instruction;
- ``max_messages``: the conversation holds ``max_messages`` messages;
- ``budget``: the team token cap (``budget.tokens`` or ``budget.passes``) is spent.

The team answer is the latest extractable answer in the conversation, newest message first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.names import worker_names
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Messages, Recorder, SubstrateBase, last_answer
from hivethink.tasks.base import Instance, Task

INSTRUCTION = re.compile(r"^\s*Instruction\s*:", re.IGNORECASE | re.MULTILINE)

INSTRUCTOR_SYSTEM = (
    "You are {me}, the instructor. Guide the assistant {other} to solve the problem below, step "
    "by step. Give exactly one instruction per message, written as 'Instruction: <what to do>'. "
    "Do not solve it yourself. When the problem is solved, reply with {done}.\n\nProblem:\n"
    "{problem}"
)
ASSISTANT_SYSTEM = (
    "You are {me}, the assistant. Carry out the instructions of {other} one at a time. Begin "
    "each reply with 'Solution: ' and never give instructions yourself. When you reach the "
    "final answer, state it as the problem asks.\n\nProblem:\n{problem}"
)
START = "Give your first instruction."


@dataclass
class Roleplay(SubstrateBase):
    """``max_messages`` (40), ``max_idle`` instruction-less instructor turns (3), ``done_token``."""

    name = "roleplay"
    max_messages: int = 40
    max_idle: int = 3
    done_token: str = "<TASK_DONE>"

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.max_idle < 1:
            raise HivethinkError("roleplay: max_messages and max_idle must be at least 1")

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
        instructor, assistant = worker_names(2)
        fmt = {"done": self.done_token, "problem": instance.prompt}
        history: dict[str, Messages] = {
            instructor: [
                {
                    "role": "system",
                    "content": INSTRUCTOR_SYSTEM.format(me=instructor, other=assistant, **fmt),
                },
                {"role": "user", "content": START},
            ],
            assistant: [
                {
                    "role": "system",
                    "content": ASSISTANT_SYSTEM.format(me=assistant, other=instructor, **fmt),
                },
            ],
        }
        rec.event("role", instructor, "instructor", data={"abstain": False})
        rec.event("role", assistant, "assistant", data={"abstain": False})
        texts: list[str] = []
        idle = 0
        stop_reason = ""
        while not stop_reason:
            speaker, listener = (
                (instructor, assistant) if len(texts) % 2 == 0 else (assistant, instructor)
            )
            step = len(texts)
            [text] = rec.round(
                [Call(speaker, list(history[speaker]), seen=[listener] if step else [])], step=step
            )
            texts.append(text)
            history[speaker].append({"role": "assistant", "content": text})
            history[listener].append({"role": "user", "content": text})
            rec.event("message", speaker, text, step=step, recipients=[listener])
            instructs = bool(INSTRUCTION.search(text))
            if speaker == instructor:
                idle = 0 if instructs else idle + 1
            if self.done_token in text:
                stop_reason = "task_done"
            elif speaker == assistant and instructs:
                stop_reason = "role_flip"
                rec.error(assistant, "role flip: the assistant gave an instruction", step=step)
            elif idle >= self.max_idle:
                stop_reason = "no_instruction"
            elif len(texts) >= self.max_messages:
                stop_reason = "max_messages"
            elif rec.exhausted:
                stop_reason = "budget"

        answer = last_answer(task, texts)
        last_own = {
            n: last_answer(task, texts[i::2]) for i, n in enumerate((instructor, assistant))
        }
        rec.answers(last_own, step=len(texts) - 1)
        return rec.finish(
            answer,
            agent_answers=last_own,
            info={"stop_reason": stop_reason, "messages": len(texts)},
        )
