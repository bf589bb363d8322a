"""Independent batched generation: N unrelated prompts decoded together in one batch.

Each prompt is its own block and each continuation another; a row's view is just
[its prompt, its continuation], so rows never see each other. The loop itself is the
scheduler's (``engine/scheduler.py``), run to completion. This is the local backend of the
lab's text-level protocols (all agents of a round in one batch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import Scheduler
from hivethink.models.loader import LoadedModel


@dataclass
class Generated:
    tokens: list[int]
    text: str
    prompt_tokens: int
    finish_reason: str  # "stop" (end of turn or a stop string) | "length"
    wall_s: float


def generate_batch(model: LoadedModel, prompts: list[list[int]], *, max_tokens: list[int],
                   sampling: list[SamplingParams], stop: list[list[str]] | None = None) -> list[Generated]:
    """Decode every prompt to its end, all rows in each pass: the continuous-batching scheduler
    run to completion in this thread. A row's output depends only on its own prompt and seed."""
    t0 = time.perf_counter()
    n = len(prompts)
    sched = Scheduler(model, max_batch=max(1, n), max_waiting=max(1, n))
    stops = stop or [[] for _ in range(n)]
    streams = [sched.submit(p, max_tokens=m, sampling=sp, stop=st)
               for p, m, sp, st in zip(prompts, max_tokens, sampling, stops, strict=True)]
    sched.drain()
    wall = time.perf_counter() - t0
    for s in streams:
        if s.finish_reason == "error":
            raise RuntimeError(s.error)
    return [Generated(list(s.tokens), s.text, s.prompt_tokens, s.finish_reason or "length", wall)
            for s in streams]
