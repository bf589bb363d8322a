"""Lab samples on Ray: the same keys, scores and answers as a local run, resume, kill -9 of the
driver, a dying worker, and one-line errors (Ray missing, bad model, impossible resources).

The Ray workers import the fakes (``lab_fakes`` and this module) because ``tests/lab`` is on the
``PYTHONPATH`` of the process that starts Ray, which its workers inherit. One local Ray instance
(2 CPUs) is shared by the module; one test starts and stops its own through ``--ray``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab_fakes import AddTask, EchoBackend, FakeSubstrate, config_dict, fake_factories
from rich.console import Console
from typer.testing import CliRunner

import hivethink.lab.runner as runner
from hivethink.cli.lab import app, bare_ray_to_local
from hivethink.errors import HivethinkError
from hivethink.lab import (
    Factories,
    RaySpec,
    expand_grid,
    parse_config,
    read_results,
    read_trace,
    resolve_ray,
    run_lab,
)

pytestmark = pytest.mark.slow  # starts Ray (a cluster of processes) in most tests

HERE = str(Path(__file__).parent)
QUIET = Console(quiet=True)
CLI = CliRunner()
# Fields of a results line that must not depend on where the sample ran.
SAME = (
    "key",
    "index",
    "model",
    "substrate",
    "task",
    "workers",
    "instance",
    "seed",
    "cell",
    "score",
    "answer",
    "agent_answers",
    "metrics",
    "info",
    "error",
    "trace",
    "events",
)


def _pythonpath() -> str:
    return os.pathsep.join(p for p in (HERE, os.environ.get("PYTHONPATH")) if p)


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    """One local Ray instance for the module (workers inherit ``PYTHONPATH`` with the fakes)."""
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", _pythonpath())
        if not ray.is_initialized():
            ray.init(
                address="local",
                num_cpus=2,
                include_dashboard=False,
                object_store_memory=200 * 1024**2,
                logging_level="WARNING",
            )
        yield ray
        ray.shutdown()


def _local(out: Path, factories: Factories | None = None, limit: int | None = None):
    cfg = parse_config(config_dict())
    return run_lab(
        cfg,
        out,
        factories=factories or fake_factories(),
        console=QUIET,
        progress=False,
        limit=limit,
    )


def _on_ray(out: Path, factories: Factories | None = None, spec: RaySpec | None = None, **kw: Any):
    cfg = parse_config(config_dict(**kw.pop("config", {})))
    return run_lab(
        cfg,
        out,
        factories=factories or fake_factories(),
        console=QUIET,
        progress=False,
        ray=spec or RaySpec(),
        **kw,
    )


def _by_key(out: Path) -> dict[str, dict[str, Any]]:
    records = read_results(out)
    by_key = {r["key"]: r for r in records}
    assert len(by_key) == len(records)  # every sample once
    return by_key


def _same_part(record: dict[str, Any]) -> dict[str, Any]:
    """The fields in ``SAME``; metrics without ``wall_s`` (a measured time)."""
    part = {f: record.get(f) for f in SAME}
    part["metrics"] = {k: v for k, v in (part["metrics"] or {}).items() if k != "wall_s"}
    return part


def _assert_same_records(ray_out: Path, local_out: Path) -> None:
    on_ray, here = _by_key(ray_out), _by_key(local_out)
    assert set(on_ray) <= set(here)
    for key, record in on_ray.items():
        assert _same_part(record) == _same_part(here[key]), key
        trace = [(e.kind, e.worker, e.text) for e in read_trace(ray_out, record)]
        assert trace == [(e.kind, e.worker, e.text) for e in read_trace(local_out, here[key])]


# --- settings and errors that need no Ray instance --------------------------------------------


def test_ray_settings_from_yaml_and_command_line() -> None:
    plain = parse_config(config_dict())
    assert plain.ray is None and resolve_ray(plain) is None
    assert resolve_ray(plain, "local") == RaySpec(address="local", num_gpus=0, num_cpus=1)
    with pytest.raises(HivethinkError, match="need --ray"):
        resolve_ray(plain, num_gpus=1)
    cfg = parse_config(config_dict(ray={"address": "auto", "num_gpus": 0.5}))
    assert cfg.ray == RaySpec(address="auto", num_gpus=0.5, num_cpus=1)
    assert resolve_ray(cfg) == cfg.ray  # the config alone turns Ray on
    merged = resolve_ray(cfg, "ray://head:10001", None, 2)
    assert merged == RaySpec(address="ray://head:10001", num_gpus=0.5, num_cpus=2)
    assert parse_config(config_dict(ray={})).ray == RaySpec()
    with pytest.raises(HivethinkError, match=r"ray\.gpus: unknown key"):
        parse_config(config_dict(ray={"gpus": 1}))
    with pytest.raises(HivethinkError, match=r"ray\.num_gpus: .*greater than or equal to 0"):
        parse_config(config_dict(ray={"num_gpus": -1}))
    assert bare_ray_to_local(["g.yaml", "--ray"]) == ["g.yaml", "--ray=local"]
    assert bare_ray_to_local(["--ray", "g.yaml"]) == ["--ray=local", "g.yaml"]
    assert bare_ray_to_local(["g.yaml", "--ray", "--limit", "2"])[1] == "--ray=local"
    for address in ("auto", "local", "ray://head:10001", "10.0.0.1:6379"):
        assert bare_ray_to_local(["g.yaml", "--ray", address]) == ["g.yaml", "--ray", address]


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(runner, "default_factories", fake_factories)
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(config_dict()), encoding="utf-8")
    return path


def test_missing_ray_is_one_line_error(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = CLI.invoke(app, ["run", str(config_file), "--out", str(tmp_path / "o"), "--ray"])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: Ray is not installed") and "pip install hivethink[ray]" in err
    assert "\n" not in err and not (tmp_path / "o").exists()  # nothing written


def test_unreachable_address_fails_fast(config_file: Path, tmp_path: Path) -> None:
    """Ray retries a dead address for minutes; the run checks it first and stops at once."""
    ray = pytest.importorskip("ray")
    from hivethink.lab.distributed import check_reachable

    t0 = time.monotonic()
    for address in ("127.0.0.1:1", "ray://127.0.0.1:1"):
        with pytest.raises(HivethinkError, match=f"^cannot connect to Ray at {address}: "):
            check_reachable(address)
    check_reachable("auto")  # left to Ray
    if not ray.is_initialized():  # (an existing connection would be used instead)
        args = ["run", str(config_file), "--out", str(tmp_path / "o"), "--ray", "127.0.0.1:1"]
        result = CLI.invoke(app, args)
        assert result.exit_code == 2 and "cannot connect to Ray at 127.0.0.1:1" in result.stderr
    assert time.monotonic() - t0 < 20


# --- on a local Ray instance ------------------------------------------------------------------


def test_bare_ray_flag_starts_and_stops_a_local_ray(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("PYTHONPATH", _pythonpath())
    was_up = ray.is_initialized()  # True only when run after the module's shared instance
    out = tmp_path / "ray"
    args = ["run", str(config_file), "--out", str(out), "--ray", "--ray-cpus", "1", "--limit", "6"]
    result = CLI.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "6 ran (0 failed), 0 already done, 10 left of 16" in result.stderr
    assert ray.is_initialized() == was_up  # a Ray it started is shut down again
    _local(tmp_path / "local")
    _assert_same_records(out, tmp_path / "local")


def test_ray_run_matches_local_run(ray_cluster: Any, tmp_path: Path) -> None:
    """Same keys, scores, answers, metrics and traces; failing samples recorded the same way."""
    factories = fake_factories(fail_on=("add-10-0-1",))
    summary = _on_ray(tmp_path / "ray", factories)
    assert (summary.total, summary.ran, summary.failed, summary.lost) == (16, 16, 8, 0)
    local = _local(tmp_path / "local", factories)
    assert local.failed == 8
    _assert_same_records(tmp_path / "ray", tmp_path / "local")
    assert set(_by_key(tmp_path / "ray")) == set(_by_key(tmp_path / "local"))
    failed = [r for r in read_results(tmp_path / "ray") if r["error"]]
    assert {r["error"] for r in failed} == {"RuntimeError: boom on add-10-0-1"}
    assert "Traceback" in read_trace(tmp_path / "ray", failed[0])[0].data["traceback"]
    assert (tmp_path / "ray" / "summary.parquet").exists()


def test_registries_and_scripted_backend_match(ray_cluster: Any, tmp_path: Path) -> None:
    """The package's own tasks, substrates and scripted ``fake`` backend (default factories)."""
    reply = "Alice here: 2, 3, 5 \\boxed{2, 3, 5}"
    cfg = parse_config(
        {
            "models": [{"kind": "fake", "script": [reply] * 200}],
            "substrates": ["independent", "single"],
            "workers": [2],
            "tasks": [{"name": "enumerate", "params": {"k": 3, "kind": "primes"}, "n": 2}],
            "budget": {"max_tokens": 32},
        }
    )
    on_ray = run_lab(cfg, tmp_path / "ray", console=QUIET, progress=False, ray=RaySpec())
    here = run_lab(cfg, tmp_path / "local", console=QUIET, progress=False)
    assert on_ray.ran == here.ran == 4 and on_ray.failed == here.failed == 0
    _assert_same_records(tmp_path / "ray", tmp_path / "local")
    assert {r["answer"] for r in read_results(tmp_path / "ray")} == {"2, 3, 5"}


