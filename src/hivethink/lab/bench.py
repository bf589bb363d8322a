"""``hivethink bench lab``: one grid run at concurrency 1 and at K in the same process.

Each run goes into a temporary run directory through the ordinary :func:`run_lab` (progress bar
and all), in this process (a ``ray:`` section is ignored). The backends are built once, before
either run is timed, and shared by both runs (a model load would otherwise count against the
first run only). A local model's prefix cache is emptied before each run, so the second run
finds none of the first run's prompts there. Its engine is kept: a new one allocates its cache
anew, and in one process a second engine decoded the same load 7-10% slower than the first. The
order still counts a little (the run at K comes second, and later rounds of one load in one
process decoded up to that much slower too, in a noisy way); a run at K alone in a process of
its own is the cleanest check of a figure. For each run: samples per minute and generated tokens
per second (the ``tokens`` metric summed over the samples) over the run's wall time; then the
ratios K over 1, and whether the two runs gave equal results: the same keys and, per key, the
same answer, agent answers, score and generated tokens (timings and ``finished_at`` are not
compared).

For a local model each run also reports its engine's forward passes: how many, the rows and
tokens in an average pass, the tokens fed as prompt chunks (rows of more than one token), and
the seconds spent in passes, of them in passes that carried a prompt chunk. They say why a ratio
is what it is: concurrency raises the rows of a pass (the linear layers' weights are read once
for all of them), while prompt chunks are compute-bound and cost about the same at any concurrency.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.lab.config import LabConfig
from hivethink.lab.grid import Factories, canonical_json, default_factories, expand_grid
from hivethink.lab.records import code_version
from hivethink.lab.runner import build_backend, prompt_books, run_lab
from hivethink.lab.store import read_results

MAX_DIFFERENCES = 10  # differing samples named in the result


@dataclass
class LabRun:
    """One timed run of the grid."""

    concurrency: int
    samples: int
    failed: int
    wall_s: float
    tokens: int  # generated tokens, all samples
    samples_per_min: float
    tokens_per_s: float
    # The local engines' forward passes in this run (None: no backend has an engine):
    passes: int | None = None
    rows_per_pass: float | None = None
    tokens_per_pass: float | None = None
    chunk_tokens: int | None = None  # fed by rows of more than one token: prompt chunks, forced text
    busy_s: float | None = None  # wall time of the passes
    chunk_busy_s: float | None = None  # of that, passes with such rows (prefill, mostly)


@dataclass
class LabBench:
    config: str
    concurrency: int
    runs: list[LabRun]
    samples_per_min_ratio: float | None  # K over 1 (None when the run at 1 took no time)
    tokens_per_s_ratio: float | None
    equal: bool
    differences: list[str]  # the first few differing samples (or key sets)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def outcome(record: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on concurrency: answers, score and generated tokens."""
    return {
        "answer": record.get("answer"),
        "agent_answers": record.get("agent_answers"),
        "score": record.get("score"),
        "tokens": (record.get("metrics") or {}).get("tokens"),
    }


