"""``show_sample``: one sample's trace in the terminal, with every model text neutralised."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from hivethink.display import clean_text
from hivethink.errors import HivethinkError
from hivethink.lab.store import read_trace
from hivethink.report.build import fmt
from hivethink.report.data import Record, call_note, load, merge_tokens

_COLOURS = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "bright_red",
    "bright_cyan",
    "bright_magenta",
)
PROMPT_CHARS = 400


def neutralise(text: str) -> str:
    """Model text made safe for a terminal and for rich: :func:`clean_text`, then markup escaped."""
    return escape(clean_text(text))


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
        raise HivethinkError(
            f"{'no' if not matches else 'more than one'} sample with key {sample!r}"
        )
    return matches[0]


def show_sample(
    run_dir: str | Path, sample: int | str, console: Console, *, prompts: bool = False
) -> None:
    """Print one sample: a header panel, then its events in order, each worker in its own colour.

    ``prompts`` prints what each worker was shown (cut to 400 characters); by default prompt
    events are one line each.
    """
    record = find_record(load(run_dir), sample)
    events = merge_tokens(read_trace(run_dir, record))
    field = {
        name: neutralise(fmt(record.get(name)))
        for name in (
            "index",
            "key",
            "model",
            "substrate",
            "task",
            "workers",
            "seed",
            "instance",
            "answer",
        )
    }
    header = (
        f"[bold]#{field['index']}[/] key {field['key']}\n"
        f"model {field['model']} · substrate {field['substrate']} · task {field['task']} · "
        f"N={field['workers']} · seed {field['seed']}\n"
        f"instance {field['instance']} · score [bold]{fmt(record.get('score'))}[/] · "
        f"answer {field['answer']}"
    )
    if record.get("error"):
        header += f"\n[red]error: {neutralise(str(record['error']))}[/]"
    console.print(Panel(header, title="sample", expand=False))
    colours: dict[str, str] = {}
    for ev in events:
        colour = colours.setdefault(ev.worker, _COLOURS[len(colours) % len(_COLOURS)])
        where = (f" [{ev.step}]" if ev.step is not None else "") + call_note(ev)
        to = f" → {', '.join(ev.recipients)}" if ev.recipients else ""
        label = (
            f"[bold {colour}]{neutralise(ev.worker)}[/] [dim]{neutralise(ev.kind + where + to)}[/]"
        )
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
            console.print(
                f"[{colour}]{neutralise(text)}[/]"
                if ev.kind != "prompt"
                else f"[dim]{neutralise(text)}[/]"
            )
