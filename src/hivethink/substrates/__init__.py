"""Coordination substrates and their registry: ``get_substrate("chat", topology="ring")``.

The presets of published protocols are ``agentsnet``, ``consensus-game``, ``coral``,
``debate-du`` and ``camel`` (their published rules are the defaults; our variants are named
parameters). The older names ``agree``, ``pair``, ``debate`` and ``roleplay`` are aliases of
the presets that replaced them.
"""

from __future__ import annotations

from typing import Any

from hivethink.substrates.base import Budget, SampleResult, Substrate
from hivethink.substrates.hybrid import Cascade, Router, Sas
from hivethink.substrates.registry import ALIASES, PRESETS, build

SUBSTRATES: dict[str, type] = {**PRESETS, **{cls.name: cls for cls in (Sas, Cascade, Router)}}


def get_substrate(name: str, **params: Any) -> Substrate:
    """The substrate ``name`` (or an alias) with ``params`` (dataclass fields; strings are
    converted)."""
    return build(SUBSTRATES, name, **params)


__all__ = ["ALIASES", "SUBSTRATES", "Budget", "SampleResult", "Substrate", "get_substrate"]
