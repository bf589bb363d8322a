"""Single or multi (Gao et al., arXiv 2505.18286; protocols.md §11): ``sas``, ``cascade``, ``router``.

No code is published; the rules the paper states are kept, the others are our choices, named
options listed in docs/self-organizing.md.

- ``sas`` (``of: <preset>``, ``params: {...}``): the single-agent counterpart of a multi-agent
  preset. The preset runs unchanged, but every call it makes goes into ONE agent's growing
  conversation (:class:`OneContext`): a turn holds the call's instructions (its system prompt,
  written out the first time a given text appears, else a pointer to that turn) and its newest
  message, in which verbatim copies of the agent's own earlier replies (whole, or without their
  first line, as presets quote contributions) are replaced by a pointer to the turn above.
  Calls the preset would run in parallel run one after another. In the trace every agent event
  is the one agent ``solo`` (``data["as"]`` = the team member it stood in for); its prompt
  events hold the turn it was sent; sequential passes are the sum of all its generated tokens.
- ``cascade`` (``sas``, ``mas``, ``checker``): run the SAS; check its answer; on failure run
  the MAS and return its answer. ``checker: verifier`` (default) uses the task's verifier
  (:class:`~hivethink.tasks.base.VerifiableTask`: countdown's arithmetic, a code task's tests);
  a task without one is a config error. ``checker: self`` asks the model whether the answer is
  right (YES/NO: the first of the two words in the reply; neither counts as NO). No answer
  fails without a check.
- ``router`` (``threshold``, ``scale``): the model rates the request's difficulty from 1 to
  ``scale``; at or below ``threshold`` the SAS runs, above it the MAS. The reply is asked for as
  ``{"difficulty": k}`` by JSON schema (``constrained``; the local engine constrains decoding,
  a server gets ``response_format``), read as that, else as its first integer; a rating that
  cannot be read (none in 1..scale) goes to ``unreadable`` (default ``mas``).

``mas`` is a substrate name or ``{name, params}`` (default ``self-organizing``); ``sas``
defaults to the SAS of that same MAS (``{of: mas name, params: mas params}``). Every stage runs
with the sample's budget and seed; the sample's costs are the sum of its stages (prompt and
generated tokens from the backend's own counts). The grid's ``workers`` is the MAS team size
and the number of member turns the SAS plays.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from hivethink import prompts
from hivethink.backends.base import Backend, Completion, GenRequest
from hivethink.errors import HivethinkError
from hivethink.metrics.views import NON_AGENTS
from hivethink.names import CHECKER, ROUTER
from hivethink.substrates.base import Budget, SampleResult, Substrate
from hivethink.substrates.common import Call, Messages, Recorder, SubstrateBase, find_json
from hivethink.substrates.registry import ALIASES, PRESETS, build
from hivethink.tasks.base import Instance, Task, VerifiableTask
from hivethink.trace import Event

SOLO = "solo"
HYBRIDS = ("sas", "cascade", "router")
CHECKERS = ("verifier", "self")
QUOTE_MIN_CHARS = 24  # shorter replies are not replaced by a pointer (too likely to recur)

SAS_BOOK = prompts.book(
    "sas",
    {
        "system": ["n"],
        "turn": ["number", "instructions", "message"],
        "same_instructions": ["number"],
        "quoted": ["number"],
    },
)
BOOK = prompts.book("hybrid", {"rate": ["question", "scale"], "self_check": ["question", "answer"]})


class OneContext:
    """A backend that folds every request into one growing conversation (see the module
    docstring) and logs ``(turn text, completion)`` per request, in order."""

    def __init__(self, backend: Backend, team: int) -> None:
        self.backend, self.name = backend, backend.name
        self.messages: Messages = [{"role": "system", "content": SAS_BOOK.render("system", n=team)}]
        self.replies: list[str] = []
        self.instructions: dict[str, int] = {}  # system text -> the turn that first showed it
        self.log: list[tuple[str, Completion]] = []

    def fold(self, messages: Sequence[dict[str, str]]) -> str:
        """The turn one request becomes in the shared conversation."""
        number = len(self.replies) + 1
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        if system in self.instructions:
            instructions = SAS_BOOK.render("same_instructions", number=self.instructions[system])
        else:
            self.instructions[system] = number
            instructions = system or "-"
        newest = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        quotes = []
        for k, reply in enumerate(self.replies, start=1):
            lines = reply.strip().splitlines()
            for text in (reply.strip(), "\n".join(lines[1:]).strip()):
                if len(text) >= QUOTE_MIN_CHARS:
                    quotes.append((text, SAS_BOOK.render("quoted", number=k)))
        for text, pointer in sorted(quotes, key=lambda q: len(q[0]), reverse=True):
            newest = newest.replace(text, pointer)
        return SAS_BOOK.render("turn", number=number, instructions=instructions, message=newest)

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        out = []
        for request in requests:  # one agent: one call after another
            turn = self.fold(request.messages)
            self.messages.append({"role": "user", "content": turn})
            [completion] = self.backend.generate([replace(request, messages=list(self.messages))])
            self.messages.append({"role": "assistant", "content": completion.text})
            self.replies.append(completion.text)
            self.log.append((turn, completion))
            out.append(completion)
        return out


def _as_solo(events: Sequence[Event], log: Sequence[tuple[str, Completion]]) -> list[Event]:
    """The inner preset's events as the one agent's: agent workers become ``solo`` (``data["as"]``
    keeps the member), prompt events hold the turn actually sent, and the team answer is made
    from the one agent's work (``seen = ["solo"]``)."""
    turns = iter(log)
    out = []
    for ev in events:
        update: dict[str, Any] = {}
        if ev.worker not in NON_AGENTS:
            update = {"worker": SOLO, "data": {**ev.data, "as": ev.worker}}
        if ev.kind == "prompt" and ev.worker not in NON_AGENTS:
            turn, _ = next(turns, ("", None))
            update |= {"text": turn, "seen": None}
        if ev.kind == "answer" and ev.worker == "team":
            update = {"seen": [SOLO]}
        out.append(ev.model_copy(update=update, deep=True))
    return out


