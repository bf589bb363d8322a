"""Run a lab grid durably: resume from ``results.jsonl``, one line per sample, traces first.

One sample is computed by :func:`execute_sample` (trace events + results record, nothing
written), here or in a Ray worker (:mod:`hivethink.lab.distributed`); this process alone writes
them, as they complete, with :func:`hivethink.lab.store.write_sample`.
"""

from __future__ import annotations

import fcntl
import json
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.lab.config import LabConfig, ModelSpec, RaySpec
from hivethink.lab.grid import Factories, Plan, Sample, default_factories, expand_grid
from hivethink.lab.store import (
    CONFIG,
    LOCK,
    RESULTS,
    TRACES,
    read_results,
    repair_results,
    write_sample,
    write_summary,
)
from hivethink.metrics import compute_metrics
from hivethink.report.text import clean_text
from hivethink.substrates.base import Budget
from hivethink.trace import Event


@dataclass
class RunSummary:
    """What one call of :func:`run_lab` did."""

    out_dir: Path
    total: int  # samples in the grid
    skipped: int  # already finished before this call
    ran: int  # finished by this call (failed ones included)
    failed: int  # finished by this call with an error
    remaining: int  # still to run (left out by ``limit``, or lost)
    torn_bytes: int  # bytes of a torn results line that were dropped
    lost: int = 0  # computed by no one: their Ray worker died (they run again next time)


def _jsonable(value: Any) -> Any:
    """``value`` made JSON-safe (unknown objects become their ``str``)."""
    return json.loads(json.dumps(value, default=str))


def run_sample(plan: Plan, sample: Sample, backend: Backend) -> tuple[list[Event], dict[str, Any]]:
    """Run one sample; return its trace and the fields of its results line that depend on it.

    Any exception becomes an ``error`` field and a one-event trace (``worker="lab"``) holding the
    traceback, so a failing sample never stops the run. A sample some of whose backend calls
    failed (after the backend's own retries; ``error`` events with ``data["backend"]``) keeps its
    trace and metrics and gets ``error = "backend: <k> failed call(s); first: <reason>"``.
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
    failed_calls = [e.text for e in result.events if e.kind == "error" and e.data.get("backend")]
    return list(result.events), {
        "score": metrics.get("score"),
        "answer": result.answer,
        "agent_answers": _jsonable(result.agent_answers),
        "metrics": metrics,
        "info": _jsonable(result.info),
        "error": f"backend: {len(failed_calls)} failed call(s); first: {failed_calls[0]}"
        if failed_calls
        else None,
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


def execute_sample(
    plan: Plan, sample: Sample, backend: Backend
) -> tuple[list[Event], dict[str, Any]]:
    """Compute one sample: its trace events and its complete results record (nothing written).

    The one code path for a sample, wherever it runs: in this process, or in a Ray worker that
    sends both back to the driver, which writes them (:func:`hivethink.lab.store.write_sample`).
    """
    t0 = time.perf_counter()
    events, fields = run_sample(plan, sample, backend)
    fields["lab_wall_s"] = round(time.perf_counter() - t0, 3)
    return events, _record(plan, sample, fields, len(events))


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


Outcome = tuple[Sample, list[Event], dict[str, Any]]


def _run_here(
    plan: Plan,
    backends: dict[int, Backend],
    todo: list[Sample],
    started: Callable[[Sample], None],
) -> Iterator[Outcome]:
    """Compute the samples one after the other in this process."""
    for sample in todo:
        started(sample)
        events, record = execute_sample(plan, sample, backends[sample.model])
        yield sample, events, record


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


def _label(config: LabConfig, sample: Sample) -> str:
    substrate = config.substrates[sample.substrate].display
    task = config.tasks[sample.task].label
    return f"{substrate} / {task} / N={sample.workers} / seed {sample.seed}"


def _describe(config: LabConfig, sample: Sample) -> str:
    """The progress line of a sample (labels from the config escaped: they are not rich markup)."""
    return escape(_label(config, sample))


def _done_line(config: LabConfig, sample: Sample, record: dict[str, Any], n: int, of: int) -> Text:
    """One plain line per finished sample, for a log or CI (no terminal: no live bar)."""
    score = record.get("score")
    outcome = f"score {score:g}" if isinstance(score, (int, float)) else "no score"
    if record.get("error"):
        outcome = "failed: " + clean_text(str(record["error"])).splitlines()[0][:200]
    return Text(f"[{n}/{of}] {_label(config, sample)}: {outcome} ({record['lab_wall_s']:.1f}s)")


def run_lab(
    config: LabConfig,
    out_dir: str | Path,
    *,
    limit: int | None = None,
    factories: Factories | None = None,
    console: Console | None = None,
    progress: bool = True,
    ray: RaySpec | None = None,
) -> RunSummary:
    """Run every unfinished sample of the grid (at most ``limit`` of them) into ``out_dir``.

    Finished keys in ``results.jsonl`` are skipped, a torn last line is dropped first, and
    ``summary.parquet`` is rewritten at the end (also when interrupted). Each sample's trace is
    written and fsynced before its results line is appended and fsynced.

    ``ray`` (default: ``config.ray``) computes the samples on Ray workers instead of in this
    process (:mod:`hivethink.lab.distributed`); this process still writes every line and trace,
    so a Ray run resumes, and is resumed by, a local run of the same grid.
    """
    ray = ray if ray is not None else config.ray
    if ray is not None:
        from hivethink.lab.distributed import import_ray

        import_ray()  # Ray missing: one error before anything is written
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
        backends = build_backends(plan, factories, todo) if ray is None else {}
        ran = failed = lost = 0
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        plain = progress and not console.is_terminal  # a log or CI: a line per sample, no bar
        if plain:
            console.print(f"{len(todo)} samples to run, {len(plan.samples) - len(pending)} already "
                          f"done -> {escape(str(out))}", highlight=False, soft_wrap=True)
        try:
            with ExitStack() as stack:
                bar = stack.enter_context(
                    Progress(*columns, console=console, disable=not progress or plain)
                )
                job = bar.add_task("samples", total=len(todo))

                def started(sample: Sample) -> None:
                    bar.update(job, description=_describe(config, sample))

                on_ray = None
                if ray is None:
                    outcomes: Iterator[Outcome] = _run_here(plan, backends, todo, started)
                elif todo:  # nothing to do: no need to start Ray
                    from hivethink.lab.distributed import run_on_ray

                    on_ray = stack.enter_context(
                        run_on_ray(plan, factories, todo, ray, started, console)
                    )
                    outcomes = iter(on_ray)
                else:
                    outcomes = iter(())
                for sample, events, record in outcomes:
                    write_sample(out, record, events)
                    ran += 1
                    failed += record["error"] is not None
                    bar.advance(job)
                    if plain:
                        line = _done_line(config, sample, record, ran, len(todo))
                        console.print(line, highlight=False, soft_wrap=True)
                lost = on_ray.lost if on_ray is not None else 0
        finally:
            if (out / RESULTS).exists():
                write_summary(out, read_results(out))
    return RunSummary(
        out_dir=out,
        total=len(plan.samples),
        skipped=len(plan.samples) - len(pending),
        ran=ran,
        failed=failed,
        remaining=len(pending) - ran,
        torn_bytes=torn,
        lost=lost,
    )
