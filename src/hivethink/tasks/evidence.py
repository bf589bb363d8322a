"""Evidence: yes/no questions with candidate paragraphs (StrategyQA-style), as in LLM Programs.

A problem file (JSONL, JSON, Parquet or CSV; :mod:`hivethink.tasks.datasets` reads it) holds
per row a ``question``, a yes/no ``answer`` (``true``/``false`` or the words) and the candidate
``paragraphs``: a list of texts, of ``{"title", "content"}`` objects (``text`` or
``paragraph`` for the content are read too), or a mapping title -> content. Optional: an id
(``qid`` or ``id``) and the golden ``facts``. A row without paragraphs, or with an answer that
is not yes/no, refuses the whole file with one line naming the row, when the task is built.

The answer is read from a reply as the yes/no after a final "answer is"/"Answer:", else the
last standalone yes or no; the score is 1 when it matches. Without a ``source`` the task reads
its own small fixture (``tasks/data/evidence_mini.jsonl``: six questions written for hivethink,
each with its evidence among ten paragraphs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from hivethink.errors import HivethinkError
from hivethink.tasks._common import instance_id, params_of
from hivethink.tasks.base import Instance
from hivethink.tasks.datasets import read_rows, row_text

FIXTURE = Path(__file__).parent / "data" / "evidence_mini.jsonl"
FORMAT = "Think step by step, then end with 'The answer is yes.' or 'The answer is no.'"
_FINAL = re.compile(r"(?:answer\s+is|answer\s*:)\s*\**\s*(yes|no)\b", re.IGNORECASE)
_WORD = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Paragraph:
    title: str
    text: str


@dataclass(frozen=True)
class EvidenceProblem:
    id: str
    question: str
    answer: str  # "yes" | "no"
    paragraphs: tuple[Paragraph, ...]
    facts: tuple[str, ...]
    where: str


def _answer(value: Any) -> str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value.strip().lower() in ("yes", "no", "true", "false"):
        return "yes" if value.strip().lower() in ("yes", "true") else "no"
    return None


def _paragraphs(value: Any) -> list[Paragraph] | None:
    """The candidate paragraphs of a row, or None when the value holds none usable."""
    if isinstance(value, dict):
        value = [{"title": k, "content": v} for k, v in value.items()]
    if not isinstance(value, list) or not value:
        return None
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str) and item.strip():
            out.append(Paragraph(title=f"Paragraph {i + 1}", text=item.strip()))
            continue
        if not isinstance(item, dict):
            return None
        text = next((item[k] for k in ("content", "text", "paragraph") if isinstance(item.get(k), str)), None)
        if text is None or not text.strip():
            return None
        title = item.get("title")
        out.append(Paragraph(title=str(title) if title else f"Paragraph {i + 1}", text=text.strip()))
    return out


def load_evidence(path: str, limit: int | None = None) -> list[EvidenceProblem]:
    """Every problem of an evidence file; an unusable row is one :class:`HivethinkError`."""
    _, rows = read_rows(path, limit)
    if not rows:
        raise HivethinkError(f"{path}: no rows in the file")
    out = []
    for row in rows:
        v, where = row.values, row.where
        question = row_text(v, "question", where, path, needs="an evidence problem needs question, answer and paragraphs")
        answer = _answer(v.get("answer"))
        if answer is None:
            raise HivethinkError(f"{path} {where}: the answer must be yes/no or true/false, got {v.get('answer')!r}")
        if "paragraphs" not in v:
            raise HivethinkError(f"{path} {where}: no field 'paragraphs' (the candidate evidence)")
        paragraphs = _paragraphs(v["paragraphs"])
        if paragraphs is None:
            raise HivethinkError(f"{path} {where}: 'paragraphs' must be a non-empty list of texts or "
                                 "of {title, content} objects")
        facts = v.get("facts") or []
        raw_id = v.get("qid", v.get("id"))
        out.append(EvidenceProblem(
            id=str(raw_id) if raw_id is not None else f"row{row.number}", question=question.strip(),
            answer=answer, paragraphs=tuple(paragraphs),
            facts=tuple(str(f) for f in facts) if isinstance(facts, list) else (), where=where,
        ))  # fmt: skip
    return out


def read_yes_no(text: str) -> str | None:
    """``yes``/``no`` after the last "answer is"/"Answer:", else the last standalone one."""
    final = list(_FINAL.finditer(text))
    if final:
        return final[-1].group(1).lower()
    words = list(_WORD.finditer(text))
    return words[-1].group(1).lower() if words else None


@dataclass
class EvidenceTask:
    """Questions from ``source`` (default: the built-in fixture); ``limit`` keeps the file's first rows, ``shuffle``
    draws them in an order given by the seed. ``show_paragraphs``: the prompt a plain substrate
    sees holds every candidate paragraph (else the question alone)."""

    name = "evidence"

    source: str | None = None
    limit: int | None = None
    shuffle: bool = False
    show_paragraphs: bool = True
    _problems: list[EvidenceProblem] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._problems = load_evidence(self.source or str(FIXTURE), self.limit)

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = params_of(self)
        order = list(range(len(self._problems)))
        if self.shuffle:
            Random(seed).shuffle(order)
        out = []
        for i, row in enumerate(order[:n]):
            p = self._problems[row]
            body = f"Question: {p.question}"
            if self.show_paragraphs:
                shown = "\n\n".join(f"[{k + 1}] {q.title}: {q.text}" for k, q in enumerate(p.paragraphs))
                body = f"Paragraphs that may help:\n\n{shown}\n\n{body}"
            out.append(Instance(
                task=self.name, id=instance_id(self.name, params, seed, i),
                prompt=f"{body}\n\n{FORMAT}", target=p.answer,
                data={"question": p.question, "source_id": p.id, "row": p.where,
                      "paragraphs": [{"title": q.title, "text": q.text} for q in p.paragraphs],
                      "facts": list(p.facts)},
            ))  # fmt: skip
        return out

    def extract(self, text: str) -> str | None:
        return read_yes_no(text)

    def score(self, instance: Instance, answer: str | None) -> float:
        return 1.0 if answer is not None and answer.strip().lower() == instance.target else 0.0
