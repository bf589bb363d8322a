"""The engine: one scheduler loop over jobs (schedule, run, update), continuous batching.

A *job* is a unit of decoding work with its own rows and its own per-pass policy: a plain
generation (:class:`GenJob`, one row) or a hive (``engine.hive.HiveJob``, N rows in lockstep plus
forced tokens, step moves, checks, stop and finisher). Every pass gathers the rows of every
running job into one forward pass (up to ``max_rows`` rows and ``max_pass_tokens`` tokens), then
hands each job the logits of its rows. Jobs join and leave between passes; a job's rows are taken
all or none (a hive's workers stay in lockstep).

Pages have one owner, the engine (vLLM v1's shape). Jobs never touch the cache: they declare
what they need (:class:`NewBlock`: blocks to create, a prompt's cached prefix taken; an
:class:`Intent` per pass: rows to write and blocks to :class:`Move`), and the engine creates the
blocks, takes their pages, writes, commits and frees them when the job ends. Prompts are shared
by content (the cache's prefix cache). Under a page budget (``max_pages``) the engine takes a
pass's pages before running it; when they run out it preempts the youngest job (its blocks are
released and it restarts later from its beginning) and tries again. Results do not change: a
job is seeded per row and what a row computes does not depend on the rest of the batch. A job
that cannot fit even alone fails with a clear error; the others run on.

The loop runs in a background thread (:meth:`Engine.start`; callers :meth:`submit` and wait) or
in the caller's thread (:meth:`Engine.run_jobs`, :meth:`drain`).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from hivethink.engine.attention import RowSpec, reserve_rows, row_geometry
from hivethink.engine.cache import Block, PagesExhausted
from hivethink.engine.forward import Runner
from hivethink.engine.sampling import SamplingParams, new_generator, sample
from hivethink.errors import HivethinkError
from hivethink.memory import return_freed_memory
from hivethink.models.loader import LoadedModel

_DONE = object()


@dataclass
class PassRow:
    """What one row of a job feeds in a pass."""

    view: list[Block]
    tokens: list[int]
    want_logits: bool = True
    visibility: str = "instant"
    self_contained: bool = False  # computed with view == [its block]: its pages become cacheable


@dataclass
class NewBlock:
    """A block a job wants created: empty, or (``prefix`` given) self-contained and already
    holding the longest cached prefix of ``prefix`` (the job writes the rest)."""

    name: str
    prefix: list[int] | None = None


@dataclass
class Move:
    """``src``'s tokens appended to ``dst`` (keys re-rotated once); ``src`` is left empty, to be
    written again (a finished step joins the common history; the worker starts its next step)."""

    src: Block
    dst: Block


@dataclass
class Intent:
    """What a job wants from the next pass: its blocks moved first, then its rows written."""

    rows: list[PassRow]
    moves: list[Move] = field(default_factory=list)


@dataclass(frozen=True)
class JobHost:
    """What a job is given of the engine: never its cache (pages are the engine's alone)."""

    device: torch.device
    end_ids: frozenset[int]  # the model's end-of-sequence tokens
    grammar: Callable[[dict[str, Any]], Grammar]  # a JSON Schema as a token mask


class Job(ABC):
    """Base of every job. The engine calls, from its loop thread only: ``attach`` at admission,
    ``wants``/``given`` whenever the job may need new blocks, ``intent`` each pass, ``update``
    after a pass it took part in, ``restart`` after a preemption (its blocks already released)."""

    def __init__(self) -> None:
        self.id = 0  # set by the engine (also the attention group of its rows)
        self.finish_reason: str | None = None  # "stop" | "length" | "cancelled" | "error" | ...
        self.error: str | None = None
        self.started = time.perf_counter()
        self.passes = 0  # forward passes this job took part in (prefill included)
        self._done = threading.Event()
        self._cancel = threading.Event()

    # -- the engine's side ------------------------------------------------------------------
    def attach(self, host: JobHost) -> None:  # noqa: B027  (an optional hook)
        """Admitted (again, after a preemption): what the job needs of the engine. May raise
        (the job fails alone) or finish the job (nothing to do)."""

    def wants(self) -> list[NewBlock]:
        """The blocks the job needs before its next pass ([]: none). Must not change state."""
        return []

    def given(self, blocks: list[Block]) -> None:  # noqa: B027  (jobs that want no blocks)
        """The blocks of :meth:`wants`, created by the engine, in the same order."""

    @abstractmethod
    def intent(self) -> Intent | None:
        """What to feed in the next pass (None: nothing this pass). Must not change state: the
        engine may defer the job and ask again."""

    @abstractmethod
    def update(self, logits: list[torch.Tensor | None], positions: list[int]) -> None:
        """The pass ran: per row, the logits after its last token (None where not wanted) and the
        view position of its first new token."""

    @abstractmethod
    def restart(self) -> None:
        """Back to the beginning (after preemption: the engine has released the blocks)."""

    def on_finish(self) -> None:  # noqa: B027  (an optional hook: most jobs need none)
        """Called once when the job ends (in the loop thread), before waiters wake up."""

    # -- everyone's side ------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done.is_set()

    def finish(self, reason: str, error: str | None = None) -> None:
        if self.done:
            return
        self.finish_reason, self.error = reason, error
        try:
            self.on_finish()
        finally:
            self._done.set()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def width(self) -> int:
        """The most rows the job feeds in one pass (for the engine's row budget)."""
        return 1


class PromptJob(Job):
    """A job over one block of its own: its prompt written in chunks of at most ``chunk`` tokens
    (logits wanted after the last one only; a prefix-cache hit skips what the cache held), then
    one token a pass, :meth:`next_token`. Plain generations and scores are both this."""

    prefix = "job"  # its block's name: prefix + job id

    def __init__(self, prompt: list[int], chunk: int = 128):
        super().__init__()
        self.prompt, self.chunk = list(prompt), chunk
        self.cached_tokens = 0  # prompt tokens taken from the prefix cache
        self._block: Block | None = None
        self._fed = 0  # prompt tokens written

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt)

    def wants(self) -> list[NewBlock]:
        return [NewBlock(f"{self.prefix}{self.id}", self.prompt)] if self._block is None and not self.done else []

    def given(self, blocks: list[Block]) -> None:
        [self._block] = blocks
        self._fed = self.cached_tokens = self._block.length

    def restart(self) -> None:
        self._block, self._fed = None, 0

    @abstractmethod
    def next_token(self) -> int:
        """The token the next pass writes, once the prompt is written."""

    def intent(self) -> Intent | None:
        if self._block is None:
            return None
        if self._fed < len(self.prompt):
            piece = self.prompt[self._fed : self._fed + self.chunk]
            last = self._fed + len(piece) == len(self.prompt)
            return Intent([PassRow([self._block], piece, want_logits=last, self_contained=True)])
        return Intent([PassRow([self._block], [self.next_token()], self_contained=True)])

    def wrote(self) -> str:
        """What the pass just run wrote (call once, at the start of ``update``): "chunk" (a prompt
        chunk that is not the last: no logits), "prompt" (its last chunk) or "token"."""
        if self._fed >= len(self.prompt):
            return "token"
        self._fed = min(len(self.prompt), self._fed + self.chunk)
        return "prompt" if self._fed == len(self.prompt) else "chunk"


