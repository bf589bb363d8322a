"""The local backend: the engine itself, one per backend, alive for the whole run.

Every ``generate`` call submits its requests to the backend's engine and waits; the engine's loop
thread decodes the rows of every call in flight in the same forward passes, so samples that run
concurrently (``lab run --concurrency K``) share passes, and a conversation that grows by a turn
prefills only the new turn (the prefix cache). Safe to call from several threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from hivethink.backends.base import Completion, GenRequest
from hivethink.engine.hive import chat_ids
from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import Engine, EngineStats, GenJob
from hivethink.models.loader import LoadedModel, load_model


class LocalBackend:
    def __init__(self, model: str | None = None, dtype: str = "auto", device: str = "cpu",
                 loaded: LoadedModel | None = None, max_rows: int = 64, max_pages: int | None = None,
                 weights: str = "exact"):
        """``weights``: exact | int4 | int8 | auto (models/weights.py)."""
        self.model = loaded or load_model(model, dtype=dtype, device=device, weights=weights)
        self.name = f"local:{model or 'smollm2'}"
        self.max_rows, self.max_pages = max_rows, max_pages
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The backend's engine, its loop thread started on first use."""
        with self._lock:
            if self._engine is None:
                self._engine = Engine(self.model, max_rows=self.max_rows, max_pages=self.max_pages).start()
            return self._engine

    @property
    def engine_stats(self) -> EngineStats | None:
        """The engine's counters (passes, rows, tokens), None before its first use."""
        return None if self._engine is None else self._engine.stats

    def forget_cached(self) -> None:
        """Empty the prefix cache of what no running job holds (a benchmark's cold start)."""
        with self._lock:
            if self._engine is not None:
                self._engine.forget_cached()

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.close()
                self._engine = None

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        if not requests:
            return []
        engine = self.engine
        t0 = time.perf_counter()
        jobs = [GenJob(chat_ids(self.model.tokenizer, r.messages), max_tokens=r.max_tokens,
                       sampling=SamplingParams(r.temperature, r.top_p, seed=r.seed or 0), stop=r.stop,
                       end_ids=engine.end_ids, tokenizer=engine.tok, json_schema=r.json_schema)
                for r in requests]
        engine.run_jobs(jobs)
        wall = time.perf_counter() - t0
        return [Completion(text=j.text, prompt_tokens=j.prompt_tokens, completion_tokens=len(j.tokens),
                           wall_s=wall, finish_reason="error" if j.finish_reason == "error" else
                           (j.finish_reason or "length"), error=j.error)
                for j in jobs]
