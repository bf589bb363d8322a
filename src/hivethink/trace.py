"""Trace events: the one record every layer writes and every later layer reads.

A trace is an append-only list of :class:`Event`. The engine writes one ``token`` event per
generated token; substrates write ``message``/``post``/``vote``/``role``/``answer`` events; metrics
and reports are pure functions of traces. Events are plain JSON when written to JSONL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EventKind = Literal[
    "prompt",  # the text a worker/agent was shown (substrates: what it saw)
    "token",  # one generated token (engine)
    "step",  # a finished step of a worker (engine) or one full generation (substrates)
    "message",  # a message from `worker` to `recipients`
    "post",  # an entry on a shared board (blackboard); data["entry_kind"] says plan/claim/...
    "vote",  # a vote (debate, agree): data["value"]
    "role",  # a declared role, or data["abstain"] = True
    "check",  # the redundancy check and its answer (engine): data["answer"] = "yes"/"no"/"?"
    "answer",  # a final answer of one worker, or of the whole team (worker = "team")
    "error",  # a format failure, parse retry, timeout: data["reason"]
]


class Event(BaseModel):
    """One thing that happened in one sample."""

    model_config = ConfigDict(extra="forbid")

    kind: EventKind
    worker: str  # who produced it ("Alice", "coordinator", "team", ...)
    text: str = ""
    t: float = 0.0  # seconds since the sample started
    step: int | None = None  # engine: sequential forward pass index; substrates: round index
    position: int | None = None  # engine: the token's position in the worker's own view
    token_id: int | None = None
    recipients: list[str] | None = None  # message: who receives it (None = nobody in particular)
    seen: list[str] | None = None  # which earlier texts/events the producer saw (by worker/id)
    data: dict[str, Any] = Field(default_factory=dict)


def write_jsonl(path: str | Path, events: Iterable[Event], *, append: bool = False) -> None:
    """Write events as one JSON object per line (flushed and fsynced: traces must survive a kill)."""
    import os

    with open(path, "a" if append else "w", encoding="utf-8") as f:
        for ev in events:
            f.write(ev.model_dump_json(exclude_none=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


class TraceError(ValueError):
    """A line of a trace file other than the last one is not a valid event: the file is corrupt."""


def read_jsonl(path: str | Path) -> Iterator[Event]:
    """Read events back, one per non-blank line (bytes that are not UTF-8 become U+FFFD).

    The last non-blank line may be torn (a kill mid-write): if it is not a valid event it is
    skipped, not fatal. Any earlier line that is not a valid event raises :class:`TraceError`
    (a ``ValueError``) naming the file and the line; nothing else is raised for bad content.
    """
    with open(path, encoding="utf-8", errors="replace", newline="\n") as f:
        lines = f.readlines()  # only "\n" ends a line, as written (a raw "\r" is no line end)
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        try:
            event = Event.model_validate(json.loads(line))
        except (ValueError, RecursionError) as err:  # bad JSON, bad schema, absurd nesting
            if i == last:
                return  # torn tail
            raise TraceError(
                f"{path}: line {i + 1} is not a trace event ({type(err).__name__})"
            ) from None
        yield event
