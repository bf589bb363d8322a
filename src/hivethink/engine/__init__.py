r"""The engine: N workers decoding in lockstep over one shared, paged KV cache.

Modules, each importing only those below it (arrows: imports)::

    hive/        HiveJob (the Hogwild! policy as one job) and Hive; config, prompt, layouts,
      |          policy, finisher, results
      v
    scheduler    Engine: one loop (schedule, run, update); Job, GenJob; the one owner of pages
      |   \---> sampling, text
      v
    forward      Runner: one pass over the cache       bench ---> forward, attention_backends
      |   \---> graphs (decode steps as CUDA graphs) ---> attention_cuda, buckets
      |   \---> attention_backends ---> attention (rows, writes, BlocksAttention)
      |                             \--> attention_cuda (FlexAttention) ---> attention
      v
    cache        blocks, pages, prefix cache ---> rope

What callers use is exported here.
"""

from __future__ import annotations

from hivethink.engine.hive import Hive, HiveConfig, HiveJob, HiveResult
from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import Engine, EngineStats, GenJob, Job, run_generations
from hivethink.engine.text import chat_ids

__all__ = ["Engine", "EngineStats", "GenJob", "Hive", "HiveConfig", "HiveJob", "HiveResult", "Job", "SamplingParams",
           "chat_ids", "run_generations"]
