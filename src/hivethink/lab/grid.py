"""Grid expansion: a :class:`LabConfig` becomes a list of samples, each with a stable key.

Order: models x tasks x instances x substrates x workers x seeds (a task's ``substrates`` list
restricts the substrates for that task). A task runs only on the substrates it is meant for
(``hivethink.tasks.base.meant_for``: the ones it declares, else every text substrate); naming
another one in a task's ``substrates`` list is an error, and so is a task meant for none of the
configured substrates. Worker counts per substrate: its own ``workers`` if
set, else the global list, deduplicated. ``single`` runs one worker; given N it takes N x
``max_tokens`` as its budget (the fair baseline for an N-worker team), so different N are
different samples; but when ``budget.passes`` or ``budget.tokens`` is set (or ``budgets`` sets
one of them) that budget no longer depends on N, so its cells collapse into one with
``workers = 1``.

With a ``budgets`` list, budgets are the innermost loop but one (before seeds) and each value is
its own cell (:func:`sample_budget`). Samples are computed in :class:`Job` s: one sample each,
except that a substrate with ``snapshots = True`` computes all the budgets of one (model, task,
instance, substrate, workers, seed) in one run at the largest budget, the others being snapshots
of that run (:func:`job_budget`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.lab.config import LabConfig, SubstrateSpec
from hivethink.substrates.base import Budget, Substrate
from hivethink.tasks.base import Instance, Task, is_judged, meant_for

# Substrates that run one worker whatever ``workers`` says (see the module docstring).
SOLO_SUBSTRATES = frozenset({"single"})


def canonical_json(value: Any) -> str:
    """Sorted, compact, ASCII JSON: equal values always give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def sample_key(cell: dict[str, Any], instance_id: str, seed: int) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of (cell, instance id, seed)."""
    blob = canonical_json({"cell": cell, "instance": instance_id, "seed": seed})
    return hashlib.sha256(blob.encode("ascii")).hexdigest()[:16]


def _group(cell: dict[str, Any], instance_id: str, seed: int) -> str:
    """The key of a sample's cell without its budget: equal for the budgets of one group."""
    return sample_key({k: v for k, v in cell.items() if k != "budget"}, instance_id, seed)


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
    budget: int | None = None  # its value from the ``budgets`` list (None without one)
    group: str = ""  # its cell's key without the budget: the same for each of its budgets


@dataclass
class Job:
    """What one ``substrate.run`` computes: one sample, or (``snapshot``) the unfinished budgets
    of one group, taken from one run at the largest budget (:func:`job_budget`)."""

    samples: list[Sample]
    snapshot: bool = False


@dataclass
class Plan:
    """The expanded grid with the task and substrate objects it was built from."""

    config: LabConfig
    samples: list[Sample]
    tasks: list[Task] = field(default_factory=list)
    substrates: list[Substrate] = field(default_factory=list)

    def takes_snapshots(self, substrate: int) -> bool:
        """Whether this grid runs the budgets of ``substrate`` as snapshots of one run."""
        return bool(self.config.budgets) and bool(
            getattr(self.substrates[substrate], "snapshots", False)
        )

    def jobs(self, samples: list[Sample]) -> list[Job]:
        """``samples`` as jobs, in grid order: one per sample, but one per group for the
        substrates that take snapshots."""
        jobs: list[Job] = []
        groups: dict[str, Job] = {}
        for sample in samples:
            if not self.takes_snapshots(sample.substrate):
                jobs.append(Job([sample]))
            elif sample.group in groups:
                groups[sample.group].samples.append(sample)
            else:
                groups[sample.group] = Job([sample], snapshot=True)
                jobs.append(groups[sample.group])
        return jobs


def budget_cell(config: LabConfig, value: int | None) -> dict[str, Any]:
    """The budget of a sample with ``budgets`` value ``value``, as its cell holds it: ``budget``
    with the matched field (passes or tokens) set to ``value``; ``budget`` itself for ``None``."""
    fields = config.budget.cell()
    if value is not None:
        fields[config.budget.match] = value
    return fields


def sample_budget(config: LabConfig, value: int | None) -> Budget:
    """The :class:`Budget` a sample with ``budgets`` value ``value`` runs with."""
    return Budget(**budget_cell(config, value), match=config.budget.match)


def job_budget(config: LabConfig, job: Job) -> Budget:
    """The budget a job runs with: its sample's, or, for a snapshot job, the largest of
    ``budgets`` with every value of ``budgets`` as a snapshot (whichever of them are still to be
    recorded: the run is the same, so its results are too)."""
    if not job.snapshot:
        return sample_budget(config, job.samples[0].budget)
    assert config.budgets  # a snapshot job exists only with a budgets list
    return dataclasses.replace(
        sample_budget(config, config.budgets[-1]), snapshots=tuple(config.budgets)
    )


