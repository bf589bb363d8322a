"""Lab runs: a YAML grid of samples run durably and resumably into a run directory.

:func:`load_config` reads the YAML, :func:`expand_grid` lists the samples with stable keys,
:func:`run_lab` runs the unfinished ones (``results.jsonl`` + ``traces/`` + ``summary.parquet``),
in this process (K samples at a time: :mod:`hivethink.lab.local`) or on Ray workers (``ray:`` /
``--ray``, :mod:`hivethink.lab.distributed`); wherever it runs, a sample is computed by
:func:`hivethink.lab.sample.execute_job`. Each results line is a typed, versioned record
(:mod:`hivethink.lab.records`), from the sample's execution to the writer; the LLM judges
(MAST, quality) are :mod:`hivethink.lab.judge`.
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
    Job,
    Plan,
    Sample,
    default_factories,
    expand_grid,
    sample_key,
    worker_counts,
)
from hivethink.lab.records import SCHEMA_VERSION, ResultRecord
from hivethink.lab.runner import RunSummary, run_lab
from hivethink.lab.sample import execute_job, run_job
from hivethink.lab.store import (
    RESULTS,
    SUMMARY,
    TRACES,
    read_records,
    read_results,
    read_trace,
    repair_results,
    write_sample,
    write_summary,
)

__all__ = [
    "RESULTS",
    "SCHEMA_VERSION",
    "SOLO_SUBSTRATES",
    "SUMMARY",
    "TRACES",
    "BudgetSpec",
    "Factories",
    "Job",
    "LabConfig",
    "ModelSpec",
    "Plan",
    "RaySpec",
    "ResultRecord",
    "RunSummary",
    "Sample",
    "SubstrateSpec",
    "TaskSpec",
    "default_factories",
    "execute_job",
    "expand_grid",
    "load_config",
    "parse_config",
    "read_records",
    "read_results",
    "read_trace",
    "repair_results",
    "resolve_ray",
    "run_job",
    "run_lab",
    "sample_key",
    "worker_counts",
    "write_sample",
    "write_summary",
]
