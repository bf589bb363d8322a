"""``bench engine --shape``: random weights at a model's shape, no download; the GPU fields."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import torch

from hivethink.cli.main import main


@pytest.mark.slow  # times transformers' own decoding of the shape as the baseline (about 15 s)
def test_bench_engine_on_a_random_tiny_shape_writes_the_gpu_fields(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "engine", "--shape", "tiny", "--device", "cpu", "--contexts", "64,128",
               "--workers", "1,2", "--steps", "2", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    assert r["model"] == "random:tiny" and r["device"] == "cpu" and r["attention"] == "paged"
    assert r["weight_bytes"] > 0 and r["bandwidth_gb_s"] > 0 and r["weight_bound_ms"] > 0
    assert [(x["context"], x["workers"]) for x in r["rows"]] == [(64, 1), (64, 2), (128, 1), (128, 2)]
    for x in r["rows"]:
        assert x["engine_ms"] > 0 and x["baseline_ms"] > 0 and x["bandwidth_fraction"] is not None
    assert r["step_ratio_n4_n1"] is None  # no N=4 in this run


def test_bench_engine_profile_names_the_ops_of_a_step(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "engine", "--shape", "tiny", "--device", "cpu", "--contexts", "64", "--workers", "2",
               "--steps", "2", "--no-baseline", "--profile", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert "where a step goes" in capsys.readouterr().out
    ops = json.loads(out.read_text())["rows"][0]["profile"]
    assert 0 < len(ops) <= 12 and all(o["ms_per_step"] >= 0 and o["calls_per_step"] > 0 for o in ops)
    assert any("linear" in o["op"] or "mm" in o["op"] for o in ops)  # the weight matmuls show up
    assert [o["ms_per_step"] for o in ops] == sorted((o["ms_per_step"] for o in ops), reverse=True)


def test_bench_engine_rounds_report_the_median_of_each_rounds_figures(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "engine", "--shape", "tiny", "--device", "cpu", "--contexts", "64", "--workers", "1,2",
               "--steps", "2", "--no-baseline", "--rounds", "3", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert "round 3/3 ctx     64 N=2" in capsys.readouterr().out  # progress per round
    r = json.loads(out.read_text())
    assert r["rounds"] == 3
    for x in r["rows"]:
        assert len(x["engine_ms_rounds"]) == 3 and x["engine_ms"] == sorted(x["engine_ms_rounds"])[1]
        assert x["vs_one_worker"] == pytest.approx(x["engine_ms"] / r["rows"][0]["engine_ms"], abs=2e-3)  # of medians


@pytest.mark.parametrize("args,msg", [
    (["--shape", "tiny", "--rounds", "0"], "--rounds must be at least 1"),
    (["--shape", "llama-9000b"], "unknown --shape"),
    (["--shape", "tiny", "--model", "smollm2"], "exclude"),
    (["--shape", "tiny", "--attention", "fused"], "--attention"),
    (["--weights", "int3"], "choose from exact, int8, int4, auto"),
    (["--shape", "tiny", "--weights", "int4"], "--weights applies to a model's own tensors"),
])
def test_bench_engine_bad_shape_arguments_give_one_line(args, msg, capsys):
    rc = main(["bench", "engine", "--device", "cpu", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and msg in err and len(err.splitlines()) == 1


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bench_engine_on_cuda_uses_the_flex_path(tmp_path):
    out = tmp_path / "bench.json"
    rc = main(["bench", "engine", "--shape", "tiny", "--device", "cuda", "--contexts", "256",
               "--workers", "1,4", "--steps", "3", "--json", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["attention"] == "flex" and r["gpu"] and set(r["step_ratio_n4_n1"]) == {"256"}
    assert all(x["bandwidth_fraction"] is not None for x in r["rows"])


@pytest.mark.slow
def test_bench_engine_without_llamacpp_says_why_it_is_not_timed(tmp_path, capsys, monkeypatch):
    """llama-cpp-python is only in the llamacpp extra: without it the bench runs and says so."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # importing it fails
    out = tmp_path / "bench.json"
    rc = main(["bench", "engine", "--device", "cpu", "--contexts", "16", "--workers", "1",
               "--steps", "1", "--no-baseline", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert "llama.cpp not timed: llama-cpp-python is not installed" in capsys.readouterr().out
    r = json.loads(out.read_text())
    assert r["model"].endswith(".gguf") and r["llamacpp_tok_s"] is None
    assert r["rows"][0]["vs_llamacpp"] is None


@pytest.mark.parametrize("command", [["solve", "2+2?"], ["serve"], ["bench", "serve"], ["bench", "greedy"]])
def test_an_unknown_weights_mode_is_one_line_before_the_model_loads(command, capsys):
    rc = main([*command, "--weights", "fp4"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "choose from exact, int8, int4, auto" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("command", [["serve"], ["bench", "serve"]])
def test_a_negative_prefix_cache_allowance_is_one_line_before_the_model_loads(command, capsys):
    rc = main([*command, "--prefix-cache-mb", "-1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.endswith("--prefix-cache-mb must be at least 0, got -1") and len(err.splitlines()) == 1


@pytest.mark.slow
def test_bench_engine_times_llamacpp_batched_at_every_n(tmp_path, capsys):
    """With llama-cpp-python installed (the llamacpp extra, not in CI): N sequences sharing a
    copied prompt in one llama_decode a step, per row of the run."""
    pytest.importorskip("llama_cpp")
    out = tmp_path / "bench.json"
    rc = main(["bench", "engine", "--device", "cpu", "--contexts", "32", "--workers", "1,2", "--steps", "2",
               "--no-baseline", "--weights", "auto", "--rounds", "2", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    assert r["weights"] == "auto: exact+int4" and "Q4_1 as stored" in r["weights_plan"]
    for x in r["rows"]:
        assert x["llamacpp_batched_ms"] > 0 and x["vs_llamacpp_batched"] > 0 and x["read_bound_fraction"] > 0
        # each round's ratio is its own engine figure against its own llama.cpp figure
        assert x["vs_llamacpp_batched_rounds"] == [round(b / e, 3) for b, e in
                                                   zip(x["llamacpp_batched_ms_rounds"], x["engine_ms_rounds"], strict=True)]


@pytest.mark.slow
def test_bench_greedy_reports_agreement_or_the_first_divergence(tmp_path, capsys):
    pytest.importorskip("llama_cpp")
    out = tmp_path / "greedy.json"
    rc = main(["bench", "greedy", "--tokens", "4", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 3
    for r in rows:
        assert r["agreed"] == r["tokens"] == 4 or (r["diverged_at"] == r["agreed"] and r["engine_gap"] >= 0
                                                   and r["llamacpp_gap"] >= 0)