def worker_counts(config: LabConfig, spec: SubstrateSpec) -> list[int]:
    """The worker counts a substrate runs with (see the module docstring for ``single``)."""
    if spec.name in SOLO_SUBSTRATES and (
        config.budget.passes is not None or config.budget.tokens is not None or config.budgets
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


def _check_meant_for(config: LabConfig, tasks: list[Task], substrates: list[Substrate]) -> None:
    """One-line errors for task/substrate pairings no sample could run (see the docstring)."""
    labels = [s.display for s in config.substrates]
    for spec, task in zip(config.tasks, tasks, strict=True):
        fits = [label for label, sub in zip(labels, substrates, strict=True) if meant_for(task, sub)]
        named = spec.substrates if spec.substrates is not None else labels
        wrong = [label for label in named if label not in fits]
        if spec.substrates is not None and wrong:
            raise HivethinkError(
                f"task {spec.label!r} is not meant for substrate(s) {', '.join(wrong)} "
                f"(of those configured it fits: {', '.join(fits) or 'none'})"
            )
        if not fits:
            raise HivethinkError(f"task {spec.label!r} is meant for none of the configured substrates")
        paired = [sub for label, sub in zip(labels, substrates, strict=True) if label in fits and label in named]
        _check_pairs(config, spec.label, task, paired)


def _check_pairs(config: LabConfig, label: str, task: Task, substrates: list[Substrate]) -> None:
    """What only a task and substrate together can tell, before any model loads: a substrate's
    own demands on the task (``check_task``, e.g. a cascade's verifier), and a judge for a task
    scored by one (``judged``)."""
    for substrate in substrates:
        check = getattr(substrate, "check_task", None)
        if callable(check):
            check(task)
    if is_judged(task) and config.judge is None:
        raise HivethinkError(
            f"task {label!r} is scored by an LLM judge: add judge: {{model: {{kind: ..., ...}}}} "
            "to the grid"
        )


def _check_scoring(config: LabConfig, substrates: list[Substrate]) -> None:
    """A substrate that reads likelihoods (``scores_text``) next to a backend kind that has
    none (``hivethink.backends.can_score``) is a one-line error before any model loads."""
    from hivethink.backends import SCORING_KINDS, can_score

    for spec, sub in zip(config.substrates, substrates, strict=True):
        if not getattr(sub, "scores_text", False):
            continue
        for model in config.models:
            if not can_score(model.kind):
                raise HivethinkError(
                    f"substrate {spec.display!r} scores text by likelihood, which backend kind "
                    f"{model.kind!r} (model {model.label!r}) cannot do (kinds that can: "
                    f"{', '.join(SCORING_KINDS)})"
                )


def expand_grid(config: LabConfig, factories: Factories) -> Plan:
    """Build every task and substrate once, generate the instances, and list every sample."""
    tasks = [
        _build("task", t.name, functools.partial(factories.get_task, t.name, **t.params))
        for t in config.tasks
    ]
    substrates = [
        _build("substrate", s.name, functools.partial(factories.get_substrate, s.name, **s.params))
        for s in config.substrates
    ]
    _check_meant_for(config, tasks, substrates)
    _check_scoring(config, substrates)
    instances: list[list[Instance]] = []
    for spec, task in zip(config.tasks, tasks, strict=True):
        generated = _build(
            "task", spec.name, functools.partial(task.generate, spec.n, spec.instance_seed)
        )
        instances.append(list(generated))
    budgets: list[int | None] = list(config.budgets) if config.budgets else [None]
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
                    if not meant_for(tasks[ti], substrates[si]):
                        continue
                    for workers, value, seed in itertools.product(
                        worker_counts(config, sspec), budgets, config.seeds
                    ):
                        cell = {
                            "model": model_cell,
                            "substrate": {"name": sspec.name, "params": sspec.params},
                            "workers": workers,
                            "task": task_cell,
                            "budget": budget_cell(config, value),
                        }
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
                                budget=value,
                                group=_group(cell, instance.id, seed),
                            )
                        )
    keys = [s.key for s in samples]
    if len(set(keys)) != len(keys):
        raise HivethinkError(
            "the grid repeats a sample (same model, substrate, task, instance, seed)"
        )
    return Plan(config=config, samples=samples, tasks=tasks, substrates=substrates)
