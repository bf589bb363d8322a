"""Model output is data: make it safe to print in a terminal."""

from __future__ import annotations

import re

# CSI / OSC escape sequences, then any other control character except newline and tab.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def neutralize(text: str) -> str:
    """Drop terminal escape sequences and control characters (keeps newlines and tabs)."""
    return _CONTROL.sub("", _ANSI.sub("", text))
