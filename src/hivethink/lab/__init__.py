"""Lab runs: a YAML grid of samples run durably and resumably into a run directory.

:func:`load_config` reads the YAML, :func:`expand_grid` lists the samples with stable keys,
:func:`run_lab` runs the unfinished ones (``results.jsonl`` + ``traces/`` + ``summary.parquet``),
in this process or on Ray workers (``ray:`` / ``--ray``, :mod:`hivethink.lab.distributed`).
"""

from hivethink.lab.config import (
    BudgetSpec,
    LabConfig,
    ModelSpec,
    RaySpec,
    SubstrateSpec,
    TaskSpec,
    load_config,
    parse_config,
    resolve_ray,
)
from hivethink.lab.grid import (
    SOLO_SUBSTRATES,
    Factories,
    Plan,
    Sample,
    default_factories,
    expand_grid,
    sample_key,
    worker_counts,
)
from hivethink.lab.runner import RunSummary, execute_sample, run_lab, run_sample
from hivethink.lab.store import (
    RESULTS,
    SUMMARY,
    TRACES,
    read_results,
    read_trace,
    repair_results,
    write_sample,
    write_summary,
)

__all__ = [
    "RESULTS",
    "SOLO_SUBSTRATES",
    "SUMMARY",
    "TRACES",
    "BudgetSpec",
    "Factories",
    "LabConfig",
    "ModelSpec",
    "Plan",
    "RaySpec",
    "RunSummary",
    "Sample",
    "SubstrateSpec",
    "TaskSpec",
    "default_factories",
    "execute_sample",
    "expand_grid",
    "load_config",
    "parse_config",
    "read_results",
    "read_trace",
    "repair_results",
    "resolve_ray",
    "run_lab",
    "run_sample",
    "sample_key",
    "worker_counts",
    "write_sample",
    "write_summary",
]
