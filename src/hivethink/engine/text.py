"""Text rules of the collaboration: where a step ends, and answers to the redundancy check."""

from __future__ import annotations

import re
from collections.abc import Callable

from hivethink.answers import boxed

Extractor = Callable[[str], "str | None"]

__all__ = ["END_OF_STEP_CHARS", "STEP_SEPARATOR", "Extractor", "boxed", "step_ends", "yes_no"]

STEP_SEPARATOR = "\n\n"
# The end-of-sentence characters the reference accepts before a step separator (16, across scripts).
END_OF_STEP_CHARS = (".", "?", "!", "。", "۔", "؟", "।", "॥", "…", "‽", "།", "᠃", "։", "჻", "¶", "❧")


def step_ends(step_text: str, *, fenced: bool = True) -> bool:
    """Whether a step whose text (header included) ends with a token holding the separator is over.

    As the reference does: the text before the *last* separator, stripped, must end with an
    end-of-sentence character. ``fenced`` adds the rule of protocols.md that the step is not inside
    an open code block (```) or display-math block ($$, or \\[ without its \\]); the reference code
    (generation.py) does not check that."""
    cut = step_text.rfind(STEP_SEPARATOR)
    if cut < 0:
        return False
    body = step_text[:cut].strip()
    if not body.endswith(END_OF_STEP_CHARS):
        return False
    if not fenced:
        return True
    return body.count("```") % 2 == 0 and body.count("$$") % 2 == 0 and body.count("\\[") <= body.count("\\]")


_WORD = re.compile(r"[A-Za-z]+")


def yes_no(text: str) -> str | None:
    """The first word of an answer to a yes/no question: "yes", "no", "?" (other word) or None."""
    m = _WORD.search(text)
    if not m:
        return None
    w = m.group(0).lower()
    return w if w in ("yes", "no") else "?"
