"""Worker names, shared by the engine and every substrate (Alice, Bob, Carol, ...)."""

from __future__ import annotations

import functools
import re

# Protocol helpers that speak in traces but are not team agents (metrics leave them out): a
# belief extractor, a task specifier, the hive's finisher (the team's last words when time is up), the
# likelihood scorer of a program (LLM Programs ranks paragraphs and steps by it), the single-or-multi
# router (rates difficulty) and cascade checker (checks the SAS answer).
EXTRACTOR, SPECIFIER, FINISHER, SCORER = "extractor", "specifier", "finisher", "scorer"
ROUTER, CHECKER = "router", "checker"
HELPERS = frozenset({EXTRACTOR, SPECIFIER, FINISHER, SCORER, ROUTER, CHECKER})

NAMES = ("Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy",
         "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil")


def worker_names(n: int) -> list[str]:
    """The first ``n`` names; past 16 the list repeats with a number suffix (``Alice2``, ...)."""
    return [NAMES[i % len(NAMES)] + (str(i // len(NAMES) + 1) if i >= len(NAMES) else "")
            for i in range(n)]


@functools.lru_cache(maxsize=64)
def _names_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    # longest first, so that "Alice2" is one name and not "Alice" followed by "2"
    alts = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_])(?:{alts})(?![A-Za-z0-9_])")


def references(text: str, speaker: str, names: list[str]) -> int:
    """How many times ``text`` by ``speaker`` names another worker, by whole names only ("Everyone"
    does not name Eve). The one count the engine and the metrics share."""
    if not any(n != speaker for n in names):
        return 0
    # One pattern for the whole team (compiled once: a 256-agent team has 256 speakers), its
    # matches of the speaker dropped: names match whole, so this counts as a pattern without it.
    return sum(1 for m in _names_pattern(tuple(names)).findall(text) if m != speaker)


def header_mentions(text: str, names: list[str]) -> list[str]:
    """The names of the step headers written inside ``text`` (``**Name [k]:**``, ``**Name:**``,
    and ``Name [k]:**`` without the leading stars, as small models write it): a worker that writes
    one imitates a worker's turn (impersonation when it is another's)."""
    alts = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pattern = rf"\*\*({alts})(?: \[\d+\])?:\*\*|(?<![A-Za-z0-9_*])({alts}) \[\d+\]:\*\*"
    return [m.group(1) or m.group(2) for m in re.finditer(pattern, text)]
