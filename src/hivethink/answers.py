"""Reading a final answer out of model text (shared by the engine and the tasks)."""

from __future__ import annotations

import re
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


_FENCE = re.compile(r"```([^\n`]*)\n(.*?)```", re.DOTALL)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every closed Markdown code block in ``text`` as ``(info string, content)``, in order
    (``info`` is what follows the opening fence: ``python``, ``py``, ``""``...)."""
    return [(m.group(1).strip(), m.group(2)) for m in _FENCE.finditer(text)]


def python_code(text: str) -> str | None:
    """The Python program written in a reply: the last fenced block that defines something
    (``def``/``class``), else the last Python or unlabelled block; without fences, the text
    from its first ``def``/``import``/``from``/``class`` line when it has one. None otherwise."""
    blocks = [(info, body) for info, body in fenced_blocks(text)
              if info.lower() in ("", "python", "py", "python3")]
    defining = [body for _, body in blocks if re.search(r"^\s*(?:async\s+)?(?:def|class)\s", body, re.M)]
    if defining:
        return defining[-1].strip("\n")
    if blocks:
        return blocks[-1][1].strip("\n")
    start = re.search(r"^(?:def |async def |class |import |from )", text, re.M)
    return text[start.start():].strip("\n") if start else None
