"""Budgets in the grid: ``budgets: [...]`` makes one cell per value; a snapshot substrate runs
once per group at the largest budget and the lab writes one record per budget; resume writes only
the missing ones. The lab mechanics are pinned here with fakes (the engine-level check, with the
real decoder, is in the engine tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lab_fakes import Calls, SnapshotSubstrate, config_dict, fake_factories
from rich.console import Console

from hivethink.errors import HivethinkError
from hivethink.lab import Factories, expand_grid, parse_config, read_records, read_results, run_lab
from hivethink.lab.grid import job_budget, sample_budget
from hivethink.substrates.base import Budget

QUIET = Console(quiet=True)
TIMINGS = ("finished_at", "lab_wall_s")


def _cfg(**overrides: Any):
    base = {"substrates": ["snap"], "budget": {"max_tokens": 16, "rounds": 1}}
    return parse_config(config_dict(**{**base, **overrides}))


def _run(out: Path, calls: Calls | None = None, factories: Factories | None = None, **overrides):
    return run_lab(_cfg(**overrides), out, factories=factories or fake_factories(calls),
                   console=QUIET, progress=False)


def _error(**overrides: Any) -> str:
    with pytest.raises(HivethinkError) as info:
        _cfg(**overrides)
    assert "\n" not in str(info.value)
    return str(info.value)


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    part = {k: v for k, v in record.items() if k not in TIMINGS}
    part["metrics"] = {k: v for k, v in record["metrics"].items() if k != "wall_s"}
    return part


def test_bad_budget_lists_are_one_line() -> None:
    for bad in ([64, 64], [128, 64], [0, 64], [-5], []):
        assert "budgets: must be a non-empty, strictly increasing list of positive integers" in _error(
            budgets=bad
        )
    assert "budgets.0: Input should be a valid integer" in _error(budgets=["many"])
    both = _error(budgets=[64], budget={"passes": 32})
    assert "budget.passes and budgets both set the passes budget" in both
    assert "budget.tokens and budgets" in _error(
        budgets=[64], budget={"tokens": 32, "match": "tokens"}
    )
    assert "budget.match: Input should be 'passes' or 'tokens'" in _error(budget={"match": "time"})
    ok = _cfg(budgets=[64], budget={"passes": 32, "match": "tokens"})  # passes stay, tokens vary
    assert sample_budget(ok, 64) == Budget(max_tokens=256, rounds=3, passes=32, tokens=64,
                                           match="tokens")


def test_each_budget_is_its_own_cell_keyed_like_a_separate_run() -> None:
    grid = expand_grid(_cfg(budgets=[3, 5]), fake_factories())
    assert len(grid.samples) == 2 * 2 * 2 * 2  # instances x workers x budgets x seeds
    assert [(s.workers, s.budget, s.seed) for s in grid.samples[:8]] == [
        (2, 3, 0), (2, 3, 1), (2, 5, 0), (2, 5, 1), (3, 3, 0), (3, 3, 1), (3, 5, 0), (3, 5, 1)
    ]
    for b in (3, 5):
        alone = expand_grid(_cfg(budget={"max_tokens": 16, "rounds": 1, "passes": b}),
                            fake_factories())
        mine = [s for s in grid.samples if s.budget == b]
        assert [s.key for s in mine] == [s.key for s in alone.samples]
        assert all(s.cell["budget"] == {"max_tokens": 16, "rounds": 1, "passes": b, "tokens": None}
                   for s in mine)
    # the budgets of one (instance, substrate, workers, seed) are one group: one job
    jobs = grid.jobs(grid.samples)
    assert len(jobs) == 8 and all(j.snapshot and len(j.samples) == 2 for j in jobs)
    assert job_budget(grid.config, jobs[0]) == Budget(max_tokens=16, rounds=1, passes=5,
                                                      snapshots=(3, 5))
    plain = expand_grid(_cfg(budgets=[3, 5], substrates=["snap-plain"]), fake_factories())
    assert [len(j.samples) for j in plain.jobs(plain.samples)] == [1] * 16
    single = expand_grid(_cfg(budgets=[3, 5], substrates=["single"]), fake_factories())
    assert {s.workers for s in single.samples} == {1}  # the budget no longer depends on N


def test_two_budgets_from_one_decode_equal_two_separate_runs(tmp_path: Path) -> None:
    """``budgets: [3, 5]`` with a snapshot substrate: one decode per group gives both records,
    each equal (record and trace) to a run at that budget alone."""
    calls = Calls()
    summary = _run(tmp_path / "both", calls, budgets=[3, 5])
    assert summary.ran == 16 and calls.built[0].calls == 8  # one decode per group
    both = {r["key"]: r for r in read_results(tmp_path / "both")}
    separate: dict[str, dict[str, Any]] = {}
    for b in (3, 5):
        alone = Calls()
        out = tmp_path / f"at{b}"
        _run(out, alone, budget={"max_tokens": 16, "rounds": 1, "passes": b})
        assert alone.built[0].calls == 8
        separate |= {r["key"]: r | {"trace_events": _events(out, r)} for r in read_results(out)}
    assert set(both) == set(separate)
    for key, record in both.items():
        alone = dict(separate[key])
        events = alone.pop("trace_events")
        # equal but for the grid position and the budgets-list value (a separate run has none)
        place = {"index": None, "budget": None}
        assert comparable(record) | place == comparable(alone) | place
        assert _events(tmp_path / "both", record) == events
    # the budgets differ where it matters: 3 words cut the answer off, 5 keep it
    assert {r["budget"]: r["score"] for r in both.values() if not r["error"]} == {3: 0.0, 5: 1.0}
    assert {(r["budget"], r["metrics"]["sequential_passes"]) for r in both.values()} == {
        (3, 3), (5, 4)
    }


def _events(out: Path, record: dict[str, Any]) -> list[tuple[str, str, str]]:
    lines = (out / record["trace"]).read_text(encoding="utf-8").splitlines()
    return [(e["kind"], e["worker"], e["text"]) for e in map(json.loads, lines)]


def test_resume_reruns_a_group_writing_only_its_missing_budgets(tmp_path: Path) -> None:
    _run(tmp_path, budgets=[3, 5, 8])
    results = tmp_path / "results.jsonl"
    records = read_results(tmp_path)
    dropped = {r["key"] for r in records if r["budget"] == 5 and r["seed"] == 0}
    kept = [r for r in records if r["key"] not in dropped]
    results.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    calls = Calls()
    summary = _run(tmp_path, calls, budgets=[3, 5, 8])
    assert (summary.skipped, summary.ran) == (24 - len(dropped), len(dropped))
    assert calls.built[0].calls == len(dropped)  # one run per group with a missing budget
    after = read_records(tmp_path)
    assert len(after) == len({r.key for r in after}) == 24  # no budget written twice
    redone = [r for r in after if r.key in dropped]
    assert {r.budget for r in redone} == {5} and all(r.score == 1.0 for r in redone)
    for record in redone:  # equal to what the first run wrote
        before = next(r for r in records if r["key"] == record.key)
        assert comparable(record.model_dump(mode="json")) == comparable(before)


def test_other_substrates_run_once_per_budget(tmp_path: Path) -> None:
    calls = Calls()
    assert _run(tmp_path, calls, budgets=[3, 5], substrates=["snap-plain"]).ran == 16
    assert calls.built[0].calls == 16
    tokens = _run(tmp_path / "t", budgets=[40, 80], substrates=["fake"],
                  budget={"max_tokens": 16, "rounds": 1, "match": "tokens"})
    assert tokens.ran == 16
    for record in read_records(tmp_path / "t"):
        assert record.cell["budget"]["tokens"] == record.budget in (40, 80)
        assert record.cell["budget"]["passes"] is None


@dataclass
class ForgetsSnapshots(SnapshotSubstrate):
    """Claims snapshots but records none of them."""

    def run(self, *args: Any, **kw: Any) -> Any:
        result = super().run(*args, **kw)
        result.at_budget = {}
        return result


def test_a_missing_snapshot_is_an_error_record_of_that_budget(tmp_path: Path) -> None:
    fakes = fake_factories()
    factories = Factories(fakes.get_backend, fakes.get_task, lambda n, **p: ForgetsSnapshots(n))
    assert _run(tmp_path, factories=factories, budgets=[3, 5]).failed == 8
    by_budget = {r.budget: r for r in read_records(tmp_path)}
    assert by_budget[3].error is not None
    assert "no result at budget 3 (it recorded []; asked for [3, 5])" in by_budget[3].error
    assert by_budget[5].error is None and by_budget[5].score == 1.0  # the run's own budget
