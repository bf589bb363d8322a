"""``build_report``: one self-contained HTML page (inline CSS, base64 plots, no scripts, every
text from a run escaped) plus ``summary.md`` next to it."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hivethink.display import clean_text
from hivethink.errors import HivethinkError
from hivethink.lab.store import CONFIG, read_trace
from hivethink.report import selforg
from hivethink.report.data import (
    Record,
    Table,
    agreement,
    call_note,
    consensus_game,
    coordination,
    detection_keywords,
    game_records,
    load,
    mast_modes,
    merge_tokens,
    overview,
    pathologies,
    samples,
)
from hivethink.report.pareto import pareto_table
from hivethink.report.plots import Plot, all_plots
from hivethink.report.stats import Estimate
from hivethink.trace import Event

REPORT = "report.html"
SUMMARY_MD = "summary.md"
MAX_TRACES = 40  # samples whose traces are shown in the page
MAX_EVENTS = 200  # events shown per trace
MAX_TEXT = 4000  # characters shown per event (prompts: PROMPT_TEXT)
PROMPT_TEXT = 2000

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f0} td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#777;font-style:italic} img{max-width:100%;border:1px solid #eee}
details{margin:.3em 0;border:1px solid #ddd;padding:.3em .6em}
details.ev{border:none;padding:0}
.ev{margin:.4em 0}.w{font-weight:bold}.k{color:#777;font-size:.85em}
pre{white-space:pre-wrap;word-break:break-word;margin:.2em 0 .2em 1.5em;background:#fafafa}
pre.prompt{color:#888}
"""
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def fmt(value: Any) -> str:
    """A table cell as plain text: floats to 3 decimals (an estimate with its interval), None as
    a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _esc(value: Any) -> str:
    return html.escape(clean_text(fmt(value)), quote=True)


def table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_esc(c)}</td>'
            if isinstance(c, (int, float, Estimate))
            else f"<td>{_esc(c)}</td>"
            for c in row
        )
        + "</tr>"
        for row in table.rows
    )
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    if not table.rows:
        return f'<h2>{html.escape(table.title)}</h2><p class="note">no data</p>'
    return f"<h2>{html.escape(table.title)}</h2>{note}<table><tr>{head}</tr>{body}</table>"


def plot_html(plot: Plot) -> str:
    if plot.png is None:
        return f'<h3>{html.escape(plot.title)}</h3><p class="note">skipped: {html.escape(plot.note)}</p>'
    return (
        f"<h3>{html.escape(plot.title)}</h3>"
        f'<img alt="{html.escape(plot.title, quote=True)}" src="data:image/png;base64,{plot.png}">'
    )


def _clip(text: str, limit: int) -> str:
    return (
        text
        if len(text) <= limit
        else text[:limit] + f"\n[... {len(text) - limit} more characters]"
    )


def trace_html(record: Record, events: Sequence[Event]) -> str:
    """One sample's trace as a collapsible block (tokens joined per worker, texts escaped)."""
    colours: dict[str, str] = {}
    shown = merge_tokens(list(events))
    tokens = sum(1 for e in events if e.kind == "token")
    parts = []
    for ev in shown[:MAX_EVENTS]:
        colour = colours.setdefault(ev.worker, _COLOURS[len(colours) % len(_COLOURS)])
        where = (f" [{ev.step}]" if ev.step is not None else "") + call_note(ev)
        to = f" → {', '.join(ev.recipients)}" if ev.recipients else ""
        extra = ""
        if ev.kind in ("check", "vote") or (ev.kind == "role" and ev.data.get("abstain")):
            extra = " " + json.dumps(ev.data, ensure_ascii=False, default=str)
        elif ev.kind == "error":
            extra = " " + str(ev.data.get("reason", ""))
        label = (
            f'<span class="w" style="color:{colour}">{_esc(ev.worker)}</span> '
            f'<span class="k">{_esc(ev.kind + where + to + _clip(extra, 300))}</span>'
        )
        if ev.kind == "prompt":  # what the worker was shown: folded away
            parts.append(
                f'<details class="ev"><summary>{label} <span class="k">'
                f"({len(ev.text)} characters)</span></summary>"
                f'<pre class="prompt">{_esc(_clip(ev.text, PROMPT_TEXT))}</pre></details>'
            )
        else:
            parts.append(
                f'<div class="ev">{label}<pre>{_esc(_clip(ev.text, MAX_TEXT))}</pre></div>'
            )
    notes = []
    if tokens:
        notes.append(
            f"{tokens} token events, joined per worker (tokens a step repeats are left out)"
        )
    if len(shown) > MAX_EVENTS:
        notes.append(f"{len(shown) - MAX_EVENTS} more events not shown")
    summary = (
        f"#{fmt(record.get('index'))} {record['substrate']} / {record['task']} / N={record['workers']}"
        f" / seed {record['seed']} — score {fmt(record.get('score'))} — key {record['key']}"
    )
    note = f'<p class="note">{html.escape("; ".join(notes))}</p>' if notes else ""
    return f"<details><summary>{_esc(summary)}</summary>{note}{''.join(parts)}</details>"


