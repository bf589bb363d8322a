r"""List K distinct items from a checkable set: primes, multiples, squares, or words of a category.

The set is larger than K (about 2K), so workers that split the work do better than workers who
all write the same first items; ``items(text)`` gives each text's normalised items so metrics
can count exact cross-worker redundancy.

Scoring rule: the answer's items are read (numbers as integers, words lower-cased); an item
counts when it is in the valid set; duplicates count once and invalid items are ignored (they
neither add nor subtract). Score = min(#distinct valid items, K) / K.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from hivethink.answers import boxed as last_boxed
from hivethink.errors import HivethinkError
from hivethink.tasks._common import instance_id, instance_rng, params_of
from hivethink.tasks.base import Instance

KINDS = ("primes", "multiples", "squares", "words")

# Categories whose words are unambiguous (no "orange", "lime", "bat" that fit two categories).
CATEGORIES: dict[str, tuple[str, ...]] = {
    "animals": (
        "cat", "dog", "horse", "tiger", "lion", "zebra", "rabbit", "monkey", "donkey", "camel",
        "wolf", "fox", "bear", "goat", "sheep", "cow", "mouse", "deer", "giraffe", "elephant",
        "otter", "badger", "moose", "panda",
    ),
    "fruits": (
        "apple", "banana", "pear", "cherry", "grape", "mango", "melon", "kiwi", "lemon",
        "papaya", "apricot", "fig", "guava", "coconut", "pineapple", "strawberry", "raspberry",
        "blueberry", "watermelon", "persimmon", "quince", "lychee", "nectarine", "tangerine",
    ),
    "colours": (
        "red", "blue", "green", "yellow", "purple", "pink", "brown", "black", "white", "grey",
        "violet", "indigo", "crimson", "scarlet", "beige", "turquoise", "magenta", "cyan",
        "maroon", "navy", "teal", "lavender", "ivory", "amber",
    ),
    "tools": (
        "hammer", "handsaw", "drill", "wrench", "screwdriver", "pliers", "chisel", "shovel", "rake",
        "axe", "spanner", "trowel", "ladder", "clamp", "stapler", "pickaxe", "mallet", "crowbar",
        "hoe", "scissors", "plunger", "sander", "vise", "awl",
    ),
    "countries": (
        "france", "germany", "spain", "italy", "japan", "china", "india", "brazil", "canada",
        "mexico", "egypt", "kenya", "peru", "chile", "norway", "sweden", "finland", "poland",
        "greece", "cuba", "iran", "vietnam", "ghana", "nepal",
    ),
}  # fmt: skip
VOCABULARY: frozenset[str] = frozenset(w for words in CATEGORIES.values() for w in words)

_LIST_MARKER = re.compile(r"(?m)^\s*(?:\d+[.)]|[-*\u2022])\s+")
_INT = re.compile(r"(?<![\d.])\d+(?!\.?\d)")
_WORD = re.compile(r"[A-Za-z]+")


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


def _primes(rng: Random, k: int) -> tuple[str, list[int], dict[str, Any]]:
    lo = rng.randint(10, 200)
    want = 2 * k + rng.randint(0, k)
    hi, found = lo, 0
    while found < want:
        hi += 1
        found += _is_prime(hi)
    hi += rng.randint(0, 5)
    valid = [p for p in range(lo, hi + 1) if _is_prime(p)]
    return f"prime numbers between {lo} and {hi} (inclusive)", valid, {"lo": lo, "hi": hi}


def _multiples(rng: Random, k: int) -> tuple[str, list[int], dict[str, Any]]:
    m = rng.randint(3, 13)
    count = 2 * k + rng.randint(0, k)
    below = m * count + rng.randint(1, m)
    valid = list(range(m, below, m))
    return f"positive multiples of {m} below {below}", valid, {"m": m, "below": below}


def _squares(rng: Random, k: int) -> tuple[str, list[int], dict[str, Any]]:
    r0 = rng.randint(2, 15)
    count = 2 * k + rng.randint(0, k)
    r1 = r0 + count - 1
    lo = (r0 - 1) ** 2 + rng.randint(1, 2 * r0 - 1)  # above (r0-1)^2, at most r0^2
    hi = r1**2 + rng.randint(0, 2 * r1)  # at least r1^2, below (r1+1)^2
    valid = [r * r for r in range(r0, r1 + 1)]
    return f"perfect squares between {lo} and {hi} (inclusive)", valid, {"lo": lo, "hi": hi}


def _words(rng: Random, k: int) -> tuple[str, list[str], dict[str, Any]]:
    category = rng.choice(sorted(CATEGORIES))
    pool = CATEGORIES[category]
    good = rng.sample(pool, min(len(pool), 2 * k))
    others = [w for c, words in sorted(CATEGORIES.items()) if c != category for w in words]
    shown = good + rng.sample(others, min(len(others), len(good)))
    rng.shuffle(shown)
    what = f"{category} from this list of words: {', '.join(shown)}"
    return what, sorted(good), {"category": category, "words": shown}


# kind -> builder of (what to list, the valid items, instance data)
_BUILDERS: dict[str, Callable[[Random, int], tuple[str, Sequence[int | str], dict[str, Any]]]] = {
    "primes": _primes, "multiples": _multiples, "squares": _squares, "words": _words,
}  # fmt: skip


def _norm_number(token: str) -> str:
    return str(int(token))


@dataclass
class EnumerateTask:
    r"""Name ``k`` distinct members of a set (``kind``: one of ``KINDS`` or ``"mixed"``).

    ``Instance.target`` is the sorted list of valid items (as strings); ``data`` has ``k``,
    ``kind`` and what defines the set (``lo``/``hi``, ``m``/``below``, or ``category``/``words``).
    """

    name = "enumerate"

    k: int = 5
    kind: str = "mixed"

    def __post_init__(self) -> None:
        if not 1 <= self.k <= 100:
            raise HivethinkError(f"enumerate: k must be between 1 and 100, got {self.k}")
        if self.kind != "mixed" and self.kind not in KINDS:
            raise HivethinkError(
                f"enumerate: unknown kind {self.kind!r} (choose mixed, {', '.join(KINDS)})"
            )
        smallest = min(len(w) for w in CATEGORIES.values())
        if self.kind == "words" and self.k > smallest:
            raise HivethinkError(f"enumerate: kind 'words' allows k up to {smallest}, got {self.k}")

    def _kinds(self) -> list[str]:
        if self.kind != "mixed":
            return [self.kind]
        smallest = min(len(w) for w in CATEGORIES.values())
        return [k for k in KINDS if k != "words" or self.k <= smallest]

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = params_of(self)
        out = []
        for i in range(n):
            rng = instance_rng(self.name, params, seed, i)
            kind = rng.choice(self._kinds())
            what, valid, extra = _BUILDERS[kind](rng, self.k)
            prompt = (
                f"List {self.k} distinct {what}.\n\n"
                f"Each correct, distinct item counts; wrong items do not help. Write the final "
                f"list inside \\boxed{{}}, separated by commas."
            )
            out.append(Instance(
                task=self.name, id=instance_id(self.name, params, seed, i), prompt=prompt,
                target=[str(v) for v in valid],
                data={"k": self.k, "kind": kind, **extra},
            ))  # fmt: skip
        return out

    def items(self, text: str, instance: Instance | None = None) -> list[str]:
        """Distinct candidate items in ``text``, in order of first mention, normalised.

        Numbers become canonical integers (list markers such as ``1.`` at a line start are
        skipped); words are lower-cased and kept when they are in the built-in vocabulary (or,
        given a word ``instance``, in its shown list). With an ``instance``, only items of its
        kind (numbers or words) are returned.
        """
        text = _LIST_MARKER.sub("", text)
        want_numbers = instance is None or instance.data.get("kind") != "words"
        want_words = instance is None or instance.data.get("kind") == "words"
        found: list[tuple[int, str]] = []
        if want_numbers:
            found += [(m.start(), _norm_number(m.group())) for m in _INT.finditer(text)]
        if want_words:
            allowed = (
                {w.lower() for w in instance.data.get("words", [])}
                if instance is not None
                else VOCABULARY
            )
            found += [
                (m.start(), m.group().lower())
                for m in _WORD.finditer(text)
                if m.group().lower() in allowed
            ]
        seen: dict[str, None] = {}
        for _, item in sorted(found):
            seen.setdefault(item, None)
        return list(seen)

    def extract(self, text: str) -> str | None:
        r"""The content of the last ``\boxed{}``, else the whole text; None when empty."""
        boxed = last_boxed(text)
        answer = boxed if boxed is not None else text.strip()
        return answer or None

    def score(self, instance: Instance, answer: str | None) -> float:
        if not answer:
            return 0.0
        k = int(instance.data["k"])
        valid = {str(v).lower() for v in instance.target}
        good = [item for item in self.items(answer, instance) if item in valid]
        return min(len(good), k) / k
