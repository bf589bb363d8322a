"""``shared-cache``: the Hogwild! hive: N workers decode in lockstep over one shared KV cache.

Only the local backend can run it (it needs the model itself, not a text API); the hive joins the
backend's engine, so concurrent samples share its forward passes. Budget: ``budget.passes``
sequential forward passes (and at most ``budget.tokens / workers``: each pass writes one token per
worker), else ``budget.max_tokens * budget.rounds``. ``budget.snapshots`` are honoured from the
same decode (``SampleResult.at_budget``); in tokens they are converted to passes the same way.

Its parameters are the hive's own options, declared once in :class:`HiveConfig` (every field but
what the run decides: workers, budget, seed), with the same defaults; they are checked when the
substrate is built, before any model loads.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from hivethink.backends.base import Backend
from hivethink.engine.hive import Hive, HiveConfig, HiveResult
from hivethink.engine.hive.config import RUN_FIELDS
from hivethink.errors import HivethinkError
from hivethink.substrates.base import Budget, SampleResult
from hivethink.tasks.base import Instance, Task


class _SharedCache:
    name: ClassVar[str] = "shared-cache"
    snapshots: ClassVar[bool] = True
    prompt_books: ClassVar[tuple[str, ...]] = ("hogwild",)

    def options(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        HiveConfig.parse(self.options(), f"substrate {self.name!r}")

    def passes(self, budget: Budget, workers: int) -> tuple[int, tuple[int, ...]]:
        """The pass budget and the snapshot budgets in passes."""
        limits = [b for b in (budget.passes, budget.tokens and max(1, budget.tokens // workers)) if b]
        max_steps = min(limits) if limits else budget.max_tokens * max(1, budget.rounds)
        per = workers if budget.match == "tokens" else 1
        snaps = sorted({max(1, b // per) for b in budget.snapshots} - {max_steps})
        return max_steps, tuple(b for b in snaps if b < max_steps)

    def run(self, instance: Instance, task: Task, backend: Backend, *, workers: int, budget: Budget,
            seed: int) -> SampleResult:
        model = getattr(backend, "model", None)
        if model is None or not hasattr(model, "decoder"):
            raise HivethinkError("the shared-cache substrate needs the local backend (kind: local)")
        max_steps, snaps = self.passes(budget, workers)
        cfg = HiveConfig.parse({**self.options(), "workers": workers, "max_steps": max_steps, "seed": seed,
                                "snapshots": snaps}, f"substrate {self.name!r}")
        hive = Hive(model, cfg, extractor=task.extract, engine=getattr(backend, "engine", None))
        res = hive.solve(instance.prompt)
        out = self._sample(res, cfg)
        per = workers if budget.match == "tokens" else 1
        for b in budget.snapshots:
            out.at_budget[b] = self._sample(res.at_budget[min(max_steps, max(1, b // per))], cfg)
        return out

    @staticmethod
    def _sample(res: HiveResult, cfg: HiveConfig) -> SampleResult:
        return SampleResult(
            events=res.events, answer=res.answer, agent_answers=res.answers,
            sequential_passes=res.steps, sequential_calls=1, tokens=sum(res.tokens.values()),
            prompt_tokens=res.prompt_tokens, cached_tokens=res.cached_tokens, wall_s=res.wall_s,
            info={"finished_by": res.finished_by, "checks": res.checks, "checks_yes": res.checks_yes,
                  "references": res.references, "impersonations": res.impersonations,
                  "forced_tokens": res.forced_tokens, "layout": cfg.layout, "visibility": res.visibility},
        )


# A dataclass whose fields are HiveConfig's (the substrate registry reads a substrate's parameters
# from its dataclass fields).
SharedCache: type[_SharedCache] = dataclasses.make_dataclass(
    "SharedCache",
    [(name, f.annotation, dataclasses.field(default=f.default))
     for name, f in HiveConfig.model_fields.items() if name not in RUN_FIELDS],
    bases=(_SharedCache,))
SharedCache.__module__ = __name__
SharedCache.__doc__ = __doc__
