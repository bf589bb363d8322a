"""Run a lab grid durably: resume from ``results.jsonl``, one line per sample, traces first.

One job (one sample, or a snapshot substrate's budgets of one sample) is computed by
:func:`hivethink.lab.sample.execute_job` (trace events + typed results records, nothing
written), in a thread of this process (:mod:`hivethink.lab.local`, K at a time) or in a Ray
worker (:mod:`hivethink.lab.distributed`); this process's main thread alone judges and writes
them, as they complete, with :func:`hivethink.lab.store.write_sample`.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

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

from hivethink import prompts
from hivethink.backends.base import Backend
from hivethink.display import clean_text
from hivethink.errors import HivethinkError
from hivethink.lab.config import LabConfig, RaySpec
from hivethink.lab.distributed import import_ray, run_on_ray
from hivethink.lab.grid import Factories, Job, Plan, Sample, default_factories, expand_grid
from hivethink.lab.judge import judge_quality, judge_sample
from hivethink.lab.local import run_local
from hivethink.lab.records import ResultRecord, compare, refusal
from hivethink.lab.sample import Outcome, activate_prompts, build_backend, build_backends
from hivethink.lab.store import (
    CONFIG,
    LOCK,
    RESULTS,
    TRACES,
    read_records,
    read_results,
    repair_results,
    write_sample,
    write_summary,
)
from hivethink.tasks.base import is_judged


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


def _describe(config: LabConfig, job: Job, concurrency: int) -> str:
    """The progress line as a job starts (labels from the config escaped: they are not rich
    markup)."""
    sample = job.samples[0]
    substrate = config.substrates[sample.substrate].display
    task = config.tasks[sample.task].label
    budgets = ", ".join(str(s.budget) for s in job.samples if s.budget is not None)
    at = f" / budget {budgets}" if budgets else ""
    line = f"{substrate} / {task} / N={sample.workers}{at} / seed {sample.seed}"
    return escape(f"[{concurrency} in flight] {line}" if concurrency > 1 else line)


@contextmanager
def prompt_books(directory: str | None) -> Iterator[None]:
    """The run's prompt books: ``directory`` (validated now, before any model loads) replaces the
    built-in books it holds, ``None`` means the built-ins; the previous choice is restored after."""
    previous = prompts.active_directory()
    activate_prompts(directory)
    try:
        yield
    finally:
        prompts.use_directory(previous)


def _resume(
    out: Path, plan: Plan, console: Console, allow_mixed: bool
) -> tuple[set[str], list[str]]:
    """The keys already finished, and the disagreements that ``allow_mixed`` lets the run add to
    (:mod:`hivethink.lab.records`; without it any disagreement is one HivethinkError)."""
    records = read_records(out) if (out / RESULTS).exists() else []
    comparison = compare(records, plan)
    for note in comparison.notes:
        console.print(f"note: {escape(note)}")
    if comparison.blocking and not allow_mixed:
        raise HivethinkError(refusal(out, comparison.blocking))
    if comparison.blocking:
        console.print(
            "resuming over records that disagree with this code (--allow-mixed): "
            + escape("; ".join(comparison.blocking))
        )
    return {r.key for r in records}, comparison.blocking


def _done_line(config: LabConfig, sample: Sample, record: ResultRecord, n: int, of: int) -> Text:
    """One plain line per finished sample, for a log or CI (no terminal: no live bar)."""
    substrate = config.substrates[sample.substrate].display
    task = config.tasks[sample.task].label
    at = f" / budget {sample.budget}" if sample.budget is not None else ""
    label = f"{substrate} / {task} / N={sample.workers}{at} / seed {sample.seed}"
    score = record.score
    outcome = f"score {score:g}" if isinstance(score, (int, float)) else "no score"
    if record.error:
        outcome = "failed: " + clean_text(record.error).splitlines()[0][:200]
    return Text(f"[{n}/{of}] {label}: {outcome} ({record.lab_wall_s or 0.0:.1f}s)")

def run_lab(
    config: LabConfig,
    out_dir: str | Path,
    *,
    limit: int | None = None,
    factories: Factories | None = None,
    console: Console | None = None,
    progress: bool = True,
    ray: RaySpec | None = None,
    concurrency: int = 1,
    allow_mixed: bool = False,
) -> RunSummary:
    """Run every unfinished sample of the grid (at most ``limit`` of them) into ``out_dir``.

    Finished keys in ``results.jsonl`` are skipped, a torn last line is dropped first, and
    ``summary.parquet`` is rewritten at the end (also when interrupted). Each sample's trace is
    written and fsynced before its results line is appended and fsynced. Finished records that
    disagree with the running code (another schema or other prompts) stop the run before any
    model loads, unless ``allow_mixed`` (:mod:`hivethink.lab.records`).

    ``concurrency`` samples are computed at once in this process (:mod:`hivethink.lab.local`);
    the results do not depend on it. ``ray`` (default: ``config.ray``) computes the samples on Ray
    workers instead (:mod:`hivethink.lab.distributed`), one at a time each; this process still
    writes every line and trace, so a Ray run resumes, and is resumed by, a local run of the
    same grid.
    """
    ray = ray if ray is not None else config.ray
    if concurrency < 1:
        raise HivethinkError(f"--concurrency must be at least 1, got {concurrency}")
    if ray is not None and concurrency > 1:
        raise HivethinkError(
            "--concurrency is for runs in this process; on Ray each worker computes one sample "
            "at a time (more workers: --ray-cpus/--ray-gpus)"
        )
    if ray is not None:
        import_ray()  # Ray missing: one error before anything is written
    out = Path(out_dir)
    console = console or Console(stderr=True)
    factories = factories or default_factories()
    plan = expand_grid(config, factories)
    with prompt_books(config.prompts):
        (out / TRACES).mkdir(parents=True, exist_ok=True)
        with _exclusive(out):
            (out / CONFIG).write_text(
                json.dumps(config.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8"
            )
            torn = repair_results(out)
            if torn:
                console.print(f"dropped a torn results line ({torn} bytes); its sample runs again")
            done, mixed = _resume(out, plan, console, allow_mixed)
            pending = [s for s in plan.samples if s.key not in done]
            todo = pending if limit is None else pending[: max(limit, 0)]
            jobs = plan.jobs(todo)
            backends = build_backends(plan, factories, todo) if ray is None else {}
            mast = config.mast
            judge = build_backend(mast.judge, factories) if mast is not None and todo else None
            grader = _grader(plan, backends, factories, todo)
            try:
                ran, failed, lost = _compute_and_write(
                    out, plan, jobs, backends, factories, console, progress, ray, concurrency, mixed,
                    judge, already=len(plan.samples) - len(pending), grader=grader,
                )
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


def _grader(
    plan: Plan, backends: dict[int, Backend], factories: Factories, samples: list[Sample]
) -> Backend | None:
    """The quality judge's backend when ``samples`` hold a judged task (``judge:``): the backend of
    the grid's model with the same entry if it has been built (one engine for both), else its own."""
    spec = plan.config.judge
    if spec is None or not any(is_judged(plan.tasks[s.task]) for s in samples):
        return None
    for index, model in enumerate(plan.config.models):
        if index in backends and (model.kind, model.params) == (spec.model.kind, spec.model.params):
            return backends[index]
    return build_backend(spec.model, factories)


