"""Text rules of the collaboration: step boundaries and final-answer extraction."""

from __future__ import annotations

import re
from collections.abc import Callable

Extractor = Callable[[str], "str | None"]

END_OF_SENTENCE = ".!?"


def step_ended(text: str) -> bool:
    """A step ends at a blank line right after an end-of-sentence character, outside any open
    code block (```) or display-math block ($$ or \\[ ... \\])."""
    if not text.endswith("\n\n"):
        return False
    body = text.rstrip()
    if not body or body[-1] not in END_OF_SENTENCE:
        return False
    if body.count("```") % 2:
        return False
    if body.count("$$") % 2:
        return False
    return body.count("\\[") <= body.count("\\]")


def boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with balanced braces, or None."""
    start = text.rfind("\\boxed{")
    while start != -1:
        i, depth = start + len("\\boxed{"), 1
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start + len("\\boxed{") : i - 1].strip()
        start = text.rfind("\\boxed{", 0, start)
    return None


_WORD = re.compile(r"[A-Za-z]+")


def yes_no(text: str) -> str | None:
    """The first word of an answer to a yes/no question: "yes", "no", "?" (other word) or None."""
    m = _WORD.search(text)
    if not m:
        return None
    w = m.group(0).lower()
    return w if w in ("yes", "no") else "?"
