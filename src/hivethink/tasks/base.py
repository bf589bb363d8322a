"""The task contract: instances generated offline from a seed, each with an exact, pure scorer.

A task owns its outcome. Most tasks are answered with text: a substrate returns the team's
answer string and :meth:`Task.score` scores it. Tasks whose result is not one answer (the
AgentsNet graph problems, the consensus game) define a typed :class:`Outcome` that the
substrate fills in and score it with ``score_outcome`` (:class:`OutcomeTask`).

A task says which substrates it is meant for with a class attribute ``substrates``: a tuple of
substrate names, or absent for "every substrate that answers with text" (see :func:`meant_for`).
A task whose instances carry model-facing text from a prompt book (graph descriptions, probe
texts) names those books in a class attribute ``prompt_books``, as substrates do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

Metric = float | int | str | None


@dataclass(frozen=True)
class Probe:
    """Something the substrate's :class:`~hivethink.substrates.common.Recorder` shows the agents
    on top of the protocol (``hivethink.tasks.probes``).

    ``revision``: from the ``start``-th round of agent calls on (0-based), every agent call is
    shown ``text`` (a partner revising a premise). ``seed``: every call of one agent (the first
    to be called) is shown ``text`` (a wrong claim); ``marker`` is what the metrics look for in
    the other agents' outputs. ``misled`` is the answer a team reaches that keeps the first
    premise (revision) or believes the wrong claim (seed).
    """

    kind: Literal["revision", "seed"]
    text: str
    misled: str
    start: int = 1
    marker: str | None = None


@dataclass
class Instance:
    """One problem. ``prompt`` is what a solver is asked; ``target`` is the ground truth (any JSON)."""

    task: str
    id: str  # stable: the same (task, params, seed, index) always gives the same id
    prompt: str
    target: Any = None
    data: dict[str, Any] = field(default_factory=dict)  # task-specific (graph, start values, ...)
    probe: Probe | None = None

    @property
    def question(self) -> str:
        """The problem alone, without the task's answer-format line (``data["question"]`` where
        the task keeps one), for protocols that state their own answer format."""
        return str(self.data.get("question") or self.prompt)


class Outcome(BaseModel):
    """The typed result of running a protocol on one instance (beyond a team answer string).

    Subclasses set ``prefix``; :meth:`metrics` turns their scalar fields into metrics named
    ``<prefix>_<field>`` (booleans as 0/1; lists and mappings stay in the record only).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    prefix: ClassVar[str] = "outcome"

    def metrics(self) -> dict[str, Metric]:
        out: dict[str, Metric] = {}
        for name, value in self:
            if isinstance(value, bool):
                out[f"{self.prefix}_{name}"] = int(value)
            elif value is None or isinstance(value, (int, float, str)):
                out[f"{self.prefix}_{name}"] = value
        return out


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


@runtime_checkable
class OutcomeTask(Task, Protocol):
    """A task whose protocol result is an :class:`Outcome`, scored by the task itself."""

    def score_outcome(self, instance: Instance, outcome: Outcome) -> float | None:
        """Score in [0, 1] of the outcome a substrate produced for ``instance``; None when the
        published evaluation leaves such a run out of its means (it could not score it)."""
        ...


@dataclass(frozen=True)
class Verdict:
    """A task's own check of one candidate answer: whether it is right, how the check ended
    (``ok``, or a kind of failure such as ``exception`` or ``timeout``) and a line on why."""

    passed: bool
    status: str
    detail: str = ""


@runtime_checkable
class VerifiableTask(Task, Protocol):
    """A task that can check a candidate before the final score, the way a team member could:
    countdown's arithmetic (it needs only what the prompt shows), the code task's tests (the
    problem's own tests, as the single-or-multi paper's cascade ran them on HumanEval).
    Substrates may call :meth:`verify` on any text the task extracts: the ``cascade``
    substrate's ``checker: verifier`` hook. ``answer_metrics`` adds the team answer's check to
    the results line. Not every task has one (a judged mission has none)."""

    def verify(self, instance: Instance, answer: str | None) -> Verdict: ...


def meant_for(task: Task, substrate: Any) -> bool:
    """Whether ``task`` is meant to run on ``substrate``: its declared ``substrates`` name it, or
    the task declares none and the substrate answers with text (``kind == "text"``). A
    substrate written for particular tasks (a preset's pipeline, a hand-written program) says
    which with ``accepts(task)``."""
    accepts = getattr(substrate, "accepts", None)
    if accepts is not None and not accepts(task):
        return False
    declared: tuple[str, ...] | None = getattr(task, "substrates", None)
    if declared is not None:
        return str(substrate.name) in declared
    return getattr(substrate, "kind", "text") == "text"


def is_judged(task: Any) -> bool:
    """Whether ``task`` is scored by the lab's LLM judge (class attribute ``judged = True``: the
    ``mission`` task) rather than by its own ``score``, which such a task does not have."""
    return bool(getattr(task, "judged", False))
