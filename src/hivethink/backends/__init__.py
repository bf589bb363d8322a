"""Backends: ``get_backend("local", model="smollm2")``, ``get_backend("openai", base_url=..., model=...)``.

Without a model: ``get_backend("fake", script=...)`` (tests) and ``get_backend("echo", reply=...,
delay_s=...)`` (deterministic, configurable from a lab YAML; see :mod:`hivethink.backends.fake`).
"""

from __future__ import annotations

from typing import Any

from hivethink.backends.base import Backend, Completion, GenRequest, Score, Scorer, ScoreRequest
from hivethink.errors import HivethinkError

KINDS = ("local", "openai", "fake", "echo")
# Kinds that can score text (Scorer); an openai server may still refuse per request.
SCORING_KINDS = ("local", "openai", "fake")


def can_score(kind: str) -> bool:
    """Whether backends of ``kind`` can score text at all (known before any model loads)."""
    return kind in SCORING_KINDS


def get_backend(kind: str, **params: Any) -> Backend:
    """Build a backend of ``kind``; the local one loads its model here (once per backend)."""
    try:
        if kind == "local":
            from hivethink.backends.local import LocalBackend

            return LocalBackend(**params)
        if kind == "openai":
            from hivethink.backends.openai_backend import OpenAIBackend

            return OpenAIBackend(**params)
        if kind == "fake":
            from hivethink.backends.fake import ScriptedBackend

            return ScriptedBackend(**params)
        if kind == "echo":
            from hivethink.backends.fake import EchoBackend

            return EchoBackend(**params)
    except TypeError as e:
        raise HivethinkError(f"bad parameters for the {kind} backend: {e}") from None
    raise HivethinkError(f"unknown backend kind {kind!r} (choose from {', '.join(KINDS)})")


__all__ = [
    "KINDS", "SCORING_KINDS", "Backend", "Completion", "GenRequest", "Score", "ScoreRequest", "Scorer",
    "can_score", "get_backend",
]
