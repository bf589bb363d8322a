"""Metrics: pure functions of a trace (plus the task and instance where a score is needed).

:func:`compute_metrics` gives every metric of one sample as a flat dict; the modules hold the
definitions: :mod:`.outcome` (score, cost, protocol facts), :mod:`.coordination` (redundancy,
division of labour, references, checks and pivots, agreement, roles), :mod:`.pathology`
(loops, repetition, role flips, flakes, drift, format failures), :mod:`.probes` (common ground
and error propagation), :mod:`.mast` (the MAST taxonomy, its judge prompt and the reading of
the reply; the judge itself, which calls a model, is :func:`hivethink.lab.judge.mast_judge`).
"""

from hivethink.metrics.compute import compute_metrics
from hivethink.metrics.coordination import (
    agreement_metrics,
    check_metrics,
    check_pivots,
    coordination_metrics,
    division_of_labour,
    redundancy,
    references,
    role_metrics,
    work_units,
)
from hivethink.metrics.mast import MAST_GROUPS, MAST_MODES, parse_mast_reply
from hivethink.metrics.outcome import Metrics, cost_metrics, outcome_metrics, protocol_metrics
from hivethink.metrics.pathology import (
    is_drift,
    is_flake,
    is_instruction,
    is_loop,
    is_repetitive,
    pathology_metrics,
)
from hivethink.metrics.probes import probe_metrics
from hivethink.metrics.views import agent_names, final_answers, worker_outputs

__all__ = [
    "MAST_GROUPS",
    "MAST_MODES",
    "Metrics",
    "agent_names",
    "agreement_metrics",
    "check_metrics",
    "check_pivots",
    "compute_metrics",
    "coordination_metrics",
    "cost_metrics",
    "division_of_labour",
    "final_answers",
    "is_drift",
    "is_flake",
    "is_instruction",
    "is_loop",
    "is_repetitive",
    "outcome_metrics",
    "parse_mast_reply",
    "pathology_metrics",
    "probe_metrics",
    "protocol_metrics",
    "redundancy",
    "references",
    "role_metrics",
    "work_units",
    "worker_outputs",
]
