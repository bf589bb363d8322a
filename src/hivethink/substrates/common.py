"""Helpers shared by every substrate: batched rounds with uniform trace events, votes, JSON.

Trace conventions (see :class:`Recorder`): before each backend call a ``prompt`` event holds the
rendered conversation the agent saw (``seen`` = whose texts it held); after it a ``step`` event
holds the generated text with ``data = {"tokens", "finish_reason", "attempt"}`` (plus ``phase``
where the protocol names its calls, and round-specific keys); both carry the call's ``attempt``
and ``phase``, and ``step`` is the round, so every call says whose, when, what and which try it
was. A failed completion adds an ``error`` event with
``data["reason"]`` and ``data["backend"] = True`` (agents' format failures have no ``backend``).
``step`` is the round index. Final answers are ``answer`` events, one per agent and one with
``worker="team"``; ``data["none"]`` marks a missing answer.

Probes (:class:`~hivethink.tasks.base.Probe`, carried by the instance) are shown here, so every
substrate that runs its calls through a :class:`Recorder` can be probed: the probe's text is
added to the newest user message of the calls it applies to, and their ``prompt`` events get
``data["probe"]`` (the probe's kind). Helper calls (``Call.helper``: a belief extractor, a task
specifier) are never probed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from hivethink.backends.base import Backend, GenRequest
from hivethink.errors import HivethinkError
from hivethink.substrates.base import Budget, SampleResult
from hivethink.tasks._common import past_deep_nesting
from hivethink.tasks.base import Probe, Task
from hivethink.trace import Event, EventKind

Messages = list[dict[str, str]]


@dataclass
class SubstrateBase:
    """Parameters every substrate has; subclasses set ``name`` and implement ``run``."""

    name: ClassVar[str]
    snapshots: ClassVar[bool] = False  # see Substrate.snapshots
    # "text" for substrates that answer any text task; a preset that needs a structured instance
    # (a graph, a game) says what it needs, so tasks can declare it (``tasks.base.meant_for``).
    kind: ClassVar[str] = "text"
    # The prompt books (``hivethink.prompts``) whose texts the substrate shows, for the records.
    prompt_books: ClassVar[tuple[str, ...]] = ()
    temperature: float = 0.7  # sampling temperature of every agent call


@dataclass
class Call:
    """One agent's backend call inside a round; ``seen`` names whose texts are in the prompt.

    ``json_schema`` constrains the reply where the protocol publishes constrained JSON output;
    ``helper`` marks a call of a protocol helper rather than a team agent (never probed);
    ``data`` goes into this call's ``prompt`` and ``step`` events (a round may mix calls of
    different kinds: a role's action, a retry)."""

    worker: str
    messages: Messages
    seen: list[str] | None = None
    json_schema: dict[str, Any] | None = None
    helper: bool = False
    data: dict[str, Any] | None = None


def conversation(system: str, user: str) -> Messages:
    """A two-message chat: system prompt, then one user turn."""
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def with_note(messages: Messages, note: str) -> Messages:
    """``messages`` with ``note`` added to the newest user message (a new one if the newest
    message is not the user's); the list given is not changed."""
    out = [dict(m) for m in messages]
    if out and out[-1]["role"] == "user":
        out[-1]["content"] = f"{out[-1]['content']}\n\n{note}"
    else:
        out.append({"role": "user", "content": note})
    return out


