"""``hivethink prompts import SYSTEM SOURCE --out DIR``: the authors' exact texts, from their files.

The project holds no sentence of the authors'. A user who has the authors' code (a checkout, or
the package some authors publish) imports the texts from it into a prompts directory that
``--prompts DIR`` accepts; ``DIR/SOURCE.json`` (:mod:`hivethink.prompts.source`) says where
each text came from, and every results line of a run with it names the import.

One adapter per system declares where its texts live (:mod:`.core`); the framework reads them
(constants with ``ast``, JSON keys, whole files, or the authors' builders run in a subprocess,
:mod:`.child`), maps the authors' placeholders to hivethink's, checks that hivethink's rendering
gives exactly the authors' text, and writes the directory. A source at another commit (or
package version) than the preset's pin is refused unless ``allow_unpinned``; the manifest then
says so (``at_pin: false``).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from hivethink.errors import HivethinkError
from hivethink.prompts.importers import (
    agentsnet,
    camel,
    consensus_game,
    coral,
    debate_du,
    hogwild,
    mast,
    metagpt,
)
from hivethink.prompts.importers.core import Imported, System, import_system

SYSTEMS: dict[str, System] = {s.name: s for s in (agentsnet.SYSTEM, camel.SYSTEM, consensus_game.SYSTEM, coral.SYSTEM,
                                                  debate_du.SYSTEM, hogwild.SYSTEM, mast.SYSTEM,
                                                  metagpt.SYSTEM)}


def declare_books() -> None:
    """Import the modules that declare every prompt book (substrates, the engine, the judge)."""
    importlib.import_module("hivethink.substrates")
    for system in SYSTEMS.values():
        importlib.import_module(system.declares)


def run(system: str, source: str, out: str | Path, *, allow_unpinned: bool = False) -> Imported:
    """Import ``system``'s published texts from ``source`` into the prompts directory ``out``."""
    chosen = SYSTEMS.get(system)
    if chosen is None:
        raise HivethinkError(f"no importer for {system!r} (systems: {', '.join(sorted(SYSTEMS))})")
    declare_books()  # an existing --out may hold any of them
    return import_system(chosen, source, Path(out).expanduser(), allow_unpinned=allow_unpinned)


__all__ = ["SYSTEMS", "Imported", "System", "declare_books", "run"]
