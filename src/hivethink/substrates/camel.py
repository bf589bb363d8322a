"""``camel``: CAMEL role-play (camel-ai/camel: ``prompts/ai_society.py``, ``societies/role_playing.py``).

A task specifier (a helper call: "you can make a task more specific") first turns the task into
a concrete one of at most ``word_limit`` words (``specify``). Then the instructor (the CAMEL
"user", first name) and the assistant (second name) talk, each with its role prompt: the
instructor gives one ``Instruction: ... / Input: ...`` at a time and ends the task with the
single word ``done_token`` only when the assistant has solved it; the assistant never
instructs nor swaps roles and answers ``Solution: ...`` ending with "Next request.". The
conversation opens with the assistant's scripted request to start instructing.

The conversation stops at the first rule that fires, checked after every message
(``info["stop_reason"]``):

- ``task_done``: the instructor's message contains ``done_token`` (only the instructor can end
  the task: the token in an assistant message ends nothing);
- ``role_flip``: the assistant writes an instruction line;
- ``no_instruction``: ``max_idle`` (3) instructor messages in a row carry no instruction;
- ``max_messages``: the conversation holds ``max_messages`` (40) generated messages;
- ``token_limit``: the budget (``budget.tokens`` or ``budget.passes``) is spent.

Flake replies, repeated instructions, message loops and drift are counted by the pathology
metrics, not stop rules. The team answer is the newest answer the task can extract from the
conversation. Sampling at ``temperature`` (1.0, the API default); ``max_tokens`` 4096 a message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from hivethink import prompts
from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.names import SPECIFIER, worker_names
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import (
    Call,
    Messages,
    Recorder,
    SubstrateBase,
    conversation,
    last_answer,
)
from hivethink.tasks.base import Instance, Task

INSTRUCTION = re.compile(r"^\s*Instruction\s*:", re.IGNORECASE | re.MULTILINE)

BOOK = prompts.book(
    "camel",
    {
        "specifier_system": [],
        "specify": ["assistant_role", "user_role", "task", "word_limit"],
        "assistant_system": ["assistant_role", "user_role", "task"],
        "user_system": ["assistant_role", "user_role", "task", "done"],
        "start": [],
    },
)


@dataclass
class Camel(SubstrateBase):
    """Parameters: roles, ``specify``/``word_limit``, ``max_messages``, ``max_idle``, ``done_token``."""

    name = "camel"
    prompt_books: ClassVar[tuple[str, ...]] = ("camel",)
    temperature: float = 1.0
    assistant_role: str = "Problem Solver"
    user_role: str = "Instructor"
    specify: bool = True
    word_limit: int = 50
    max_messages: int = 40
    max_idle: int = 3
    done_token: str = "<CAMEL_TASK_DONE>"
    max_tokens: int = 4096

    def __post_init__(self) -> None:
        if min(self.max_messages, self.max_idle, self.word_limit, self.max_tokens) < 1:
            raise HivethinkError("camel: max_messages, max_idle, word_limit and max_tokens must be at least 1")
        if not self.done_token.strip():
            raise HivethinkError("camel: done_token must not be blank")

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
        instructor, assistant = worker_names(2)
        roles = {"assistant_role": self.assistant_role, "user_role": self.user_role}
        goal = instance.prompt
        if self.specify:
            ask = BOOK.render("specify", task=goal, word_limit=self.word_limit, **roles)
            [spec] = rec.round([Call(SPECIFIER, conversation(BOOK.render("specifier_system"), ask), helper=True)],
                               step=0, max_tokens=self.max_tokens)  # fmt: skip
            goal = spec.strip() or goal
        start = BOOK.render("start")
        history: dict[str, Messages] = {
            instructor: conversation(BOOK.render("user_system", task=goal, done=self.done_token, **roles), start),
            assistant: [{"role": "system", "content": BOOK.render("assistant_system", task=goal, **roles)},
                        {"role": "assistant", "content": start}],
        }  # fmt: skip
        rec.event("role", instructor, self.user_role, data={"abstain": False})
        rec.event("role", assistant, self.assistant_role, data={"abstain": False})
        rec.event("message", assistant, start, step=0, recipients=[instructor], data={"scripted": True})
        texts: list[str] = []
        idle = 0
        stop_reason = ""
        while not stop_reason:
            speaker, listener = (instructor, assistant) if len(texts) % 2 == 0 else (assistant, instructor)
            step = len(texts) + 1
            [text] = rec.round([Call(speaker, list(history[speaker]), seen=[listener])],
                               step=step, max_tokens=self.max_tokens)  # fmt: skip
            texts.append(text)
            history[speaker].append({"role": "assistant", "content": text})
            history[listener].append({"role": "user", "content": text})
            rec.event("message", speaker, text, step=step, recipients=[listener])
            instructs = bool(INSTRUCTION.search(text))
            if speaker == instructor:
                idle = 0 if instructs else idle + 1
            if speaker == instructor and self.done_token in text:
                stop_reason = "task_done"
            elif speaker == assistant and instructs:
                stop_reason = "role_flip"
                rec.error(assistant, "role flip: the assistant gave an instruction", step=step)
            elif idle >= self.max_idle:
                stop_reason = "no_instruction"
            elif len(texts) >= self.max_messages:
                stop_reason = "max_messages"
            elif rec.exhausted:
                stop_reason = "token_limit"
        last_own = {n: last_answer(task, texts[i::2]) for i, n in enumerate((instructor, assistant))}
        rec.answers(last_own, step=len(texts))
        return rec.finish(
            last_answer(task, texts),
            agent_answers=last_own,
            info={"stop_reason": stop_reason, "messages": len(texts), "task": goal},
        )
