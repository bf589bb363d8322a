"""Accuracy against budget (a Pareto view): one point per (model, task, substrate, N, budget).

A point is the finished samples of one cell: their mean score with its 95% interval (Wilson when
every score is 0 or 1, else bootstrap; :mod:`hivethink.report.stats`) against the mean sequential
forward passes (latency) and the mean generated tokens (compute), each with a bootstrap interval.
Within one model and task, a point is on the Pareto frontier of a cost when no other point costs
no more and scores higher, or costs less and scores the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hivethink.lab.grid import canonical_json
from hivethink.report.data import Record, Table, group, metric, ok
from hivethink.report.stats import NOTE, Estimate, mean_ci, rate_ci

COSTS = {"passes": "sequential_passes", "tokens": "tokens"}  # x axis -> the metric it means


@dataclass
class Point:
    """One cell's finished samples, summarised."""

    model: str
    task: str
    substrate: str
    workers: int
    budget: str  # the cell's budget, as a label
    score: Estimate
    passes: Estimate | None
    tokens: Estimate | None
    frontier: dict[str, bool]  # cost ("passes" / "tokens") -> on that cost's frontier

    def cost(self, name: str) -> Estimate | None:
        return self.passes if name == "passes" else self.tokens

    @property
    def panel(self) -> tuple[str, str]:
        return self.model, self.task

    @property
    def series(self) -> str:
        return f"{self.substrate} N={self.workers}"


def budget_label(record: Record) -> str:
    """The cell's budget: the limits it sets (passes, tokens), else the per-call token cap."""
    budget = record.get("cell", {}).get("budget") or {}
    parts = [f"{name} {budget[name]}" for name in ("passes", "tokens") if budget.get(name)]
    return ", ".join(parts) or f"max_tokens {budget.get('max_tokens', '?')}"


def frontier(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For each (cost, score): whether no other point dominates it (costs no more and scores
    more, or costs less and scores no less)."""
    return [
        not any(
            (c2 <= c and s2 > s) or (c2 < c and s2 >= s) for j, (c2, s2) in enumerate(points) if j != i
        )
        for i, (c, s) in enumerate(points)
    ]


def budget_order(record: Record) -> tuple[int, int, int]:
    """The cell's budget as numbers (passes, tokens, per-call cap), for ordering points."""
    budget = record.get("cell", {}).get("budget") or {}
    passes, tokens, cap = (int(budget.get(name) or 0) for name in ("passes", "tokens", "max_tokens"))
    return passes, tokens, cap


def budget_points(records: Sequence[Record]) -> list[Point]:
    """The points of the finished, scored samples: series (model, task, substrate, N) in order of
    first appearance, each series' budgets in increasing order (records of a concurrent run come
    in completion order)."""
    cells = group(
        [r for r in ok(records) if r.get("score") is not None],  # a failed sample has no point
        lambda r: (
            r["model"],
            r["task"],
            r["substrate"],
            r["workers"],
            canonical_json(r.get("cell", {}).get("budget")),
        ),
    )
    series: dict[tuple[Any, ...], int] = {}
    for key in cells:
        series.setdefault(key[:4], len(series))
    points = []
    for _, recs in sorted(cells.items(), key=lambda kv: (series[kv[0][:4]], budget_order(kv[1][0]))):
        first = recs[0]
        score = rate_ci(r["score"] for r in recs)
        if score is None:  # no finite score
            continue
        points.append(
            Point(
                model=first["model"],
                task=first["task"],
                substrate=first["substrate"],
                workers=first["workers"],
                budget=budget_label(first),
                score=score,
                passes=mean_ci(metric(r, COSTS["passes"]) for r in recs),
                tokens=mean_ci(metric(r, COSTS["tokens"]) for r in recs),
                frontier={},
            )
        )
    for members in group(points, lambda p: p.panel).values():
        for name in COSTS:
            costed = [(p, cost) for p in members if (cost := p.cost(name)) is not None]
            on = frontier([(cost.value, p.score.value) for p, cost in costed])
            for (p, _), flag in zip(costed, on, strict=True):
                p.frontier[name] = flag
    return points


def pareto_table(records: Sequence[Record]) -> Table:
    """The points as a table: score, passes and tokens with intervals, frontier marks."""
    rows = [
        [
            p.model,
            p.task,
            p.substrate,
            p.workers,
            p.budget,
            p.score.n,
            p.score,
            p.passes,
            p.tokens,
            "yes" if p.frontier.get("passes") else "",
            "yes" if p.frontier.get("tokens") else "",
        ]
        for p in budget_points(records)
    ]
    return Table(
        "Accuracy vs budget (Pareto view)",
        ["model", "task", "substrate", "N", "budget", "samples", "mean score", "seq. passes",
         "tokens", "frontier (passes)", "frontier (tokens)"],
        rows,
        NOTE + " Frontier: no other point of the same model and task costs no more and scores "
        "more.",
    )
