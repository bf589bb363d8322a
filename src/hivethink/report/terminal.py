"""``show_sample``: one sample's trace in the terminal, with every model text neutralised."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from hivethink.errors import HivethinkError
from hivethink.lab.store import read_results, read_trace
from hivethink.report.build import fmt
from hivethink.report.data import Record
from hivethink.trace import Event

_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan", "bright_magenta")
# ANSI/VT escape sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), 8-bit CSI, 2-char ESC.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x9b[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]"
)
# Other C0/C1 controls (tab and newline kept) and bidirectional overrides that reorder text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
PROMPT_CHARS = 400


def neutralise(text: str) -> str:
    """Model text made safe for a terminal and for rich: escape sequences removed, other control
    characters shown as ``\\xNN`` / ``\\uNNNN``, carriage returns as newlines, markup escaped."""
    text = _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text)
    return escape(text.expandtabs(4))


def find_record(records: list[Record], sample: int | str) -> Record:
    """The record with grid index ``sample`` (int or digits), else with key (or key prefix) ``sample``."""
    if isinstance(sample, int) or str(sample).isdigit():
        index = int(sample)
        for rec in records:
            if rec.get("index") == index:
                return rec
        indices = sorted(r.get("index", 0) for r in records)
        span = f"{indices[0]}..{indices[-1]}" if indices else "none"
        raise HivethinkError(f"no sample with index {index} in this run (finished indices: {span})")
    matches = [r for r in records if r["key"].startswith(str(sample))]
    if len(matches) != 1:
        raise HivethinkError(f"{'no' if not matches else 'more than one'} sample with key {sample!r}")
    return matches[0]


def _merge_tokens(events: list[Event]) -> list[Event]:
    """Token events joined into one ``token`` event per run of one worker's consecutive tokens,
    for workers that have no ``step`` events (otherwise tokens repeat the steps and are dropped)."""
    with_steps = {e.worker for e in events if e.kind == "step"}
    out: list[Event] = []
    for ev in events:
        if ev.kind != "token":
            out.append(ev)
        elif ev.worker not in with_steps:
            if out and out[-1].kind == "token" and out[-1].worker == ev.worker:
                out[-1] = out[-1].model_copy(update={"text": out[-1].text + ev.text})
            else:
                out.append(ev)
    return out


def show_sample(run_dir: str | Path, sample: int | str, console: Console, *, prompts: bool = False) -> None:
    """Print one sample: a header panel, then its events in order, each worker in its own colour.

    ``prompts`` prints what each worker was shown (cut to 400 characters); by default prompt
    events are one line each.
    """
    record = find_record(read_results(run_dir), sample)
    events = _merge_tokens(read_trace(run_dir, record))
    header = (
        f"[bold]#{record.get('index')}[/] key {escape(record['key'])}\n"
        f"model {escape(str(record['model']))} · substrate {escape(str(record['substrate']))} · "
        f"task {escape(str(record['task']))} · N={record['workers']} · seed {record['seed']}\n"
        f"instance {escape(str(record['instance']))} · score [bold]{fmt(record.get('score'))}[/] · "
        f"answer {neutralise(fmt(record.get('answer')))}"
    )
    if record.get("error"):
        header += f"\n[red]error: {neutralise(str(record['error']))}[/]"
    console.print(Panel(header, title="sample", expand=False))
    colours: dict[str, str] = {}
    for ev in events:
        colour = colours.setdefault(ev.worker, _COLOURS[len(colours) % len(_COLOURS)])
        where = f" step {ev.step}" if ev.step is not None else ""
        to = f" → {', '.join(ev.recipients)}" if ev.recipients else ""
        label = f"[bold {colour}]{escape(ev.worker)}[/] [dim]{escape(ev.kind + where + to)}[/]"
        if ev.kind == "prompt" and not prompts:
            console.print(f"{label} [dim]({len(ev.text)} characters; --prompts shows them)[/]")
            continue
        text = ev.text if ev.kind != "prompt" else ev.text[:PROMPT_CHARS]
        if ev.kind in ("check", "vote", "error") and ev.data:
            detail = ev.data.get("answer", ev.data.get("value", ev.data.get("reason")))
            if detail is not None and str(detail) != text:
                text = f"{text} ({detail})" if text else str(detail)
        console.print(label)
        if text.strip():
            console.print(f"[{colour}]{neutralise(text)}[/]" if ev.kind != "prompt" else f"[dim]{neutralise(text)}[/]")
