"""``self-organizing``: the protocols of "Drop the Hierarchy and Roles" (Dochkina, arXiv
2603.28990; protocols.md §8), one substrate, ``protocol`` picks one of four.

No code is published and the paper's method section was not reachable, so every rule below
that the summaries do not state is our choice, built as a named option (docs/self-organizing.md
lists which is which). Agents are the grid's ``workers`` (up to 256; the calls of one round are
one batched backend call). Unless a protocol assigns it, an agent invents its own role (no list
is offered): its reply starts with ``ROLE: <role>``, or is ``ABSTAIN`` (a reply with neither
takes part with an unstated role and is an ``error`` event). What others are shown of a
contribution is its text without the ROLE line; abstentions are shown to no one.

- ``sequential``: a fixed external order (the worker order). Agent i is called once, after
  agents 1..i-1, and sees the mission and their finished contributions only (no intentions, no
  history). ``batch: K`` runs groups of K in parallel, groups in order (a group sees the groups
  before it, not itself).
- ``coordinator``: the first agent analyses the mission and replies with a JSON object
  ``{agent: {"role": ..., "phase": k}}``; agents it leaves out (or maps to null) are excluded.
  Phases run in order, the agents of a phase in parallel, each seeing its role and the finished
  work of earlier phases (an agent given no role chooses its own, with the prompt agents get
  without a coordinator); the coordinator then combines everything (its own conversation
  continued). No readable plan: every other agent works in phase 1 on a role of its choice.
- ``broadcast``: every agent announces an intention (``ROLE`` + one sentence, or ABSTAIN) in
  one parallel round; then every agent that did not abstain sees all intentions (not work) and
  works, all at once.
- ``shared``: agents work in parallel on the mission and see only the team's organisational
  memory: the work of the earlier missions of the same run, oldest first and in worker order
  within a mission (``memory: contributions``, the default) or only their deliverables
  (``memory: team``); ``window: k`` keeps the k most recent missions (0: all). A run is one
  sample (:func:`hivethink.tasks.mission.run_missions`), so the memory never depends on which
  samples a lab computes at once or resumes.

The team output (``output``): ``last`` = the last non-abstaining contribution in the fixed order
is the deliverable (every agent is told so, so it compiles what it saw; strict: its answer, even
if it holds none); ``vote`` = the majority of the contributors' extracted answers (ties: the
earliest; meant for exact-answer tasks); ``compile`` = after the work, the last non-abstaining
agent (in worker order) is shown every contribution and writes the deliverable. Defaults:
``last`` for sequential, ``compile`` for broadcast and shared; the coordinator always combines
(``output`` does not apply).

``shock: {at: t, kind: remove | swap, agent: i, model: {...}}``: from the t-th task of the run
on (0-based), agent i (position in the team, or name) is removed, or its calls go to ``model``
(a model entry like the grid's; built once per process on first use).

Trace: ``role`` events (one per agent and task that took part: ``data`` = ``abstain``,
``task``, and for assigned roles ``assigned``/``phase``), the coordinator's assignments as
``message`` events (excluded agents: ``data["excluded"]``), one team ``answer`` event per task
(``data["task"]``, ``seen`` = whose work it was made from). ``info``: ``outputs`` (each task's
deliverable), ``abstained``/``excluded`` per task, ``shock``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hivethink import prompts
from hivethink.answers import majority
from hivethink.backends.base import Backend, Completion, GenRequest
from hivethink.errors import HivethinkError
from hivethink.names import worker_names
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Recorder, SubstrateBase, conversation, find_json
from hivethink.substrates.sequential import parse_role
from hivethink.tasks.base import Instance, Task
from hivethink.tasks.mission import run_missions

PROTOCOLS = ("sequential", "coordinator", "broadcast", "shared")
OUTPUTS = ("last", "vote", "compile")
DEFAULT_OUTPUT = {"sequential": "last", "broadcast": "compile", "shared": "compile"}
MEMORIES = ("contributions", "team")
SHOCKS = ("remove", "swap")

BOOK = prompts.book(
    "self-organizing",
    {
        "system": ["name", "n"],
        "sequential": ["position", "n", "mission", "work"],
        "contribution": ["name", "role", "text"],
        "nothing_yet": [],
        "any_role": [],
        "intend": ["mission"],
        "intention": ["name", "text"],
        "abstains": ["name"],
        "work_after_intentions": ["mission", "intentions"],
        "shared": ["mission", "memory"],
        "memory_task": ["number", "mission", "work"],
        "memory_empty": [],
        "team_deliverable": ["text"],
        "compile": ["mission", "work"],
        "coordinator_system": ["name", "n"],
        "coordinator_plan": ["mission", "agents", "example"],
        "coordinated_system": ["name", "n", "role", "phase"],
        "coordinated_user": ["mission", "work"],
        "aggregate": ["work"],
    },
)

_SWAP_LOCK = threading.Lock()
_SWAP_BACKENDS: dict[str, Backend] = {}  # a swapped-in model, built once per process


@dataclass(frozen=True)
class Shock:
    """From task ``at`` of a run on, agent ``agent`` is removed or runs on ``model``."""

    at: int
    kind: str
    agent: int | str
    model: dict[str, Any] | None = None

    @classmethod
    def parse(cls, value: Any) -> Shock:
        where = "self-organizing: shock"
        if not isinstance(value, dict):
            raise HivethinkError(f"{where} must be a mapping {{at, kind, agent[, model]}}")
        unknown = sorted(set(value) - {"at", "kind", "agent", "model"})
        if unknown:
            raise HivethinkError(
                f"{where} has no option {', '.join(unknown)} (at, kind, agent, model)"
            )
        at, kind, agent, model = (value.get(k) for k in ("at", "kind", "agent", "model"))
        if not isinstance(at, int) or isinstance(at, bool) or at < 0:
            raise HivethinkError(f"{where}.at must be a task index (0 or more), got {at!r}")
        if kind not in SHOCKS:
            raise HivethinkError(f"{where}.kind must be one of {', '.join(SHOCKS)}, got {kind!r}")
        agent = 0 if agent is None else agent
        if (
            isinstance(agent, bool)
            or not isinstance(agent, (int, str))
            or (isinstance(agent, int) and agent < 0)
        ):
            raise HivethinkError(f"{where}.agent must be a team position or a name, got {agent!r}")
        if kind == "swap":
            if not isinstance(model, dict) or not isinstance(model.get("kind"), str):
                raise HivethinkError(f"{where}: kind swap needs model: {{kind: ..., ...}}")
            from hivethink.backends import KINDS

            if model["kind"] not in KINDS:
                raise HivethinkError(
                    f"{where}.model: unknown backend kind {model['kind']!r} ({', '.join(KINDS)})"
                )
        elif model is not None:
            raise HivethinkError(f"{where}: model is for kind swap only")
        return cls(at, kind, agent, model)

    def who(self, team: list[str]) -> str:
        if isinstance(self.agent, str):
            if self.agent not in team:
                raise HivethinkError(f"shock: no agent {self.agent!r} in the team")
            return self.agent
        if self.agent >= len(team):
            raise HivethinkError(f"shock: agent {self.agent} but the team has {len(team)} agents")
        return team[self.agent]

    def backend(self) -> Backend:
        """The swapped-in model's backend (built on first use, shared by every sample)."""
        assert self.model is not None
        key = json.dumps(self.model, sort_keys=True, default=str)
        with _SWAP_LOCK:
            if key not in _SWAP_BACKENDS:
                from hivethink.backends import get_backend

                params = {k: v for k, v in self.model.items() if k not in ("kind", "name")}
                _SWAP_BACKENDS[key] = get_backend(self.model["kind"], **params)
            return _SWAP_BACKENDS[key]