class GenJob(PromptJob):
    """A plain generation: a prompt, then sampled tokens until an end token, a stop string, the
    token cap or the end of a JSON schema. Iterate it for text pieces as they are sampled."""

    prefix = "gen"

    def __init__(self, prompt: list[int], *, max_tokens: int, sampling: SamplingParams,
                 stop: Sequence[str] = (), end_ids: Iterable[int] = (), tokenizer: Any = None,
                 json_schema: dict[str, Any] | None = None, chunk: int = 128, stream: bool = False):
        if not prompt:
            raise HivethinkError("empty prompt")
        super().__init__(prompt, chunk)
        self.max_tokens, self.sampling = max_tokens, sampling
        self.stop, self.end_ids, self.tok = list(stop), set(end_ids), tokenizer
        self.json_schema, self.streaming = json_schema, stream
        self.tokens: list[int] = []
        self.text = ""
        self._pieces: queue.Queue[Any] = queue.Queue()
        self._emitted = 0  # characters already streamed (a restart does not stream them again)
        self._next: int | None = None  # sampled, not yet written
        self._gen = new_generator(sampling.seed)
        self._grammar: Any = None
        self._cut = False  # a stop string ended the text

    def attach(self, host: JobHost) -> None:
        self._gen = new_generator(self.sampling.seed, host.device)
        if self.json_schema is not None and self._grammar is None:
            self._grammar = host.grammar(self.json_schema)
        if self.max_tokens <= 0:
            self.finish("length")

    def restart(self) -> None:
        super().restart()
        self._next, self._cut = None, False
        self.tokens, self.text = [], ""
        if self._grammar is not None:
            self._grammar.reset()

    def next_token(self) -> int:
        assert self._next is not None
        return self._next

    def update(self, logits: list[torch.Tensor | None], positions: list[int]) -> None:
        wrote = self.wrote()
        if wrote == "chunk":
            return
        if wrote == "token":
            self.tokens.append(self.next_token())
        [lg] = logits
        assert lg is not None
        banned = [self._grammar.banned()] if self._grammar is not None else None
        token = int(sample(lg[None], [self.sampling], [self._gen], banned)[0])
        if self._grammar is not None:
            self._grammar.consume(token)
        self._accept(token)

    def _accept(self, token: int) -> None:
        if token in self.end_ids:
            self.finish("stop")
            return
        self._next = token
        if self.stop or self.streaming:
            text = self.tok.decode(self.tokens + [token], skip_special_tokens=True)
            cut = min((text.find(x) for x in self.stop if x in text), default=-1)
            if cut >= 0:
                self.tokens.append(token)
                self._cut = True
                self._stream(text[:cut])
                self.finish("stop")
                return
            self._stream(text)
        if len(self.tokens) + 1 >= self.max_tokens:
            self.tokens.append(token)
            self.finish("length")

    def _stream(self, text: str) -> None:
        """Send the new part of the text (never again what a restart regenerates)."""
        if self.streaming and len(text) > self._emitted and text.startswith(self.text[: self._emitted]):
            self._pieces.put(text[self._emitted :])
            self._emitted = len(text)
        self.text = text

    def on_finish(self) -> None:
        if not self._cut and self.tok is not None:
            self.text = self.tok.decode(self.tokens, skip_special_tokens=True)
        if self.streaming:
            if len(self.text) > self._emitted:
                self._pieces.put(self.text[self._emitted :])
            self._pieces.put(_DONE)

    # -- a stream of text pieces (the server) ------------------------------------------------
    def __iter__(self) -> Iterator[str]:
        while True:
            piece = self._pieces.get()
            if piece is _DONE:
                return
            yield piece

    def result(self) -> str:
        self.wait()
        return self.text


