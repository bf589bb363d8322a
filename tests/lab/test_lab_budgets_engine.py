"""Budgets with the real engine: one hive decoded to the largest budget gives each budget's result
(the finisher's included) equal to a separate run at that budget (greedy, same seed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from hivethink.lab import parse_config, read_results, run_lab

pytestmark = pytest.mark.slow

TIMINGS = ("finished_at", "lab_wall_s")


def grid(**budget) -> dict:
    return {
        "models": [{"kind": "local", "model": "smollm2", "dtype": "float32"}],
        "substrates": [{"name": "shared-cache", "params": {"sampling": "greedy", "examples": False}}],
        "workers": [2],
        "tasks": [{"name": "math", "params": {"steps": 2}, "n": 1}],
        "seeds": [0],
        **budget,
    }


def outcome(record: dict) -> tuple:
    return (record["key"], record["answer"], record["score"], record["metrics"].get("sequential_passes"),
            record["metrics"].get("tokens"), record["info"].get("finished_by"))


def test_a_budgets_grid_equals_separate_runs(tmp_path: Path) -> None:
    quiet = Console(quiet=True)
    run_lab(parse_config(grid(budgets=[8, 16])), tmp_path / "both", console=quiet, progress=False)
    both = {r["key"]: r for r in read_results(tmp_path / "both")}
    assert len(both) == 2
    for b in (8, 16):
        run_lab(parse_config(grid(budget={"passes": b})), tmp_path / f"p{b}", console=quiet, progress=False)
        [alone] = read_results(tmp_path / f"p{b}")
        assert outcome(both[alone["key"]]) == outcome(alone), b
        assert alone["metrics"].get("sequential_passes", 0) <= b
