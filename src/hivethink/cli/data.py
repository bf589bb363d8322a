"""``hivethink data check``: how a task would read a problem file, before a run does.

Prints the rows, the fields and how each role was found, the answer styles, and every row whose
answer cannot be used. Exit 0: the task can run the file; 1: it would refuse it (rows listed);
2: the file cannot be read at all (one line naming the line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from hivethink.display import clean_text
from hivethink.errors import HivethinkError

if TYPE_CHECKING:  # the task modules load networkx: imported when a command runs, not at start-up
    from hivethink.tasks.datasets import Scan

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Check problem files (JSONL, JSON, Parquet, CSV) before a run.")

SHOWN_ISSUES = 20  # rows listed; the rest are counted
PREVIEW_CHARS = 160


def file_tasks() -> list[str]:
    """The tasks that read question/answer files (a ``source`` and a ``fields`` mapping; the graph
    task's ``source`` is node-link graphs, which it checks itself when it loads them)."""
    from hivethink.tasks import TASKS, task_parameters

    return sorted(name for name in TASKS if {"source", "fields"} <= set(task_parameters(name)))


def _line(console: Console, *parts: str | tuple[str, str]) -> None:
    # file contents are data: cleaned of control sequences and never read as rich markup
    console.print(Text.assemble(*parts), highlight=False, soft_wrap=True)


def _clip(text: str) -> str:
    text = clean_text(text).replace("\n", " ")
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def report(scan: Scan, task: str, mapping: dict[str, str], answer_format: str,
           console: Console) -> None:
    """What ``data check`` prints for one file."""
    fields = scan.fields
    _line(console, (clean_text(str(scan.path)), "bold"), f": {scan.format}, {scan.rows} rows")
    _line(console, "fields in the file: ", clean_text(", ".join(scan.columns)))
    for role, name in (("question", fields.question), ("answer", fields.answer), ("id", fields.id)):
        how = "mapped" if role in mapping else "found by name" if name else "none"
        _line(console, f"  {role:<8} <- ", clean_text(repr(name) if name else "-"), f"  ({how})")
    styles = ", ".join(f"{style} {n}" for style, n in sorted(scan.styles.items())) or "none"
    _line(console, f"answers ({answer_format}): {len(scan.problems)} read ({styles}), ",
          (f"{len(scan.issues)} unusable", "bold red" if scan.issues else ""))
    if scan.problems:
        first = scan.problems[0]
        _line(console, f"first problem ({first.where}): ", _clip(first.question))
        _line(console, "  answer: ", _clip(first.answer))
    for issue in scan.issues[:SHOWN_ISSUES]:
        _line(console, ("  " + issue.where, "red"), ": ", clean_text(issue.reason))
    if len(scan.issues) > SHOWN_ISSUES:
        _line(console, f"  ... {len(scan.issues) - SHOWN_ISSUES} more unusable rows")
    if scan.duplicate_ids:
        shown = ", ".join(scan.duplicate_ids[:5]) + (" ..." if len(scan.duplicate_ids) > 5 else "")
        _line(console, f"duplicate ids ({len(scan.duplicate_ids)}): ", clean_text(shown))
    if scan.issues:
        _line(console, (f"{task} would refuse this file", "bold red"),
              ": map the answer to another field (--answer FIELD) or set --answer-format")
        return
    params: dict[str, object] = {"source": str(scan.path)}
    if mapping:
        params["fields"] = mapping
    if answer_format != "auto":
        params["answer_format"] = answer_format
    _line(console, ("ok", "bold green"), ": in a lab config, ",
          clean_text(f"tasks: [{{name: {task}, params: {json.dumps(params)}, n: {len(scan.problems)}}}]"))


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="JSONL, JSON, Parquet or CSV/TSV file.")],
    task: Annotated[str, typer.Option(help="The task that will read the file.")] = "math",
    question: Annotated[str | None, typer.Option(help="Field holding the question (default: found by name).")] = None,
    answer: Annotated[str | None, typer.Option(help="Field holding the answer (default: found by name).")] = None,
    id_field: Annotated[str | None, typer.Option("--id", help="Field holding a problem id (default: found by name).")] = None,
    answer_format: Annotated[str, typer.Option(help="auto | gsm8k | boxed | plain")] = "auto",
    limit: Annotated[int | None, typer.Option(help="Check only the first N rows.")] = None,
) -> None:
    """Read FILE as TASK would: rows, fields, answer styles, unusable answers (exit 1 if any)."""
    from hivethink.tasks.datasets import check_file

    if task not in file_tasks():
        raise HivethinkError(f"--task {task!r} reads no files (tasks that do: {', '.join(file_tasks())})")
    mapping = {role: name for role, name in (("question", question), ("answer", answer),
                                             ("id", id_field)) if name is not None}
    scan = check_file(file, mapping, answer_format, limit)
    report(scan, task, mapping, answer_format, Console())
    if scan.issues:
        raise typer.Exit(1)
