"""A small run directory for the viewer tests, written with the store's own functions: a
shared-cache sample (tokens over forward passes, forced headers, a check, a finisher), a debate
and a chat (rounds, messages, who saw what), a failed sample, and hostile model text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hivethink.lab.records import ResultRecord
from hivethink.lab.store import write_sample
from hivethink.trace import Event

HOSTILE = '<script>alert(1)</script><img src=x onerror="window.__pwned=1"></pre>\x1b[31m'


def _record(key: str, index: int, substrate: str, task: str, workers: int, **fields: Any) -> dict[str, Any]:
    return {
        "key": key, "index": index, "model": "smollm2", "substrate": substrate, "task": task,
        "workers": workers, "instance": f"{task}-{index}", "seed": 0, "cell": {}, "score": None,
        "answer": None, "agent_answers": {}, "metrics": {}, "info": {}, "error": None,
        "trace": f"traces/{key}.jsonl", "events": 0,
        # fields a newer record carries: the viewer must not trip over them
        "schema": 2, "provenance": {"git": "abc123", "host": "test"},
        **fields,
    }  # fmt: skip


def _tokens(worker: str, pieces: list[tuple[int, str, bool]]) -> list[Event]:
    return [Event(kind="token", worker=worker, step=p, position=i, token_id=i, text=text,
                  data={"forced": True} if forced else {})
            for i, (p, text, forced) in enumerate(pieces)]  # fmt: skip


def shared_cache_events() -> list[Event]:
    """Alice and Bob over passes 0-5: forced headers, a line end at pass 2, a check at pass 4."""
    alice = _tokens("Alice", [(0, "**Alice [1]:** ", True), (1, "17*23", False), (2, " = 391.\n", False),
                              (3, "So ", False), (4, HOSTILE, False), (5, " \\boxed{391}", False)])
    bob = _tokens("Bob", [(0, "**Bob [1]:** ", True), (1, "I check", False), (2, " it", False),
                          (3, " too", False), (4, "Am I redundant? ", True), (4, "yes", False), (5, "!", False)])
    return [
        Event(kind="prompt", worker="all", text="What is 17 * 23?", data={"tokens": 12}),
        *sorted(alice + bob, key=lambda e: e.step or 0),
        Event(kind="check", worker="Bob", step=4, data={"answer": "yes"}),
        Event(kind="step", worker="Alice", step=5, text="17*23 = 391. So \\boxed{391}"),
        Event(kind="answer", worker="Alice", step=5, text="391"),
        Event(kind="answer", worker="Bob", step=6, text="391", data={"finisher": True}),
        Event(kind="answer", worker="team", step=6, text="391"),
    ]


def debate_events() -> list[Event]:
    out = []
    for r in (0, 1):
        for me, other in (("Alice", "Bob"), ("Bob", "Alice")):
            out.append(Event(kind="prompt", worker=me, step=r, text=f"round {r} prompt of {me}",
                             seen=[other] if r else []))
        for me in ("Alice", "Bob"):
            out.append(Event(kind="step", worker=me, step=r, text=f"{me} says 4 in round {r}",
                             data={"tokens": 5, "finish_reason": "stop"}))
    out += [Event(kind="answer", worker="Alice", text="4"), Event(kind="answer", worker="Bob", text="4"),
            Event(kind="answer", worker="team", text="4")]
    return out


def chat_events() -> list[Event]:
    """Alice writes to Bob only; Carol's next prompt holds Bob's texts, not Alice's."""
    return [
        *(Event(kind="prompt", worker=n, step=0, text=f"{n}, you are a node", seen=[])
          for n in ("Alice", "Bob", "Carol")),
        Event(kind="step", worker="Alice", step=0, text='{"Bob": "' + HOSTILE + '"}'),
        Event(kind="message", worker="Alice", step=0, text=HOSTILE, recipients=["Bob"]),
        Event(kind="message", worker="Bob", step=0, text="hi Carol", recipients=["Carol"]),
        Event(kind="error", worker="Carol", step=0, text="no JSON object", data={"reason": "format"}),
        Event(kind="prompt", worker="Alice", step=1, text="final question", seen=[]),
        Event(kind="prompt", worker="Bob", step=1, text="final question", seen=["Alice"]),
        Event(kind="prompt", worker="Carol", step=1, text="final question", seen=["Bob"]),
        Event(kind="vote", worker="Carol", step=1, text="stop", data={"value": "stop"}),
        Event(kind="answer", worker="team", text="0"),
    ]


def write_run(out: Path) -> Path:
    """The run directory (4 samples); returns it."""
    (out / "traces").mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text('{"name": "viewer-fixture"}')
    samples = [
        (_record("a1", 0, "shared-cache", "math", 2, score=1.0, answer="391",
                 metrics={"patho_loops": 2, "patho_drift": 0, "sequential_passes": 6, "tokens": 14,
                          "correct": 1.0},
                 info={"finished_by": "answer"}), shared_cache_events()),
        (_record("b2", 1, "debate", "math", 2, score=0.0, answer="4",
                 metrics={"sequential_passes": 10, "tokens": 20, "agreement": 1.0}), debate_events()),
        (_record("c3", 2, "chat", "graph(kind=consensus)", 3, score=1.0, answer="0",
                 metrics={"patho_format_failures": 1}), chat_events()),
        (_record("d4", 3, "debate", "countdown", 2, error="RuntimeError: " + HOSTILE),
         [Event(kind="error", worker="lab", text="RuntimeError", data={"reason": "exception"})]),
    ]  # fmt: skip
    for record, events in samples:
        record["events"] = len(events)
        write_sample(out, ResultRecord.model_validate(record), events)
    return out
