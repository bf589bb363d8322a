"""``hivethink prompts``: import the authors' own texts from their files, or export hivethink's.

``import SYSTEM SOURCE --out DIR`` reads a system's published texts from the user's checkout of
the authors' repository (or their installed package) and writes a prompts directory for
``--prompts DIR``, with ``DIR/SOURCE.json`` naming the repository, commit and file of every text
(:mod:`hivethink.prompts.importers`). ``export DIR`` writes hivethink's own texts, as a start
for a set of one's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Import the authors' published prompts from their files, or export hivethink's.")


@app.command("import")
def import_(
    system: Annotated[str, typer.Argument(help="The system whose texts to import: agentsnet | camel | consensus-game | coral | debate-du | hogwild | mast | metagpt.")],
    source: Annotated[str, typer.Argument(help="A checkout of the authors' repository, or their package "
                                                "(an installed name, or its directory).")],
    out: Annotated[Path, typer.Option("--out", help="The prompts directory to write (new, or an earlier "
                                                    "import of other systems, which is kept).")],
    allow_unpinned: Annotated[bool, typer.Option(help="Import from another commit or version than the "
                                                      "preset's pin, or a checkout with local changes "
                                                      "(SOURCE.json records it).")] = False,
) -> None:
    """Write the authors' texts for SYSTEM, read from SOURCE, as a prompts directory."""
    from hivethink.display import clean_text
    from hivethink.prompts.importers import run

    console = Console()
    with console.status(f"reading {system}'s texts from {source} ..."):
        done = run(system, source, out, allow_unpinned=allow_unpinned)
    entry = done.entry
    table = Table(title=f"{entry.label}{'' if entry.at_pin else ' (NOT the pinned ' + entry.pinned + ')'}")
    for column in ("template", "text", "from"):
        table.add_column(column)
    for key, text in entry.texts.items():
        where = f"{text.file}: {text.object}" if text.origin == "published" else "hivethink's own (not published)"
        table.add_row(key, text.origin, clean_text(where))
    console.print(table)
    published, builtin = done.counts
    console.print(f"wrote {done.out}: {published} published text(s), {builtin} of hivethink's own; "
                  f"run with --prompts {done.out}")


@app.command("export")
def export(
    out: Annotated[Path, typer.Argument(help="The directory to write the books into.")],
    book: Annotated[list[str] | None, typer.Option(help="Only this book (repeatable).")] = None,
) -> None:
    """Write hivethink's own texts (every book, or the named ones) as a prompts directory."""
    from hivethink import prompts
    from hivethink.errors import HivethinkError
    from hivethink.prompts.importers import declare_books

    declare_books()
    known = prompts.books()
    unknown = sorted(set(book or ()) - set(known))
    if unknown:
        raise HivethinkError(f"no prompt book {', '.join(unknown)} (books: {', '.join(sorted(known))})")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HivethinkError(f"{out}: exists and is not empty (choose a new directory)")
    prompts.use_directory(None)
    written = prompts.export(out, book or None)
    Console().print(f"wrote {len(written)} template(s) under {out}")
