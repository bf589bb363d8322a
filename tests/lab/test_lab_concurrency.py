"""``lab run --concurrency K``: K samples in flight, results independent of K, one writer,
Ctrl-C leaves a resumable run; bad values are one line. (kill -9 at K=4: tests/faults.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab_fakes import Calls, FakeSubstrate, config_dict, fake_factories
from rich.console import Console
from typer.testing import CliRunner

import hivethink.lab.runner as runner
from hivethink.cli.lab import app
from hivethink.errors import HivethinkError
from hivethink.lab import Factories, parse_config, read_results, read_trace, run_lab

QUIET = Console(quiet=True)
CLI = CliRunner()
# What may differ between two runs of one grid: when and how long.
TIMINGS = ("finished_at", "lab_wall_s")


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A results record without its timings (``wall_s`` of the metrics included)."""
    part = {k: v for k, v in record.items() if k not in TIMINGS}
    part["metrics"] = {k: v for k, v in record["metrics"].items() if k != "wall_s"}
    return part


def _run(out: Path, concurrency: int, calls: Calls | None = None, **kw: Any):
    cfg = parse_config(config_dict(seeds=[0, 1, 2, 3], models=[{"kind": "echo", "delay_s": 0.02}]))
    factories = fake_factories(calls, stagger=0.03, fail_on=("add-10-0-1",))
    return run_lab(cfg, out, factories=factories, console=QUIET, progress=False,
                   concurrency=concurrency, **kw)


def test_results_at_concurrency_1_and_4_are_equal(tmp_path: Path) -> None:
    one, four = Calls(), Calls()
    a = _run(tmp_path / "k1", 1, one)
    b = _run(tmp_path / "k4", 4, four)
    assert (a.ran, a.failed) == (b.ran, b.failed) == (32, 16)
    assert one.built[0].max_inflight == 1 and 1 < four.built[0].max_inflight <= 4
    serial, concurrent = read_results(tmp_path / "k1"), read_results(tmp_path / "k4")
    # written as they completed: at K=4 the staggered samples overtake each other
    assert [r["index"] for r in serial] == list(range(32))
    assert [r["index"] for r in concurrent] != list(range(32))
    by_key = {r["key"]: r for r in concurrent}
    assert len(by_key) == 32 and set(by_key) == {r["key"] for r in serial}
    for record in serial:
        other = by_key[record["key"]]
        assert comparable(other) == comparable(record)
        assert [e.model_dump(exclude={"t"}) for e in read_trace(tmp_path / "k4", other)] == [
            e.model_dump(exclude={"t"}) for e in read_trace(tmp_path / "k1", record)
        ]


def test_limit_and_resume_at_concurrency_4(tmp_path: Path) -> None:
    first = _run(tmp_path, 4, limit=10)
    assert (first.ran, first.remaining) == (10, 22)
    second = _run(tmp_path, 4)
    assert (second.skipped, second.ran, second.remaining) == (10, 22, 0)
    keys = [r["key"] for r in read_results(tmp_path)]
    assert len(keys) == len(set(keys)) == 32


# Set once the main thread has seen the interrupt: InterruptOn stops pressing Ctrl-C.
_interrupted = threading.Event()


@dataclass
class InterruptOn(FakeSubstrate):
    """Sends this process SIGINT (Ctrl-C) when it reaches one sample, again every half second
    until the main thread has seen it; that sample never finishes."""

    def run(self, instance: Any, task: Any, backend: Any, *, workers: int, budget: Any,
            seed: int) -> Any:
        if (instance.id, workers, seed) == ("add-10-0-1", 2, 0):
            # To the main thread, as a terminal's Ctrl-C reaches a process (sent to the process it
            # may land on any thread); pressed again until seen, as a user would.
            for _ in range(60):  # 30 s: still running when the run stops, so never written
                if _interrupted.is_set():
                    break
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
                time.sleep(0.5)
            time.sleep(30)
        return super().run(instance, task, backend, workers=workers, budget=budget, seed=seed)