class _Routed:
    """One sample's backend when a model is swapped in: the requests flagged in ``flags`` (set
    for each round, in call order) go to ``other``, the rest to ``main``."""

    def __init__(self, main: Backend, other: Backend) -> None:
        self.main, self.other, self.name = main, other, main.name
        self.flags: list[bool] = []

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        flags = self.flags if len(self.flags) == len(requests) else [False] * len(requests)
        mine = [r for r, f in zip(requests, flags, strict=True) if not f]
        theirs = [r for r, f in zip(requests, flags, strict=True) if f]
        a = iter(self.main.generate(mine) if mine else [])
        b = iter(self.other.generate(theirs) if theirs else [])
        return [next(b) if f else next(a) for f in flags]


@dataclass
class Contribution:
    """One agent's reply on one task: its role, whether it abstained, and its text without the
    ROLE line (what the others are shown)."""

    worker: str
    role: str | None
    abstain: bool
    text: str
    answer: str | None
    shown: str = ""  # as the others see it (rendered once: a 256-agent run shows it 255 times)


def contribution(worker: str, reply: str, task: Task, role: str | None = None) -> Contribution:
    """Read one reply; ``role`` is the assigned role (a ROLE line then only confirms it)."""
    declared, abstain = parse_role(reply)
    lines = reply.strip().splitlines()
    body = "\n".join(lines[1:]).strip() if declared is not None and lines else reply.strip()
    if abstain:
        return Contribution(worker, role or None, True, "", None)
    role = role or declared
    shown = BOOK.render(
        "contribution", name=worker, role=role or BOOK.render("any_role"), text=body
    )
    return Contribution(worker, role, False, body, task.extract(body) if body else None, shown)


