"""The backend contract: "generate a completion for each of these conversations".

The local engine and any OpenAI-compatible server look the same here, so every substrate runs
unchanged on either. Implementations batch a call's requests together where they can.

A backend that can also *score* text (:class:`Scorer`) returns the log-likelihood of a given
continuation after a given prompt: plain text, no chat template (a likelihood ranking, as in
LLM Programs, reads a language model, not a chat turn). Where a server cannot score, each
request comes back with ``Score.error`` set; a backend kind that never can (the echo backend)
is known before a run starts (:func:`hivethink.backends.can_score`).
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
    cached_tokens: int = 0  # of the prompt tokens, those the prefix cache held (not computed again)
    error: str | None = None


@dataclass
class ScoreRequest:
    """Score ``continuation`` as the text that follows ``prompt`` (both raw text)."""

    prompt: str
    continuation: str


@dataclass
class Score:
    """``logprob``: the sum of the continuation tokens' log-probabilities (natural log);
    ``tokens``: how many tokens the continuation took. ``error`` is set on failure."""

    logprob: float = 0.0
    tokens: int = 0
    prompt_tokens: int = 0
    token_logprobs: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def mean_nll(self) -> float:
        """The average negative log-likelihood per continuation token (LLM Programs' nll)."""
        return -self.logprob / self.tokens if self.tokens else float("inf")


@runtime_checkable
class Scorer(Protocol):
    def score(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        """Score every request; the result list is in request order and never shorter."""
        ...


@runtime_checkable
class Backend(Protocol):
    name: str

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        """Complete every request; the result list is in request order and never shorter."""
        ...
