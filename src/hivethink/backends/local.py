"""The local backend: the engine itself, one per backend, alive for the whole run.

Every ``generate`` call submits its requests to the backend's engine and waits; the engine's loop
thread decodes the rows of every call in flight in the same forward passes, so samples that run
concurrently (``lab run --concurrency K``) share passes, and a conversation that grows by a turn
prefills only the new turn (the prefix cache). Safe to call from several threads.

:meth:`LocalBackend.score` reads log-likelihoods off the engine's own logits: a
:class:`ScoreJob` feeds the prompt (from the prefix cache where it can), then the continuation
one token per pass, and takes ``log_softmax`` of the logits after each token. It is an engine
job like any other (it shares passes with generations in flight); nothing in the engine
changes for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import torch

from hivethink.backends.base import Completion, GenRequest, Score, ScoreRequest
from hivethink.engine.hive import chat_ids
from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import Engine, EngineStats, GenJob, PromptJob
from hivethink.errors import HivethinkError
from hivethink.models.loader import LoadedModel, load_model


class ScoreJob(PromptJob):
    """The log-probability of each ``continuation`` token after ``prompt`` and the tokens before
    it. The prompt is written in chunks (the last chunk's logits give the first continuation
    token's probability), then each continuation token but the last is fed alone, one pass each.
    """

    prefix = "score"

    def __init__(self, prompt: list[int], continuation: list[int], chunk: int = 128):
        if not prompt or not continuation:
            raise HivethinkError("a score needs a non-empty prompt and continuation")
        super().__init__(prompt, chunk)
        self.continuation = list(continuation)
        self.logprobs: list[float] = []

    def restart(self) -> None:
        super().restart()
        self.logprobs = []

    def next_token(self) -> int:
        return self.continuation[len(self.logprobs) - 1]

    def update(self, logits: list[torch.Tensor | None], positions: list[int]) -> None:
        if self.wrote() == "chunk":
            return
        [lg] = logits
        assert lg is not None
        token = self.continuation[len(self.logprobs)]
        self.logprobs.append(float(torch.log_softmax(lg.float(), dim=-1)[token]))
        if len(self.logprobs) == len(self.continuation):
            self.finish("stop")


def score_ids(tokenizer: Any, prompt: str, continuation: str) -> tuple[list[int], list[int]]:
    """(prompt ids, continuation ids) as lm-evaluation-harness splits them: trailing spaces of
    the prompt move to the continuation, the prompt is encoded alone and the continuation is
    what encoding both together adds after it. An empty prompt is the tokenizer's BOS (else its
    EOS) token, so that the first continuation token has a probability."""
    moved = len(prompt) - len(prompt.rstrip(" "))
    if moved:
        prompt, continuation = prompt[:-moved], prompt[-moved:] + continuation
    context = list(tokenizer.encode(prompt)) if prompt else []
    whole = list(tokenizer.encode(prompt + continuation))
    if whole[: len(context)] == context:
        rest = whole[len(context) :]
    else:  # the boundary merged into one token: encode the continuation on its own
        rest = list(tokenizer.encode(continuation, add_special_tokens=False))
    if not context:
        start = getattr(tokenizer, "bos_token_id", None)
        start = start if start is not None else getattr(tokenizer, "eos_token_id", None)
        if start is None:
            raise HivethinkError("cannot score after an empty prompt: the tokenizer has no BOS or EOS token")
        context = [start]
    return context, rest


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

    def _sampling(self, request: GenRequest) -> SamplingParams:
        """The request's sampling; without a temperature, the model's generation config (the
        local counterpart of a provider's default)."""
        if request.temperature is None:
            return SamplingParams.from_generation_config(self.model.generation, request.seed or 0)
        return SamplingParams(request.temperature, request.top_p, seed=request.seed or 0)

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        if not requests:
            return []
        engine = self.engine
        t0 = time.perf_counter()
        jobs = [GenJob(chat_ids(self.model.tokenizer, r.messages), max_tokens=r.max_tokens,
                       sampling=self._sampling(r), stop=r.stop,
                       end_ids=engine.end_ids, tokenizer=engine.tok, json_schema=r.json_schema)
                for r in requests]
        engine.run_jobs(jobs)
        wall = time.perf_counter() - t0
        return [Completion(text=j.text, prompt_tokens=j.prompt_tokens, completion_tokens=len(j.tokens), cached_tokens=j.cached_tokens,
                           wall_s=wall, finish_reason="error" if j.finish_reason == "error" else
                           (j.finish_reason or "length"), error=j.error)
                for j in jobs]

    def score(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        """Exact log-likelihoods from the engine's logits (see :class:`ScoreJob`)."""
        if not requests:
            return []
        engine = self.engine
        out: list[Score | None] = [None] * len(requests)
        jobs: list[tuple[int, ScoreJob]] = []
        for i, r in enumerate(requests):
            try:
                prompt, cont = score_ids(self.model.tokenizer, r.prompt, r.continuation)
                jobs.append((i, ScoreJob(prompt, cont)))
            except HivethinkError as err:
                out[i] = Score(error=str(err))
        engine.run_jobs([j for _, j in jobs])
        for i, job in jobs:
            if job.finish_reason != "stop":
                out[i] = Score(error=job.error or f"scoring ended: {job.finish_reason}")
            else:
                out[i] = Score(logprob=sum(job.logprobs), tokens=len(job.logprobs),
                               prompt_tokens=len(job.prompt), token_logprobs=list(job.logprobs))
        return [s if s is not None else Score(error="not scored") for s in out]
