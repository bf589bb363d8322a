"""The report's matplotlib figures, as base64 PNG. A figure without data is skipped with a note."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from hivethink.display import clean_text  # noqa: E402
from hivethink.report.data import (  # noqa: E402
    GROUP_TASKS,
    PATHOLOGIES,
    Record,
    group,
    group_size,
    mean,
    metric,
    ok,
    task_name,
)
from hivethink.report.pareto import budget_points  # noqa: E402

TAB20 = [plt.get_cmap("tab20")(i) for i in range(20)]  # 20 distinct colours for series


def _plain(label: object) -> str:
    """A label from the run (config names, labels) as plain text: no control characters, and no
    ``$`` that matplotlib would parse as math (a bad formula would stop the whole report)."""
    return clean_text(str(label)).replace("$", r"\$")


@dataclass
class Plot:
    """A titled figure: ``png`` is base64 PNG data, or None with ``note`` saying why."""

    title: str
    png: str | None
    note: str = ""


def _png(fig: Figure, right: float = 1.0) -> str:
    """The figure as base64 PNG; ``right``: the fraction of the width the axes may use (the rest
    holds a figure legend)."""
    buf = io.BytesIO()
    fig.tight_layout(rect=(0, 0, right, 1))
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _line_axes() -> tuple[Figure, Axes]:
    """Axes for one line per series: 20 distinct colours, room for a legend on the right."""
    fig, ax = plt.subplots(figsize=(8.5, 4))
    ax.set_prop_cycle(color=TAB20)
    return fig, ax


def _score_lines(fig: Figure, ax: Axes, title: str, xlabel: str, ylabel: str) -> Plot:
    """Finish a plot of score lines (0..1) with its legend outside the axes."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    return Plot(title, _png(fig))


def _grouped_bars(
    title: str,
    ylabel: str,
    groups: list[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    rate: bool = False,
) -> str:
    """Bars for each group (x) and series (colour); missing values leave a gap. ``rate``: y in [0, 1]."""
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(groups) + 2), 3.6))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=_plain(name))
    ax.set_xticks(range(len(groups)), [_plain(g) for g in groups], rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    if rate:
        ax.set_ylim(0, 1.05)
    else:
        ax.set_ylim(bottom=0)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize="small")
    return _png(fig)


MAX_PANELS = 9  # (model, task) panels in one accuracy-vs-cost figure
_COST_AXIS = {
    "passes": "sequential forward passes (mean)",
    "tokens": "generated tokens (mean)",
}


def accuracy_vs_cost(records: Sequence[Record], cost: str) -> Plot:
    """Mean score against mean cost (``"passes"`` or ``"tokens"``), one panel per model and task,
    one line per substrate and N through its budgets; 95% intervals as error bars both ways; the
    Pareto frontier dashed, its points ringed (:mod:`hivethink.report.pareto`)."""
    what = "sequential passes" if cost == "passes" else "generated tokens"
    title = f"Accuracy vs {what} (Pareto view, 95% intervals)"
    costed = [(p, x) for p in budget_points(records) if (x := p.cost(cost)) is not None]
    if not costed:
        return Plot(title, None, f"no finished samples with a score and a {cost} count")
    panels = group(costed, lambda px: px[0].panel)
    shown = list(panels.items())[:MAX_PANELS]
    columns = min(3, len(shown))
    rows = -(-len(shown) // columns)
    legend_in = 2.4  # inches on the right for the shared legend
    width = 4.6 * columns + legend_in
    fig, axes = plt.subplots(rows, columns, figsize=(width, 3.4 * rows), squeeze=False)
    colours: dict[str, Any] = {}  # one colour per substrate and N across the panels
    for ax, ((model, task), members) in zip(axes.flat, shown, strict=False):
        for series, pts in group(members, lambda px: px[0].series).items():
            pts = sorted(pts, key=lambda px: px[1].value)
            colour = colours.setdefault(str(series), TAB20[len(colours) % len(TAB20)])
            ax.errorbar(
                [x.value for _, x in pts],
                [p.score.value for p, _ in pts],
                xerr=[[x.below for _, x in pts], [x.above for _, x in pts]],
                yerr=[[p.score.below for p, _ in pts], [p.score.above for p, _ in pts]],
                marker="o", capsize=3, color=colour, label=_plain(series),
            )
        best = sorted(((p, x) for p, x in members if p.frontier.get(cost)), key=lambda px: px[1].value)
        ax.plot([x.value for _, x in best], [p.score.value for p, _ in best], linestyle="--",
                drawstyle="steps-post", color="black", linewidth=1, marker="o", markersize=11,
                markerfacecolor="none", label="Pareto frontier")
        ax.set_title(_plain(f"{model} / {task}"), fontsize="small")
        ax.set_xlabel(_COST_AXIS[cost], fontsize="small")
        ax.set_ylabel("mean score", fontsize="small")
        ax.set_ylim(-0.05, 1.05)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    legend: dict[str, Any] = {}  # label -> handle, each label once
    for ax in axes.flat:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), fontsize="small", loc="center right")
    note = f"first {MAX_PANELS} of {len(panels)} model/task panels" if len(panels) > MAX_PANELS else ""
    return Plot(title, _png(fig, right=1 - legend_in / width), note)