def _inner(owner: str, spec: Any, role: str) -> tuple[str, dict[str, Any]]:
    """``(name, params)`` of a substrate given as a name or ``{name, params}``."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict) and isinstance(spec.get("name"), str):
        unknown = sorted(set(spec) - {"name", "params"})
        params = spec.get("params") or {}
        if unknown or not isinstance(params, dict):
            raise HivethinkError(f"{owner}: {role} must be a substrate name or {{name, params}}")
        return spec["name"], dict(params)
    raise HivethinkError(
        f"{owner}: {role} must be a substrate name or {{name, params}}, got {spec!r}"
    )


def _multi_agent(owner: str, name: str, params: dict[str, Any]) -> Substrate:
    if ALIASES.get(name, name) in HYBRIDS:
        raise HivethinkError(f"{owner}: {name!r} is not a multi-agent preset")
    substrate = build(PRESETS, name, **params)
    if getattr(substrate, "kind", "text") != "text":
        raise HivethinkError(f"{owner}: {name!r} needs structured instances; use a text preset")
    return substrate


@dataclass
class Sas(SubstrateBase):
    """``of`` = the multi-agent preset whose role prompts one agent plays; ``params`` = its
    parameters."""

    name = "sas"

    of: str = "self-organizing"
    params: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self._of = _multi_agent("sas", self.of, dict(self.params or {}))

    @property  # an instance's books: those of the preset it plays
    def prompt_books(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("sas", *getattr(self._of, "prompt_books", ()))

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
        one = OneContext(backend, workers)
        inner = self._of.run(instance, task, one, workers=workers, budget=budget, seed=seed)
        return SampleResult(
            events=_as_solo(inner.events, one.log),
            answer=inner.answer,
            agent_answers={SOLO: inner.answer},
            sequential_passes=sum(c.completion_tokens for _, c in one.log),
            sequential_calls=len(one.log),
            tokens=inner.tokens,
            prompt_tokens=inner.prompt_tokens,
            cached_tokens=inner.cached_tokens,
            wall_s=inner.wall_s,
            info={**inner.info, "sas_of": self.of, "turns": len(one.log)},
            outcome=inner.outcome,
        )


def _shifted(events: Sequence[Event], dt: float, dstep: int) -> list[Event]:
    return [
        ev.model_copy(update={"t": ev.t + dt, "step": None if ev.step is None else ev.step + dstep})
        for ev in events
    ]


def _last_step(events: Sequence[Event]) -> int:
    return max((e.step for e in events if e.step is not None), default=-1)


@dataclass
class _Stages:
    """The pieces a cascade or router puts together: its own recorder (helper calls) and the
    stage results in the order they ran."""

    rec: Recorder
    events: list[Event]
    results: list[SampleResult]

    @classmethod
    def start(cls, backend: Backend, budget: Budget, seed: int) -> _Stages:
        return cls(Recorder(backend, budget, seed=seed, temperature=0.0), [], [])

    def helper(
        self, worker: str, user: str, max_tokens: int, schema: dict[str, Any] | None = None
    ) -> str:
        """One helper call (never probed) by ``worker``; its events join the trace."""
        before = len(self.rec.events)
        [text] = self.rec.round(
            [Call(worker, [{"role": "user", "content": user}], json_schema=schema, helper=True)],
            step=_last_step(self.events) + 1,
            max_tokens=max_tokens,
        )
        self.events += self.rec.events[before:]
        return text

    def note(self, worker: str, text: str, **data: Any) -> None:
        before = len(self.rec.events)
        self.rec.event("message", worker, text, step=_last_step(self.events) + 1, data=data)
        self.events += self.rec.events[before:]

    def add(self, result: SampleResult, *, final: bool, stage: str) -> None:
        """Append a stage's events: the final stage's team answer is left for :meth:`finish`, an
        earlier stage's becomes its solo agent's answer (``data["stage"]``: the team answers once)."""
        events = _shifted(
            result.events, self.rec.elapsed() - result.wall_s, _last_step(self.events) + 1
        )
        if final:
            events = [e for e in events if not (e.kind == "answer" and e.worker == "team")]
        else:
            events = [
                e.model_copy(
                    update={"worker": SOLO, "seen": None, "data": {**e.data, "stage": stage}}
                )
                if e.kind == "answer" and e.worker == "team"
                else e
                for e in events
            ]
        self.events += events
        self.results.append(result)

    def finish(self, result: SampleResult, info: dict[str, Any]) -> SampleResult:
        team = next(
            (e for e in reversed(result.events) if e.kind == "answer" and e.worker == "team"), None
        )
        parts = [*self.results]
        answer = result.answer
        last = Event(
            kind="answer",
            worker="team",
            text=answer or "",
            t=self.rec.elapsed(),
            seen=team.seen if team is not None else None,
            data={"none": True} if answer is None else {},
        )
        return SampleResult(
            events=[*self.events, last],
            answer=answer,
            agent_answers=dict(result.agent_answers),
            sequential_passes=self.rec.sequential_passes + sum(r.sequential_passes for r in parts),
            sequential_calls=self.rec.sequential_calls + sum(r.sequential_calls for r in parts),
            tokens=self.rec.tokens + sum(r.tokens for r in parts),
            prompt_tokens=self.rec.prompt_tokens + sum(r.prompt_tokens for r in parts),
            cached_tokens=self.rec.cached_tokens + sum(r.cached_tokens for r in parts),
            wall_s=self.rec.elapsed(),
            info=info,
            outcome=result.outcome,
        )


@dataclass
class _SingleOrMulti(SubstrateBase):
    """What ``cascade`` and ``router`` share: the MAS and its SAS."""

    mas: str | dict[str, Any] = "self-organizing"
    sas: dict[str, Any] | None = None  # {of, params}; default: the SAS of ``mas``

    def _build(self) -> None:
        name, params = _inner(self.name, self.mas, "mas")
        self._mas = _multi_agent(self.name, name, params)
        spec: Any = self.sas if self.sas is not None else {"of": name, "params": params}
        if not isinstance(spec, dict) or set(spec) - {"of", "params"}:
            raise HivethinkError(f"{self.name}: sas must be {{of: <preset>, params: {{...}}}}")
        sas_params = spec.get("params") or {}
        if not isinstance(sas_params, dict):
            raise HivethinkError(f"{self.name}: sas params must be a mapping")
        self._sas = Sas(of=str(spec.get("of", name)), params=dict(sas_params))

    @property  # an instance's books: those of its stages
    def prompt_books(self) -> tuple[str, ...]:  # type: ignore[override]
        books = ("hybrid", *self._sas.prompt_books, *getattr(self._mas, "prompt_books", ()))
        return tuple(dict.fromkeys(books))


def rating_schema(scale: int) -> dict[str, Any]:
    """The router's constrained reply: ``{"difficulty": 1..scale}``."""
    return {
        "type": "object",
        "properties": {"difficulty": {"type": "integer", "minimum": 1, "maximum": scale}},
        "required": ["difficulty"],
        "additionalProperties": False,
    }