@dataclass
class EngineStats:
    passes: int = 0
    rows: int = 0  # rows summed over passes
    tokens: int = 0  # tokens fed, summed over passes
    chunk_tokens: int = 0  # of those, fed by rows of more than one token (prompt chunks, forced text)
    busy_s: float = 0.0  # wall time of the passes: forward, then each job's update (sampling)
    chunk_busy_s: float = 0.0  # of that, passes that fed a row of more than one token
    preemptions: int = 0
    heap_trims: int = 0  # times the loop handed freed heap back to the OS on going idle
    started: float = field(default_factory=time.perf_counter)


class Engine:
    """One model, one cache, one loop. Thread-safe ``submit``; the loop runs in one thread."""

    def __init__(self, model: LoadedModel, *, max_rows: int = 64, max_pass_tokens: int = 1024,
                 max_pages: int | None = None, page_size: int = 64, attention: str | None = None,
                 prefix_cache: bool = True, max_waiting: int = 4096, batch_invariant: bool = True,
                 keep_bytes: int | None = None):
        if max_rows < 1 or max_pass_tokens < 1:
            raise HivethinkError("max_rows and max_pass_tokens must be positive")
        if max_pages is not None and max_pages < 2:
            raise HivethinkError(f"a page budget of {max_pages} pages cannot hold any job (need at least 2)")
        self.model = model
        self.tok = model.tokenizer
        self.runner = Runner(model, page_size=page_size, max_pages=max_pages, attention=attention,
                             prefix_cache=prefix_cache, batch_invariant=batch_invariant, keep_bytes=keep_bytes)
        self.cache = self.runner.cache
        self.device = model.decoder.device
        self.max_rows, self.max_pass_tokens, self.max_waiting = max_rows, max_pass_tokens, max_waiting
        self.end_ids = {t for t in (*model.cfg.eos_token_ids, getattr(self.tok, "eos_token_id", None))
                        if t is not None}
        self.host = JobHost(self.device, frozenset(self.end_ids), self.grammar)  # all a job sees of the engine
        self.stats = EngineStats()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: list[Job] = []
        self._running: list[Job] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._step_lock = threading.Lock()  # one driver of the loop at a time
        self._held: dict[int, list[Block]] = {}  # job id -> the blocks the engine created for it
        self._grammar_tok: Any = None
        # the loop is idle and has handed back what its last burst of work freed (servers report it)
        self.settled = True

    # -- public -------------------------------------------------------------------------------
    def start(self) -> Engine:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="hivethink-engine", daemon=True)
            self._thread.start()
        return self

    @property
    def threaded(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._lock:
            jobs, self._waiting, self._running = self._waiting + self._running, [], []
        for job in jobs:
            self._release(job)
            job.finish("cancelled")

    @property
    def load(self) -> tuple[int, int]:
        """(running, waiting) jobs."""
        return len(self._running), len(self._waiting)

    @property
    def passes(self) -> int:
        return self.stats.passes

    def submit(self, job: Job) -> Job:
        if self._stop.is_set():
            raise HivethinkError("the engine is shutting down")
        with self._lock:
            if len(self._waiting) >= self.max_waiting:
                raise HivethinkError("server busy: too many waiting requests")
            job.id = next(self._ids)
            self._waiting.append(job)
        self._wake.set()
        return job

    def run_jobs(self, jobs: Sequence[Job]) -> None:
        """Submit ``jobs`` and return when all are done: waits on the loop thread if it runs,
        else runs the loop in this thread."""
        for job in jobs:
            self.submit(job)
        if self.threaded:
            for job in jobs:
                job.wait()
        else:
            while not all(j.done for j in jobs):
                if not self.step():
                    break

    def drain(self) -> None:
        """Run passes in the calling thread until every submitted job is done."""
        assert not self.threaded, "drain() is for an engine whose thread is not running"
        while self.step():
            pass

    def generate(self, prompt: list[int], *, max_tokens: int, sampling: SamplingParams,
                 stop: Sequence[str] = (), json_schema: dict[str, Any] | None = None,
                 stream: bool = False) -> GenJob:
        """A plain generation job, submitted (not waited for)."""
        job = GenJob(prompt, max_tokens=max_tokens, sampling=sampling, stop=stop, end_ids=self.end_ids,
                     tokenizer=self.tok, json_schema=json_schema, stream=stream)
        self.submit(job)
        return job

    def grammar(self, schema: dict[str, Any]) -> Grammar:
        if self._grammar_tok is None:
            import llguidance.hf

            self._grammar_tok = llguidance.hf.from_tokenizer(self.tok, n_vocab=self.model.cfg.vocab_size)
        return Grammar(self._grammar_tok, schema, self.model.cfg.vocab_size, self.device)

    # -- the loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.step():
                self.settled = False
                continue
            if not self.settled:  # the work just ran out: hand back the KV pages and the heap its
                # passes freed (what a server holds between bursts; a few ms, once per burst)
                with self._step_lock:
                    self.cache.release()
                return_freed_memory()
                self.stats.heap_trims += 1
                self.settled = True
            self._wake.wait(timeout=0.5)
            self._wake.clear()

    def forget_cached(self) -> int:
        """Drop the prompts cached for jobs that have ended (between passes) -> pages dropped."""
        with self._step_lock:
            return self.cache.forget_idle()

    def step(self) -> bool:
        """Admit, run one pass, update. False when there was nothing to do."""
        with self._step_lock:
            return self._step()

    def _step(self) -> bool:
        self._admit()
        with self._lock:
            running = list(self._running)
        for job in running:
            if job.cancelled:
                self._end(job, "cancelled")
        running = [j for j in running if not j.done]
        if not running:
            with self._lock:
                return bool(self._waiting)
        chosen: list[tuple[Job, Intent]] = []
        n_rows = n_tokens = 0
        for job in running:
            self._provide(job)
            intent = job.intent()
            if intent is None or not intent.rows:
                continue
            t = sum(len(r.tokens) for r in intent.rows)
            if chosen and (n_rows + len(intent.rows) > self.max_rows or n_tokens + t > self.max_pass_tokens):
                continue  # next pass: the oldest jobs go first
            chosen.append((job, intent))
            n_rows, n_tokens = n_rows + len(intent.rows), n_tokens + t
        if not chosen:
            return False
        chosen = self._prepare(chosen)
        if not chosen:
            return True
        specs: list[RowSpec] = []
        feed: list[list[int]] = []
        want: list[bool] = []
        for job, intent in chosen:
            for r in intent.rows:
                specs.append(RowSpec(r.view, len(r.tokens), job.id, r.visibility))
                feed.append(r.tokens)
                want.append(r.want_logits)
        positions = [g.qpos for g in row_geometry(specs)]  # before the pass writes (it moves lengths)
        t0 = time.perf_counter()
        try:
            logits = self.runner.forward(specs, feed, logits_for=want)
        except Exception as e:  # a failed pass fails its jobs, never the loop
            for job, _ in chosen:
                self._end(job, "error", f"{type(e).__name__}: {e}")
            return True
        self.stats.passes += 1
        self.stats.rows += len(specs)
        self.stats.tokens += sum(len(t) for t in feed)
        chunk = sum(len(t) for t in feed if len(t) > 1)
        self.stats.chunk_tokens += chunk
        at = 0
        for job, intent in chosen:
            for r in intent.rows:
                self.cache.commit(r.view[-1], r.tokens, self_contained=r.self_contained)
            n = len(intent.rows)
            part, where = logits[at : at + n], positions[at : at + n]
            at += n
            job.passes += 1
            try:
                job.update(part, where)
            except Exception as e:  # a failing policy fails its own job only
                self._end(job, "error", f"{type(e).__name__}: {e}")
                continue
            if job.done:
                self._end(job, job.finish_reason or "stop")
        took = time.perf_counter() - t0
        self.stats.busy_s += took
        if chunk:
            self.stats.chunk_busy_s += took
        return True

    def _admit(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        keep: list[Job] = []
        deferred: list[Job] = []
        rows_used = sum(j.width for j in self._running if not j.done)
        for job in waiting:
            if job.cancelled:
                job.finish("cancelled")
                continue
            if keep:  # first come, first admitted
                keep.append(job)
                continue
            if any(w.prefix and self.cache.prefix_pending(w.prefix) for w in job.wants()):
                deferred.append(job)  # its prefix is being prefilled: admitted once it is cached
                continue
            n = job.width
            if n > self.max_rows:
                job.finish("error", f"the job has {n} rows, more than the engine's {self.max_rows}")
                continue
            if self._running and rows_used + n > self.max_rows:
                keep.append(job)
                continue
            try:
                job.attach(self.host)
                if not job.done:
                    self._provide(job)
            except Exception as e:
                self._release(job)
                job.finish("error", f"{type(e).__name__}: {e}")
                continue
            if job.done:  # nothing to do (e.g. no tokens wanted)
                self._release(job)
                continue
            rows_used += n
            with self._lock:
                self._running.append(job)
        if keep or deferred:
            with self._lock:
                self._waiting = deferred + keep + self._waiting

    def _provide(self, job: Job) -> None:
        """Create the blocks the job wants now (its prompt's cached prefix taken) and hand them over."""
        wants = job.wants()
        if not wants:
            return
        blocks = [self.cache.new_block(w.name) if w.prefix is None else self.cache.block_with_prefix(w.name, w.prefix)
                  for w in wants]
        self._held.setdefault(job.id, []).extend(blocks)
        job.given(blocks)

    def _prepare(self, chosen: list[tuple[Job, Intent]]) -> list[tuple[Job, Intent]]:
        """Do the pass's moves and take its pages, job by job (the only place pages are taken for
        writing). Out of pages: preempt the youngest running job, freeing its blocks, and try the
        same job again; a job that does not fit even alone fails. A retried job's moves that were
        done stay done (moving an emptied block changes nothing), and the pages it already took
        stay with its blocks."""
        cache, i = self.cache, 0
        while i < len(chosen):
            job, intent = chosen[i]
            try:
                for m in intent.moves:
                    cache.move(m.src, m.dst, self.runner.rope)
                reserve_rows(cache, [RowSpec(r.view, len(r.tokens)) for r in intent.rows])
                i += 1
            except PagesExhausted:
                with self._lock:
                    alone = len(self._running) == 1
                    victim = self._running[-1]
                if alone:
                    self._end(victim, "error", f"the job needs more than the page budget "
                                               f"({cache.max_pages} pages of {cache.page_size} tokens)")
                else:
                    self._preempt(victim)
                # the youngest comes last in the pass (if at all): the jobs before i keep their place
                chosen = [(j, x) for j, x in chosen if j is not victim]
        return chosen

    def _preempt(self, job: Job) -> None:
        with self._lock:
            self._running.remove(job)
            self._waiting.insert(0, job)
        self._release(job)
        job.restart()
        self.stats.preemptions += 1

    def _release(self, job: Job) -> None:
        for b in self._held.pop(job.id, []):
            if b.id in self.cache.blocks:
                self.cache.free_block(b)

    def _end(self, job: Job, reason: str, error: str | None = None) -> None:
        with self._lock:
            if job in self._running:
                self._running.remove(job)
        self._release(job)
        job.finish(reason, error)


class Grammar:
    """A JSON Schema as a token mask (llguidance, as vLLM and SGLang use it)."""

    def __init__(self, tokenizer: Any, schema: dict[str, Any], vocab: int, device: torch.device):
        import json

        import llguidance
        import llguidance.torch as lt

        grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema))
        self._matcher = llguidance.LLMatcher(tokenizer, grammar)
        if self._matcher.is_error():
            raise HivethinkError(f"bad JSON schema: {self._matcher.get_error()}")
        self._lt, self.vocab, self.device = lt, vocab, device
        self._bits = lt.allocate_token_bitmask(1, tokenizer.vocab_size)
        self._shift = torch.arange(32, dtype=torch.int32)

    def banned(self) -> torch.Tensor:
        """bool [V]: the tokens the schema does not allow next."""
        self._lt.fill_next_token_bitmask(self._matcher, self._bits, 0)
        allowed = ((self._bits[0][:, None] >> self._shift) & 1).view(-1)[: self.vocab].bool()
        return (~allowed).to(self.device)

    def consume(self, token: int) -> None:
        self._matcher.consume_token(token)

    def reset(self) -> None:
        self._matcher.reset()


def run_generations(engine: Engine, prompts: Sequence[list[int]], *, max_tokens: Sequence[int],
                    sampling: Sequence[SamplingParams], stop: Sequence[Sequence[str]] | None = None,
                    json_schema: Sequence[dict[str, Any] | None] | None = None) -> list[GenJob]:
    """Plain generations decoded together (with whatever else the engine runs); waits for all."""
    n = len(prompts)
    stops = stop or [()] * n
    schemas = json_schema or [None] * n
    jobs = [GenJob(p, max_tokens=m, sampling=sp, stop=st, end_ids=engine.end_ids, tokenizer=engine.tok,
                   json_schema=js)
            for p, m, sp, st, js in zip(prompts, max_tokens, sampling, stops, schemas, strict=True)]
    engine.run_jobs(jobs)
    return jobs
