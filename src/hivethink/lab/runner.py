"""Run a lab grid durably: resume from ``results.jsonl``, one line per sample, traces first."""

from __future__ import annotations

import fcntl
import json
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.lab.config import LabConfig
from hivethink.lab.grid import Factories, Plan, Sample, default_factories, expand_grid
from hivethink.lab.store import (
    CONFIG,
    LOCK,
    RESULTS,
    TRACES,
    append_result,
    read_results,
    repair_results,
    trace_path,
    write_summary,
)
from hivethink.metrics import compute_metrics
from hivethink.substrates.base import Budget
from hivethink.trace import Event, write_jsonl


@dataclass
class RunSummary:
    """What one call of :func:`run_lab` did."""

    out_dir: Path
    total: int  # samples in the grid
    skipped: int  # already finished before this call
    ran: int  # finished by this call (failed ones included)
    failed: int  # finished by this call with an error
    remaining: int  # still to run (left out by ``limit``)
    torn_bytes: int  # bytes of a torn results line that were dropped


def _jsonable(value: Any) -> Any:
    """``value`` made JSON-safe (unknown objects become their ``str``)."""
    return json.loads(json.dumps(value, default=str))


def run_sample(plan: Plan, sample: Sample, backend: Backend) -> tuple[list[Event], dict[str, Any]]:
    """Run one sample; return its trace and the fields of its results line that depend on it.

    Any exception becomes an ``error`` field and a one-event trace (``worker="lab"``) holding the
    traceback, so a failing sample never stops the run.
    """
    config = plan.config
    task, instance = plan.tasks[sample.task], sample.instance
    substrate = plan.substrates[sample.substrate]
    budget = Budget(**config.budget.model_dump())
    try:
        result = substrate.run(
            instance, task, backend, workers=sample.workers, budget=budget, seed=sample.seed
        )
        metrics = compute_metrics(result.events, task=task, instance=instance, result=result)
    except Exception as err:
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
            "error": message,
        }
    return list(result.events), {
        "score": metrics.get("score"),
        "answer": result.answer,
        "agent_answers": _jsonable(result.agent_answers),
        "metrics": metrics,
        "info": _jsonable(result.info),
        "error": None,
    }


def _record(plan: Plan, sample: Sample, fields: dict[str, Any], n_events: int) -> dict[str, Any]:
    config = plan.config
    return {
        "key": sample.key,
        "index": sample.index,
        "model": config.models[sample.model].label,
        "substrate": config.substrates[sample.substrate].display,
        "task": config.tasks[sample.task].label,
        "workers": sample.workers,
        "instance": sample.instance.id,
        "seed": sample.seed,
        "cell": sample.cell,
        **fields,
        "trace": f"{TRACES}/{sample.key}.jsonl",
        "events": n_events,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def build_backends(plan: Plan, factories: Factories, samples: list[Sample]) -> dict[int, Backend]:
    """One backend per model that ``samples`` use, built before any sample runs (so a bad model
    fails at once, with one message)."""
    backends: dict[int, Backend] = {}
    for index in sorted({s.model for s in samples}):
        spec = plan.config.models[index]
        try:
            backends[index] = factories.get_backend(spec.kind, **spec.params)
        except HivethinkError:
            raise
        except Exception as err:
            raise HivethinkError(
                f"model {spec.label!r}: cannot build backend: {type(err).__name__}: {err}"
            ) from None
    return backends


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``OUT/.lock`` (released by the OS even on kill -9), so two runs
    never append to one directory at once."""
    with open(out / LOCK, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HivethinkError(f"{out}: another run is writing to this directory") from None
        yield


def _describe(config: LabConfig, sample: Sample) -> str:
    substrate = config.substrates[sample.substrate].display
    task = config.tasks[sample.task].label
    return f"{substrate} / {task} / N={sample.workers} / seed {sample.seed}"


def run_lab(
    config: LabConfig,
    out_dir: str | Path,
    *,
    limit: int | None = None,
    factories: Factories | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> RunSummary:
    """Run every unfinished sample of the grid (at most ``limit`` of them) into ``out_dir``.

    Finished keys in ``results.jsonl`` are skipped, a torn last line is dropped first, and
    ``summary.parquet`` is rewritten at the end (also when interrupted). Each sample's trace is
    written and fsynced before its results line is appended and fsynced.
    """
    out = Path(out_dir)
    (out / TRACES).mkdir(parents=True, exist_ok=True)
    console = console or Console(stderr=True)
    factories = factories or default_factories()
    plan = expand_grid(config, factories)
    with _exclusive(out):
        (out / CONFIG).write_text(
            json.dumps(config.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8"
        )
        torn = repair_results(out)
        if torn:
            console.print(f"dropped a torn results line ({torn} bytes); its sample runs again")
        done = {r["key"] for r in (read_results(out) if (out / RESULTS).exists() else [])}
        pending = [s for s in plan.samples if s.key not in done]
        todo = pending if limit is None else pending[: max(limit, 0)]
        backends = build_backends(plan, factories, todo)
        failed = 0
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        try:
            with Progress(*columns, console=console, disable=not progress) as bar:
                job = bar.add_task("samples", total=len(todo))
                for sample in todo:
                    bar.update(job, description=_describe(config, sample))
                    t0 = time.perf_counter()
                    events, fields = run_sample(plan, sample, backends[sample.model])
                    fields["lab_wall_s"] = round(time.perf_counter() - t0, 3)
                    write_jsonl(trace_path(out, sample.key), events)
                    append_result(out, _record(plan, sample, fields, len(events)))
                    failed += fields["error"] is not None
                    bar.advance(job)
        finally:
            if (out / RESULTS).exists():
                write_summary(out, read_results(out))
    return RunSummary(
        out_dir=out,
        total=len(plan.samples),
        skipped=len(plan.samples) - len(pending),
        ran=len(todo),
        failed=failed,
        remaining=len(pending) - len(todo),
        torn_bytes=torn,
    )
