"""Workers writing live, side by side, in the terminal."""

from __future__ import annotations

import time

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hivethink.display import clean_text as neutralize
from hivethink.engine.hive import HiveConfig, HiveResult

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


def summary(console: Console, result: HiveResult, cfg: HiveConfig, *, expected: str | None = None,
            next_steps: bool = False) -> None:
    """What happened in a hive run, in plain words: per worker its steps, tokens, whom it named,
    its checks, impersonations and loops; then the answer, how it was reached and (with
    ``expected``) whether it is right; then what to try next."""
    from hivethink.metrics.pathology import is_repetitive
    from hivethink.names import references

    table = Table(title=f"{cfg.workers} workers, {cfg.layout} layout, {result.visibility} visibility",
                  caption="named: whom it named in its own text; checks: redundancy checks (answered yes); "
                          "headers: other workers' step headers written (impersonation)", show_header=True)
    for col in ("worker", "steps", "tokens"):
        table.add_column(col, no_wrap=True)
    table.add_column("named", overflow="fold")
    for col in ("checks", "headers", "loops"):
        table.add_column(col, no_wrap=True)
    table.add_column("answer", overflow="fold", min_width=8)
    steps = {n: 0 for n in result.texts}
    checks = {n: [0, 0] for n in result.texts}
    for e in result.events:
        if e.kind == "step" and e.worker in steps and not e.data.get("finisher"):
            steps[e.worker] += 1
        if e.kind == "check" and e.worker in checks:
            checks[e.worker][0] += 1
            checks[e.worker][1] += e.data.get("answer") == "yes"
    names = list(result.texts)
    own_text = {n: "".join(e.text for e in result.events
                           if e.kind == "token" and e.worker == n and not e.data.get("forced")) for n in names}

    def named(n: str) -> str:  # whom each worker named, and how often (its own text only)
        counts = [(o, references(own_text[n], n, [n, o])) for o in names if o != n]
        return ", ".join(f"{o} {k}" for o, k in counts if k) or "-"

    for name in result.texts:
        table.add_row(name, str(steps[name]), str(result.tokens[name]), named(name),
                      f"{checks[name][0]} ({checks[name][1]})", str(result.impersonations.get(name, 0)),
                      "yes" if is_repetitive(own_text[name]) else "no",  # every step it wrote
                      # model text: neutralised, and a Text so that "[...]" is never rich markup
                      Text(neutralize(result.answers.get(name) or "-")))
    console.print(table)
    how = {"answer": "a worker finished a step holding it",
           "transcript": "found in an unfinished step when the budget ran out",
           "finisher": "the budget ran out; the finisher asked the team for it"}[result.finished_by]
    verdict = ""
    if expected is not None:
        verdict = "  -> right" if result.answer is not None and result.answer.strip() == expected.strip() else \
            f"  -> wrong (expected {expected})"
    console.print(Text.assemble(("answer: ", "bold"), neutralize(result.answer or "(none)"), f"  ({how})",
                                (verdict, "bold")), highlight=False)
    console.print(f"{result.steps} sequential passes | {sum(result.tokens.values())} tokens generated, "
                  f"{result.forced_tokens} forced (headers, checks) | {result.tokens_per_s:.1f} tokens/s | "
                  f"wall {result.wall_s:.1f}s", highlight=False)
    for b, r in sorted(result.at_budget.items()):
        if b != result.steps or len(result.at_budget) > 1:
            console.print(f"  at {b} passes: {neutralize(r.answer or '(none)')} ({r.finished_by})",
                          highlight=False, markup=False)
    if next_steps:
        console.print(Text.assemble(("next: ", "bold"),
                                    "hivethink lab run examples/quick.yaml --concurrency 8   (every substrate, same tasks; ~6 min)\n"
                                    "      hivethink lab report runs/quick      (tables and plots)\n"
                                    "      hivethink lab view runs/quick        (each trace as the workers saw it)"))