def ctrl_c_scenario(tmp_path: Path) -> None:
    """Ctrl-C at concurrency 3 stops the run at once; the rerun computes exactly the rest."""
    # As in a terminal. A test run started in the background by a non-interactive shell (as CI
    # scripts may be) inherits SIGINT ignored, and Python then keeps ignoring it: every
    # interrupt was lost, and the run was "not interrupted" in several fresh-clone CI runs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    fakes = fake_factories()
    factories = Factories(fakes.get_backend, fakes.get_task,
                          lambda name, **p: InterruptOn(name=name, **p))
    cfg = parse_config(config_dict())
    t0 = time.monotonic()
    try:
        run_lab(cfg, tmp_path, factories=factories, console=QUIET, progress=False, concurrency=3)
    except KeyboardInterrupt:
        _interrupted.set()
    else:
        pytest.fail("the run was not interrupted")
    assert time.monotonic() - t0 < 10  # the sleeping sample was not waited for
    written = read_results(tmp_path)
    assert 0 < len(written) < 16 and (tmp_path / "summary.parquet").exists()
    summary = run_lab(cfg, tmp_path, factories=fake_factories(), console=QUIET, progress=False,
                      concurrency=3)
    assert summary.skipped == len(written) and summary.ran == 16 - len(written)
    keys = [r["key"] for r in read_results(tmp_path)]
    assert len(keys) == len(set(keys)) == 16


@pytest.mark.slow  # a real lab process, interrupted and resumed
@pytest.mark.timeout(120)
def test_ctrl_c_stops_at_once_and_the_run_resumes(tmp_path: Path) -> None:
    # In its own process, as a user's Ctrl-C meets a fresh one (see InterruptOn for why the
    # interrupt is sent more than once)
    here = Path(__file__).parent
    code = (f"import sys; sys.path[:0] = [{str(here)!r}]; from pathlib import Path; "
            f"import test_lab_concurrency as t; t.ctrl_c_scenario(Path({str(tmp_path)!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-8000:]


def test_bad_concurrency_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Calls()
    monkeypatch.setattr(runner, "default_factories", lambda: fake_factories(calls))
    config = tmp_path / "lab.yaml"
    config.write_text(yaml.safe_dump(config_dict()), encoding="utf-8")
    for value, expect in (("0", "--concurrency must be at least 1, got 0"),
                          ("-2", "--concurrency must be at least 1, got -2")):
        result = CLI.invoke(app, ["run", str(config), "--out", str(tmp_path / "o"),
                                  "--concurrency", value])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == f"error: {expect}"
    result = CLI.invoke(app, ["run", str(config), "--out", str(tmp_path / "o"), "--ray",
                              "--concurrency", "2"])
    assert result.exit_code == 2 and "on Ray each worker computes one sample" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert calls.backends == [] and not (tmp_path / "o").exists()
    with pytest.raises(HivethinkError, match="at least 1"):
        run_lab(parse_config(config_dict()), tmp_path / "o", factories=fake_factories(),
                console=QUIET, concurrency=0)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_local_model_results_do_not_depend_on_concurrency(tmp_path: Path, smol: Any) -> None:
    """The embedded model through the real substrates: the same records at K = 1 and K = 3
    (the local backend is called from three threads at once; sampling is seeded per row)."""
    from hivethink.backends.local import LocalBackend
    from hivethink.lab import default_factories

    registry = default_factories()
    factories = Factories(lambda kind, **p: LocalBackend(loaded=smol), registry.get_task,
                          registry.get_substrate)
    cfg = parse_config({
        "models": [{"kind": "local"}],
        "substrates": ["independent", {"name": "debate-du", "params": {"temperature": 0.7, "max_tokens": 8}}],
        "workers": [2],
        "tasks": [{"name": "math", "params": {"steps": 1}, "n": 2}],
        "budget": {"max_tokens": 8, "rounds": 1},
    })
    runs = {}
    for k in (1, 3):
        summary = run_lab(cfg, tmp_path / f"k{k}", factories=factories, console=QUIET,
                          progress=False, concurrency=k)
        assert summary.ran == 4 and summary.failed == 0
        runs[k] = {r["key"]: comparable(r) for r in read_results(tmp_path / f"k{k}")}
    assert runs[1] == runs[3]
