"""Grid expansion: a :class:`LabConfig` becomes a list of samples, each with a stable key.

Order: models x tasks x instances x substrates x workers x seeds (a task's ``substrates`` list
restricts the substrates for that task). Worker counts per substrate: its own ``workers`` if
set, else the global list, deduplicated. ``single`` runs one worker; given N it takes N x
``max_tokens`` as its budget (the fair baseline for an N-worker team), so different N are
different samples; but when ``budget.passes`` or ``budget.tokens`` is set that budget no longer
depends on N, so its cells collapse into one with ``workers = 1``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.lab.config import LabConfig, SubstrateSpec
from hivethink.substrates.base import Substrate
from hivethink.tasks.base import Instance, Task

# Substrates that run one worker whatever ``workers`` says (see the module docstring).
SOLO_SUBSTRATES = frozenset({"single"})


def canonical_json(value: Any) -> str:
    """Sorted, compact, ASCII JSON: equal values always give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def sample_key(cell: dict[str, Any], instance_id: str, seed: int) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of (cell, instance id, seed)."""
    blob = canonical_json({"cell": cell, "instance": instance_id, "seed": seed})
    return hashlib.sha256(blob.encode("ascii")).hexdigest()[:16]


@dataclass
class Factories:
    """Where backends, tasks and substrates come from (tests inject fakes here)."""

    get_backend: Callable[..., Backend]
    get_task: Callable[..., Task]
    get_substrate: Callable[..., Substrate]


def _registry_backend(kind: str, **params: Any) -> Backend:
    from hivethink.backends import get_backend

    return get_backend(kind, **params)


def _registry_task(name: str, **params: Any) -> Task:
    from hivethink.tasks import get_task

    return get_task(name, **params)


def _registry_substrate(name: str, **params: Any) -> Substrate:
    from hivethink.substrates import get_substrate

    return get_substrate(name, **params)


def default_factories() -> Factories:
    """The package registries (imported on first use)."""
    return Factories(_registry_backend, _registry_task, _registry_substrate)


@dataclass
class Sample:
    """One execution of the grid: a config cell on one instance with one seed."""

    key: str
    index: int  # position in the grid
    cell: dict[str, Any]  # model, substrate, workers, task, budget: everything the key hashes
    model: int  # index into config.models
    substrate: int  # index into config.substrates
    task: int  # index into config.tasks
    workers: int
    instance: Instance
    seed: int


@dataclass
class Plan:
    """The expanded grid with the task and substrate objects it was built from."""

    config: LabConfig
    samples: list[Sample]
    tasks: list[Task] = field(default_factory=list)
    substrates: list[Substrate] = field(default_factory=list)


def worker_counts(config: LabConfig, spec: SubstrateSpec) -> list[int]:
    """The worker counts a substrate runs with (see the module docstring for ``single``)."""
    if spec.name in SOLO_SUBSTRATES and (
        config.budget.passes is not None or config.budget.tokens is not None
    ):
        return [1]
    return sorted(set(spec.workers or config.workers))


def _build(kind: str, name: str, make: Callable[[], Any]) -> Any:
    try:
        return make()
    except HivethinkError:
        raise
    except Exception as err:  # bad parameters: TypeError, ValueError, KeyError from the registry
        raise HivethinkError(f"{kind} {name!r}: {type(err).__name__}: {err}") from None


def expand_grid(config: LabConfig, factories: Factories) -> Plan:
    """Build every task and substrate once, generate the instances, and list every sample."""
    tasks = [
        _build("task", t.name, partial(factories.get_task, t.name, **t.params))
        for t in config.tasks
    ]
    substrates = [
        _build("substrate", s.name, partial(factories.get_substrate, s.name, **s.params))
        for s in config.substrates
    ]
    instances: list[list[Instance]] = []
    for spec, task in zip(config.tasks, tasks, strict=True):
        generated = _build("task", spec.name, partial(task.generate, spec.n, spec.instance_seed))
        instances.append(list(generated))
    budget = config.budget.model_dump()
    samples: list[Sample] = []
    for mi, model in enumerate(config.models):
        model_cell = {"kind": model.kind, "params": model.params}
        for ti, tspec in enumerate(config.tasks):
            task_cell = {
                "name": tspec.name,
                "params": tspec.params,
                "instance_seed": tspec.instance_seed,
            }
            allowed = set(tspec.substrates) if tspec.substrates is not None else None
            for instance in instances[ti]:
                for si, sspec in enumerate(config.substrates):
                    if allowed is not None and sspec.display not in allowed:
                        continue
                    for workers in worker_counts(config, sspec):
                        cell = {
                            "model": model_cell,
                            "substrate": {"name": sspec.name, "params": sspec.params},
                            "workers": workers,
                            "task": task_cell,
                            "budget": budget,
                        }
                        for seed in config.seeds:
                            samples.append(
                                Sample(
                                    key=sample_key(cell, instance.id, seed),
                                    index=len(samples),
                                    cell=cell,
                                    model=mi,
                                    substrate=si,
                                    task=ti,
                                    workers=workers,
                                    instance=instance,
                                    seed=seed,
                                )
                            )
    keys = [s.key for s in samples]
    if len(set(keys)) != len(keys):
        raise HivethinkError(
            "the grid repeats a sample (same model, substrate, task, instance, seed)"
        )
    return Plan(config=config, samples=samples, tasks=tasks, substrates=substrates)
