"""``hivethink bench lab``: the grid at concurrency 1 and K, throughput and ratios, the equality
check (and its failure), JSON, and bad input as one line."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab_fakes import Calls, EchoBackend, FakeSubstrate, config_dict, fake_factories
from rich.console import Console

import hivethink.lab.bench as bench
from hivethink.cli.main import main
from hivethink.lab import Factories, parse_config
from hivethink.lab.bench import differences, run_bench_lab

QUIET = Console(quiet=True)


def _config(**overrides: Any):
    return parse_config(config_dict(models=[{"kind": "echo", "delay_s": 0.02}], **overrides))


def test_two_runs_throughput_and_equal_results() -> None:
    calls = Calls()
    seen: list[int] = []
    result = run_bench_lab(_config(), 4, factories=fake_factories(calls, stagger=0.01),
                           console=QUIET, progress=False, on_run=lambda r: seen.append(r.concurrency))
    assert seen == [1, 4] and [r.concurrency for r in result.runs] == [1, 4]
    assert len(calls.backends) == 1  # built once, before the timed runs, shared by both
    assert calls.built[0].max_inflight > 1  # the second run had samples side by side
    for run in result.runs:
        assert (run.samples, run.failed) == (16, 0)
        assert run.tokens == 16 * 2.5 * 4  # N=2 and N=3 (2.5 workers on average), 4 words each
        # (wall_s is rounded to milliseconds, the rates are not)
        assert run.samples_per_min == pytest.approx(16 / run.wall_s * 60, rel=0.01)
        assert run.tokens_per_s == pytest.approx(run.tokens / run.wall_s, rel=0.01)
    ratio = result.runs[1].samples_per_min / result.runs[0].samples_per_min
    assert result.samples_per_min_ratio == pytest.approx(ratio, rel=1e-3)
    assert result.equal and result.differences == []
    assert json.loads(json.dumps(result.to_json()))["runs"][1]["concurrency"] == 4


@dataclass
class Drifting(FakeSubstrate):
    """Answers differently on every call: results that depend on when a sample runs."""

    counter: Any = None

    def ask(self, instance: Any) -> str:
        return f"Compute {next(self.counter)} plus 1."


def test_unequal_results_are_named_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fakes = fake_factories()
    counter = itertools.count()
    factories = Factories(fakes.get_backend, fakes.get_task,
                          lambda name, **p: Drifting(name=name, counter=counter, **p))
    monkeypatch.setattr(bench, "default_factories", lambda: factories)
    config = tmp_path / "lab.yaml"
    config.write_text(yaml.safe_dump(config_dict()), encoding="utf-8")
    out = tmp_path / "bench.json"
    code = main(["bench", "lab", str(config), "--concurrency", "2", "--limit", "5",
                 "--json", str(out)])
    assert code == 1
    shown = capsys.readouterr().out
    assert "results equal: NO" in shown and "answer, agent_answers differ" in shown
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["equal"] is False and len(saved["differences"]) == 5
    assert [r["samples"] for r in saved["runs"]] == [5, 5]


def test_the_command_prints_the_table_and_writes_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "default_factories", fake_factories)
    config = tmp_path / "lab.yaml"
    config.write_text(yaml.safe_dump(config_dict()), encoding="utf-8")
    out = tmp_path / "bench.json"
    assert main(["bench", "lab", str(config), "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "concurrency 4 vs 1:" in captured.out and "results equal: yes" in captured.out
    assert "run 1 of 2: concurrency 1" in captured.err and "run 2 of 2: concurrency 4" in captured.err
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["equal"] is True and saved["concurrency"] == 4 and saved["config"] == str(config)


def test_bad_input_is_one_line_before_any_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = Calls()
    monkeypatch.setattr(bench, "default_factories", lambda: fake_factories(calls))
    config = tmp_path / "lab.yaml"
    config.write_text(yaml.safe_dump(config_dict()), encoding="utf-8")
    cases = {
        ("--concurrency", "0"): "--concurrency must be at least 1, got 0",
        ("--limit", "0"): "--limit must be at least 1, got 0",
        ("--prompts", str(tmp_path / "none")): "no such prompts directory",
    }
    for args, expect in cases.items():
        assert main(["bench", "lab", str(config), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and expect in err and "\n" not in err
    assert main(["bench", "lab", str(tmp_path / "missing.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err
    assert calls.backends == []


def test_differences_compare_outcomes_not_timings() -> None:
    a = [{"key": "k", "index": 0, "answer": "1", "score": 1.0, "metrics": {"tokens": 4,
                                                                         "wall_s": 1.0},
          "finished_at": "then"}]
    b = [{**a[0], "finished_at": "now", "metrics": {"tokens": 4, "wall_s": 9.0}}]
    assert differences(a, b) == []
    assert differences(a, [{**b[0], "metrics": {"tokens": 5}}]) == ["sample k (#0): tokens differ"]
    assert differences(a, []) == ["1 key(s) in one run only, e.g. k"]


def test_a_local_model_starts_each_run_with_an_empty_prefix_cache(tiny_smol) -> None:
    """Both runs at concurrency 1 do the same work: the second finds none of the first run's
    prompts in the prefix cache (it would prefill only what the cache lacks), and each run
    reports its own passes."""
    from hivethink.backends.local import LocalBackend
    from hivethink.lab.grid import default_factories

    registry = default_factories()
    built: list[LocalBackend] = []

    def backend(kind: str, **params: Any) -> LocalBackend:
        built.append(LocalBackend(loaded=tiny_smol))
        return built[-1]

    config = parse_config({
        "name": "t", "models": [{"kind": "local", "model": "smollm2"}], "substrates": ["single"],
        "workers": [2], "tasks": [{"name": "math", "params": {"steps": 2}, "n": 2}], "seeds": [0],
        "budget": {"max_tokens": 4, "rounds": 1}})
    result = run_bench_lab(config, 1, factories=Factories(backend, registry.get_task, registry.get_substrate),
                           console=QUIET, progress=False)
    assert len(built) == 1 and result.equal
    first, second = result.runs
    assert first.passes and first.chunk_tokens and first.rows_per_pass and first.tokens_per_pass
    assert (second.passes, second.chunk_tokens, second.rows_per_pass, second.tokens_per_pass) == (
        first.passes, first.chunk_tokens, first.rows_per_pass, first.tokens_per_pass)
    assert first.chunk_tokens < first.tokens_per_pass * first.passes  # decode rows feed the rest
    for run in result.runs:  # pass time: some of the run's wall time, prompt chunks part of it
        assert 0 < run.chunk_busy_s < run.busy_s < run.wall_s


def test_backends_without_an_engine_report_no_passes() -> None:
    result = run_bench_lab(_config(), 2, factories=fake_factories(), console=QUIET, progress=False)
    assert all(r.passes is None and r.rows_per_pass is None for r in result.runs)


def test_the_table_shows_the_engine_columns_for_a_backend_with_an_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hivethink.engine.scheduler import EngineStats

    fakes = fake_factories()
    forgot: list[int] = []

    class WithEngine(EchoBackend):
        """Counts one pass of one row per call."""

        stats: EngineStats | None = None

        @property
        def engine_stats(self) -> EngineStats | None:
            return self.stats

        def generate(self, requests):  # type: ignore[no-untyped-def]
            self.stats = self.stats or EngineStats()
            self.stats.passes += 1
            self.stats.rows += 1
            self.stats.tokens += 3
            self.stats.chunk_tokens += 2
            self.stats.busy_s += 0.001
            return super().generate(requests)

        def forget_cached(self) -> None:
            forgot.append(1)

    factories = Factories(lambda kind, **p: WithEngine(), fakes.get_task, fakes.get_substrate)
    monkeypatch.setattr(bench, "default_factories", lambda: factories)
    config = tmp_path / "lab.yaml"
    config.write_text(yaml.safe_dump(config_dict()), encoding="utf-8")
    out = tmp_path / "bench.json"
    assert main(["bench", "lab", str(config), "--limit", "3", "--json", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "engine passes" in shown and "rows/pass" in shown
    assert len(forgot) == 2  # once before each run
    runs = json.loads(out.read_text(encoding="utf-8"))["runs"]
    calls = [r["passes"] for r in runs]
    assert calls[0] == calls[1] > 0  # each run counts its own calls only (the counts go on)
    assert all(r["rows_per_pass"] == 1.0 and r["tokens_per_pass"] == 3.0 and r["chunk_tokens"] == 2 * r["passes"]
               for r in runs)
