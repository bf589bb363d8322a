"""Text rules of the collaboration: step boundaries and final-answer extraction."""

from __future__ import annotations

import re
from collections.abc import Callable

from hivethink.answers import boxed

Extractor = Callable[[str], "str | None"]

__all__ = ["Extractor", "boxed", "step_ended", "yes_no"]

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


_WORD = re.compile(r"[A-Za-z]+")


def yes_no(text: str) -> str | None:
    """The first word of an answer to a yes/no question: "yes", "no", "?" (other word) or None."""
    m = _WORD.search(text)
    if not m:
        return None
    w = m.group(0).lower()
    return w if w in ("yes", "no") else "?"
