"""Optional LLM judge: label a trace with the 14 MAST failure modes (Cemri et al., 2025).

The judge is any :class:`~hivethink.backends.base.Backend`; its reply is parsed robustly (JSON
object anywhere in the text, code fences, "yes"/"no" strings, or ``1.1: yes`` lines).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from hivethink.backends.base import Backend, GenRequest
from hivethink.trace import Event

# code -> name, grouped as in the MAST paper.
MAST_GROUPS: dict[str, dict[str, str]] = {
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
MAST_MODES: dict[str, str] = {
    code: name for group in MAST_GROUPS.values() for code, name in group.items()
}

_CODE = re.compile(r"([123])\s*\.\s*([1-6])")
_LINE = re.compile(r"([123]\s*\.\s*[1-6])[^\n]{0,80}?\b(yes|no|true|false|present|absent)\b", re.I)
_TRUE = {"yes", "true", "present", "1", "y"}
_FALSE = {"no", "false", "absent", "0", "n", "none"}


def render_trace(events: Sequence[Event], max_chars: int = 12000) -> str:
    """The trace as ``[kind] worker: text`` lines (tokens left out), middle cut to ``max_chars``."""
    lines = [f"[{e.kind}] {e.worker}: {e.text.strip()}" for e in events if e.kind != "token"]
    text = "\n".join(lines)
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return text[:half] + "\n[... trace cut ...]\n" + text[-half:]


def mast_prompt(events: Sequence[Event], max_chars: int = 12000) -> str:
    """The judge's instruction: the 14 modes by group, the trace, and the JSON reply format."""
    groups = "\n".join(
        f"{group}:\n" + "\n".join(f"  {code} {name}" for code, name in modes.items())
        for group, modes in MAST_GROUPS.items()
    )
    example = json.dumps({code: False for code in MAST_MODES} | {"summary": "one sentence"})
    return (
        "You audit a multi-agent LLM run for failure modes of the MAST taxonomy:\n"
        f"{groups}\n\nTrace:\n{render_trace(events, max_chars)}\n\n"
        "Reply with one JSON object only, true for each failure mode present in the trace, e.g.\n"
        f"{example}"
    )


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, dict):
        for key in ("present", "value", "label", "answer"):
            if key in value:
                return _as_bool(value[key])
        return None
    if isinstance(value, str):
        v = value.strip().lower()
        return True if v in _TRUE else False if v in _FALSE else None
    return None


def _mode_code(key: str) -> str | None:
    m = _CODE.search(key)
    if m:
        code = f"{m.group(1)}.{m.group(2)}"
        return code if code in MAST_MODES else None
    k = key.strip().lower().replace("_", " ")
    return next((c for c, name in MAST_MODES.items() if name == k), None)


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in ``text`` (balanced braces, strings respected)."""
    found: list[dict[str, Any]] = []
    depth, start, in_str, escaped = 0, -1, False, False
    for i, ch in enumerate(text):
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = depth > 0
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                obj = _loads_lenient(text[start : i + 1])
                if isinstance(obj, dict):
                    found.append(obj)
    return found


def _loads_lenient(blob: str) -> Any:
    """``json.loads``, retried with Python-style literals, single quotes and trailing commas fixed."""
    try:
        return json.loads(blob)
    except (ValueError, RecursionError):
        pass
    fixed = re.sub(r",\s*([}\]])", r"\1", blob)
    fixed = re.sub(
        r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", fixed))
    )
    if '"' not in fixed:
        fixed = fixed.replace("'", '"')
    try:
        return json.loads(fixed)
    except (ValueError, RecursionError):
        return None


def parse_mast_reply(text: str) -> dict[str, Any]:
    """Parse a judge reply into ``{"modes": {code: bool | None}, "failures", "summary", "parsed"}``.

    Tries JSON objects first (also nested under a key such as ``"modes"``), then ``1.1: yes``
    lines. ``parsed`` is False when no mode could be read; unread modes are None.
    """
    modes: dict[str, bool | None] = dict.fromkeys(MAST_MODES)
    summary = ""
    for obj in _json_objects(text):
        candidates = [obj] + [v for v in obj.values() if isinstance(v, dict)]
        for cand in candidates:
            for key, value in cand.items():
                code = _mode_code(str(key))
                if code is not None and modes[code] is None:
                    modes[code] = _as_bool(value)
        if isinstance(obj.get("summary"), str):
            summary = summary or obj["summary"]
    if all(v is None for v in modes.values()):
        for m in _LINE.finditer(text):
            code = _mode_code(m.group(1))
            if code is not None and modes[code] is None:
                modes[code] = _as_bool(m.group(2))
    parsed = any(v is not None for v in modes.values())
    return {
        "modes": modes,
        "failures": [c for c, v in modes.items() if v],
        "summary": summary,
        "parsed": parsed,
    }


def mast_judge(
    events: Sequence[Event], backend: Backend, *, max_tokens: int = 400, max_chars: int = 12000
) -> dict[str, Any]:
    """Ask ``backend`` to label the trace with the MAST failure modes.

    Returns :func:`parse_mast_reply`'s dict plus ``raw`` (the reply text) and ``error`` (the
    backend's error, or None).
    """
    request = GenRequest(
        messages=[{"role": "user", "content": mast_prompt(events, max_chars)}],
        max_tokens=max_tokens,
        temperature=0.0,
    )
    completion = backend.generate([request])[0]
    return {**parse_mast_reply(completion.text), "raw": completion.text, "error": completion.error}
