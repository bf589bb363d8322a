"""Aggregations of a run's results records into the tables the report shows."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hivethink.lab.store import read_records
from hivethink.report.stats import NOTE, mean_ci, rate_ci
from hivethink.tasks.agree import DETECTION_STEMS
from hivethink.trace import Event

Record = dict[str, Any]
K = TypeVar("K", bound=Hashable)

PATHOLOGIES = (
    "patho_loops",
    "patho_repetition",
    "patho_role_flips",
    "patho_flakes",
    "patho_drift",
    "patho_format_failures",
)
# Tasks whose score measures group coordination: AgentsNet graph problems and the consensus game.
GROUP_TASKS = frozenset({"graph", "agree"})


@dataclass
class Table:
    """A titled table; cells are plain values (formatted and escaped by the renderers)."""

    title: str
    headers: list[str]
    rows: list[list[Any]]
    note: str = ""


def load(run_dir: str | Path) -> list[Record]:
    """A run's results records, validated (every schema this code reads), as plain mappings."""
    return [r.model_dump(mode="json") for r in read_records(run_dir)]


def metric(record: Record, name: str) -> Any:
    """A metric of one record (None when absent)."""
    return (record.get("metrics") or {}).get(name)


def mean(values: Iterable[Any]) -> float | None:
    """Mean of the numeric values (None and non-numbers ignored); None when there are none."""
    nums = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return sum(nums) / len(nums) if nums else None


def total(values: Iterable[Any]) -> int | None:
    """Sum of the numeric values; None when there are none."""
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return int(sum(nums)) if nums else None


T = TypeVar("T")


