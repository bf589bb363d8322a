"""The substrate contract: a coordination protocol run over a backend on one task instance.

A substrate decides who sees what and when (rounds, turns, votes, a board, a coordinator);
it records everything it did as trace events and returns one :class:`SampleResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from hivethink.backends.base import Backend
from hivethink.tasks.base import Instance, Outcome, Task
from hivethink.trace import Event


@dataclass
class Budget:
    """What one sample may spend, the same contract for every substrate.

    ``passes`` is latency: sequential forward passes on the critical path (calls that run side by
    side in one round count once, by their longest completion; a hive counts its lockstep passes).
    ``tokens`` is compute: generated tokens of all agents together. Either, both or neither may
    be set (None: no limit of that kind); every substrate reports what it spent of both
    (``SampleResult.sequential_passes`` and ``.tokens``), so a grid can match either.
    ``max_tokens`` caps one backend call and ``rounds`` is a multi-round protocol's round count;
    presets of published protocols bring their own values for both where the paper fixes them.
    """

    max_tokens: int = 256  # per backend call (per generated message)
    rounds: int = 3  # rounds / turns for multi-round protocols
    passes: int | None = None  # sequential forward passes, the whole sample
    tokens: int | None = None  # generated tokens, all agents, the whole sample
    # Smaller budgets, in the unit of ``match`` ("passes" or "tokens"), at which a substrate that
    # can (``Substrate.snapshots``) also records the result it would have given, from the same
    # run (``SampleResult.at_budget``): one decode gives the whole accuracy-vs-budget curve.
    snapshots: tuple[int, ...] = ()
    match: str = "passes"

    def __post_init__(self) -> None:
        for name in ("passes", "tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"budget {name} must be at least 1, got {value}")
        if self.match not in ("passes", "tokens"):
            raise ValueError(f"budget match must be 'passes' or 'tokens', got {self.match!r}")
        if any(b < 1 for b in self.snapshots) or list(self.snapshots) != sorted(set(self.snapshots)):
            raise ValueError(f"budget snapshots must be increasing and positive, got {self.snapshots}")


@dataclass
class SampleResult:
    events: list[Event]
    answer: str | None  # the team's final answer (already extracted), None if none
    agent_answers: dict[str, str | None] = field(default_factory=dict)  # per agent, final
    sequential_passes: int = 0  # forward passes on the critical path (latency proxy)
    sequential_calls: int = 0  # backend calls that had to wait for each other (rounds)
    tokens: int = 0  # completion tokens, all agents
    prompt_tokens: int = 0
    cached_tokens: int = 0  # of the prompt tokens, those a prefix cache held (computed once, earlier)
    wall_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)  # protocol-specific (timeout, rounds used...)
    # The typed result of a protocol whose outcome is more than the team answer (the AgentsNet
    # answers of every node, the consensus game's trajectory, Coral's per-turn beliefs...).
    outcome: Outcome | None = None
    # budget -> the result this run would have given had that been its budget (``Budget.snapshots``)
    at_budget: dict[int, SampleResult] = field(default_factory=dict)


@runtime_checkable
class Substrate(Protocol):
    name: str
    # True when ``run`` honours ``budget.snapshots`` (fills ``SampleResult.at_budget``); the lab
    # runs other substrates once per budget instead.
    snapshots: ClassVar[bool]

    def run(
        self, instance: Instance, task: Task, backend: Backend, *, workers: int, budget: Budget,
        seed: int,
    ) -> SampleResult: ...