def show(contributions: Sequence[Contribution]) -> str:
    """The finished contributions as others see them (abstentions left out)."""
    return "\n\n".join(c.shown for c in contributions if not c.abstain) or BOOK.render(
        "nothing_yet"
    )


class _Run:
    """One sample: the recorder, the round counter, and who is shocked on the current task."""

    def __init__(self, rec: Recorder, routed: _Routed | None) -> None:
        self.rec, self.routed = rec, routed
        self.step = 0
        self.task = 0
        self.swapped: str | None = None

    def call(self, calls: list[Call], **data: Any) -> list[str]:
        if self.routed is not None:
            self.routed.flags = [c.worker == self.swapped for c in calls]
        texts = self.rec.round(calls, step=self.step, data={"task": self.task, **data})
        self.step += 1
        return texts

    def role(self, c: Contribution, **data: Any) -> None:
        self.rec.event(
            "role",
            c.worker,
            c.role or "",
            step=self.step - 1,
            data={"abstain": c.abstain, "task": self.task, **data},
        )


@dataclass
class TaskWork:
    """What one task of the run produced: the deliverable, its answer, whose work it was made
    from, and the contributions."""

    deliverable: str | None
    answer: str | None
    made_from: list[str]
    contributions: list[Contribution]
    excluded: list[str]


