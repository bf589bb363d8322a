"""Worker names, shared by the engine and every substrate (Alice, Bob, Carol, ...)."""

from __future__ import annotations

# Protocol helpers that speak in traces but are not team agents (metrics leave them out).
EXTRACTOR, SPECIFIER = "extractor", "specifier"
HELPERS = frozenset({EXTRACTOR, SPECIFIER})

NAMES = ("Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy",
         "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil")


def worker_names(n: int) -> list[str]:
    """The first ``n`` names; past 16 the list repeats with a number suffix (``Alice2``, ...)."""
    return [NAMES[i % len(NAMES)] + (str(i // len(NAMES) + 1) if i >= len(NAMES) else "")
            for i in range(n)]