def redundancy_by_substrate(records: Sequence[Record]) -> Plot:
    """Mean cross-worker redundancy per substrate, one bar per worker count."""
    title = "Redundancy by substrate and N"
    recs = [r for r in ok(records) if metric(r, "redundancy") is not None]
    if not recs:
        return Plot(title, None, "no sample had two or more workers with output")
    substrates = list(group(recs, lambda r: r["substrate"]))
    sizes = sorted({r["workers"] for r in recs})
    cells = group(recs, lambda r: (r["substrate"], r["workers"]))
    series = {
        f"N={n}": [mean(metric(r, "redundancy") for r in cells.get((s, n), [])) for s in substrates]
        for n in sizes
    }
    return Plot(
        title, _grouped_bars(title, "fraction of units made twice", substrates, series, rate=True)
    )


def success_vs_group_size(records: Sequence[Record]) -> Plot:
    """Mean score of the graph tasks and the consensus game against the number of agents."""
    title = "Graph-task and consensus success vs group size"
    lines: dict[str, dict[int, list[float]]] = {}
    for r in ok(records):
        if task_name(r) in GROUP_TASKS and r.get("score") is not None:
            by_size = lines.setdefault(f"{r['task']} / {r['substrate']}", {})
            by_size.setdefault(group_size(r), []).append(float(r["score"]))
    if not lines:
        return Plot(title, None, "no graph-task or consensus-game samples in this run")
    fig, ax = _line_axes()
    for name, by_size in lines.items():
        xs = sorted(by_size)
        ys = [sum(by_size[x]) / len(by_size[x]) for x in xs]
        ax.plot(xs, ys, marker="o", label=_plain(name))
    return _score_lines(fig, ax, title, "agents", "mean score (consensus: valid agreement)")


def agreement_rates(records: Sequence[Record]) -> Plot:
    """Per substrate: how often all agents agreed, and agreed on a wrong answer."""
    title = "Agreement and agreed-but-wrong rate"
    recs = [r for r in ok(records) if metric(r, "agreement") is not None]
    if not recs:
        return Plot(title, None, "no sample had two or more agents with final answers")
    by_substrate = group(recs, lambda r: r["substrate"])
    names = [str(s) for s in by_substrate]
    series = {
        label: [mean(metric(r, name) for r in rs) for rs in by_substrate.values()]
        for label, name in (
            ("agreement", "agreement"),
            ("agreed but wrong", "agreed_but_wrong"),
            ("agreed and correct", "agreed_and_correct"),
        )
    }
    return Plot(title, _grouped_bars(title, "rate", names, series, rate=True))


def pathology_counts(records: Sequence[Record]) -> Plot:
    """Per substrate: total count of each pathology."""
    title = "Pathology counts"
    by_substrate = group(ok(records), lambda r: r["substrate"])
    series: dict[str, list[float | None]] = {
        p.removeprefix("patho_"): [
            float(sum(metric(r, p) or 0 for r in rs)) for rs in by_substrate.values()
        ]
        for p in PATHOLOGIES
    }
    if not any(v for values in series.values() for v in values):
        return Plot(title, None, "no pathology detected" if by_substrate else "no finished samples")
    return Plot(title, _grouped_bars(title, "count", [str(s) for s in by_substrate], series))


def all_plots(records: Sequence[Record]) -> list[Plot]:
    return [
        accuracy_vs_cost(records, "passes"),
        accuracy_vs_cost(records, "tokens"),
        redundancy_by_substrate(records),
        success_vs_group_size(records),
        agreement_rates(records),
        pathology_counts(records),
    ]
