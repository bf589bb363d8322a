"""kill -9 during ``hivethink lab run``, then the same command again: every sample exactly once,
with one sample at a time and with four in flight (``--concurrency 4``).

The run uses the ``echo`` backend (deterministic, configurable from YAML, ``delay_s`` per call),
the real task and substrate registries, and the real command line in a subprocess. Torn tails of
every kind a crash can leave are dropped (never accepted) and their samples run again.
"""

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
import yaml
from rich.console import Console

from hivethink.errors import HivethinkError
from hivethink.lab import expand_grid, load_config, read_results, repair_results, run_lab, store
from hivethink.lab.grid import default_factories
from hivethink.trace import read_jsonl

pytestmark = pytest.mark.slow  # kills real lab processes mid-run and resumes them

GRID = {
    "name": "drill",
    "models": [{"kind": "echo", "reply": "Working. The answer is \\boxed{7}.", "delay_s": 0.04}],
    "substrates": ["independent", "single"],
    "workers": [2, 3],
    "tasks": [{"name": "math", "params": {"steps": 1}, "n": 10}],
    "seeds": [0, 1],
    "budget": {"max_tokens": 16, "rounds": 1},
}  # 10 instances x (2 substrates x 2 worker counts) x 2 seeds = 80 samples
TOTAL = 80


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hivethink.cli.main", *args]


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return data.split(b"\n")[:-1] if data else []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_kill_9_mid_run_then_rerun_gives_every_sample_once(tmp_path: Path, concurrency: str) -> None:
    config = tmp_path / "drill.yaml"
    config.write_text(yaml.safe_dump(GRID), encoding="utf-8")
    out = tmp_path / "run"
    results = out / "results.jsonl"
    with open(tmp_path / "first.err", "wb") as err:
        child = subprocess.Popen(
            _cli("lab", "run", str(config), "--out", str(out), "--concurrency", concurrency),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and child.poll() is None:
                if results.exists() and results.read_bytes().count(b"\n") >= 10:
                    break
                time.sleep(0.01)
            still_running = child.poll() is None
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(timeout=30)
    assert still_running, (tmp_path / "first.err").read_text(errors="replace")
    assert child.returncode == -signal.SIGKILL
    before = read_results(out)
    assert 10 <= len(before) < TOTAL

    # a kill in the middle of a write leaves a partial line: add one for a sample still to run
    cfg = load_config(config)
    plan = expand_grid(cfg, default_factories())
    done = {r["key"] for r in before}
    pending = next(s for s in plan.samples if s.key not in done)
    torn = json.dumps({"key": pending.key, "index": pending.index, "score": 1.0})
    with open(results, "ab") as f:
        f.write(torn[: len(torn) // 2].encode())

    rerun = subprocess.run(
        _cli("lab", "run", str(config), "--out", str(out), "--concurrency", concurrency),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "dropped a torn results line" in rerun.stderr
    assert f"{TOTAL - len(before)} ran (0 failed), {len(before)} already done" in rerun.stderr

    data = results.read_bytes()
    assert data.endswith(b"\n")
    records = [json.loads(line) for line in _lines(results)]  # every line is whole JSON
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)) == TOTAL
    assert set(keys) == {s.key for s in plan.samples}
    assert all(r["error"] is None and r["answer"] == "7" for r in records)
    redone = next(r for r in records if r["key"] == pending.key)
    assert redone["index"] == pending.index and "cell" in redone
    for rec in records:  # every line points at a complete trace
        events = list(read_jsonl(out / rec["trace"]))
        assert len(events) == rec["events"] and events[-1].worker == "team"
    assert pq.read_table(out / "summary.parquet").num_rows == TOTAL

    again = run_lab(cfg, out, console=Console(quiet=True), progress=False)
    assert (again.ran, again.skipped, again.torn_bytes) == (0, TOTAL, 0)


def _record(key: str) -> bytes:
    return (json.dumps({"key": key, "index": 0, "score": 1.0}) + "\n").encode()


GOOD = _record("a") + _record("b") + _record("c")

TORN_TAILS = {
    "partial line": _record("d")[:20],
    "partial line, cut inside a UTF-8 character": '{"key": "d", "answer": "é'.encode()[:-1],
    "zero-filled tail (lost data blocks)": b"\x00" * 64,
    "zero-filled tail ending in a newline": b"\x00" * 63 + b"\n",
    "partial line completed by a newline": _record("d")[:20] + b"\n",
    "JSON that is not a results record": b'{"index": 3}\n',
    "a list, not an object": b"[1, 2, 3]\n",
    "not UTF-8": b'{"key": "\xff\xfe"}\n',
    "absurdly nested": b"[" * 100_000 + b"\n",
    "whitespace only": b"   \t ",
}


@pytest.mark.parametrize("tail", TORN_TAILS.values(), ids=TORN_TAILS.keys())
def test_every_torn_tail_is_dropped_never_accepted(tmp_path: Path, tail: bytes) -> None:
    results = tmp_path / "results.jsonl"
    results.write_bytes(GOOD + tail)
    assert [r["key"] for r in read_results(tmp_path)] == ["a", "b", "c"]
    assert repair_results(tmp_path) == len(tail)
    assert results.read_bytes() == GOOD
    assert repair_results(tmp_path) == 0  # idempotent


def test_a_short_write_is_continued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.write`` may write less than asked (a large line, a nearly full disk): the rest follows."""
    real_write = os.write
    monkeypatch.setattr(store.os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    record = {"key": "k", "answer": "é" * 500}
    store.append_result(tmp_path, record)
    store.append_result(tmp_path, {**record, "key": "l"})
    assert read_results(tmp_path) == [record, {**record, "key": "l"}]


MIDDLE = {
    "partial line": _record("x")[:20] + b"\n",
    "absurdly nested": b"{" * 100_000 + b"\n",
    "not UTF-8": b'{"key": "\xff"}\n',
}


@pytest.mark.parametrize("bad", MIDDLE.values(), ids=MIDDLE.keys())
def test_corruption_before_the_last_line_is_one_clear_error(tmp_path: Path, bad: bytes) -> None:
    """Only the last line can be torn by a kill; a bad line before it is refused, not skipped."""
    (tmp_path / "results.jsonl").write_bytes(_record("a") + bad + _record("b"))
    with pytest.raises(HivethinkError, match="line 2 is corrupt"):
        read_results(tmp_path)
    with pytest.raises(HivethinkError, match="line 2 is corrupt"):
        repair_results(tmp_path)
