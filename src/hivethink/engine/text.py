"""Text rules: a conversation as token ids, where a step ends, answers to the redundancy check."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hivethink.answers import boxed

Extractor = Callable[[str], "str | None"]

__all__ = ["END_OF_STEP_CHARS", "STEP_SEPARATOR", "Extractor", "boxed", "chat_ids", "step_ends", "yes_no"]


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
