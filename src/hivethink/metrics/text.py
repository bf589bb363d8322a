"""Small text helpers shared by the metrics: words, n-grams, overlaps."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_WORD = re.compile(r"\w+")

# Words too common to say anything about what a text is about (used by the drift detector).
_STOPWORDS_TEXT = """
a an and are as at be but by can could did do does for from had has have he her him his how i if
in into is it its just let like may me might my no not now of on one or our she should so some
such than that the their them then there these they this those to too up us was we were what
when where which who why will with would yes you your also very more most much many any all each
other only over under again here out about after before because been being both same own well
okay ok sure
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_LETTERS = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits and underscore runs)."""
    return _WORD.findall(text.lower())


def normalize(text: str) -> str:
    """Lower-case, collapse whitespace, strip surrounding whitespace and trailing full stops."""
    return " ".join(text.lower().split()).rstrip(".").strip()


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """The distinct ``n``-grams of a token list (empty when it has fewer than ``n`` tokens)."""
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def text_ngrams(texts: Iterable[str], n: int) -> set[tuple[str, ...]]:
    """Distinct word ``n``-grams over several texts (n-grams never span two texts)."""
    out: set[tuple[str, ...]] = set()
    for text in texts:
        out |= ngrams(words(text), n)
    return out


def jaccard(a: set, b: set) -> float | None:
    """|a & b| / |a | b|, or None when both are empty."""
    union = a | b
    return len(a & b) / len(union) if union else None


def containment(part: set, whole: set) -> float | None:
    """Fraction of ``part`` found in ``whole``, or None when ``part`` is empty."""
    return len(part & whole) / len(part) if part else None


def content_words(text: str) -> set[str]:
    """Words that carry topic: runs of 3+ letters (``prime_numbers`` gives two) that are not
    stopwords. Numbers are left out: a list of numbers is neither on nor off a topic."""
    return {w for w in _LETTERS.findall(text.lower()) if len(w) >= 3 and w not in STOPWORDS}