def group(records: Sequence[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """Records (or any items) grouped by ``key``, groups in order of first appearance."""
    out: dict[K, list[T]] = {}
    for rec in records:
        out.setdefault(key(rec), []).append(rec)
    return out


def ok(records: Sequence[Record]) -> list[Record]:
    """The records of samples that finished without an exception."""
    return [r for r in records if not r.get("error")]


def task_name(record: Record) -> str:
    """The registry name of the record's task (its ``task`` field may carry parameters)."""
    return str(record.get("cell", {}).get("task", {}).get("name", record.get("task", "?")))


def group_size(record: Record) -> int:
    """Agents that took part (from the trace), else the configured worker count."""
    agents = metric(record, "agents")
    return (
        int(agents)
        if isinstance(agents, (int, float)) and agents
        else int(record.get("workers", 1))
    )


def published_label(published: Any) -> str:
    """" (published texts, repo@commit)" for a record's ``published_texts`` (the authors' own
    texts, imported by ``hivethink prompts import``); "" for hivethink's."""
    sources = sorted(set(((published or {}).get("sources") or {}).values()))
    return f" (published texts, {', '.join(sources)})" if sources else ""


def labelled(substrate: str, recs: Sequence[Record]) -> str:
    """The substrate's name, marked where its records say they are not a published protocol:
    an adaptation to another task (``info["adaptation"]``) or a variant in a paper's spirit
    (``info["variant"]``)."""
    infos = [r.get("info") or {} for r in recs]
    if any(i.get("adaptation") for i in infos):
        return f"{substrate} (adaptation, not published)"
    if any(i.get("variant") for i in infos):
        return f"{substrate} (in the spirit of the paper)"
    return substrate


def overview(records: Sequence[Record]) -> Table:
    """Per model, substrate and task: samples, errors, accuracy, score and cost (with intervals).
    A substrate run with the authors' own texts is marked, and counted apart from one run with
    hivethink's."""
    rows = []
    for (model, substrate, task), recs in group(
        records, lambda r: (r["model"], r["substrate"] + published_label(r.get("published_texts")), r["task"])
    ).items():
        good = ok(recs)
        rows.append(
            [
                model,
                labelled(substrate, recs),
                task,
                len(recs),
                len(recs) - len(good),
                rate_ci(metric(r, "correct") for r in good),
                rate_ci(r.get("score") for r in good),
                mean_ci(metric(r, "sequential_passes") for r in good),
                mean_ci(metric(r, "tokens") for r in good),
                mean(metric(r, "wall_s") for r in good),
            ]
        )
    return Table(
        "Overview",
        [
            "model",
            "substrate",
            "task",
            "samples",
            "errors",
            "accuracy",
            "mean score",
            "seq. passes",
            "tokens",
            "wall s",
        ],
        rows,
        NOTE,
    )


# A column of a per-group metric table: header, metric name, how the group's values combine.
Column = tuple[str, str, Callable[[Iterable[Any]], Any]]


def metric_table(
    title: str, records: Sequence[Record], by: dict[str, str], columns: list[Column], note: str = ""
) -> Table:
    """Finished samples grouped by record fields (``by``: header -> field): those fields, the
    sample count, then one aggregate per column."""
    rows = [
        [*key, len(recs), *(agg(metric(r, name) for r in recs) for _, name, agg in columns)]
        for key, recs in group(ok(records), lambda r: tuple(r[f] for f in by.values())).items()
    ]
    return Table(title, [*by, "samples", *(h for h, _, _ in columns)], rows, note)


def coordination(records: Sequence[Record]) -> Table:
    """Per substrate and worker count: redundancy, division of labour, references, checks, roles."""
    return metric_table("Coordination", records, {"substrate": "substrate", "N": "workers"}, [
        ("redundancy", "redundancy", mean_ci),
        ("division of labour", "division_of_labour", mean_ci),
        ("references / agent", "references_per_agent", mean_ci),
        ("checks", "checks", total),
        ("pivot rate after yes", "pivot_rate_after_yes", mean_ci),
        ("roles", "roles_declared", total),
        ("abstentions", "abstentions", total),
    ], NOTE)


def agreement(records: Sequence[Record]) -> Table:
    """Per substrate: agreement, agreed-but-wrong, consensus, rounds, timeouts, flips."""
    return metric_table("Agreement and consensus", records, {"substrate": "substrate"}, [
        ("agreement", "agreement", rate_ci),
        ("agreed but wrong", "agreed_but_wrong", rate_ci),
        ("agreed and correct", "agreed_and_correct", rate_ci),
        ("consensus", "consensus", rate_ci),
        ("rounds to consensus", "rounds_to_consensus", mean_ci),
        ("timeout rate", "timeout", rate_ci),
        ("flip rate", "flipped", rate_ci),
    ], NOTE)


def game_records(records: Sequence[Record]) -> list[Record]:
    """The finished samples of the consensus game (their metrics hold the game's statistics)."""
    return [r for r in ok(records) if metric(r, "game_result") is not None]


def consensus_game(records: Sequence[Record]) -> Table:
    """Per model and substrate, over consensus games: the published statistics (``GameOutcome``)."""
    return metric_table("Consensus game (published statistics)", game_records(records),
                        {"model": "model", "substrate": "substrate", "N": "workers"}, [
        ("valid", "correct", rate_ci),
        ("inclusivity", "game_inclusivity", mean_ci),
        ("Byzantine infiltration", "game_byzantine_infiltration", mean_ci),
        ("agreed = median", "game_consensus_is_median", rate_ci),
        ("agreed = extreme", "game_consensus_is_extreme", rate_ci),
        ("agreed = initial", "game_consensus_is_initial", rate_ci),
        ("convergence rate", "game_convergence_rate", mean_ci),
        ("first agreed round", "game_first_agreed_round", mean_ci),
        ("value spread", "game_trajectory_stability", mean_ci),
        ("first half-stop round", "game_first_half_stop_round", mean_ci),
        ("keyword mentions", "game_keyword_mentions", total),
    ], "inclusivity and infiltration over games that ended on a valid consensus; the agreed-value "
       "rates over all games (no consensus counts as no), as published; value spread: the mean "
       "over rounds of the honest values' standard deviation; " + NOTE)  # fmt: skip


def detection_keywords(records: Sequence[Record]) -> Table:
    """Per model and substrate: how many honest public reasonings held each published detection
    stem, summed over consensus games."""
    rows = []
    for (model, substrate), recs in group(game_records(records), lambda r: (r["model"], r["substrate"])).items():
        counts = [(r.get("outcome") or {}).get("keyword_counts") or {} for r in recs]
        read = total(metric(r, "game_honest_reasoning_count") for r in recs)
        rows.append([model, substrate, len(recs), read,
                     *(sum(int(c.get(stem, 0)) for c in counts) for stem in DETECTION_STEMS)])  # fmt: skip
    return Table("Consensus game: detection keywords in honest reasoning",
                 ["model", "substrate", "games", "reasonings", *DETECTION_STEMS], rows,
                 "messages containing each stem (case-insensitive), summed over games")  # fmt: skip


def pathologies(records: Sequence[Record]) -> Table:
    """Per substrate: total count of each rule-based pathology."""
    return metric_table("Pathologies (counts)", records, {"substrate": "substrate"},
                        [(p.removeprefix("patho_"), p, total) for p in PATHOLOGIES])


def mast_modes(records: Sequence[Record]) -> Table:
    """Per substrate, over the samples the MAST judge labelled (``mast`` in a results line):
    how many it labelled, its errors, the share it judged successful and the share with each of
    the 14 failure modes."""
    from hivethink.metrics.mast import MAST_MODES

    rows = []
    for substrate, recs in group([r for r in records if r.get("mast")], lambda r: r["substrate"]).items():
        labels = [r["mast"] for r in recs if not r["mast"].get("error")]
        rows.append([
            substrate, len(labels), len(recs) - len(labels),
            mean(None if m.get("success") is None else float(m["success"]) for m in labels),
            *(mean(float(bool(m["modes"].get(code))) for m in labels) for code in MAST_MODES),
        ])  # fmt: skip
    labelled = [r["mast"] for r in records if r.get("mast") and not r["mast"].get("error")]
    # labels written before the taxonomy was recorded used the paper's names
    taxonomies = sorted({str(m.get("taxonomy", "paper")) for m in labelled})
    texts = sorted({published_label(m.get("published_texts")).strip(" ()") or "hivethink's texts"
                    for m in labelled})
    note = "rates over the samples the judge labelled"
    if labelled:
        note += f"; modes named as in the {' and '.join(taxonomies)} taxonomy; judge prompt: {'; '.join(texts)}"
    return Table(
        "MAST failure modes (LLM judge)",
        ["substrate", "judged", "judge errors", "success", *MAST_MODES],
        rows,
        note,
    )


def clip(value: Any, limit: int = 200) -> Any:
    """Long strings cut to ``limit`` characters (other values unchanged)."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value


def samples(records: Sequence[Record], limit: int = 500) -> Table:
    """One row per sample (the first ``limit`` by grid index)."""
    ordered = sorted(records, key=lambda r: r.get("index", 0))
    rows = [
        [
            r.get("index"),
            r["key"],
            r["model"],
            r["substrate"],
            r["task"],
            r["workers"],
            r["seed"],
            r.get("score"),
            clip(r.get("answer")),
            clip(r.get("error")),
        ]
        for r in ordered[:limit]
    ]
    note = f"first {limit} of {len(records)} samples" if len(records) > limit else ""
    return Table(
        "Samples",
        ["#", "key", "model", "substrate", "task", "N", "seed", "score", "answer", "error"],
        rows,
        note,
    )


def call_note(ev: Event) -> str:
    """What a reviewer needs beside an event's kind and round: a model call's phase and attempt
    (" (propose, attempt 2)"), or where an undelivered message was addressed."""
    if ev.kind in ("prompt", "step") and "attempt" in ev.data:
        phase = ev.data.get("phase")
        return f" ({phase}, attempt {ev.data['attempt']})" if phase else f" (attempt {ev.data['attempt']})"
    if ev.kind == "message" and ev.data.get("delivered") is False:
        return f" (not delivered: addressed to {ev.data.get('to')})"
    return ""


def merge_tokens(events: list[Event]) -> list[Event]:
    """Tokens written after a worker's last ``step`` (all of them, for a worker without steps)
    joined into one ``token`` event per stretch, placed where the stretch begins; a stretch
    ends at the worker's next non-token event. Tokens that a later step repeats are dropped."""
    last_step = {e.worker: i for i, e in enumerate(events) if e.kind == "step"}
    out: list[Event] = []
    open_at: dict[str, int] = {}  # worker -> index in `out` of its open stretch
    for i, ev in enumerate(events):
        if ev.kind != "token":
            open_at.pop(ev.worker, None)
            out.append(ev)
        elif i > last_step.get(ev.worker, -1):
            if ev.worker in open_at:
                merged = out[open_at[ev.worker]]
                out[open_at[ev.worker]] = merged.model_copy(update={"text": merged.text + ev.text})
            else:
                open_at[ev.worker] = len(out)
                out.append(ev)
    return out
