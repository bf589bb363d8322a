"""The durable runner: results lines, traces first, errors recorded, limit, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from lab_fakes import Calls, config_dict, fake_factories
from rich.console import Console

from hivethink.lab import expand_grid, parse_config, read_results, run_lab
from hivethink.trace import read_jsonl

QUIET = Console(quiet=True)


def _run(out: Path, factories=None, **kw):
    cfg = parse_config(config_dict(**kw.pop("config", {})))
    return run_lab(
        cfg, out, factories=factories or fake_factories(), console=QUIET, progress=False, **kw
    )


def test_run_writes_lines_traces_and_summary(tmp_path: Path) -> None:
    calls = Calls()
    summary = _run(tmp_path, fake_factories(calls))
    assert (summary.total, summary.ran, summary.failed, summary.skipped) == (16, 16, 0, 0)
    assert len(calls.backends) == 1  # one backend per model, not per sample
    records = read_results(tmp_path)
    assert len(records) == 16
    rec = records[0]
    assert set(rec) >= {
        "key",
        "cell",
        "metrics",
        "score",
        "answer",
        "trace",
        "error",
        "model",
        "substrate",
        "task",
        "workers",
        "instance",
        "seed",
        "index",
        "agent_answers",
        "info",
    }
    assert rec["score"] == 1.0 and rec["error"] is None and rec["metrics"]["agreement"] == 1.0
    for r in records:
        events = list(read_jsonl(tmp_path / r["trace"]))
        assert len(events) == r["events"] > 0
    table = pq.read_table(tmp_path / "summary.parquet")
    assert table.num_rows == 16
    assert {"key", "score", "redundancy", "patho_loops", "budget_max_tokens"} <= set(
        table.column_names
    )
    assert json.loads((tmp_path / "config.json").read_text())["name"] == "t"


def test_failures_are_recorded_and_run_continues(tmp_path: Path) -> None:
    summary = _run(tmp_path, fake_factories(fail_on=("add-10-0-1",)))
    records = read_results(tmp_path)
    failed = [r for r in records if r["error"]]
    assert summary.failed == len(failed) == 8  # instance 1 under every substrate, N and seed
    assert all(r["error"] == "RuntimeError: boom on add-10-0-1" for r in failed)
    assert all(r["score"] is None and r["metrics"] == {} for r in failed)
    trace = list(read_jsonl(tmp_path / failed[0]["trace"]))
    assert trace[0].kind == "error" and "Traceback" in trace[0].data["traceback"]
    assert len(records) == 16


def test_limit_then_resume_skips_finished(tmp_path: Path) -> None:
    first = _run(tmp_path, limit=5)
    assert (first.ran, first.remaining) == (5, 11)
    calls = Calls()
    second = _run(tmp_path, fake_factories(calls))
    assert (second.ran, second.skipped, second.remaining) == (11, 5, 0)
    third = _run(tmp_path, fake_factories(calls))
    assert third.ran == 0 and third.skipped == 16
    keys = [r["key"] for r in read_results(tmp_path)]
    assert len(keys) == len(set(keys)) == 16


def test_torn_last_line_is_dropped_and_rerun(tmp_path: Path) -> None:
    _run(tmp_path, limit=4)
    results = tmp_path / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    results.write_bytes(b"".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # killed mid-write
    summary = _run(tmp_path)
    assert summary.torn_bytes > 0 and summary.skipped == 3 and summary.ran == 13
    keys = [r["key"] for r in read_results(tmp_path)]
    assert len(keys) == len(set(keys)) == 16


_CHILD = """
import sys
sys.path.insert(0, {fakes!r})
from lab_fakes import config_dict, fake_factories
from rich.console import Console
from hivethink.lab import parse_config, run_lab
run_lab(parse_config(config_dict(seeds=list(range(10)))), {out!r}, factories=fake_factories(delay=0.1),
        console=Console(quiet=True), progress=False)
"""


@pytest.mark.slow  # a real subprocess (a fresh interpreter imports torch)
@pytest.mark.timeout(60)
def test_kill_9_mid_run_then_resume_gives_each_sample_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = _CHILD.format(fakes=str(Path(__file__).parent), out=str(out))
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    results = out / "results.jsonl"
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and child.poll() is None:
            if results.exists() and results.read_bytes().count(b"\n") >= 6:
                break
            time.sleep(0.02)
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    done_before = read_results(out)
    assert 6 <= len(done_before) < 80
    # a kill mid-write leaves a partial line: simulate it on top of the real kill
    with open(results, "ab") as f:
        f.write(b'{"key": "deadbeef", "cell": {"mod')
    cfg = parse_config(config_dict(seeds=list(range(10))))
    summary = run_lab(cfg, out, factories=fake_factories(), console=QUIET, progress=False)
    assert summary.torn_bytes > 0 and summary.skipped == len(done_before)
    keys = [r["key"] for r in read_results(out)]
    expected = {s.key for s in expand_grid(cfg, fake_factories()).samples}
    assert len(keys) == len(set(keys)) == len(expected) == 80
    assert set(keys) == expected
    assert pq.read_table(out / "summary.parquet").num_rows == 80


def test_bad_backend_is_one_error(tmp_path: Path) -> None:
    from hivethink.errors import HivethinkError

    with pytest.raises(HivethinkError, match="model 'nope': cannot build backend"):
        _run(tmp_path, config={"models": [{"kind": "nope"}]})


def test_real_substrates_and_tasks_with_scripted_backend(tmp_path: Path) -> None:
    """The package registries (when present) run through the lab with the scripted fake backend."""
    tasks = pytest.importorskip("hivethink.tasks")
    substrates = pytest.importorskip("hivethink.substrates")
    fake = pytest.importorskip("hivethink.backends.fake")
    if not hasattr(tasks, "get_task") or not hasattr(substrates, "get_substrate"):
        pytest.skip("task/substrate registries not available yet")
    from hivethink.lab import Factories

    factories = Factories(
        get_backend=lambda kind, **p: fake.ScriptedBackend(
            lambda req, i: "Alice here: 2, 3, 5 \\boxed{2, 3, 5}"
        ),
        get_task=tasks.get_task,
        get_substrate=substrates.get_substrate,
    )
    cfg = parse_config(
        {
            "models": [{"kind": "fake"}],
            "substrates": ["independent", "single"],
            "workers": [2],
            "tasks": [{"name": "enumerate", "params": {"k": 3, "kind": "primes"}}],
            "budget": {"max_tokens": 32},
        }
    )
    summary = run_lab(cfg, tmp_path, factories=factories, console=QUIET, progress=False)
    assert summary.failed == 0, [r["error"] for r in read_results(tmp_path)]
    indep = next(r for r in read_results(tmp_path) if r["substrate"] == "independent")
    assert indep["metrics"]["redundancy_unit"] == "items"
    assert indep["metrics"]["redundancy"] == 1.0  # both workers listed the same primes
    assert indep["metrics"]["agreement"] == 1.0


def test_two_runs_cannot_share_a_directory(tmp_path: Path) -> None:
    import fcntl

    from hivethink.errors import HivethinkError

    with open(tmp_path / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(HivethinkError, match="another run is writing"):
            _run(tmp_path)
    assert _run(tmp_path).ran == 16  # free again once the other run is gone
