"""The MAST taxonomy (Cemri et al., "Why Do Multi-Agent LLM Systems Fail?"): its modes, the judge's
prompt for a trace and the reading of the judge's reply, as pure functions (no backend here: the
lab's :func:`hivethink.lab.judge.mast_judge` asks a model).

The judge (any :class:`~hivethink.backends.base.Backend`) reads one prompt (the ``mast`` book):
the instruction and answer format, the whole trace, the definitions of the 14 failure modes and
a few labelled examples. It answers: A. a summary, B. whether the task succeeded (yes/no),
C. yes/no per mode (``1.1`` ... ``3.3``).

**Modes.** By default the modes are named and numbered as the authors' judge prompt has them
(``agentdash`` 0.1.0 ``annotator.py``, openevolve-mast ``evaluator.py``; :data:`MAST_MODES`),
which differs from the paper in three: 2.6 "action-reasoning mismatch", 3.2 "no or incorrect
verification", 3.3 "weak verification" (the paper: reasoning-action mismatch, no or incomplete
verification, incorrect verification). The authors' definitions file numbers the two
verification modes the other way round from their own list (3.2 weak, 3.3 no or incorrect);
hivethink's ``mast`` book keeps that too. The named variant ``taxonomy="paper"`` uses the paper's
names and numbering throughout (:data:`MAST_PAPER_MODES`, book ``mast-paper``).

**Reading the reply** (:func:`parse_mast_reply`), as the authors' parser reads it: per mode, the
first of a few patterns that finds the code followed by yes or no (the code's dots match any
character, as published); a mode not found counts as "no". The success answer is a yes or no
right after "B." (``B\\.\\s*(yes|no)``); anything else reads as "no". A published quirk follows:
when the judge repeats a mode's name, the first "no" after the code may be a word of that name
("3.2 No or Incorrect Verification: yes" reads as no). The named variant ``parse="lines"``
reads the yes or no after the last colon of the line that starts with the code (or with "B.";
no such line: success unknown). The rule-based detectors of :mod:`hivethink.metrics.pathology`
stay the free default; the judge runs when a grid asks for it (``mast: {judge: <model>}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from hivethink import prompts
from hivethink.trace import Event

# code -> name, grouped as in the MAST paper.
MAST_PAPER_GROUPS: dict[str, dict[str, str]] = {
    "specification and system design": {
        "1.1": "disobey task specification",
        "1.2": "disobey role specification",
        "1.3": "step repetition",
        "1.4": "loss of conversation history",
        "1.5": "unaware of termination conditions",
    },
    "inter-agent misalignment": {
        "2.1": "conversation reset",
        "2.2": "fail to ask for clarification",
        "2.3": "task derailment",
        "2.4": "information withholding",
        "2.5": "ignored other agent's input",
        "2.6": "reasoning-action mismatch",
    },
    "task verification and termination": {
        "3.1": "premature termination",
        "3.2": "no or incomplete verification",
        "3.3": "incorrect verification",
    },
}
# The names the authors' judge prompt gives where they differ from the paper's.
_JUDGE_NAMES = {"2.6": "action-reasoning mismatch", "3.2": "no or incorrect verification",
                "3.3": "weak verification"}
MAST_GROUPS: dict[str, dict[str, str]] = {
    group: {code: _JUDGE_NAMES.get(code, name) for code, name in modes.items()}
    for group, modes in MAST_PAPER_GROUPS.items()
}
MAST_MODES: dict[str, str] = {code: name for group in MAST_GROUPS.values() for code, name in group.items()}
MAST_PAPER_MODES: dict[str, str] = {
    code: name for group in MAST_PAPER_GROUPS.values() for code, name in group.items()
}
TAXONOMIES = ("published", "paper")

_TEMPLATES: dict[str, Iterable[str]] = {"judge": ["trace", "definitions", "examples"], "definitions": [], "examples": []}
BOOK = prompts.book("mast", _TEMPLATES)
PAPER_BOOK = prompts.book("mast-paper", _TEMPLATES)
BOOKS = {"published": BOOK, "paper": PAPER_BOOK}

_FLAGS = re.IGNORECASE | re.DOTALL


def _mode_patterns(code: str) -> list[str]:
    """The published patterns for one mode, tried in order (the code is not escaped)."""
    return [
        rf"C\..*?{code}.*?(yes|no)",
        rf"C{code}\s+(yes|no)",
        rf"{code}\s*[:]\s*(yes|no)",
        rf"{code}\s+(yes|no)",
        rf"{code}\s*\n\s*(yes|no)",
        rf"C\.{code}\s*\n\s*(yes|no)",
        rf"(?:C\.)?{code}.*?(yes|no)",
    ]


def render_trace(events: Sequence[Event], max_chars: int | None = None) -> str:
    """The trace as ``[kind] worker: text`` lines: each worker's first prompt (its instructions)
    and every other event but tokens and later prompts (which repeat the conversation). With
    ``max_chars`` the middle is cut to fit."""
    prompted: set[str] = set()
    lines = []
    for e in events:
        if e.kind == "token" or (e.kind == "prompt" and e.worker in prompted):
            continue
        if e.kind == "prompt":
            prompted.add(e.worker)
        lines.append(f"[{e.kind}] {e.worker}: {e.text.strip()}")
    text = "\n".join(lines)
    if max_chars is None or len(text) <= max_chars:
        return text
    half = max_chars // 2
    return text[:half] + "\n[... trace cut ...]\n" + text[-half:]


def mast_prompt(events: Sequence[Event], max_chars: int | None = None, taxonomy: str = "published") -> str:
    book = BOOKS[taxonomy]
    return book.render(
        "judge",
        trace=render_trace(events, max_chars),
        definitions=book.render("definitions"),
        examples=book.render("examples"),
    )


def _published_mode(code: str, text: str) -> str | None:
    match = next((m for p in _mode_patterns(code) if (m := re.search(p, text, _FLAGS))), None)
    return match.group(1).lower() if match else None


def _line_mode(code: str, text: str) -> str | None:
    """The last yes/no after the last colon of the first line that starts with ``code``."""
    for line in text.splitlines():
        start = re.match(rf"\s*(?:C\.\s*)?{re.escape(code)}(?!\d)(.*)", line, re.IGNORECASE)
        if start:
            words = re.findall(r"\b(yes|no)\b", start.group(1).split(":")[-1], re.IGNORECASE)
            return words[-1].lower() if words else None
    return None


def _line_success(text: str) -> bool | None:
    for line in text.splitlines():
        start = re.match(r"\s*B\.(.*)", line, re.IGNORECASE)
        if start:
            words = re.findall(r"\b(yes|no)\b", start.group(1).split(":")[-1], re.IGNORECASE)
            return words[-1].lower() == "yes" if words else None
    return None


def parse_mast_reply(text: str, parse: str = "published") -> dict[str, Any]:
    """The judge's reply as ``{"modes": {code: bool}, "failures": [codes], "success": bool |
    None, "summary": str, "parsed": bool}``; ``parsed`` is False when no mode was found (all
    then count as "no", as published). ``parse``: "published" (success is never None) or
    "lines" (module docstring)."""
    cleaned = text.strip().removeprefix("@@").removesuffix("@@")
    read = _line_mode if parse == "lines" else _published_mode
    modes: dict[str, bool] = {}
    found = 0
    for code in MAST_MODES:
        answer = read(code, cleaned)
        found += answer is not None
        modes[code] = answer == "yes"
    if parse == "lines":
        success = _line_success(cleaned)
    else:
        said = re.search(r"B\.\s*(yes|no)", text, re.IGNORECASE)
        success = said is not None and said.group(1).lower() == "yes"
    summary = re.search(r"A\.\s*(.*?)(?=B\.|$)", text, _FLAGS)
    return {
        "modes": modes,
        "failures": [c for c, v in modes.items() if v],
        "success": success,
        "summary": summary.group(1).strip() if summary else "",
        "parsed": found > 0,
    }