def _compute_and_write(
    out: Path,
    plan: Plan,
    jobs: list[Job],
    backends: dict[int, Backend],
    factories: Factories,
    console: Console,
    progress: bool,
    ray: RaySpec | None,
    concurrency: int,
    mixed: list[str],
    judge: Backend | None = None,
    already: int = 0,
    grader: Backend | None = None,
) -> tuple[int, int, int]:
    """Compute ``jobs`` (here or on Ray) and write each sample as its job completes, with a
    progress bar; -> (samples written, of them failed, samples lost on Ray). With a MAST judge
    (``mast:`` in the grid) each sample's trace is judged here, by the one writer, first; with a
    quality judge (``grader``, ``judge:``) each sample of a judged task is scored here too."""
    ran = failed = 0
    mast = plan.config.mast
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    total = sum(len(j.samples) for j in jobs)
    plain = progress and not console.is_terminal  # a log or CI: a line per sample, no bar
    if plain:
        console.print(f"{total} samples to run, {already} already done -> {escape(str(out))}",
                      highlight=False, soft_wrap=True)
    with ExitStack() as stack:
        bar = stack.enter_context(Progress(*columns, console=console, disable=not progress or plain))
        task = bar.add_task("samples", total=total)

        def started(job: Job) -> None:
            bar.update(task, description=_describe(plan.config, job, concurrency))

        on_ray = None
        if ray is None:
            outcomes: Iterator[list[Outcome]] = run_local(
                plan, backends, jobs, started, concurrency
            )
        elif jobs:  # nothing to do: no need to start Ray
            on_ray = stack.enter_context(run_on_ray(plan, factories, jobs, ray, started, console))
            outcomes = iter(on_ray)
        else:
            outcomes = iter(())
        for finished in outcomes:
            for sample_, events, record in finished:
                if mixed:
                    record.mixed = mixed
                if grader is not None and plan.config.judge is not None and is_judged(
                    plan.tasks[sample_.task]
                ):
                    judge_quality(grader, plan.config.judge, sample_.instance, record)
                if judge is not None and mast is not None:
                    record.mast = judge_sample(judge, mast, record, events)
                write_sample(out, record, events)
                ran += 1
                failed += record.error is not None
                bar.advance(task)
                if plain:
                    console.print(_done_line(plan.config, sample_, record, ran, total), highlight=False,
                                  soft_wrap=True)
        return ran, failed, on_ray.lost if on_ray is not None else 0