def render(messages: Messages) -> str:
    """The conversation as one readable text (what a ``prompt`` event records)."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


def derive_seed(seed: int, call: int, index: int) -> int:
    """A distinct, reproducible sampling seed for request ``index`` of round-call ``call``."""
    return (seed * 1_000_003 + call * 1_009 + index) % 2**31


class Recorder:
    """Runs the rounds of one sample: one batched ``generate`` per round, events and costs.

    ``sequential_calls`` counts rounds; ``sequential_passes`` adds the longest completion of each
    round (calls within a round run in parallel, so only the longest is on the critical path).
    ``temperature`` None asks for the provider's default sampling (see ``GenRequest``).
    """

    def __init__(
        self,
        backend: Backend,
        budget: Budget,
        *,
        seed: int,
        temperature: float | None,
        probe: Probe | None = None,
    ) -> None:
        self.backend = backend
        self.budget = budget
        self.seed = seed
        self.temperature = temperature
        self.probe = probe
        self.agent_rounds = 0  # rounds so far that held a team agent's call (probe timing)
        self.seeded: str | None = None  # the agent a "seed" probe is shown to: the first called
        self.events: list[Event] = []
        self.tokens = 0
        self.prompt_tokens = 0
        self.cached_tokens = 0
        self.sequential_passes = 0
        self.sequential_calls = 0
        self._start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    def event(self, kind: EventKind, worker: str, text: str = "", **fields: Any) -> Event:
        """Append one event stamped with the time since the sample started."""
        ev = Event(kind=kind, worker=worker, text=text, t=self.elapsed(), **fields)
        self.events.append(ev)
        return ev

    def error(self, worker: str, reason: str, *, step: int | None = None) -> Event:
        return self.event("error", worker, reason, step=step, data={"reason": reason})

    def round(
        self,
        calls: Sequence[Call],
        *,
        step: int,
        max_tokens: int | None = None,
        data: dict[str, Any] | None = None,
        temperature: float | None = None,
        phase: str | None = None,
        attempt: int = 1,
        stop: list[str] | None = None,
    ) -> list[str]:
        """Run ``calls`` as ONE batched backend call; return the texts in call order.

        ``max_tokens`` and ``temperature`` override the per-call cap and the sampling
        temperature for this round (the cap is still clipped by :meth:`call_cap`); ``stop``
        strings end a reply (the backend cuts the text before them). ``phase`` (the protocol's
        name for this kind of call) and ``attempt`` (1, then 2... for retries) go into the
        ``data`` of every prompt and step event of the round, so that a reviewer can tell each
        call apart; ``data`` goes into the step events."""
        if not calls:
            return []
        stamp: dict[str, Any] = {"attempt": attempt} | ({"phase": phase} if phase else {})
        cap = self.call_cap(len(calls), max_tokens)
        shown = [self._probed(call) for call in calls]
        if any(not call.helper for call in calls):
            self.agent_rounds += 1
        requests = [
            GenRequest(
                messages=messages,
                max_tokens=cap,
                temperature=self.temperature if temperature is None else temperature,
                seed=derive_seed(self.seed, self.sequential_calls, i),
                stop=list(stop or []),
                json_schema=call.json_schema,
            )
            for i, (call, (messages, _)) in enumerate(zip(calls, shown, strict=True))
        ]
        for call, (messages, probe) in zip(calls, shown, strict=True):
            self.event(
                "prompt",
                call.worker,
                render(messages),
                step=step,
                seen=call.seen,
                data=stamp | (call.data or {}) | ({"probe": probe} if probe else {}),
            )
        completions = self.backend.generate(requests)
        if len(completions) != len(requests):
            raise HivethinkError(
                f"backend {self.backend.name!r} returned {len(completions)} completions "
                f"for {len(requests)} requests"
            )
        self.sequential_calls += 1
        self.sequential_passes += max(c.completion_tokens for c in completions)
        for call, comp in zip(calls, completions, strict=True):
            self.tokens += comp.completion_tokens
            self.prompt_tokens += comp.prompt_tokens
            self.cached_tokens += comp.cached_tokens
            self.event(
                "step",
                call.worker,
                comp.text,
                step=step,
                data={
                    "tokens": comp.completion_tokens,
                    "finish_reason": comp.finish_reason,
                    **stamp,
                    **(data or {}),
                    **(call.data or {}),
                },
            )
            if comp.error:  # the backend failed (timeout, HTTP error, ...): not the agent's fault
                self.event(
                    "error",
                    call.worker,
                    comp.error,
                    step=step,
                    data={"reason": comp.error, "backend": True},
                )
        return [c.text for c in completions]

    def _probed(self, call: Call) -> tuple[Messages, str | None]:
        """The messages ``call`` is sent (with the probe's text where it applies) and the kind of
        probe shown, if any (see :class:`~hivethink.tasks.base.Probe`)."""
        probe = self.probe
        if probe is None or call.helper:
            return call.messages, None
        if probe.kind == "revision" and self.agent_rounds < probe.start:
            return call.messages, None
        if probe.kind == "seed":
            self.seeded = self.seeded or call.worker
            if call.worker != self.seeded:
                return call.messages, None
        return with_note(call.messages, probe.text), probe.kind

    def call_cap(self, n_calls: int, max_tokens: int | None = None) -> int:
        """The most tokens each of ``n_calls`` parallel calls may generate now: the call's own cap
        (else ``budget.max_tokens``), no more than the passes left (the round's longest call is on
        the critical path) nor an equal share of the tokens left. At least 1: a round that starts
        inside the budget may overrun the token budget by less than one token per call."""
        cap = max_tokens or self.budget.max_tokens
        if self.budget.passes is not None:
            cap = min(cap, self.budget.passes - self.sequential_passes)
        if self.budget.tokens is not None:
            cap = min(cap, (self.budget.tokens - self.tokens) // n_calls)
        return max(1, cap)

    @property
    def exhausted(self) -> bool:
        """True once either budget (``budget.passes`` or ``budget.tokens``) is spent."""
        b = self.budget
        return (b.passes is not None and self.sequential_passes >= b.passes) or (
            b.tokens is not None and self.tokens >= b.tokens
        )

    def answers(self, agent_answers: dict[str, str | None], *, step: int | None = None) -> None:
        """Record one ``answer`` event per agent (``data["none"]`` when it gave no answer)."""
        for worker, answer in agent_answers.items():
            self.event(
                "answer",
                worker,
                answer or "",
                step=step,
                data={"none": True} if answer is None else {},
            )

    def finish(
        self,
        answer: str | None,
        *,
        agent_answers: dict[str, str | None] | None = None,
        info: dict[str, Any] | None = None,
    ) -> SampleResult:
        """Record the team answer and build the :class:`SampleResult`."""
        self.event("answer", "team", answer or "", data={"none": True} if answer is None else {})
        return SampleResult(
            events=self.events,
            answer=answer,
            agent_answers=dict(agent_answers or {}),
            sequential_passes=self.sequential_passes,
            sequential_calls=self.sequential_calls,
            tokens=self.tokens,
            prompt_tokens=self.prompt_tokens,
            cached_tokens=self.cached_tokens,
            wall_s=self.elapsed(),
            info=dict(info or {}),
        )


def find_json(text: str, kind: type[dict] | type[list]) -> Any | None:
    """The first JSON object (``kind=dict``) or array (``kind=list``) inside ``text``, or None.

    Prose and code fences around the value are ignored, and so is a value nested deeper than
    Python can parse.
    """
    decoder = json.JSONDecoder()
    opener = "{" if kind is dict else "["
    start = text.find(opener)
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            value = None
        except RecursionError:  # nested deeper than Python can parse: skip the whole value
            start = text.find(opener, past_deep_nesting(text, start))
            continue
        if isinstance(value, kind):
            return value
        start = text.find(opener, start + 1)
    return None


def as_text(value: Any) -> str:
    """A JSON value as message text: strings as they are, anything else as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def parse_subtasks(text: str, limit: int) -> list[str]:
    """At most ``limit`` non-empty subtasks from the first JSON list in ``text`` ([] if none)."""
    items = find_json(text, list) or []
    return [as_text(item).strip() for item in items if as_text(item).strip()][:limit]


def last_answer(task: Task, texts: Sequence[str]) -> str | None:
    """The extracted answer of the newest text that holds one."""
    return next((a for a in map(task.extract, reversed(texts)) if a is not None), None)
