"""What a hive wrote and what it found: its record as it happens (events, pass times), the state
each budget's answer depends on, and the :class:`HiveResult` of a budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hivethink.answers import majority
from hivethink.engine.hive.policy import Worker
from hivethink.names import FINISHER, header_mentions, references
from hivethink.trace import Event


@dataclass
class HiveResult:
    answer: str | None
    finished_by: str  # "answer" (a finished step) | "transcript" (an unfinished one) | "finisher"
    steps: int  # sequential forward passes used (the budget's unit)
    tokens: dict[str, int]  # generated tokens per worker
    texts: dict[str, str]  # each worker's whole stream (forced text included)
    answers: dict[str, str | None]  # each worker's answer, where it gave one
    references: dict[str, int]  # times each worker named another worker (whole names)
    checks: int  # redundancy checks asked
    checks_yes: int  # ... answered "yes"
    impersonations: dict[str, int]  # step headers of other workers each one wrote
    wall_s: float
    forced_tokens: int = 0  # tokens written by the policy (headers, checks, first steps)
    visibility: str = "instant"
    events: list[Event] = field(default_factory=list)
    at_budget: dict[int, HiveResult] = field(default_factory=dict)  # snapshots (and the budget)

    @property
    def tokens_per_s(self) -> float:
        return sum(self.tokens.values()) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def prompt_tokens(self) -> int:
        """The shared prompt's tokens (the run's prompt event; 0 without one)."""
        return int(self._prompt().get("tokens", 0))

    @property
    def cached_tokens(self) -> int:
        """Of them, those the prefix cache held (not computed for this run)."""
        return int(self._prompt().get("cached", 0))

    def _prompt(self) -> dict[str, Any]:
        return next((e.data for e in self.events if e.kind == "prompt"), {})


@dataclass
class Snapshot:
    """What the answer of a budget depends on (the reference's reasoning state)."""

    passes: int
    history: list[int]
    steps: list[list[int]]  # each worker's unfinished step (its last sampled token included)
    streams: list[list[int]]  # each worker's whole text (the same)
    finished: bool
    generated: dict[str, int]
    n_events: int


# How a budget's answer was found: (answer, "answer" | "transcript" | "finisher"), per worker that
# answers alone or None for the team; and the finisher's text with its token count, where it wrote.
Found = dict[int | None, tuple[str | None, str]]
FinisherText = dict[int | None, tuple[str, int]]


class Record:
    """The hive's events as they happen (steps, answers, checks; tokens are rebuilt from the
    workers' records) and the time each pass was written, from the job's start."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.events: list[Event] = []
        self.pass_t: list[float] = []  # when pass p's tokens were written

    def now(self) -> float:
        return round(time.perf_counter() - self.t0, 4)

    def emit(self, **kw: Any) -> None:
        self.events.append(Event(t=self.now(), **kw))

    def pass_written(self) -> None:
        self.pass_t.append(self.now())


def hive_result(*, budget: int, state: Snapshot, record: Record, workers: list[Worker], votes: bool,
                found: Found, finisher_text: FinisherText, token_texts: list[str],
                decode: Callable[[list[int]], str], visibility: str) -> HiveResult:
    """The result at ``budget`` from its snapshot: the team's answer (or the vote of workers that
    answer alone), the trace up to that pass, and the coordination counts."""
    names = [x.name for x in workers]
    events = _token_events(workers, state.passes, record.pass_t, token_texts)
    events += [e for e in record.events[: state.n_events] if e.kind != "prompt"]
    events.sort(key=lambda e: e.t)  # stable: a pass's tokens before what its update found
    prompt_events = [e for e in record.events if e.kind == "prompt"]
    now = record.now()
    if votes:
        per = {names[w]: found[w] for w in range(len(names))}
        answers = {n: a for n, (a, _) in per.items()}
        team = majority(answers.values())
        hows = {how for _, how in per.values()}
        by = "answer" if hows == {"answer"} else "finisher" if "finisher" in hows else "transcript"
    else:
        team, by = found[None]
        answered = {e.worker for e in record.events[: state.n_events] if e.kind == "answer"}
        answers = {x.name: x.answer if x.name in answered else None for x in workers}
    for w, (text, n_tokens) in finisher_text.items():
        events.append(Event(kind="step", worker=FINISHER if w is None else names[w], step=state.passes,
                            t=now, text=text, data={"finisher": True, "tokens": n_tokens}))
    for n, a in answers.items():
        if a is not None and not any(e.kind == "answer" and e.worker == n for e in events):
            events.append(Event(kind="answer", worker=n, text=a, step=state.passes, t=now))
    events.append(Event(kind="answer", worker="team", step=state.passes, t=now, text=team or "",
                        data={"finished_by": by, "budget": budget, **({"none": True} if team is None else {})}))
    gen_text = {x.name: decode([tid for (p, _, tid, f) in x.records if p < state.passes and not f]) for x in workers}
    imperson = {x.name: sum(1 for n in header_mentions(gen_text[x.name], names) if n != x.name) for x in workers}
    for x in workers:
        for n in header_mentions(gen_text[x.name], names):
            if n != x.name:
                events.append(Event(kind="error", worker=x.name, text=f"wrote a step header of {n}",
                                    step=state.passes, t=now, data={"reason": "impersonation", "as": n}))
    streams = {x.name: decode([tid for (p, _, tid, _) in x.records if p < state.passes]) for x in workers}
    return HiveResult(
        answer=team, finished_by=by, steps=state.passes, tokens=dict(state.generated), texts=streams,
        answers=answers, references={n: references(gen_text[n], n, names) for n in names},
        checks=sum(1 for e in events if e.kind == "check"),
        checks_yes=sum(1 for e in events if e.kind == "check" and e.data.get("answer") == "yes"),
        impersonations=imperson, wall_s=time.perf_counter() - record.t0,
        forced_tokens=sum(1 for x in workers for (p, _, _, f) in x.records if p < state.passes and f),
        visibility=visibility, events=prompt_events + events)


def _token_events(workers: list[Worker], passes: int, pass_t: list[float], token_texts: list[str]) -> list[Event]:
    out = []
    for x in workers:
        for p, pos, tid, forced in x.records:
            if p < passes:
                out.append(Event(kind="token", worker=x.name, step=p, position=pos, token_id=tid, t=pass_t[p],
                                 text=token_texts[tid], data={"forced": True} if forced else {}))
    return out