def test_budget_snapshots_on_ray_match_local(ray_cluster: Any, tmp_path: Path) -> None:
    """A snapshot substrate's budgets are one job on a Ray worker too: one record per budget,
    the same as a local run's."""
    grid = {"substrates": ["snap"], "budgets": [3, 5]}
    on_ray = _on_ray(tmp_path / "ray", config=grid)
    here = run_lab(parse_config(config_dict(**grid)), tmp_path / "local",
                   factories=fake_factories(), console=QUIET, progress=False)
    assert on_ray.ran == here.ran == 16 and on_ray.failed == 0
    _assert_same_records(tmp_path / "ray", tmp_path / "local")
    assert {r["budget"] for r in read_results(tmp_path / "ray")} == {3, 5}


def test_resume_mixes_local_and_ray_runs(ray_cluster: Any, tmp_path: Path) -> None:
    assert _local(tmp_path, limit=5).ran == 5
    results = tmp_path / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    results.write_bytes(b"".join(lines[:4]) + lines[4][:20])  # killed mid-write
    summary = _on_ray(tmp_path)
    assert summary.torn_bytes > 0 and (summary.skipped, summary.ran, summary.remaining) == (
        4,
        12,
        0,
    )
    again = _on_ray(tmp_path)  # nothing left: Ray is not even asked for workers
    assert (again.skipped, again.ran) == (16, 0)
    keys = [r["key"] for r in read_results(tmp_path)]
    expected = {s.key for s in expand_grid(parse_config(config_dict()), fake_factories()).samples}
    assert len(keys) == len(set(keys)) == 16 and set(keys) == expected