def read_rating(text: str, top: int) -> int | None:
    """The difficulty in a reply: ``{"difficulty": k}``, else the first integer; None outside
    1..top."""
    obj = find_json(text, dict)
    value: Any = obj.get("difficulty") if obj is not None else None
    if not isinstance(value, int) or isinstance(value, bool):
        match = re.search(r"\d{1,6}", text)  # (a longer run is no rating; int() would refuse it)
        value = int(match.group()) if match else None
    return value if value is not None and 1 <= value <= top else None


@dataclass
class Cascade(_SingleOrMulti):
    """SAS first; ``checker`` (verifier | self) decides; the MAS on failure."""

    name = "cascade"

    checker: str = "verifier"
    check_tokens: int = 16  # the self-check's reply cap

    def __post_init__(self) -> None:
        if self.checker not in CHECKERS:
            raise HivethinkError(
                f"cascade: unknown checker {self.checker!r} (choose from {', '.join(CHECKERS)})"
            )
        self._build()

    def check_task(self, task: Task) -> None:
        """Config check before any model loads: the verifier checker needs a task that has one."""
        if self.checker == "verifier" and not isinstance(task, VerifiableTask):
            raise HivethinkError(
                f"cascade: task {getattr(task, 'name', task)!r} has no verifier for checker: "
                "verifier (use checker: self, or a task with one such as countdown)"
            )

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
        stages = _Stages.start(backend, budget, seed)
        first = self._sas.run(instance, task, backend, workers=workers, budget=budget, seed=seed)
        stages.add(first, final=False, stage="sas")
        passed = self._check(stages, instance, task, first.answer)
        info: dict[str, Any] = {
            "checker": self.checker,
            "passed": passed,
            "escalated": not passed,
            "sas_answer": first.answer,
            "stage": "sas" if passed else "mas",
        }
        if passed:
            return stages.finish(first, info | {"sas": first.info})
        t0 = time.perf_counter()
        second = self._mas.run(instance, task, backend, workers=workers, budget=budget, seed=seed)
        second.wall_s = time.perf_counter() - t0
        stages.add(second, final=True, stage="mas")
        return stages.finish(second, info | {"sas": first.info, "mas": second.info})

    def _check(self, stages: _Stages, instance: Instance, task: Task, answer: str | None) -> bool:
        if answer is None:
            stages.note(CHECKER, "no answer to check: failed", checker=self.checker, passed=False)
            return False
        if self.checker == "verifier":
            assert isinstance(task, VerifiableTask)  # check_task ran when the grid was built
            passed = task.verify(instance, answer).passed
            stages.note(
                CHECKER,
                f"verifier: {'passed' if passed else 'failed'}",
                checker="verifier",
                passed=passed,
            )
            return passed
        reply = stages.helper(
            CHECKER,
            BOOK.render("self_check", question=instance.prompt, answer=answer),
            self.check_tokens,
        )
        word = re.search(r"\b(yes|no)\b", reply, re.IGNORECASE)
        passed = word is not None and word.group(1).lower() == "yes"
        stages.note(
            CHECKER,
            f"self-check: {'passed' if passed else 'failed'}",
            checker="self",
            passed=passed,
        )
        return passed


