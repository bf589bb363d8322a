"""Accuracy against passes and tokens: intervals on every point (Wilson for rates, bootstrap for
means), the Pareto frontier, the two plots and the summary table, on a budgets run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from lab_fakes import config_dict, fake_factories
from rich.console import Console

from hivethink.lab import parse_config, run_lab
from hivethink.report import build_report
from hivethink.report.pareto import budget_points, frontier, pareto_table
from hivethink.report.plots import accuracy_vs_cost
from hivethink.report.stats import bootstrap, mean_ci, rate_ci, wilson


def _wilson_by_hand(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(0, 5), (3, 10), (10, 10), (1, 1), (37, 120)])
def test_wilson_is_the_score_interval(k: int, n: int) -> None:
    low, high = wilson(k, n)
    want = _wilson_by_hand(k, n)
    assert low == pytest.approx(max(want[0], 0.0), abs=1e-6)
    assert high == pytest.approx(min(want[1], 1.0), abs=1e-6)


def test_rates_get_wilson_and_means_the_bootstrap() -> None:
    rate = rate_ci([1, 0, 1, 1, None, "x", True])  # None, text and bools are not values
    assert (rate.value, rate.n, rate.method) == (0.75, 4, "wilson")
    partial = rate_ci([0.5, 1.0, 0.25, 0.75])  # a partial-credit score is a mean
    assert partial == mean_ci([0.5, 1.0, 0.25, 0.75])  # a fixed seed: the same report twice
    assert partial.method == "bootstrap" and partial.low < partial.value < partial.high
    assert partial.low >= 0.25 and partial.high <= 1.0
    assert str(partial) == f"0.625 [{partial.low:.3f}, {partial.high:.3f}]"
    assert mean_ci([1, 0]).method == "bootstrap"  # counts that happen to be 0 or 1: no rate
    one = mean_ci([7])
    assert (one.low, one.high, str(one)) == (None, None, "7.000")
    assert bootstrap([3.0, 3.0, 3.0]) == (3.0, 3.0)
    assert rate_ci([]) is None and mean_ci([float("nan")]) is None


def test_frontier_keeps_the_points_no_other_beats() -> None:
    #        cheap+bad  dominated  costly+good  same cost, worse  costlier, no better
    points = [(1, 0.2), (2, 0.1), (3, 0.9), (3, 0.5), (5, 0.9)]
    assert frontier(points) == [True, False, True, False, False]
    assert frontier([(1, 0.5), (1, 0.5)]) == [True, True]  # ties dominate neither


def _rec(substrate: str, budget: int, score: float, passes: int, tokens: int, task: str = "t"):
    return {
        "model": "m", "task": task, "substrate": substrate, "workers": 2, "score": score,
        "error": None, "cell": {"budget": {"passes": budget, "tokens": None, "max_tokens": 9}},
        "metrics": {"sequential_passes": passes, "tokens": tokens},
    }


RECORDS = [
    _rec("a", 64, 1.0, 60, 200), _rec("a", 64, 0.0, 64, 220),
    _rec("a", 128, 1.0, 120, 400), _rec("a", 128, 1.0, 128, 380),
    _rec("b", 64, 0.0, 30, 500), _rec("b", 64, 0.0, 34, 520),
    {**_rec("b", 64, 1.0, 1, 1), "error": "boom"},  # failed: not a point
    _rec("a", 64, 0.5, 10, 10, task="other"),
]


def test_points_carry_intervals_and_frontier_marks() -> None:
    points = budget_points(RECORDS)
    assert [(p.substrate, p.budget, p.task) for p in points] == [
        ("a", "passes 64", "t"), ("a", "passes 128", "t"), ("b", "passes 64", "t"),
        ("a", "passes 64", "other"),
    ]
    a64, a128, b64, other = points
    assert (a64.score.value, a64.score.method, a64.score.n) == (0.5, "wilson", 2)
    assert (a64.passes.value, a64.passes.method) == (62.0, "bootstrap")
    assert (a64.passes.low, a64.passes.high) == (60.0, 64.0)
    assert a64.tokens.value == 210.0
    # passes: b is cheapest (worst), a64 in between, a128 best: all on the frontier
    assert [p.frontier["passes"] for p in points[:3]] == [True, True, True]
    # tokens: b costs more than a128 and scores less: dominated
    assert [p.frontier["tokens"] for p in points[:3]] == [True, True, False]
    assert other.frontier == {"passes": True, "tokens": True}  # alone in its panel
    assert other.score.method == "" and str(other.score) == "0.500"  # one partial-credit score
    table = pareto_table(RECORDS)
    assert table.headers[5:9] == ["samples", "mean score", "seq. passes", "tokens"]
    assert [row[9:] for row in table.rows[:3]] == [["yes", "yes"], ["yes", "yes"], ["yes", ""]]


def test_budgets_are_in_increasing_order_whatever_order_samples_finished() -> None:
    # a concurrent run writes records in completion order: 128 may come before 64
    shuffled = sorted(RECORDS, key=lambda r: -(r["cell"]["budget"].get("passes") or 0))
    assert [(p.substrate, p.budget, p.task) for p in budget_points(shuffled)] == [
        ("a", "passes 64", "t"), ("a", "passes 128", "t"), ("b", "passes 64", "t"),
        ("a", "passes 64", "other"),
    ]


def test_plots_for_passes_and_tokens() -> None:
    for cost in ("passes", "tokens"):
        plot = accuracy_vs_cost(RECORDS, cost)
        assert plot.png is not None and len(plot.png) > 1000 and plot.note == ""
        assert "95% intervals" in plot.title
        empty = accuracy_vs_cost([], cost)
        assert empty.png is None and cost in empty.note


def test_report_of_a_budgets_run(tmp_path: Path) -> None:
    cfg = parse_config(config_dict(substrates=["snap"], budgets=[3, 5],
                                   budget={"max_tokens": 16, "rounds": 1}))
    run_lab(cfg, tmp_path, factories=fake_factories(), console=Console(quiet=True), progress=False)
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "Accuracy vs sequential passes (Pareto view, 95% intervals)" in page
    assert "Accuracy vs generated tokens (Pareto view, 95% intervals)" in page
    assert page.count("data:image/png;base64,") >= 3
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    table = summary.split("## Accuracy vs budget (Pareto view)")[1].split("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("| echo | add | snap |")]
    assert len(rows) == 4  # N=2 and N=3, budgets 3 and 5
    assert all("passes 3" in r or "passes 5" in r for r in rows)
    # a cut answer scores 0 at 3 passes, 1 at 5; four samples each: Wilson [0, 0.49] / [0.51, 1]
    assert any("| 0.000 [0.000, 0.490] |" in r for r in rows if "passes 3" in r)
    assert any("| 1.000 [0.510, 1.000] |" in r for r in rows if "passes 5" in r)
    overview = summary.split("## Overview")[1].split("\n## ")[0]
    assert "Wilson for rates" in overview and "| 0.500 [0.280, 0.720] |" in overview
    coordination = summary.split("## Coordination")[1].split("\n## ")[0]
    assert "| 1.000 [1.000, 1.000] |" in coordination  # redundancy is a mean, not a rate
