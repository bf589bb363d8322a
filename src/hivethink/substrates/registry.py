"""The registry of the single- and multi-agent presets, and how one is built by name.

The hybrids (:mod:`hivethink.substrates.hybrid`: ``sas``, ``cascade``, ``router``) are composed
of these presets by name, so they build them from this table; the package's
:func:`hivethink.substrates.get_substrate` adds the hybrids on top.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hivethink.errors import HivethinkError
from hivethink.substrates.agentsnet import AgentsNet
from hivethink.substrates.base import Substrate
from hivethink.substrates.blackboard import Blackboard
from hivethink.substrates.camel import Camel
from hivethink.substrates.centralized import Centralized
from hivethink.substrates.chat import Chat
from hivethink.substrates.consensus_game import ConsensusGame
from hivethink.substrates.coral import Coral
from hivethink.substrates.debate import DebateDu
from hivethink.substrates.independent import Independent
from hivethink.substrates.llm_program import LlmProgram
from hivethink.substrates.metagpt import Metagpt
from hivethink.substrates.program import Program
from hivethink.substrates.self_organizing import SelfOrganizing
from hivethink.substrates.sequential import Sequential
from hivethink.substrates.shared_cache import SharedCache
from hivethink.substrates.single import Single

PRESETS: dict[str, type] = {
    cls.name: cls
    for cls in (
        Independent,
        Single,
        Chat,
        Blackboard,
        Sequential,
        Centralized,
        Program,
        SharedCache,
        AgentsNet,
        ConsensusGame,
        Coral,
        DebateDu,
        Camel,
        LlmProgram,
        Metagpt,
        SelfOrganizing,
    )
}
# Older names, kept so that existing grids run: each now means the preset that replaced it.
ALIASES = {"agree": "consensus-game", "pair": "coral", "debate": "debate-du", "roleplay": "camel"}


def _coerce(value: Any, default: Any) -> Any:
    """Turn a string from the command line into the type of the parameter's default."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    if isinstance(default, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return type(default)(value)


def build(table: dict[str, type], name: str, **params: Any) -> Substrate:
    """The substrate ``name`` (or an alias) of ``table`` with ``params`` (dataclass fields;
    strings are converted)."""
    name = ALIASES.get(name, name)
    cls = table.get(name)
    if cls is None:
        raise HivethinkError(f"unknown substrate {name!r} (known: {', '.join(sorted(table))})")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise HivethinkError(
            f"substrate {name!r} has no parameter {', '.join(unknown)} "
            f"(parameters: {', '.join(fields) or 'none'})"
        )
    try:
        values = {k: _coerce(v, fields[k].default) for k, v in params.items()}
    except ValueError as exc:
        raise HivethinkError(f"substrate {name!r}: bad parameter value: {exc}") from None
    return cls(**values)