def _traces(run_dir: Path, records: Sequence[Record]) -> str:
    chosen = sorted(records, key=lambda r: r.get("index", 0))[:MAX_TRACES]
    blocks = []
    for rec in chosen:
        try:
            events = read_trace(run_dir, rec)
        except (OSError, HivethinkError) as err:
            note = f"{rec['key']}: trace unreadable ({err})"
            blocks.append(f'<p class="note">{_esc(note)}</p>')
            continue
        blocks.append(trace_html(rec, events))
    more = len(records) - len(chosen)
    note = (
        f'<p class="note">first {len(chosen)} samples; {more} more in traces/</p>'
        if more > 0
        else ""
    )
    return "<h2>Traces</h2>" + note + "".join(blocks)


def _md_cell(value: Any) -> str:
    return clean_text(fmt(value)).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table_md(table: Table) -> str:
    if not table.rows:
        return f"## {table.title}\n\n_no data_\n"
    lines = [f"## {table.title}", ""]
    if table.note:
        lines += [f"_{table.note}_", ""]
    lines.append("| " + " | ".join(_md_cell(h) for h in table.headers) + " |")
    lines.append("|" + "---|" * len(table.headers))
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def run_name(run_dir: Path) -> str:
    try:
        config = json.loads((run_dir / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return run_dir.name
    return str(config.get("name") or run_dir.name)


def build_report(run_dir: str | Path) -> Path:
    """Write ``report.html`` and ``summary.md`` into ``run_dir``; return the HTML path."""
    run_dir = Path(run_dir)
    records = load(run_dir)
    name = run_name(run_dir)
    errors = sum(1 for r in records if r.get("error"))
    tables = [
        overview(records),
        pareto_table(records),
        coordination(records),
        agreement(records),
        pathologies(records),
    ]
    if any(r.get("mast") for r in records):
        tables.append(mast_modes(records))
    if game_records(records):
        tables += [consensus_game(records), detection_keywords(records)]
    tables += selforg.tables(records)
    plots = all_plots(records) + selforg.plots(records)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">"
        f"<title>hivethink report: {_esc(name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>hivethink lab report: {_esc(name)}</h1>"
        f"<p>{len(records)} samples, {errors} failed with an exception. Built {stamp}.</p>"
        + "<h2>Plots</h2>"
        + "".join(plot_html(p) for p in plots)
        + "".join(table_html(t) for t in tables)
        + table_html(samples(records))
        + _traces(run_dir, records)
        + "</body></html>\n"
    )
    path = run_dir / REPORT
    path.write_text(page, encoding="utf-8")
    skipped = [f"- {p.title}: {p.note}" for p in plots if p.png is None]
    md = [
        f"# hivethink lab report: {clean_text(name)}",
        "",
        f"{len(records)} samples, {errors} failed with an exception. Plots: {REPORT}.",
        "",
    ]
    if skipped:
        md += ["Plots skipped:", *skipped, ""]
    md += [table_md(t) for t in tables]
    (run_dir / SUMMARY_MD).write_text("\n".join(md), encoding="utf-8")
    return path
