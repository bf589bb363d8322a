"""The engine: N workers decoding in lockstep over one shared, paged KV cache.

Layers, each importing only those below it::

    hive/ (HiveJob: the Hogwild! policy as a job; Hive)   bench (speed, against transformers)
      |                                                     |
    scheduler (Engine: one loop; Job, GenJob; the only owner of pages)
      |
    forward (Runner: one pass)  ->  attention_backends (by name)  ->  attention, attention_cuda
      |                                                                  |
    cache (blocks, pages, prefix cache)  ->  rope                   sampling, text

What callers use is exported here.
"""

from __future__ import annotations

from hivethink.engine.hive import Hive, HiveConfig, HiveJob, HiveResult
from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import Engine, EngineStats, GenJob, Job, run_generations
from hivethink.engine.text import chat_ids

__all__ = ["Engine", "EngineStats", "GenJob", "Hive", "HiveConfig", "HiveJob", "HiveResult", "Job", "SamplingParams",
           "chat_ids", "run_generations"]