def differences(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    """How two runs' records differ (empty when equal), at most ``MAX_DIFFERENCES`` lines."""
    first, second = {r["key"]: r for r in a}, {r["key"]: r for r in b}
    out = []
    if set(first) != set(second):
        only = sorted(set(first) ^ set(second))
        out.append(f"{len(only)} key(s) in one run only, e.g. {only[0]}")
    for key in sorted(set(first) & set(second)):
        x, y = outcome(first[key]), outcome(second[key])
        if x != y:
            changed = [name for name in x if x[name] != y[name]]
            out.append(f"sample {key} (#{first[key].get('index')}): {', '.join(changed)} differ")
    return out[:MAX_DIFFERENCES]


def _shared(factories: Factories, config: LabConfig) -> tuple[Factories, list[Backend]]:
    """``factories`` whose backends are built now, once per model, and reused by both runs;
    and those backends."""
    built: dict[str, Backend] = {}
    for spec in config.models:
        key = canonical_json([spec.kind, spec.params])
        if key not in built:
            built[key] = build_backend(spec, factories)

    def backend(kind: str, **params: Any) -> Backend:
        return built[canonical_json([kind, params])]

    return Factories(backend, factories.get_task, factories.get_substrate), list(built.values())


def _engines(backends: list[Backend]) -> list[Any]:
    """The backends that run an engine in this process (a local model: ``engine_stats``)."""
    return [b for b in backends if hasattr(b, "engine_stats")]


# EngineStats counters a run reports, as differences of the engines' running totals
COUNTED = ("passes", "rows", "tokens", "chunk_tokens", "busy_s", "chunk_busy_s")


def _engine_counts(engines: list[Any]) -> dict[str, float]:
    """The engines' counters so far, summed (an engine not used yet has none)."""
    stats = [s for s in (b.engine_stats for b in engines) if s is not None]
    return {name: sum(getattr(s, name) for s in stats) for name in COUNTED}


def _ratio(fast: float, slow: float) -> float | None:
    return round(fast / slow, 3) if slow > 0 else None


def run_bench_lab(
    config: LabConfig,
    concurrency: int,
    *,
    source: str = "config",
    limit: int | None = None,
    factories: Factories | None = None,
    console: Console | None = None,
    progress: bool = True,
    on_run: Callable[[LabRun], None] | None = None,
) -> LabBench:
    """Run the grid (its first ``limit`` samples) at concurrency 1, then at ``concurrency``.

    Bad input (the grid, the prompt books, a concurrency below 1) fails before any model loads.
    """
    if concurrency < 1:
        raise HivethinkError(f"--concurrency must be at least 1, got {concurrency}")
    console = console or Console(stderr=True)
    config = config.model_copy(update={"ray": None})
    base = factories or default_factories()
    expand_grid(config, base)
    runs: list[LabRun] = []
    results: list[list[dict[str, Any]]] = []
    with prompt_books(config.prompts), tempfile.TemporaryDirectory(
        prefix="hivethink-bench-lab-"
    ) as tmp:
        with console.status("building backends (loading models)..."):
            shared, backends = _shared(base, config)
        engines = _engines(backends)
        for i, k in enumerate((1, concurrency), 1):  # K = 1 too: then a repeat-run check
            console.print(f"run {i} of 2: concurrency {k}")
            out = Path(tmp) / f"run{i}"
            for b in engines:  # each run starts cold: no prompt cached by the other run
                b.forget_cached()
            before = _engine_counts(engines)
            t0 = time.perf_counter()
            summary = run_lab(config, out, limit=limit, factories=shared, console=console,
                              progress=progress, concurrency=k)
            wall = time.perf_counter() - t0
            records = read_results(out)
            tokens = sum(int((r.get("metrics") or {}).get("tokens") or 0) for r in records)
            run = LabRun(
                concurrency=k,
                samples=summary.ran,
                failed=summary.failed,
                wall_s=round(wall, 3),
                tokens=tokens,
                samples_per_min=round(summary.ran / wall * 60, 3),
                tokens_per_s=round(tokens / wall, 3),
            )
            if engines:
                after = _engine_counts(engines)
                d = {name: after[name] - before[name] for name in COUNTED}
                passes = run.passes = int(d["passes"])
                run.chunk_tokens = int(d["chunk_tokens"])
                run.busy_s, run.chunk_busy_s = round(d["busy_s"], 3), round(d["chunk_busy_s"], 3)
                run.rows_per_pass = round(d["rows"] / passes, 2) if passes else None
                run.tokens_per_pass = round(d["tokens"] / passes, 2) if passes else None
            runs.append(run)
            results.append(records)
            if on_run is not None:
                on_run(run)
    diff = differences(*results)
    version, commit = code_version()
    return LabBench(
        config=source,
        concurrency=concurrency,
        runs=runs,
        samples_per_min_ratio=_ratio(runs[1].samples_per_min, runs[0].samples_per_min),
        tokens_per_s_ratio=_ratio(runs[1].tokens_per_s, runs[0].tokens_per_s),
        equal=not diff,
        differences=diff,
        extra={
            "models": [m.label for m in config.models],
            "hivethink": version,
            "commit": commit,
            "cpus": os.cpu_count(),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        },
    )


def write_json(result: LabBench, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
