"""Workers writing live, side by side, in the terminal."""

from __future__ import annotations

import time

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hivethink.report.text import clean_text as neutralize

COLORS = ["cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta"]


class SideBySide:
    """Feed it (worker, piece) as tokens arrive; it redraws at most ``fps`` times a second."""

    def __init__(self, names: list[str], console: Console, lines: int = 14, fps: float = 8.0):
        self.names, self.console, self.lines = names, console, lines
        self.texts = {n: "" for n in names}
        self.live = Live(self._render(), console=console, auto_refresh=False, transient=False)
        self.period, self.last = 1.0 / fps, 0.0

    def __enter__(self) -> SideBySide:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self._render(), refresh=True)
        self.live.__exit__(None, None, None)

    def __call__(self, name: str, piece: str) -> None:
        self.texts[name] += piece
        now = time.monotonic()
        if now - self.last >= self.period:
            self.last = now
            self.live.update(self._render(), refresh=True)

    def _render(self) -> Table:
        width = max(20, (self.console.width - 3 * len(self.names)) // max(1, len(self.names)))
        table = Table(expand=True, show_lines=False)
        for i, n in enumerate(self.names):
            table.add_column(n, style=COLORS[i % len(COLORS)], ratio=1, overflow="fold")
        cells = []
        for n in self.names:
            wrapped = Text(neutralize(self.texts[n])).wrap(self.console, width)
            cells.append(Text("\n").join(wrapped[-self.lines :]))
        table.add_row(*cells)
        return table
