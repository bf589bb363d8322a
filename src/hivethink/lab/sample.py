"""One job computed: the single code path that runs a sample, wherever it runs.

:func:`execute_job` runs the substrate on a job's sample (or a snapshot substrate's budgets of
one sample), computes the metrics and returns each sample's trace events and typed
:class:`~hivethink.lab.records.ResultRecord` (nothing written). The runner's own loop, the
thread pool of :mod:`hivethink.lab.local` (``--concurrency``) and the Ray workers of
:mod:`hivethink.lab.distributed` all call it; the runner alone writes what it returns.
"""

from __future__ import annotations

import json
import time
import traceback
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from hivethink import prompts
from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError, validation_message
from hivethink.lab.config import ModelSpec
from hivethink.lab.grid import Factories, Job, Plan, Sample, job_budget
from hivethink.lab.records import ResultRecord, provenance
from hivethink.lab.store import TRACES
from hivethink.metrics import compute_metrics
from hivethink.metrics.defects import attribute
from hivethink.substrates.base import Budget, SampleResult
from hivethink.trace import Event


def _jsonable(value: Any) -> Any:
    """``value`` made JSON-safe (unknown objects become their ``str``)."""
    return json.loads(json.dumps(value, default=str))


def _failure(err: Exception) -> tuple[list[Event], dict[str, Any]]:
    """A sample that raised: a one-event trace (``worker="lab"``) holding the traceback."""
    message = f"{type(err).__name__}: {err}"
    event = Event(
        kind="error",
        worker="lab",
        text=message,
        data={"reason": "exception", "traceback": traceback.format_exc()},
    )
    return [event], {
        "score": None,
        "answer": None,
        "agent_answers": {},
        "metrics": {},
        "info": {},
        "outcome": None,
        "error": message,
    }


def _at_budget(result: SampleResult, budget: Budget, sample: Sample) -> SampleResult:
    """The result a snapshot run gives for ``sample``'s budget (``result`` itself for a plain
    run, and for the run's own budget when the substrate left that one out of ``at_budget``)."""
    if not budget.snapshots:
        return result
    value = sample.budget
    found = result.at_budget.get(value) if value is not None else None
    if found is not None:
        return found
    if value == budget.snapshots[-1]:
        return result
    raise RuntimeError(
        f"the substrate recorded no result at budget {value} "
        f"(it recorded {sorted(result.at_budget)}; asked for {list(budget.snapshots)})"
    )


def _fields(
    plan: Plan, sample: Sample, result: SampleResult
) -> tuple[list[Event], dict[str, Any]]:
    """The trace and the outcome fields of one sample's result."""
    task, instance = plan.tasks[sample.task], sample.instance
    metrics = compute_metrics(result.events, task=task, instance=instance, result=result)
    attribution = attribute(result.events, task, instance)
    failed_calls = [e.text for e in result.events if e.kind == "error" and e.data.get("backend")]
    return list(result.events), {
        "score": metrics.get("score"),
        "answer": result.answer,
        "agent_answers": _jsonable(result.agent_answers),
        "metrics": metrics,
        "info": _jsonable(result.info),
        "outcome": result.outcome.model_dump(mode="json") if result.outcome is not None else None,
        "defects": attribution.labels() if attribution is not None else None,
        "error": f"backend: {len(failed_calls)} failed call(s); first: {failed_calls[0]}"
        if failed_calls
        else None,
    }


def run_job(plan: Plan, job: Job, backend: Backend) -> list[tuple[list[Event], dict[str, Any]]]:
    """Run one job; for each of its samples, its trace and the fields of its results line that
    depend on it (in ``job.samples`` order).

    Any exception becomes an ``error`` field and a one-event trace (``worker="lab"``) holding the
    traceback (for every sample of the job when the run itself raised), so a failing sample never
    stops the run. A sample some of whose backend calls failed (after the backend's own retries;
    ``error`` events with ``data["backend"]``) keeps its trace and metrics and gets
    ``error = "backend: <k> failed call(s); first: <reason>"``.
    """
    first = job.samples[0]
    substrate = plan.substrates[first.substrate]
    budget = job_budget(plan.config, job)
    try:
        result = substrate.run(
            first.instance,
            plan.tasks[first.task],
            backend,
            workers=first.workers,
            budget=budget,
            seed=first.seed,
        )
    except Exception as err:  # the run failed: every sample of the job did
        events, fields = _failure(err)
        return [(list(events), dict(fields)) for _ in job.samples]
    out = []
    for sample in job.samples:
        try:
            out.append(_fields(plan, sample, _at_budget(result, budget, sample)))
        except Exception as err:  # this sample's snapshot or metrics failed
            out.append(_failure(err))
    return out


def _record(plan: Plan, sample: Sample, fields: dict[str, Any], n_events: int) -> ResultRecord:
    try:
        return _validated(plan, sample, fields, n_events)
    except ValidationError as err:
        raise HivethinkError(
            f"sample {sample.key}: results record does not validate: {validation_message(err)}"
        ) from None


def _validated(plan: Plan, sample: Sample, fields: dict[str, Any], n_events: int) -> ResultRecord:
    config = plan.config
    return ResultRecord(
        **provenance(plan.substrates[sample.substrate]),
        key=sample.key,
        index=sample.index,
        model=config.models[sample.model].label,
        substrate=config.substrates[sample.substrate].display,
        task=config.tasks[sample.task].label,
        workers=sample.workers,
        instance=sample.instance.id,
        seed=sample.seed,
        budget=sample.budget,
        cell=sample.cell,
        **fields,
        trace=f"{TRACES}/{sample.key}.jsonl",
        events=n_events,
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


# One computed sample: its trace and its typed results record, not yet written.
Outcome = tuple[Sample, list[Event], ResultRecord]


def execute_job(plan: Plan, job: Job, backend: Backend) -> list[Outcome]:
    """Compute one job: each sample's trace events and complete results record (nothing written).

    The one code path for a sample, wherever it runs: in this process (any thread), or in a Ray
    worker that sends them back to the driver, which writes them
    (:func:`hivethink.lab.store.write_sample`). ``lab_wall_s`` is the whole job's time.
    """
    t0 = time.perf_counter()
    computed = run_job(plan, job, backend)
    wall = round(time.perf_counter() - t0, 3)
    return [
        (sample, events, _record(plan, sample, {**fields, "lab_wall_s": wall}, len(events)))
        for sample, (events, fields) in zip(job.samples, computed, strict=True)
    ]


def build_backend(spec: ModelSpec, factories: Factories) -> Backend:
    """Build one model's backend; any failure is one :class:`HivethinkError` naming the model."""
    try:
        return factories.get_backend(spec.kind, **spec.params)
    except HivethinkError:
        raise
    except Exception as err:
        raise HivethinkError(
            f"model {spec.label!r}: cannot build backend: {type(err).__name__}: {err}"
        ) from None


def build_backends(plan: Plan, factories: Factories, samples: list[Sample]) -> dict[int, Backend]:
    """One backend per model that ``samples`` use, built before any sample runs (so a bad model
    fails at once, with one message)."""
    return {
        index: build_backend(plan.config.models[index], factories)
        for index in sorted({s.model for s in samples})
    }


def activate_prompts(directory: str | None) -> None:
    """Make ``directory`` this process's prompt books (a Ray worker calls this once)."""
    if directory is not None:
        # The books a directory may replace are declared by the substrate modules on import.
        import hivethink.substrates  # noqa: F401
    prompts.use_directory(directory)
