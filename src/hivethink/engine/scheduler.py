"""Continuous batching: one thread owns a runner; requests join between passes and leave when done.

Every pass decodes one token for every running request in one batched forward. A new request is
prefilled into its own prompt block as soon as there is room in the batch (at most ``max_batch``
rows); a finished or cancelled request frees its blocks (pages return to the cache). Callers get
a :class:`Stream` that yields text pieces as they are sampled.

Multi-worker (hive) jobs run on their own cache in the caller's thread, one at a time.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from hivethink.engine.cache import Block
from hivethink.engine.forward import Runner
from hivethink.engine.hive import Hive, HiveConfig, HiveResult
from hivethink.engine.sampling import SamplingParams, sample_one
from hivethink.errors import HivethinkError
from hivethink.models.loader import LoadedModel

_DONE = object()


@dataclass
class Stream:
    """One request's output: iterate for text pieces; then ``text``, ``finish_reason``, counts."""

    id: int
    prompt_tokens: int
    max_tokens: int
    sampling: SamplingParams
    stop: list[str]
    prompt: list[int]
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None  # "stop" | "length" | "cancelled" | "error"
    error: str | None = None
    started: float = field(default_factory=time.perf_counter)
    _pieces: queue.Queue = field(default_factory=queue.Queue)
    _cancel: threading.Event = field(default_factory=threading.Event)
    _generator: torch.Generator = field(default_factory=torch.Generator)

    def __iter__(self) -> Iterator[str]:
        while True:
            piece = self._pieces.get()
            if piece is _DONE:
                return
            yield piece

    def result(self) -> str:
        """Block until done; the whole text."""
        for _ in self:
            pass
        return self.text

    def cancel(self) -> None:
        self._cancel.set()


@dataclass
class _Row:
    stream: Stream
    prompt_block: Block
    gen_block: Block
    next_token: int


class Scheduler:
    def __init__(self, model: LoadedModel, *, max_batch: int = 32, max_waiting: int = 256):
        self.model = model
        self.max_batch, self.max_waiting = max_batch, max_waiting
        self.runner = Runner(model)
        self.tok = model.tokenizer
        self.eos = {t for t in (*model.cfg.eos_token_ids, getattr(self.tok, "eos_token_id", None))
                    if t is not None}
        self._waiting: queue.Queue[Stream] = queue.Queue()
        self._rows: list[_Row] = []
        self._ids = itertools.count(1)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._hive_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="hivethink-scheduler", daemon=True)
        self.passes = 0

    # -- public -------------------------------------------------------------------------
    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        else:  # never started: nobody else will finish the waiting requests
            self._drain_waiting()

    @property
    def load(self) -> tuple[int, int]:
        """(running, waiting) requests."""
        return len(self._rows), self._waiting.qsize()

    def submit(self, prompt: list[int], *, max_tokens: int, sampling: SamplingParams,
               stop: list[str] | None = None) -> Stream:
        if self._stop.is_set():
            raise HivethinkError("server shutting down")
        if self._waiting.qsize() >= self.max_waiting:
            raise HivethinkError("server busy: too many waiting requests")
        if not prompt:
            raise HivethinkError("empty prompt")
        s = Stream(id=next(self._ids), prompt_tokens=len(prompt), max_tokens=max_tokens,
                   sampling=sampling, stop=list(stop or []), prompt=list(prompt))
        s._generator.manual_seed(sampling.seed)
        if max_tokens <= 0:  # nothing wanted: finished before it starts
            s.finish_reason = "length"
            s._pieces.put(_DONE)
            return s
        self._waiting.put(s)
        self._wake.set()
        return s

    def run_hive(self, problem: str, config: HiveConfig,
                 on_token: Callable[[str, str], None] | None = None) -> HiveResult:
        """A multi-worker job on its own shared cache; jobs run one at a time."""
        with self._hive_lock:
            return Hive(self.model, config, on_token=on_token).solve(problem)

    # -- the loop -------------------------------------------------------------------------
    def drain(self) -> None:
        """Run passes in the calling thread until every submitted request is finished.

        For batch use without the background thread (``start`` not called)."""
        assert not self._thread.is_alive(), "drain() is for a scheduler whose thread is not running"
        while self._cycle():
            pass

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._cycle():
                self._wake.wait(timeout=0.5)
                self._wake.clear()
        for row in self._rows:
            self._finish(row, "cancelled")
        self._rows = []
        self._drain_waiting()

    def _drain_waiting(self) -> None:
        """Finish every request still waiting (the loop has stopped): none is left hanging."""
        while True:
            try:
                s = self._waiting.get_nowait()
            except queue.Empty:
                return
            s.finish_reason = "cancelled"
            s._pieces.put(_DONE)

    def _cycle(self) -> bool:
        """Admit waiting requests and run one pass; False when there was nothing to run."""
        self._admit()
        if not self._rows:
            return False
        try:
            self._step()
        except Exception as e:  # a failed pass fails its requests, never the server
            for row in self._rows:
                self._finish(row, "error", error=f"{type(e).__name__}: {e}")
            self._rows = []
        return True

    def _admit(self) -> None:
        cache = self.runner.cache
        while len(self._rows) < self.max_batch:
            try:
                s = self._waiting.get_nowait()
            except queue.Empty:
                return
            if s._cancel.is_set():
                s.finish_reason = "cancelled"
                s._pieces.put(_DONE)
                continue
            pb = cache.new_block(f"prompt{s.id}")
            try:
                logits = self.runner.prefill(pb, s.prompt)
                first = sample_one(logits, s.sampling, s._generator)
            except Exception as e:  # this request fails; the loop (and the others) go on
                cache.free_block(pb)
                s.finish_reason, s.error = "error", f"{type(e).__name__}: {e}"
                s._pieces.put(_DONE)
                continue
            row = _Row(s, pb, cache.new_block(f"gen{s.id}"), first)
            if not self._accept(row):
                self._rows.append(row)

    def _accept(self, row: _Row) -> bool:
        """Take the row's sampled token; True when the request is finished."""
        s = row.stream
        if s._cancel.is_set():
            return self._finish(row, "cancelled")
        if row.next_token in self.eos:
            return self._finish(row, "stop")
        s.tokens.append(row.next_token)
        text = self.tok.decode(s.tokens, skip_special_tokens=True)
        cut = min((text.find(x) for x in s.stop if x in text), default=-1)
        if cut >= 0:
            text = text[:cut]
        if len(text) > len(s.text) and text.startswith(s.text):
            s._pieces.put(text[len(s.text):])
        s.text = text
        if cut >= 0:
            return self._finish(row, "stop")
        if len(s.tokens) >= s.max_tokens:
            return self._finish(row, "length")
        return False

    def _finish(self, row: _Row, reason: str, error: str | None = None) -> bool:
        s = row.stream
        s.finish_reason, s.error = reason, error
        cache = self.runner.cache
        for b in (row.prompt_block, row.gen_block):
            if b.id in cache.blocks:
                cache.free_block(b)
        s._pieces.put(_DONE)
        return True

    def _step(self) -> None:
        rows = self._rows
        logits = self.runner.extend([[r.prompt_block, r.gen_block] for r in rows],
                                    [[r.next_token] for r in rows])
        self.passes += 1
        keep = []
        for i, r in enumerate(rows):
            r.next_token = sample_one(logits[i], r.stream.sampling, r.stream._generator)
            if not self._accept(r):
                keep.append(r)
        self._rows = keep
