"""The substrate contract: a coordination protocol run over a backend on one task instance.

A substrate decides who sees what and when (rounds, turns, votes, a board, a coordinator);
it records everything it did as trace events and returns one :class:`SampleResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from hivethink.backends.base import Backend
from hivethink.tasks.base import Instance, Task
from hivethink.trace import Event


@dataclass
class Budget:
    """Limits shared by every substrate so comparisons are fair."""

    max_tokens: int = 256  # per backend call (per generated message)
    rounds: int = 3  # rounds / turns for multi-round protocols
    total_tokens: int | None = None  # team-wide cap; `single` gets workers * max_tokens by default


@dataclass
class SampleResult:
    events: list[Event]
    answer: str | None  # the team's final answer (already extracted), None if none
    agent_answers: dict[str, str | None] = field(default_factory=dict)  # per agent, final
    sequential_passes: int = 0  # forward passes on the critical path (latency proxy)
    sequential_calls: int = 0  # backend calls that had to wait for each other (rounds)
    tokens: int = 0  # completion tokens, all agents
    prompt_tokens: int = 0
    wall_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)  # protocol-specific (timeout, rounds used...)


@runtime_checkable
class Substrate(Protocol):
    name: str

    def run(
        self, instance: Instance, task: Task, backend: Backend, *, workers: int, budget: Budget,
        seed: int,
    ) -> SampleResult: ...
