"""The backend contract: "generate a completion for each of these conversations".

The local engine and any OpenAI-compatible server look the same here, so every substrate runs
unchanged on either. Implementations batch a call's requests together where they can.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class GenRequest:
    """One conversation to continue. ``messages`` are chat messages: {"role", "content"}."""

    messages: list[dict[str, str]]
    max_tokens: int = 256
    # None: the provider's default sampling (protocols published without a temperature): an
    # OpenAI-compatible server gets neither temperature nor top_p, the local engine samples as
    # the model's generation config says.
    temperature: float | None = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    # A JSON Schema the reply must follow (protocols that publish constrained JSON output), or
    # None for free text. The local engine constrains decoding to it; an OpenAI-compatible server
    # gets it as ``response_format``.
    json_schema: dict[str, Any] | None = None


@dataclass
class Completion:
    """What came back for one request, with its cost. ``error`` is set (and text empty) on failure."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    error: str | None = None


@runtime_checkable
class Backend(Protocol):
    name: str

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        """Complete every request; the result list is in request order and never shorter."""
        ...
