"""The report's self-organisation, single-or-multi, defect and shock views (protocols.md §8, §11).

Each table appears only when the run has what it shows: role-declaring substrates
(``self-organizing``, ``sequential``, ...), hybrids (``sas``, ``cascade``, ``router``, shown with
every other substrate of the same tasks so SAS, MAS, cascade and router sit side by side),
attributed multi-agent traces, shocks.
"""

from __future__ import annotations

from collections.abc import Sequence

from hivethink.report.data import Record, Table, group, mean, metric, metric_table, ok
from hivethink.report.plots import TAB20, Plot, _plain, _png, plt
from hivethink.report.stats import NOTE, Estimate, mean_ci, rate_ci

HYBRIDS = frozenset({"sas", "cascade", "router"})
DEFECTS = (
    "defect_node_failed",
    "defect_node_origin",
    "defect_edge_ignored",
    "defect_edge_dropped",
    "defect_edge_overloaded",
    "defect_path_lost_correct",
    "defect_path_propagated_error",
)


def _name(record: Record) -> str:
    return str(record.get("cell", {}).get("substrate", {}).get("name", record.get("substrate")))


def self_organisation(records: Sequence[Record]) -> Table:
    """Per substrate, task and N, over samples whose agents declared roles or abstained."""
    chosen = [r for r in records if metric(r, "abstention_rate") is not None]
    return metric_table(
        "Self-organisation",
        chosen,
        {"substrate": "substrate", "task": "task", "N": "workers"},
        [
            ("quality / score", "score", rate_ci),
            ("abstention rate", "abstention_rate", mean_ci),
            ("roles named", "roles_named", mean_ci),
            ("unique roles", "distinct_roles", mean_ci),
            ("role stability", "role_stability", mean_ci),
            ("chain depth", "chain_depth", mean_ci),
            ("generated tokens", "tokens", mean_ci),
            ("prompt tokens", "prompt_tokens", mean_ci),
        ],
        NOTE + " Role stability: same agent, same role on consecutive tasks of a run.",
    )


def _hybrid_tasks(records: Sequence[Record]) -> set[str]:
    return {r["task"] for r in records if _name(r) in HYBRIDS}


def single_or_multi(records: Sequence[Record]) -> Table:
    """Per task and substrate, on the tasks a hybrid ran on: accuracy against prompt (prefill)
    and generated (decode) tokens, escalations and routes."""
    tasks = _hybrid_tasks(records)
    return metric_table(
        "Single or multi: accuracy against prefill and decode tokens",
        [r for r in records if r["task"] in tasks],
        {"task": "task", "substrate": "substrate", "N": "workers"},
        [
            ("accuracy / score", "score", rate_ci),
            ("prompt (prefill) tokens", "prompt_tokens", mean_ci),
            ("of them cached", "cached_tokens", mean_ci),
            ("generated (decode) tokens", "tokens", mean_ci),
            ("escalated", "escalated", rate_ci),
            ("routed to MAS", "routed_mas", rate_ci),
        ],
        NOTE
        + " Prompt tokens: every prompt token as the backend counts it; of them cached: those a"
        + " prefix cache held (not computed for that call; 0 from a server that does not say).",
    )


def defects(records: Sequence[Record]) -> Table:
    """Per substrate, over attributed (multi-agent) samples: mean graph size and defect counts."""
    chosen = [r for r in records if metric(r, "graph_nodes") is not None]
    return metric_table(
        "Defect attribution (mean per sample)",
        chosen,
        {"substrate": "substrate", "task": "task"},
        [
            ("nodes", "graph_nodes", mean),
            ("edges", "graph_edges", mean),
            ("max fan-in", "fan_in_max", mean),
            *((d.removeprefix("defect_").replace("_", " ", 1), d, mean) for d in DEFECTS),
        ],
        "labels by the rules of hivethink.metrics.defects (docs/self-organizing.md)",
    )


def shock(records: Sequence[Record]) -> Table:
    """Per substrate, over runs in which a shock took effect: quality before and after."""
    chosen = [r for r in records if metric(r, "shocked") == 1.0]
    table = metric_table(
        "Shock (an agent removed or another model swapped in)",
        chosen,
        {"substrate": "substrate"},
        [
            ("quality before", "quality_before_shock", mean_ci),
            ("quality after", "quality_after_shock", mean_ci),
        ],
        NOTE,
    )
    return table


def tables(records: Sequence[Record]) -> list[Table]:
    """The tables this run has data for."""
    out = []
    if any(metric(r, "abstention_rate") is not None for r in ok(records)):
        out.append(self_organisation(records))
    if _hybrid_tasks(records):
        out.append(single_or_multi(records))
    if any(metric(r, "graph_nodes") is not None for r in ok(records)):
        out.append(defects(records))
    if any(metric(r, "shocked") == 1.0 for r in ok(records)):
        out.append(shock(records))
    return out


def accuracy_vs_tokens(records: Sequence[Record]) -> Plot:
    """Score against mean prompt tokens and against mean generated tokens, one point per task and
    substrate on the tasks a hybrid ran on; 95% intervals both ways."""
    title = "Single or multi: accuracy vs prefill and decode tokens (95% intervals)"
    tasks = _hybrid_tasks(records)
    cells = group(
        [r for r in ok(records) if r["task"] in tasks], lambda r: (r["task"], r["substrate"])
    )
    points: list[tuple[str, Estimate, Estimate, Estimate]] = []
    for (task, substrate), recs in cells.items():
        score = rate_ci(metric(r, "score") for r in recs)
        prefill = mean_ci(metric(r, "prompt_tokens") for r in recs)
        decode = mean_ci(metric(r, "tokens") for r in recs)
        if score is not None and prefill is not None and decode is not None:
            points.append((f"{substrate} / {task}", score, prefill, decode))
    if not points:
        return Plot(title, None, "no scored samples on a task a hybrid ran on")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, (label, score, prefill, decode) in enumerate(points):
        for ax, x in zip(axes, (prefill, decode), strict=True):
            ax.errorbar(
                [x.value],
                [score.value],
                xerr=[[x.below], [x.above]],
                yerr=[[score.below], [score.above]],
                marker="o",
                capsize=3,
                color=TAB20[k % len(TAB20)],
                label=_plain(label),
            )
    for ax, what in zip(
        axes, ("prompt (prefill) tokens", "generated (decode) tokens"), strict=True
    ):
        ax.set_xlabel(f"mean {what} per sample", fontsize="small")
        ax.set_ylabel("mean score", fontsize="small")
        ax.set_ylim(-0.05, 1.05)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize="small", loc="center right")
    return Plot(title, _png(fig, right=0.72))


def plots(records: Sequence[Record]) -> list[Plot]:
    return [accuracy_vs_tokens(records)] if _hybrid_tasks(records) else []