def test_bad_model_and_impossible_resources_are_one_error(ray_cluster: Any, tmp_path: Path) -> None:
    with pytest.raises(HivethinkError, match="^model 'nope': cannot build backend: ValueError"):
        _on_ray(tmp_path / "a", config={"models": [{"kind": "nope"}]})
    with pytest.raises(HivethinkError, match="no Ray node has 1 CPU and 1 GPU"):
        _on_ray(tmp_path / "b", spec=RaySpec(num_gpus=1))
    assert not (tmp_path / "a" / "results.jsonl").exists()


# A substrate that kills its Ray worker process on one sample, once (a marker file remembers).


@dataclass
class CrashOnce(FakeSubstrate):
    marker: str = ""

    def run(
        self, instance: Any, task: Any, backend: Any, *, workers: int, budget: Any, seed: int
    ) -> Any:
        if instance.id == "add-10-0-1" and seed == 0 and workers == 2:
            marker = Path(self.marker)
            if not marker.exists():
                marker.touch()
                os._exit(1)
        return super().run(instance, task, backend, workers=workers, budget=budget, seed=seed)


def crash_factories(marker: str) -> Factories:
    return Factories(
        get_backend=lambda kind, **p: EchoBackend(**p),
        get_task=lambda name, **p: AddTask(**p),
        get_substrate=lambda name, **p: CrashOnce(name=name, marker=marker, **p),
    )


