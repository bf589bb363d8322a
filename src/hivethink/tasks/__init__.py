"""Tasks: procedural problem generators with exact, pure scorers.

``get_task("graph", kind="coloring", size=16)`` builds a task by name; each task is a dataclass
whose fields are its parameters. The task files also hold the helpers that substrates need for
multi-agent protocols (``graph``: AgentsNet instances, loading and scoring; ``agree``: the
consensus game's stop rule and outcome; ``pair``: the sycophancy probe; ``probes``: the common
ground and error propagation probes).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from hivethink.errors import HivethinkError
from hivethink.tasks.agree import AgreeTask
from hivethink.tasks.arithmetic import ArithmeticTask
from hivethink.tasks.base import Instance, Task
from hivethink.tasks.code import CodeTask
from hivethink.tasks.countdown import CountdownTask
from hivethink.tasks.enumerate import EnumerateTask
from hivethink.tasks.evidence import EvidenceTask
from hivethink.tasks.graph import GraphTask
from hivethink.tasks.math import MathTask
from hivethink.tasks.mission import MissionTask
from hivethink.tasks.pair import PairTask
from hivethink.tasks.probes import CommonGroundTask, ErrorPropagationTask

TASKS: dict[str, type] = {
    "math": MathTask,
    "enumerate": EnumerateTask,
    "countdown": CountdownTask,
    "graph": GraphTask,
    "agree": AgreeTask,
    "pair": PairTask,
    "arithmetic": ArithmeticTask,
    "common-ground": CommonGroundTask,
    "error-propagation": ErrorPropagationTask,
    "code": CodeTask,
    "evidence": EvidenceTask,
    "mission": MissionTask,
}


def _type_ok(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the annotation ``hint`` (the simple types task fields use)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a richer annotation: leave it to the task's own checks


def task_parameters(name: str) -> dict[str, Any]:
    """Parameter names of task ``name`` with their defaults."""
    cls = TASKS[name]
    return {f.name: f.default for f in dataclasses.fields(cls) if f.init}


def get_task(name: str, **params: Any) -> Task:
    """Build task ``name`` with ``params``; a bad name, parameter or value is a HivethinkError."""
    if name not in TASKS:
        raise HivethinkError(f"unknown task {name!r} (choose {', '.join(sorted(TASKS))})")
    cls = TASKS[name]
    hints = typing.get_type_hints(cls)
    allowed = task_parameters(name)
    for key, value in params.items():
        if key not in allowed:
            raise HivethinkError(
                f"task {name!r} has no parameter {key!r} (parameters: {', '.join(allowed)})"
            )
        if not _type_ok(value, hints[key]):
            raise HivethinkError(
                f"task {name!r}: parameter {key!r} must be {_type_name(hints[key])}, "
                f"got {type(value).__name__} {value!r}"
            )
    task = cls(**params)
    return typing.cast(Task, task)


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))


__all__ = [
    "TASKS",
    "AgreeTask",
    "ArithmeticTask",
    "CommonGroundTask",
    "CodeTask",
    "CountdownTask",
    "EnumerateTask",
    "ErrorPropagationTask",
    "EvidenceTask",
    "GraphTask",
    "Instance",
    "MathTask",
    "MissionTask",
    "PairTask",
    "Task",
    "get_task",
    "task_parameters",
]
