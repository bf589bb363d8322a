"""All metrics of one sample in one flat dict (the ``metrics`` field of a results line)."""

from __future__ import annotations

from collections.abc import Sequence

from hivethink.metrics.coordination import coordination_metrics
from hivethink.metrics.defects import defect_metrics
from hivethink.metrics.outcome import (
    Metrics,
    ResultLike,
    cost_metrics,
    outcome_metrics,
    protocol_metrics,
)
from hivethink.metrics.pathology import pathology_metrics
from hivethink.metrics.probes import probe_metrics
from hivethink.metrics.selforg import selforg_metrics
from hivethink.tasks.base import Instance, Task
from hivethink.trace import Event


def compute_metrics(
    events: Sequence[Event],
    *,
    task: Task | None = None,
    instance: Instance | None = None,
    result: ResultLike | None = None,
) -> Metrics:
    """Every metric that the inputs allow: coordination and pathologies from the trace; score
    with task, instance and result; cost, protocol facts and the typed outcome's metrics with
    the result; probe metrics when the instance carries a probe; self-organisation facts and the
    dependency graph's defect counts (:mod:`.selforg`, :mod:`.defects`). Values are numbers, None (not
    applicable) or short strings (``redundancy_unit``, an outcome's class such as
    ``game_result``)."""
    events = list(events)
    metrics: Metrics = {}
    if result is not None:
        if task is not None and instance is not None:
            metrics |= outcome_metrics(task, instance, result.answer, result.outcome)
            metrics |= probe_metrics(events, task, instance, result.answer)
        metrics |= cost_metrics(result)
        metrics |= protocol_metrics(result.info)
        if result.outcome is not None:
            metrics |= result.outcome.metrics()
    metrics |= coordination_metrics(events, task, instance)
    metrics |= pathology_metrics(events, instance)
    metrics |= selforg_metrics(events, result.info if result is not None else None)
    metrics |= defect_metrics(events, task, instance)
    return metrics
