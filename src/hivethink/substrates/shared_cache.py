"""``shared-cache``: the Hogwild!-style hive: N workers decode over one shared KV cache.

Only the local backend can run it (it needs the model itself, not a text API). The budget of
sequential forward passes is ``budget.passes`` (and at most ``budget.tokens / workers``: each
pass writes one token per worker), else ``budget.max_tokens * budget.rounds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hivethink.backends.base import Backend
from hivethink.engine.hive import Hive, HiveConfig
from hivethink.errors import HivethinkError
from hivethink.substrates.base import Budget, SampleResult
from hivethink.tasks.base import Instance, Task


@dataclass
class SharedCache:
    name = "shared-cache"
    snapshots: ClassVar[bool] = False  # becomes True with the engine's budget snapshots
    layout: str = "combined"
    temperature: float = 0.0
    check_interval: int = 1024  # 0 = off

    def run(self, instance: Instance, task: Task, backend: Backend, *, workers: int, budget: Budget,
            seed: int) -> SampleResult:
        model = getattr(backend, "model", None)
        if model is None or not hasattr(model, "decoder"):
            raise HivethinkError("the shared-cache substrate needs the local backend (kind: local)")
        limits = [b for b in (budget.passes, budget.tokens and max(1, budget.tokens // workers)) if b]
        max_steps = min(limits) if limits else budget.max_tokens * max(1, budget.rounds)
        cfg = HiveConfig(workers=workers, layout=self.layout, max_steps=max_steps,
                         temperature=self.temperature, seed=seed,
                         check_interval=self.check_interval or None)
        hive = Hive(model, cfg, extractor=task.extract)
        res = hive.solve(instance.prompt)
        prompt_tokens = next((e.data.get("tokens", 0) for e in res.events if e.kind == "prompt"), 0)
        return SampleResult(
            events=res.events, answer=res.answer, agent_answers=res.answers,
            sequential_passes=res.steps, sequential_calls=1, tokens=sum(res.tokens.values()),
            prompt_tokens=prompt_tokens, wall_s=res.wall_s,
            info={"finished_by": res.finished_by, "checks": res.checks, "checks_yes": res.checks_yes,
                  "references": res.references, "layout": self.layout},
        )