@dataclass
class Router(_SingleOrMulti):
    """The model rates difficulty 1..``scale``; at or below ``threshold``: SAS, above: MAS."""

    name = "router"

    threshold: int = 5
    scale: int = 10
    unreadable: str = "mas"  # where a rating that cannot be read goes: sas | mas
    rate_tokens: int = 12
    constrained: bool = True  # ask for {"difficulty": k} by JSON schema (else free text)

    def __post_init__(self) -> None:
        if not 2 <= self.scale <= 100:
            raise HivethinkError(f"router: scale must be between 2 and 100, got {self.scale}")
        if not 0 <= self.threshold <= self.scale:
            raise HivethinkError(
                f"router: threshold must be between 0 and scale ({self.scale}), got {self.threshold}"
            )
        if self.unreadable not in ("sas", "mas"):
            raise HivethinkError(f"router: unreadable must be sas or mas, got {self.unreadable!r}")
        self._build()

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
        stages = _Stages.start(backend, budget, seed)
        reply = stages.helper(
            ROUTER,
            BOOK.render("rate", question=instance.prompt, scale=self.scale),
            self.rate_tokens,
            rating_schema(self.scale) if self.constrained else None,
        )
        difficulty = read_rating(reply, self.scale)
        route = (
            self.unreadable
            if difficulty is None
            else "sas"
            if difficulty <= self.threshold
            else "mas"
        )
        stages.note(
            ROUTER,
            f"difficulty {difficulty if difficulty is not None else 'unreadable'}: {route}",
            difficulty=difficulty,
            route=route,
        )
        t0 = time.perf_counter()
        chosen = self._sas.run if route == "sas" else self._mas.run
        result = chosen(instance, task, backend, workers=workers, budget=budget, seed=seed)
        result.wall_s = time.perf_counter() - t0
        stages.add(result, final=True, stage=route)
        return stages.finish(
            result,
            {
                "difficulty": difficulty,
                "route": route,
                "threshold": self.threshold,
                "stage": route,
                route: result.info,
            },
        )
