"""Reading a final answer out of model text (shared by the engine and the tasks)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` with balanced braces (``\boxed {x}`` too); None if none.

    An unbalanced box (text cut off mid-answer) is skipped in favour of an earlier one.
    """
    start = text.rfind("\\boxed")
    while start != -1:
        i = start + len("\\boxed")
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            depth = 0
            for j in range(i, len(text)):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[i + 1 : j].strip()
        start = text.rfind("\\boxed", 0, start)
    return None


def majority(answers: Iterable[str | None]) -> str | None:
    """The most frequent answer (None and empty answers do not vote); a tie goes to the answer
    given first. The one vote every layer uses."""
    counts = Counter(a for a in answers if a)  # keeps first-appearance order
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a, c in counts.items() if c == best)
