"""Text rules: a conversation as token ids, where a step ends, answers to the redundancy check."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hivethink.answers import boxed

Extractor = Callable[[str], "str | None"]

__all__ = ["BLOCK_BORDERS", "END_OF_STEP_CHARS", "STEP_SEPARATOR", "Extractor", "boxed", "boxed_float", "chat_ids",
           "step_ends", "yes_no"]


def chat_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of a conversation with the generation prompt, by the tokenizer's own template
    (or a plain "Role: text" transcript when the tokenizer has none)."""
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)
    text = "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in messages) + "Assistant:"
    return list(tokenizer.encode(text))

STEP_SEPARATOR = "\n\n"
# The end-of-sentence characters the reference accepts before a step separator (16, across scripts).
END_OF_STEP_CHARS = (".", "?", "!", "。", "۔", "؟", "।", "॥", "…", "‽", "།", "᠃", "։", "჻", "¶", "❧")


# Where a step may not end with ``step_end: fenced``: inside an open block, i.e. an odd count of one
# of these in the whole step (the rule of the reference's branch ``inference_lib``).
BLOCK_BORDERS = ("```", "~~~", "$$")


def step_ends(step_text: str, *, fenced: bool = False) -> bool:
    """Whether a step whose text (header included) ends with a token holding the separator is over.

    As the reference does (1a87a99): the text before the *last* separator, stripped, must end with
    an end-of-sentence character. ``fenced`` adds the open-block rule of the reference's later
    branch ``inference_lib``: not if the whole step (separator token included) holds an odd
    number of any of :data:`BLOCK_BORDERS` (``str.count``: non-overlapping)."""
    cut = step_text.rfind(STEP_SEPARATOR)
    if cut < 0:
        return False
    if fenced and any(step_text.count(b) % 2 for b in BLOCK_BORDERS):
        return False
    return step_text[:cut].strip().endswith(END_OF_STEP_CHARS)


def boxed_float(text: str) -> str | None:
    r"""The reference's answer (``find_last_valid_result`` with ``extract_result=float``): the
    rightmost ``\boxed{`` whose content up to the *first* ``}`` after it parses with Python's
    ``float``, else the next one to its left; None if none does. The content is returned as
    written (stripped), so ``\boxed{answer here}`` or ``\boxed{\frac{1}{2}}`` is no answer."""
    prefix = "\\boxed{"
    end = len(text)
    while (start := text.rfind(prefix, 0, end)) >= 0:
        close = text.find("}", start, end)  # the reference cuts the text at each box it gives up on
        if close >= 0:
            content = text[start + len(prefix) : close]
            try:
                float(content)
            except ValueError:
                pass
            else:
                return content.strip()
        end = start
    return None


_WORD = re.compile(r"[A-Za-z]+")


def yes_no(text: str) -> str | None:
    """The first word of an answer to a yes/no question: "yes", "no", "?" (other word) or None."""
    m = _WORD.search(text)
    if not m:
        return None
    w = m.group(0).lower()
    return w if w in ("yes", "no") else "?"
