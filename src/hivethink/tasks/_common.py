"""Helpers shared by the task files: stable ids, seeded generators, answer extraction, names."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from typing import Any

NAMES: tuple[str, ...] = (
    "Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy",
    "Karl", "Laura", "Mike", "Nina", "Oscar", "Paula", "Quinn", "Rita", "Sam", "Tina",
    "Umar", "Vera", "Walt", "Xena", "Yusuf", "Zoe", "Adam", "Bella", "Chris", "Diana",
    "Ethan", "Fiona", "George", "Hannah", "Isaac", "Jade", "Kevin", "Lena", "Martin", "Nora",
    "Owen", "Pia", "Ralph", "Sara", "Tom", "Ursula", "Victor", "Wendy", "Xavier", "Yara",
    "Zack", "Amir", "Beth", "Carlos", "Dora", "Emil", "Freya", "Gavin", "Helga", "Igor",
    "Jonas", "Kira", "Luis", "Maya", "Nils", "Olga", "Pedro", "Rosa", "Simon", "Tara",
    "Ulrich", "Vince", "Wanda", "Yann", "Zara", "Anton", "Boris", "Clara", "Derek", "Elsa",
    "Felix", "Gina", "Hugo", "Irene", "Jack", "Kai", "Lucy", "Marco", "Nadia", "Otto",
    "Priya", "Rick", "Sofia", "Theo", "Uma", "Viktor", "Willa", "Yuki", "Zeno", "Agnes",
)  # fmt: skip


def agent_names(n: int) -> list[str]:
    """``n`` distinct names: the list above, then the list again with a numeric suffix."""
    return [
        NAMES[i % len(NAMES)] + (str(i // len(NAMES) + 1) if i >= len(NAMES) else "")
        for i in range(n)
    ]


def params_of(task: Any) -> dict[str, Any]:
    """The constructor parameters of a dataclass task (what makes two tasks generate alike)."""
    return {f.name: getattr(task, f.name) for f in dataclasses.fields(task) if f.init}


def params_hash(params: dict[str, Any]) -> str:
    """Short, stable digest of parameters (sorted JSON, so dict order never matters)."""
    blob = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:8]


def instance_id(name: str, params: dict[str, Any], seed: int, index: int) -> str:
    return f"{name}-{params_hash(params)}-{seed}-{index}"


def instance_rng(name: str, params: dict[str, Any], seed: int, index: int) -> random.Random:
    """One generator per instance, so instance ``i`` does not depend on how many come before."""
    return random.Random(f"{name}:{params_hash(params)}:{seed}:{index}")


def past_deep_nesting(text: str, start: int) -> int:
    """Where to look on after a JSON value at ``start`` nested deeper than Python can recurse:
    just after its first closing bracket (the openers before it start values nested almost as
    deep, and trying each of them would take quadratic time)."""
    closers = [p for p in (text.find("}", start), text.find("]", start)) if p != -1]
    return min(closers) + 1 if closers else len(text)


def json_objects(text: str) -> list[Any]:
    """Every top-level JSON object found in ``text``, in order (code fences and prose are skipped;
    so is a value nested deeper than Python can parse)."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    i = text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        except RecursionError:
            i = text.find("{", past_deep_nesting(text, i))
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = text.find("{", end)
    return found


_ANSWER_IS = re.compile(r"answer\s+is\s*:?\s*", re.IGNORECASE)


def answer_is(text: str) -> str | None:
    """The value after the last "answer is", cut at the end of its sentence; None if absent."""
    matches = list(_ANSWER_IS.finditer(text))
    if not matches:
        return None
    value = text[matches[-1].end() :].strip()
    value = re.split(r"\.\s|\.$|\n", value, maxsplit=1)[0]
    value = value.strip().strip("*").strip().strip("$").strip()
    return value or None