def test_dead_worker_loses_its_sample_which_runs_next_time(
    ray_cluster: Any, tmp_path: Path
) -> None:
    factories = crash_factories(str(tmp_path / "crashed"))
    one = RaySpec(num_cpus=2)  # a pool of one worker (fewer process starts on a small machine)
    first = _on_ray(tmp_path / "out", factories, one, config={"substrates": ["fake"]})
    assert (first.ran, first.lost, first.remaining) == (7, 1, 1)  # a new worker did the rest
    second = _on_ray(tmp_path / "out", factories, one, config={"substrates": ["fake"]})
    assert (second.skipped, second.ran, second.lost, second.remaining) == (7, 1, 0, 0)
    assert len(_by_key(tmp_path / "out")) == 8


def test_factories_the_workers_cannot_import_are_one_error(
    ray_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A factory module only the driver can import: every worker fails to start, one error."""
    (tmp_path / "driver_only_fakes.py").write_text(
        "from lab_fakes import EchoBackend\n"
        "def backend(kind, **params):\n"
        "    return EchoBackend(**params)\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import driver_only_fakes  # type: ignore[import-not-found]

    fakes = fake_factories()
    factories = Factories(driver_only_fakes.backend, fakes.get_task, fakes.get_substrate)
    with pytest.raises(HivethinkError, match="every Ray worker died") as info:
        _on_ray(tmp_path / "out", factories, RaySpec(num_cpus=2))  # one worker, one replacement
    assert "\n" not in str(info.value) and "driver_only_fakes" in str(info.value)
    monkeypatch.delitem(sys.modules, "driver_only_fakes")


_CHILD = """
import sys
sys.path.insert(0, {here!r})
from lab_fakes import config_dict, fake_factories
from rich.console import Console
from hivethink.lab import RaySpec, parse_config, run_lab
run_lab(parse_config(config_dict(seeds=list(range(10)))), {out!r},
        factories=fake_factories(delay=0.1), console=Console(quiet=True), progress=False,
        ray=RaySpec(address={address!r}))
"""


@pytest.mark.timeout(90)
def test_kill_9_of_the_driver_then_resume(ray_cluster: Any, tmp_path: Path) -> None:
    """A second driver joins the shared instance by address, is killed mid-run, and a rerun
    computes each remaining sample exactly once."""
    out = tmp_path / "run"
    address = ray_cluster.get_runtime_context().gcs_address
    code = _CHILD.format(here=HERE, out=str(out), address=address)
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    results = out / "results.jsonl"
    deadline = time.monotonic() + 60
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
    with open(results, "ab") as f:  # and a partial line, as if killed mid-write
        f.write(b'{"key": "deadbeef", "cell": {"mod')
    summary = _on_ray(out, config={"seeds": list(range(10))})
    assert summary.torn_bytes > 0 and summary.skipped == len(done_before)
    assert summary.ran == 80 - len(done_before)
    keys = [r["key"] for r in read_results(out)]
    cfg = parse_config(config_dict(seeds=list(range(10))))
    expected = {s.key for s in expand_grid(cfg, fake_factories()).samples}
    assert len(keys) == len(set(keys)) == 80 and set(keys) == expected