@dataclass
class SelfOrganizing(SubstrateBase):
    """``protocol`` = sequential | coordinator | broadcast | shared; see the module docstring for
    ``output``, ``batch``, ``memory``, ``window`` and ``shock``."""

    name = "self-organizing"
    prompt_books = ("self-organizing",)

    protocol: str = "sequential"
    output: str | None = None  # None: the protocol's default (DEFAULT_OUTPUT)
    batch: int | None = None  # sequential only: agents per parallel group (default 1)
    memory: str | None = None  # shared only: contributions (default) | team
    window: int | None = None  # shared only: most recent earlier tasks kept (default 0 = all)
    shock: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        p = self.protocol
        if p not in PROTOCOLS:
            raise HivethinkError(
                f"self-organizing: unknown protocol {p!r} (choose from {', '.join(PROTOCOLS)})"
            )
        if self.output is not None:
            if p == "coordinator":
                raise HivethinkError(
                    "self-organizing: the coordinator combines the work itself; output does not apply"
                )
            if self.output not in OUTPUTS:
                raise HivethinkError(
                    f"self-organizing: unknown output {self.output!r} (choose from {', '.join(OUTPUTS)})"
                )
        for option, value, only in (
            ("batch", self.batch, "sequential"),
            ("memory", self.memory, "shared"),
            ("window", self.window, "shared"),
        ):
            if value is not None and p != only:
                raise HivethinkError(
                    f"self-organizing: {option} is an option of protocol {only} only"
                )
        self.batch = self._count("batch", self.batch, 1, 1)
        self.window = self._count("window", self.window, 0, 0)
        self.memory = self.memory or "contributions"
        if self.memory not in MEMORIES:
            raise HivethinkError(
                f"self-organizing: unknown memory {self.memory!r} (choose from {', '.join(MEMORIES)})"
            )
        self._shock = Shock.parse(self.shock) if self.shock is not None else None

    @staticmethod
    def _count(option: str, value: Any, default: int, least: int) -> int:
        if value is None:
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = least - 1
        if (
            isinstance(value, bool)
            or number < least
            or (isinstance(value, float) and value != number)
        ):
            raise HivethinkError(
                f"self-organizing: {option} must be an integer >= {least}, got {value!r}"
            )
        return number

    @property
    def rule(self) -> str:
        """The team output rule in force."""
        return self.output or DEFAULT_OUTPUT.get(self.protocol, "coordinator")

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
        shock = self._shock
        routed = (
            _Routed(backend, shock.backend())
            if shock is not None and shock.kind == "swap"
            else None
        )
        rec = Recorder(
            routed or backend, budget, seed=seed, temperature=self.temperature, probe=instance.probe
        )
        run = _Run(rec, routed)
        team = worker_names(workers)
        shocked = shock.who(team) if shock is not None else None
        memory: list[tuple[Instance, TaskWork]] = []
        outcomes: list[TaskWork] = []
        tasks = run_missions(instance)
        for t, sub in enumerate(tasks):
            if rec.exhausted:
                break
            run.task = t
            names = self._team_on(run, team, shocked, t)
            outcome = self._task(run, sub, task, names, memory)
            outcomes.append(outcome)
            memory.append((sub, outcome))
            if t < len(tasks) - 1:
                rec.event(
                    "answer",
                    "team",
                    outcome.answer or "",
                    step=run.step,
                    seen=outcome.made_from,
                    data={"task": t, **({"none": True} if outcome.answer is None else {})},
                )
        last = outcomes[-1] if outcomes else TaskWork(None, None, [], [], [])
        answers = {c.worker: c.answer for c in last.contributions}
        rec.answers(answers, step=run.step)
        info: dict[str, Any] = {
            "protocol": self.protocol,
            "output": self.rule,
            "tasks": len(outcomes),
            "outputs": [o.deliverable for o in outcomes],
            "abstained": [[c.worker for c in o.contributions if c.abstain] for o in outcomes],
            "budget_exhausted": len(outcomes) < len(tasks),
        }
        if self.protocol == "coordinator":
            info["excluded"] = [o.excluded for o in outcomes]
        if shock is not None:
            info["shock"] = {"at": shock.at, "kind": shock.kind, "agent": shocked}
        result = rec.finish(last.answer, agent_answers=answers, info=info)
        result.events[-1].seen = last.made_from
        result.events[-1].data["task"] = len(outcomes) - 1
        return result

    def _team_on(self, run: _Run, team: list[str], shocked: str | None, t: int) -> list[str]:
        """The team on task ``t``: from the shock's task on, without the removed agent, or with
        the swapped agent's calls marked for the other model (a ``system`` message marks when)."""
        shock = self._shock
        run.swapped = None
        if shock is None or shocked is None or t < shock.at:
            return list(team)
        if t == shock.at:
            what = "is removed" if shock.kind == "remove" else "runs on another model"
            run.rec.event(
                "message",
                "system",
                f"shock: {shocked} {what} from task {t} on",
                step=run.step,
                data={"shock": shock.kind, "agent": shocked, "task": t},
            )
        if shock.kind == "remove":
            return [n for n in team if n != shocked]
        run.swapped = shocked
        return list(team)

    def _task(
        self,
        run: _Run,
        sub: Instance,
        task: Task,
        names: list[str],
        memory: list[tuple[Instance, TaskWork]],
    ) -> TaskWork:
        if self.protocol == "coordinator":
            return self._coordinator(run, sub, task, names)
        if self.protocol == "sequential":
            done = self._sequential(run, sub, task, names)
        elif self.protocol == "broadcast":
            done = self._broadcast(run, sub, task, names)
        else:
            done = self._shared(run, sub, task, names, memory)
        return self._team_output(run, sub, task, done)

    def _sequential(
        self, run: _Run, sub: Instance, task: Task, names: list[str]
    ) -> list[Contribution]:
        done: list[Contribution] = []
        size = int(self.batch or 1)
        for start in range(0, len(names), size):
            if run.rec.exhausted:
                break
            group = names[start : start + size]
            work = show(done)
            seen = [c.worker for c in done if not c.abstain]
            calls = [
                Call(
                    n,
                    conversation(
                        BOOK.render("system", name=n, n=len(names)),
                        BOOK.render(
                            "sequential",
                            position=names.index(n) + 1,
                            n=len(names),
                            mission=sub.prompt,
                            work=work,
                        ),
                    ),
                    seen=list(seen),
                )
                for n in group
            ]
            for n, text in zip(group, run.call(calls), strict=True):
                c = contribution(n, text, task)
                self._check_format(run, text, c)
                run.role(c)
                done.append(c)
        return done

    def _broadcast(
        self, run: _Run, sub: Instance, task: Task, names: list[str]
    ) -> list[Contribution]:
        system = {n: BOOK.render("system", name=n, n=len(names)) for n in names}
        intents = run.call(
            [
                Call(n, conversation(system[n], BOOK.render("intend", mission=sub.prompt)), seen=[])
                for n in names
            ],
            phase="intend",
        )
        intended = {n: contribution(n, text, task) for n, text in zip(names, intents, strict=True)}
        for n, text in zip(names, intents, strict=True):
            self._check_format(run, text, intended[n])
        listing = "\n".join(
            BOOK.render("abstains", name=n)
            if c.abstain
            else BOOK.render(
                "intention", name=n, text=f"{c.role or BOOK.render('any_role')}: {c.text}".strip()
            )
            for n, c in intended.items()
        )
        working = [n for n in names if not intended[n].abstain]
        user = BOOK.render("work_after_intentions", mission=sub.prompt, intentions=listing)
        texts = run.call(
            [
                Call(n, conversation(system[n], user), seen=[m for m in names if m != n])
                for n in working
            ],
            phase="work",
        )
        work = dict(zip(working, texts, strict=True))
        done = []
        for n in names:
            c = intended[n]
            if n in work:
                c = contribution(n, work[n], task, role=intended[n].role)
                self._check_format(run, work[n], c)
            run.role(c)
            done.append(c)
        return done

    def _shared(
        self,
        run: _Run,
        sub: Instance,
        task: Task,
        names: list[str],
        memory: list[tuple[Instance, TaskWork]],
    ) -> list[Contribution]:
        kept = memory[-self.window :] if self.window else memory
        first = len(memory) - len(kept)
        entries, seen = [], []
        for k, (earlier, outcome) in enumerate(kept):
            if self.memory == "team":
                work = BOOK.render("team_deliverable", text=outcome.deliverable or "")
                seen += [w for w in outcome.made_from if w not in seen]
            else:
                work = show(outcome.contributions)
                seen += [
                    c.worker
                    for c in outcome.contributions
                    if not c.abstain and c.worker not in seen
                ]
            entries.append(
                BOOK.render(
                    "memory_task",
                    number=first + k + 1,
                    mission=earlier.prompt.splitlines()[0],
                    work=work,
                )
            )
        shown = "\n\n".join(entries) or BOOK.render("memory_empty")
        calls = [
            Call(
                n,
                conversation(
                    BOOK.render("system", name=n, n=len(names)),
                    BOOK.render("shared", mission=sub.prompt, memory=shown),
                ),
                seen=list(seen),
            )
            for n in names
        ]
        done = []
        for n, text in zip(names, run.call(calls), strict=True):
            c = contribution(n, text, task)
            self._check_format(run, text, c)
            run.role(c)
            done.append(c)
        return done

    def _coordinator(self, run: _Run, sub: Instance, task: Task, names: list[str]) -> TaskWork:
        coordinator, others = names[0], names[1:]
        history = conversation(
            BOOK.render("coordinator_system", name=coordinator, n=len(names)),
            BOOK.render(
                "coordinator_plan",
                mission=sub.prompt,
                agents=", ".join(others),
                example=json.dumps({n: {"role": "...", "phase": 1} for n in others[:2]}),
            ),
        )
        if not others:  # a team of one: the coordinator does the mission itself
            [final] = run.call(
                [
                    Call(
                        coordinator,
                        conversation(
                            history[0]["content"],
                            BOOK.render("compile", mission=sub.prompt, work=show([])),
                        ),
                        seen=[],
                    )
                ]
            )
            answer = task.extract(final.strip())
            return TaskWork(final.strip() or None, answer, [coordinator], [], [])
        [plan] = run.call([Call(coordinator, list(history), seen=[])], phase="plan")
        history.append({"role": "assistant", "content": plan})
        assignment = self._assignment(run, coordinator, plan, others)
        excluded = [n for n in others if n not in assignment]
        for n in others:
            if n in assignment:
                role, phase = assignment[n]
                run.rec.event(
                    "message",
                    coordinator,
                    f"role: {role or '(free)'}; phase: {phase}",
                    step=run.step - 1,
                    recipients=[n],
                    data={"role": role, "phase": phase, "task": run.task},
                )
            else:
                run.rec.event(
                    "message",
                    coordinator,
                    "excluded",
                    step=run.step - 1,
                    recipients=[n],
                    data={"excluded": True, "task": run.task},
                )
        done: list[Contribution] = []
        for phase in sorted({p for _, p in assignment.values()}):
            if run.rec.exhausted:
                break
            members = [n for n in others if n in assignment and assignment[n][1] == phase]
            work = show(done)
            seen = [coordinator] + [c.worker for c in done if not c.abstain]
            calls = []
            for n in members:
                role = assignment[n][0]
                system = (  # no role given: the agent chooses its own, as without a coordinator
                    BOOK.render("coordinated_system", name=n, n=len(names), role=role, phase=phase)
                    if role is not None
                    else BOOK.render("system", name=n, n=len(names))
                )
                user = BOOK.render("coordinated_user", mission=sub.prompt, work=work)
                calls.append(Call(n, conversation(system, user), seen=list(seen)))
            for n, text in zip(members, run.call(calls, phase=phase), strict=True):
                c = contribution(n, text, task, role=assignment[n][0])
                run.role(c, assigned=assignment[n][0] is not None, phase=phase)
                done.append(c)
        history.append({"role": "user", "content": BOOK.render("aggregate", work=show(done))})
        made_from = [c.worker for c in done if not c.abstain]
        [final] = run.call([Call(coordinator, history, seen=made_from)], phase="aggregate")
        deliverable = final.strip() or None
        return TaskWork(
            deliverable, task.extract(final) if deliverable else None, [coordinator], done, excluded
        )

    @staticmethod
    def _assignment(
        run: _Run, coordinator: str, plan: str, others: list[str]
    ) -> dict[str, tuple[str | None, int]]:
        """``agent -> (role or None, phase)`` from the coordinator's JSON; agents it does not
        name (or maps to null/false) are excluded. No JSON object: everyone, phase 1, free role."""
        obj = find_json(plan, dict)
        if obj is None:
            run.rec.error(
                coordinator,
                "no assignment JSON; every agent works in phase 1 on a role of its choice",
                step=run.step - 1,
            )
            return {n: (None, 1) for n in others}
        by_name = {n.lower(): n for n in others}
        out: dict[str, tuple[str | None, int]] = {}
        for key, value in obj.items():
            name = by_name.get(str(key).strip().lower())
            if name is None:
                run.rec.error(
                    coordinator,
                    f"assignment names no agent of the team: {key!r}",
                    step=run.step - 1,
                )
                continue
            if value is None or value is False:
                continue
            role: Any = value.get("role") if isinstance(value, dict) else value
            phase: Any = value.get("phase", 1) if isinstance(value, dict) else 1
            try:
                phase = max(1, int(phase))
            except (TypeError, ValueError):
                phase = 1
            out[name] = (str(role).strip() or None if role is not None else None, phase)
        return out

    def _team_output(
        self, run: _Run, sub: Instance, task: Task, done: list[Contribution]
    ) -> TaskWork:
        contributors = [c for c in done if not c.abstain]
        if not contributors:
            return TaskWork(None, None, [], done, [])
        rule = self.rule
        if rule == "last":
            c = contributors[-1]
            return TaskWork(c.text or None, c.answer, [c.worker], done, [])
        if rule == "vote":
            answer = majority(c.answer for c in contributors)
            voted = next((c for c in contributors if c.answer == answer), contributors[-1])
            return TaskWork(voted.text or None, answer, [c.worker for c in contributors], done, [])
        compiler = contributors[-1].worker
        user = BOOK.render("compile", mission=sub.prompt, work=show(done))
        system = BOOK.render("system", name=compiler, n=len(done))
        [text] = run.call(
            [Call(compiler, conversation(system, user), seen=[c.worker for c in contributors])],
            phase="compile",
        )
        final = contribution(compiler, text, task)
        deliverable = final.text or None
        return TaskWork(deliverable, final.answer, [c.worker for c in contributors], done, [])

    @staticmethod
    def _check_format(run: _Run, text: str, c: Contribution) -> None:
        if not c.abstain and parse_role(text)[0] is None:
            run.rec.error(c.worker, "no ROLE or ABSTAIN line", step=run.step - 1)
