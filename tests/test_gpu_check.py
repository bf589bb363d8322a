"""scripts/gpu-check.sh and its summary: bad input and a machine without CUDA give one line and a
non-zero exit; the summary reads the targets off a GPU run's JSON. (The dry run itself is in
.ci/run: a few minutes.) And ``--device cuda`` without CUDA: one line, exit 2, in every command
that takes it and in the lab's local backend."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hivethink.cli.main import main
from hivethink.errors import HivethinkError

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu-check.sh"
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")


def _run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHON": sys.executable, "OUT": str(tmp_path / "out")}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)


def test_gpu_check_rejects_an_unknown_argument(tmp_path):
    p = _run("--fast", tmp_path=tmp_path)
    assert p.returncode == 2 and p.stderr.strip() == "gpu-check: unknown argument --fast (only --dry-run)"


@no_cuda
def test_gpu_check_without_cuda_says_so_in_one_line(tmp_path):
    p = _run(tmp_path=tmp_path)
    err = p.stderr.strip()
    assert p.returncode == 1 and len(err.splitlines()) == 1 and "no CUDA GPU" in err and "--dry-run" in err
    assert "Traceback" not in p.stdout + p.stderr and not (tmp_path / "out").exists()  # nothing ran


def _summary():
    spec = importlib.util.spec_from_file_location("gpu_check_summary", ROOT / "scripts" / "gpu_check_summary.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _bench(device: str, rows: list[tuple[int, int, float, float, float]]) -> dict:
    return {"device": device, "gpu": "H100" if device == "cuda" else None, "graph_failures": None,
            "hives": {"hives": 16, "workers": 4, "context": 1024, "aggregate_tok_s": 900.0,
                      "one_hive_tok_s": 100.0, "throughput_ratio": 9.0},
            "rows": [{"context": c, "workers": n, "engine_ms": ms, "baseline_ms": base,
                      "vs_baseline": base / ms, "vs_one_worker": 1.0, "bandwidth_fraction": frac}
                     for c, n, ms, base, frac in rows]}


def test_summary_reads_the_targets_off_a_gpu_run(tmp_path, capsys):
    # 16k: N=4 at 1.1x N=1 (met); N=1 at 75% of the bound (met) but slower than transformers
    (tmp_path / "bench-main-qwen3-8b.json").write_text(json.dumps(_bench("cuda", [
        (16384, 1, 20.0, 19.0, 0.75), (16384, 4, 22.0, 40.0, 0.68)])))
    assert _summary().main([str(tmp_path), "tests=ok", "bench-qwen3-8b=ok"]) == 0
    got = {t["target"]: (t["measured"], t["met"]) for t in json.loads((tmp_path / "summary.json").read_text())["targets"]}
    assert got == {"N=4 step <= 1.15x N=1 at 16384": ("1.10x", True),
                   "N=1 >= 70% of the weight-bandwidth bound at 16384": ("75%", True),
                   "N=1 at least as fast as transformers at 16384": ("0.95x", False)}
    out = capsys.readouterr().out
    assert "| qwen3-8b | H100 | 16384 | 4 | 22.00 | 40.00 |" in out.replace("main-", "")
    assert "16 hives x 4 workers at 1024: 900.0 tokens/s together" in out


def test_summary_of_the_cpu_rehearsal_has_no_targets_and_fails_with_a_step(tmp_path, capsys):
    (tmp_path / "bench-main-tiny.json").write_text(json.dumps(_bench("cpu", [(64, 1, 2.0, 1.0, 0.1)])))
    assert _summary().main([str(tmp_path), "tests=ok", "bench-tiny=timed-out"]) == 1
    assert json.loads((tmp_path / "summary.json").read_text())["targets"] == []
    assert "measured on a GPU only" in capsys.readouterr().out


@no_cuda
@pytest.mark.parametrize("command", [
    ["bench", "engine", "--shape", "tiny", "--contexts", "32", "--workers", "1"],
    ["bench", "serve"],
    ["serve", "--port", "1"],
])
def test_device_cuda_without_cuda_is_one_line_and_exit_2(command, capsys):
    assert main([*command, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sees no CUDA GPU" in err


@no_cuda
def test_the_lab_local_backend_on_cuda_without_cuda_is_a_config_error():
    from hivethink.backends.local import LocalBackend

    with pytest.raises(HivethinkError, match="sees no CUDA GPU"):
        LocalBackend(device="cuda")


def test_an_unknown_device_is_one_line(capsys):
    assert main(["bench", "engine", "--shape", "tiny", "--device", "tpu9"]) == 2
    assert "unknown device 'tpu9'" in capsys.readouterr().err


def test_bench_engine_times_hives_together_against_one(tmp_path, capsys):
    out = tmp_path / "b.json"
    rc = main(["bench", "engine", "--shape", "tiny", "--device", "cpu", "--contexts", "32", "--workers", "1",
               "--steps", "1", "--no-baseline", "--hives", "3", "--hive-workers", "2", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    h = r["hives"]
    assert (h["hives"], h["workers"], h["context"]) == (3, 2, 32)
    assert h["aggregate_tok_s"] == pytest.approx(3 * 2 * 1000 / h["all_hives_ms"], rel=1e-3)
    assert h["throughput_ratio"] == pytest.approx(3 * h["one_hive_ms"] / h["all_hives_ms"], rel=1e-2)
    assert (r["graphs"], r["graphs_used"], r["graph_failures"]) == ("auto", False, None)  # a CPU: eager
    assert "3 hives x 2 workers at context 32" in capsys.readouterr().out
