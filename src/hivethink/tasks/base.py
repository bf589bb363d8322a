"""The task contract: instances generated offline from a seed, each with an exact, pure scorer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class Instance:
    """One problem. ``prompt`` is what a solver is asked; ``target`` is the ground truth (any JSON)."""

    task: str
    id: str  # stable: the same (task, params, seed, index) always gives the same id
    prompt: str
    target: Any = None
    data: dict[str, Any] = field(default_factory=dict)  # task-specific (graph, start values, ...)


@runtime_checkable
class Task(Protocol):
    name: str

    def generate(self, n: int, seed: int) -> list[Instance]:
        """``n`` instances, deterministic in ``seed``."""
        ...

    def extract(self, text: str) -> str | None:
        """The final answer written in a model's text, or None when there is none."""
        ...

    def score(self, instance: Instance, answer: str | None) -> float:
        """Score in [0, 1] of one team answer (None = no answer = 0)."""
        ...
