"""The hive: N workers decoding in lockstep over one shared KV cache, as Hogwild! Inference does.

A hive is one job of the engine (:class:`HiveJob`): N rows plus its per-pass policy. The rules,
from the reference (eqimp/hogwild_llm, ``generation.py`` and ``formatting.py``; protocols.md §1):

- **Prompt.** The collaboration instruction (rules, worked examples, ways to work together) and
  the problem form the *user* turn; the model's chat template adds the generation prompt (for
  reasoning models it opens the thinking block). Written into the common block once; the header
  blocks (the others' section title, the ``<...>`` markers, the own section title) are each
  prefilled as their own block from position 0.
- **Views** (combined layout): ``[common, others-header, the others' unfinished steps in worker
  order each followed by a marker, own-header (marker included), own unfinished step]``.
- **Visibility** (default ``instant``): a worker sees the others' tokens of the same pass.
- **First steps** are seeded: the first worker greets and begins to propose a split; the others
  greet.
- **Steps.** A step ends when a sampled token holds the separator (a blank line) and the step text
  before the last separator ends with one of 16 end-of-sentence characters (and, by default, is
  not inside an open code or math block). The finished step (without that token: it was not fed
  yet) moves to the end of the common block; the token and the next step's header are fed
  together in the next pass, into the worker's new block.
- **Redundancy check.** The fed tokens of all workers (forced ones included) are counted; when a
  worker starts a new step and more than ``check_every`` (256) were fed since the last check, its
  header carries the check question, and the count restarts.
- **Suppressed tokens:** ``#``, BOS, EOS and end-of-thinking. hivethink adds, by default, a guard
  against step headers written inside a step (``guard_headers``); any that slip through are
  counted as impersonations.
- **Stop:** at the first finished step holding an answer, or when the budget of passes is spent.
- **Answer:** one combined transcript (history, then every worker's unfinished step followed by a
  marker) is searched for the answer (rightmost); if it has none, the finisher text is appended
  and up to 16 greedy tokens are decoded once for the team.
- **Snapshots:** the state after each budget in ``snapshots`` is kept, and each gets its own
  answer (finisher included): one run gives the accuracy-vs-budget curve.

Every text shown to the model comes from the ``hogwild`` prompt book (``--prompts DIR``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from hivethink import prompts
from hivethink.answers import majority
from hivethink.engine.attention import VISIBILITY, RowSpec, row_geometry
from hivethink.engine.cache import Block, KVCache
from hivethink.engine.sampling import SamplingParams, new_generator, sample
from hivethink.engine.scheduler import Engine, GenJob, Job, PassRow
from hivethink.engine.text import STEP_SEPARATOR, Extractor, boxed, step_ends, yes_no
from hivethink.errors import HivethinkError
from hivethink.models.loader import LoadedModel
from hivethink.names import FINISHER, NAMES, header_mentions, references, worker_names
from hivethink.trace import Event

HOGWILD = prompts.book("hogwild", {
    "rules": ["count", "workers", "a", "b", "history_title", "others_title", "own_title", "marker"],
    "examples": ["a", "b", "history_title", "others_title", "own_title", "marker", "turn_open",
                 "turn_close", "think"],
    "collaboration": ["a", "b"],
    "collaboration_examples": ["a", "b", "history_title", "others_title", "own_title", "marker",
                               "turn_open", "turn_close", "think"],
    "task": ["workers"],
    "user_turn": ["instruction", "problem"],
    "solo": ["problem"],
    "history_title": [],
    "others_title": [],
    "own_title": [],
    "marker": [],
    "step_header": ["name", "index"],
    "stream_header": ["name"],
    "first_step_lead": ["name"],
    "first_step_other": ["name"],
    "check": [],
    "finisher": [],
})

MAX_WORKERS = len(NAMES)
LAYOUTS = ("combined", "interleaved", "contiguous", "independent")
STEP_END = ("fenced", "reference-code", "text")
SAMPLING = ("model", "greedy")
THINK = "<think>"  # the reference writes it in its examples whatever the model


@dataclass
class HiveConfig:
    workers: int = 2
    layout: str = "combined"
    max_steps: int = 512  # budget: sequential forward passes after the prompt
    visibility: str = "instant"  # "lagged": the others' tokens one pass late (the old behaviour)
    # "model": the model's generation_config (greedy if it has none); "greedy"; a temperature
    # given here overrides both
    sampling: str = "model"
    temperature: float | None = None
    top_p: float | None = None
    seed: int = 0
    check_every: int | None = 256  # fed tokens between redundancy checks (None: no checks)
    finisher_tokens: int = 16
    snapshots: tuple[int, ...] = ()  # smaller budgets (passes) that also get an answer
    examples: bool = True  # the worked examples in the instruction (the reference's add_examples)
    # "reference-code": no open-block check, as generation.py; "text": a blank line however it is
    # tokenized (the published rule needs it in one token)
    step_end: str = "fenced"
    guard_headers: bool = True  # hivethink: keep workers from writing step headers
    page_size: int = 64

    def validate(self) -> None:
        if not 1 <= self.workers <= MAX_WORKERS:
            raise HivethinkError(f"workers must be between 1 and {MAX_WORKERS}, got {self.workers}")
        if self.layout not in LAYOUTS:
            raise HivethinkError(f"unknown layout {self.layout!r} (choose from {', '.join(LAYOUTS)})")
        if self.visibility not in VISIBILITY:
            raise HivethinkError(f"unknown visibility {self.visibility!r} (choose from {', '.join(VISIBILITY)})")
        if self.step_end not in STEP_END:
            raise HivethinkError(f"unknown step-end rule {self.step_end!r} (choose from {', '.join(STEP_END)})")
        if self.sampling not in SAMPLING:
            raise HivethinkError(f"unknown sampling {self.sampling!r} (choose from {', '.join(SAMPLING)})")
        if self.max_steps < 1:
            raise HivethinkError(f"max-steps must be at least 1, got {self.max_steps}")
        t, p = self.temperature, self.top_p
        if (t is not None and not 0 <= t < float("inf")) or (p is not None and not 0 < p <= 1):
            raise HivethinkError("temperature must be >= 0 and top-p in (0, 1]")  # NaN fails too
        if self.check_every is not None and self.check_every < 1:
            raise HivethinkError("the redundancy-check interval must be positive (or off)")
        check_budgets(self.snapshots, self.max_steps)

    def sampling_params(self, model: LoadedModel) -> SamplingParams:
        if self.temperature is not None:
            return SamplingParams(self.temperature, self.top_p if self.top_p is not None else 1.0, seed=self.seed)
        if self.sampling == "greedy":
            return SamplingParams(seed=self.seed)
        base = SamplingParams.from_generation_config(model.generation, self.seed)
        return base if self.top_p is None else SamplingParams(base.temperature, self.top_p, base.top_k, base.min_p,
                                                             self.seed)


def check_budgets(budgets: Sequence[int], limit: int | None = None) -> None:
    """Snapshot budgets: positive, strictly increasing, none above the run's own budget."""
    b = list(budgets)
    if any(x < 1 for x in b) or b != sorted(set(b)):
        raise HivethinkError(f"budgets must be positive and strictly increasing, got {b}")
    if limit is not None and b and b[-1] > limit:
        raise HivethinkError(f"budget {b[-1]} is above the run's budget of {limit} passes")


@dataclass
class HiveResult:
    answer: str | None
    finished_by: str  # "answer" (a finished step) | "transcript" (an unfinished one) | "finisher"
    steps: int  # sequential forward passes used (the budget's unit)
    tokens: dict[str, int]  # generated tokens per worker
    texts: dict[str, str]  # each worker's whole stream (forced text included)
    answers: dict[str, str | None]  # each worker's answer, where it gave one
    references: dict[str, int]  # times each worker named another worker (whole names)
    checks: int  # redundancy checks asked
    checks_yes: int  # ... answered "yes"
    impersonations: dict[str, int]  # step headers of other workers each one wrote
    wall_s: float
    forced_tokens: int = 0  # tokens written by the policy (headers, checks, first steps)
    visibility: str = "instant"
    events: list[Event] = field(default_factory=list)
    at_budget: dict[int, HiveResult] = field(default_factory=dict)  # snapshots (and the budget)

    @property
    def tokens_per_s(self) -> float:
        return sum(self.tokens.values()) / self.wall_s if self.wall_s > 0 else 0.0


TokenCallback = Callable[[str, str], None]  # (worker name, text piece)


class Vocab:
    """What the policy needs to know about every token, computed once per tokenizer: its text
    (so that the hot loop never decodes), and which ids hold the step separator."""

    _cache: dict[int, Vocab] = {}

    def __init__(self, tokenizer: Any, size: int):
        self.tok = tokenizer
        self.texts = [tokenizer.decode([i]) for i in range(size)]
        self.size = size
        self.sep = {i for i, t in enumerate(self.texts) if STEP_SEPARATOR in t}

    @classmethod
    def of(cls, model: LoadedModel) -> Vocab:
        key = id(model.tokenizer)
        v = cls._cache.get(key)
        if v is None or v.tok is not model.tokenizer:
            v = cls._cache[key] = cls(model.tokenizer, model.cfg.vocab_size)
        return v

    def id_of(self, text: str) -> int | None:
        try:
            ids = self.tok.convert_tokens_to_ids(text)
        except Exception:
            return None
        unk = getattr(self.tok, "unk_token_id", None)
        return ids if isinstance(ids, int) and ids != unk and 0 <= ids < self.size else None


class Guard:
    """The suppressed tokens of the reference (``#``, BOS, EOS, end of thinking), plus, with
    ``guard_headers``, the tokens that would write a worker's step header inside a step: a name
    right after ``**`` (or ``**Name`` in one token), and `` [`` right after a name (the tiny
    models write ``Bob [2]:**`` without the stars). Masks are bool [V] on the device (True: may
    not be sampled)."""

    _cache: dict[tuple[int, tuple[str, ...], bool, str], Guard] = {}

    @classmethod
    def of(cls, vocab: Vocab, model: LoadedModel, names: list[str], headers: bool,
           device: torch.device) -> Guard:
        key = (id(vocab), tuple(names), headers, str(device))
        g = cls._cache.get(key)
        if g is None:
            g = cls._cache[key] = cls(vocab, model, names, headers, device)
        return g

    def __init__(self, vocab: Vocab, model: LoadedModel, names: list[str], headers: bool,
                 device: torch.device):
        tok = model.tokenizer
        banned = torch.zeros(vocab.size, dtype=torch.bool)
        for text in ("#", THINK.replace("<", "</")):
            i = vocab.id_of(text)
            if i is not None:
                banned[i] = True
        for i in (getattr(tok, "bos_token_id", None), getattr(tok, "eos_token_id", None),
                  *model.cfg.eos_token_ids):
            if i is not None and 0 <= i < vocab.size:
                banned[i] = True
        self.headers = headers
        self.names = sorted(names, key=len, reverse=True)
        if headers:
            def starts_name(r: str) -> bool:
                return bool(r) and any(n.startswith(r) or r.startswith(n) for n in names)

            after2 = torch.zeros(vocab.size, dtype=torch.bool)
            after1 = torch.zeros(vocab.size, dtype=torch.bool)
            bracket = torch.zeros(vocab.size, dtype=torch.bool)
            for i, t in enumerate(vocab.texts):
                at = t.find("**")
                while at >= 0:
                    if starts_name(t[at + 2 :]):
                        banned[i] = True
                    at = t.find("**", at + 1)
                after2[i] = starts_name(t)
                after1[i] = t.startswith("*") and starts_name(t[1:])
                bracket[i] = t.startswith(("[", " ["))
            self.after_stars, self.after_star, self.after_name = after2.to(device), after1.to(device), bracket.to(device)
        self.base = banned.to(device)

    def mask(self, tail: str) -> torch.Tensor:
        """The banned tokens for a worker whose text ends with ``tail``."""
        if not self.headers:
            return self.base
        if tail.endswith("**"):
            return self.base | self.after_stars
        if tail.endswith("*"):
            return self.base | self.after_star
        for n in self.names:
            if tail.endswith(n) and not tail[: -len(n)][-1:].isalnum():
                return self.base | self.after_name
        return self.base


@dataclass
class Worker:
    """One worker's state in the hive."""

    name: str
    block: Block | None = None
    step: int = 1  # index of its current step
    step_tokens: list[int] = field(default_factory=list)  # the current step: header + sampled
    pending: list[int] = field(default_factory=list)  # what it feeds in the next pass
    sampled_lead: int = 0  # pending[:sampled_lead] were sampled, the rest is forced
    stream: list[int] = field(default_factory=list)  # every token it wrote
    records: list[tuple[int, int, int, bool]] = field(default_factory=list)  # (pass, position, id, forced)
    generated: int = 0
    answer: str | None = None
    check_from: int | None = None  # where the answer to an open check begins in the stream
    tail: str = ""  # the end of its text (for the header guard)
    active: bool = True


@dataclass
class _State:
    """What the answer of a budget depends on (the reference's reasoning state)."""

    passes: int
    history: list[int]
    steps: list[list[int]]  # each worker's unfinished step (its last sampled token included)
    streams: list[list[int]]  # each worker's whole text (the same)
    finished: bool
    generated: dict[str, int]
    n_events: int


class HiveJob(Job):
    """The Hogwild! policy as one job of the engine (see the module docstring)."""

    def __init__(self, model: LoadedModel, config: HiveConfig, problem: str, *,
                 extractor: Extractor = boxed, on_token: TokenCallback | None = None):
        super().__init__()
        config.validate()
        self.model, self.cfg, self.problem, self.extract = model, config, problem, extractor
        self.on_token = on_token
        self.tok = model.tokenizer
        self.names = worker_names(config.workers)
        self.vocab = Vocab.of(model)
        self.sampling = config.sampling_params(model)
        self.budgets = sorted(set(config.snapshots) | {config.max_steps})
        self.prompt = self.prompt_ids()
        self._engine: Engine | None = None
        self._reset()

    # -- texts ------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True)

    def _titles(self) -> dict[str, str]:
        return {k: HOGWILD.render(k) for k in ("history_title", "others_title", "own_title", "marker")}

    def instruction(self) -> str:
        """The collaboration instruction for N >= 2 workers (rules, examples, ways to cooperate)."""
        names = self.names
        team = ", ".join(names[:-1]) + f" and {names[-1]}"
        a, b = names[0], names[1]
        turn_open, turn_close = _turn_parts(self.tok)
        common = dict(a=a, b=b, **self._titles())
        shots = dict(common, turn_open=turn_open, turn_close=turn_close, think=THINK)
        parts = [HOGWILD.render("rules", count=len(names), workers=team, **common)]
        if self.cfg.examples:
            parts.append(HOGWILD.render("examples", **shots))
        parts.append(HOGWILD.render("collaboration", a=a, b=b))
        if self.cfg.examples:
            parts.append(HOGWILD.render("collaboration_examples", **shots))
        parts.append(HOGWILD.render("task", workers=team))
        return STEP_SEPARATOR.join(p.strip("\n") for p in parts)

    def prompt_ids(self) -> list[int]:
        if self.cfg.workers == 1:
            user = HOGWILD.render("solo", problem=self.problem)
        else:
            user = HOGWILD.render("user_turn", instruction=self.instruction(), problem=self.problem)
        ids = chat_ids(self.tok, [{"role": "user", "content": user}])
        think = self.vocab.id_of(THINK)
        if think is not None and think not in ids[-4:]:  # a reasoning model: open its thinking
            ids += self.encode(THINK + "\n")
        return ids

    def _header(self, w: int) -> list[int]:
        worker = self.workers[w]
        if not self.stepped:
            return self.encode(HOGWILD.render("stream_header", name=worker.name))
        return self.encode(HOGWILD.render("step_header", name=worker.name, index=worker.step))

    # -- state ----------------------------------------------------------------------------------
    @property
    def stepped(self) -> bool:
        return self.cfg.layout in ("combined", "interleaved")

    @property
    def width(self) -> int:
        """Prefill: the prompt and the header blocks; decode: N; finish: one finisher per budget
        (per worker and budget in the independent layout)."""
        n = self.cfg.workers
        per_budget = n if self.cfg.layout == "independent" else 1
        return max(n + 1, per_budget * len(self.budgets))

    def _reset(self) -> None:
        cfg = self.cfg
        self.phase = "new"
        self.workers = [Worker(n) for n in self.names]
        self.common: Block | None = None
        self.headers: dict[str, Block] = {}
        self.markers: list[Block] = []
        self._prefill: list[tuple[Block, list[int], int]] = []  # (block, tokens, fed)
        self.history: list[int] = []  # token ids of finished steps, in the order they finished
        self.decode_passes = 0
        self.fed_since_check = 0
        self.finished = False
        self.checks = self.checks_yes = 0
        self.events: list[Event] = []
        self.states: dict[int, _State] = {}
        self.finishers: list[tuple[int, int | None, GenJob]] = []  # (budget, worker or None, job)
        self._finisher_jobs: list[GenJob] = []  # the distinct ones
        self._answers: dict[tuple[int, int | None], tuple[str | None, str]] = {}
        self._finisher_text: dict[tuple[int, int | None], tuple[str, int]] = {}
        self.result: HiveResult | None = None
        self._positions: list[list[int]] = []
        self._pass_t: list[float] = []
        self._t0 = time.perf_counter()
        self._gens = [new_generator(cfg.seed * 1000 + w) for w in range(cfg.workers)]
        self._streamed = 0  # callback pieces sent (a restart does not send them again)
        self._sent = 0
        for w, worker in enumerate(self.workers):
            if self.stepped:
                key = "first_step_lead" if w == 0 and cfg.workers > 1 else "first_step_other"
                text = HOGWILD.render("step_header", name=worker.name, index=1) + HOGWILD.render(key, name=worker.name)
            else:
                text = HOGWILD.render("stream_header", name=worker.name)
            worker.pending = self.encode(text)
            worker.step_tokens = list(worker.pending)

    def restart(self) -> None:
        sent = self._sent
        self._reset()
        self._streamed = sent

    def _emit(self, **kw: Any) -> None:
        self.events.append(Event(t=round(time.perf_counter() - self._t0, 4), **kw))

    def _say(self, name: str, piece: str) -> None:
        if self.on_token is None:
            return
        self._sent += 1
        if self._sent > self._streamed:
            self.on_token(name, piece)

    # -- the engine's side ----------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "the job has not been admitted"
        return self._engine

    def prefix(self) -> list[int]:
        return self.prompt

    def admit(self, engine: Engine) -> None:
        self._engine = engine
        cache = engine.cache
        dev = engine.device
        self.guard = Guard.of(self.vocab, self.model, self.names, self.cfg.guard_headers, dev)
        self._gens = [new_generator(self.cfg.seed * 1000 + w, dev) for w in range(self.cfg.workers)]
        self.common = cache.block_with_prefix("common", self.prompt)
        self._prefill = [(self.common, self.prompt, self.common.length)]
        if self.cfg.layout == "combined" and self.cfg.workers > 1:
            t = self._titles()
            texts = {"others_header": STEP_SEPARATOR + t["others_title"] + STEP_SEPARATOR,
                     "own_header": t["marker"] + STEP_SEPARATOR + t["own_title"] + STEP_SEPARATOR}
            for key, text in texts.items():
                self.headers[key] = self._prefill_block(cache, key, self.encode(text))
            for i in range(self.cfg.workers - 2):
                self.markers.append(self._prefill_block(cache, f"marker{i}", self.encode(t["marker"] + STEP_SEPARATOR)))
        for worker in self.workers:
            worker.block = cache.new_block(worker.name)
        self._emit(kind="prompt", worker="all", text=self.decode(self.prompt),
                   data={"tokens": len(self.prompt), "cached": self.common.length,
                         "visibility": self.cfg.visibility, "layout": self.cfg.layout,
                         "sampling": self.sampling.describe(), "prompts": HOGWILD.source,
                         "weights": self.model.weights})
        self.phase = "prefill"

    def _prefill_block(self, cache: KVCache, name: str, tokens: list[int]) -> Block:
        b = cache.block_with_prefix(name, tokens)
        self._prefill.append((b, tokens, b.length))
        return b

    def blocks(self) -> list[Block]:
        out = [b for b in (self.common, *self.headers.values(), *self.markers) if b is not None]
        out += [w.block for w in self.workers if w.block is not None]
        for job in self._finisher_jobs:
            out += job.blocks()
        return out

    def pages_needed(self, cache: KVCache, rows: Sequence[PassRow]) -> int:
        moving = sum(w.block.length for w in self.workers if w.block is not None)
        return super().pages_needed(cache, rows) + -(-moving // cache.page_size) + 1

    def view(self, w: int) -> list[Block]:
        assert self.common is not None
        own = self.workers[w].block
        assert own is not None
        others = [x.block for i, x in enumerate(self.workers) if i != w and x.block is not None]
        layout = self.cfg.layout
        if layout == "combined" and others:
            v: list[Block] = [self.common, self.headers["others_header"]]
            for i, b in enumerate(others):
                v.append(b)
                if i < len(others) - 1:
                    v.append(self.markers[i])
            return v + [self.headers["own_header"], own]
        if layout == "contiguous":
            return [self.common, *others, own]
        return [self.common, own]

    def rows(self) -> list[PassRow]:
        if self.phase == "prefill":
            return [PassRow([b], toks[fed : fed + 128], want_logits=False, self_contained=True)
                    for b, toks, fed in self._prefill if fed < len(toks)]
        if self.phase == "decode":
            live = [w for w, x in enumerate(self.workers) if x.active]
            rows = [PassRow(self.view(w), self.workers[w].pending, visibility=self.cfg.visibility) for w in live]
            geo = row_geometry([RowSpec(r.view, len(r.tokens), 0, r.visibility) for r in rows])
            self._positions = [[g.qpos + m for m in range(len(r.tokens))] for g, r in zip(geo, rows, strict=True)]
            return rows
        if self.phase == "finish":
            return [r for job in self._finisher_jobs if not job.done for r in job.rows()]
        return []

    def update(self, logits: list[torch.Tensor | None]) -> None:
        if self.phase == "prefill":
            self._prefill = [(b, toks, min(len(toks), fed + 128)) for b, toks, fed in self._prefill]
            if all(fed == len(toks) for _, toks, fed in self._prefill):
                self.phase = "decode"
            return
        if self.phase == "decode":
            self._decode(logits)
            return
        at = 0
        for job in self._finisher_jobs:
            if job.done:
                continue
            n = len(job.rows())
            job.update(logits[at : at + n])
            at += n
        if all(job.done for job in self._finisher_jobs):
            self._conclude()

    # -- one lockstep pass --------------------------------------------------------------------
    def _decode(self, logits: list[torch.Tensor | None]) -> None:
        cfg = self.cfg
        live = [w for w, x in enumerate(self.workers) if x.active]
        p = self.decode_passes
        self._pass_t.append(round(time.perf_counter() - self._t0, 4))  # when pass p's tokens were written
        for w, positions in zip(live, self._positions, strict=True):
            worker = self.workers[w]
            for j, (tid, pos) in enumerate(zip(worker.pending, positions, strict=True)):
                forced = j >= worker.sampled_lead
                worker.stream.append(tid)
                worker.records.append((p, pos, tid, forced))
                worker.tail = (worker.tail + self.vocab.texts[tid])[-24:]
                if forced:
                    self._say(worker.name, self.vocab.texts[tid])
        sampled = self.choose(torch.stack([lg for lg in logits if lg is not None]), live)
        self.decode_passes += 1
        for w, tid in zip(live, sampled, strict=True):
            worker = self.workers[w]
            worker.generated += 1
            self._say(worker.name, self.vocab.texts[tid])
            worker.step_tokens.append(tid)
            if worker.check_from is not None:
                self._read_check(worker, tid)
            worker.pending, worker.sampled_lead = [tid], 1
            if self._ends_step(worker, tid):
                self._end_step(w, tid)
            self.fed_since_check += len(worker.pending)
        if self.decode_passes in self.budgets:
            self._snapshot(self.decode_passes)
        if cfg.layout == "independent" and not any(x.active for x in self.workers):
            self.finished = True
        if self.finished or self.decode_passes >= cfg.max_steps:
            for b in self.budgets:
                if b not in self.states:
                    self._snapshot(b)
            self._start_finish()

    def _ends_step(self, worker: Worker, tid: int) -> bool:
        """Whether ``tid``, just sampled, ends the worker's step. The reference looks only at
        tokens holding a whole blank line; ``step_end: text`` also ends a step on a blank line
        written as two newline tokens (small models such as SmolLM2 rarely emit the one token)."""
        if self.cfg.step_end == "text":
            if "\n" not in self.vocab.texts[tid]:
                return False
            text = self.decode(worker.step_tokens)
            return text.endswith(STEP_SEPARATOR) and step_ends(text)
        if tid not in self.vocab.sep:
            return False
        return step_ends(self.decode(worker.step_tokens), fenced=self.cfg.step_end == "fenced")

    def choose(self, logits: torch.Tensor, live: list[int]) -> list[int]:
        """The next token of each live worker (logits [len(live), V]): the model's sampling, the
        suppressed tokens and the header guard applied. Tests replace it to script a run."""
        banned = [self.guard.mask(self.workers[w].tail) for w in live]
        out: list[int] = sample(logits, [self.sampling] * len(live), [self._gens[w] for w in live], banned).tolist()
        return out

    def _read_check(self, worker: Worker, tid: int) -> None:
        assert worker.check_from is not None
        ans = yes_no(self.decode(worker.stream[worker.check_from :] + [tid]))
        # the first word is the answer ("?" if it is neither); no word after 8 tokens: "?"
        if ans is not None or len(worker.stream) - worker.check_from >= 8:
            self.checks += 1
            self.checks_yes += ans == "yes"
            self._emit(kind="check", worker=worker.name, step=self.decode_passes - 1, data={"answer": ans or "?"})
            worker.check_from = None

    def _end_step(self, w: int, tid: int) -> None:
        """A step just ended with ``tid`` (sampled, not yet written): record it, check for an
        answer, move it (stepped layouts) and queue the next header, with the check when due."""
        worker = self.workers[w]
        text = self.decode(worker.step_tokens)
        self._emit(kind="step", worker=worker.name, step=self.decode_passes - 1, text=text,
                   data={"index": worker.step, "tokens": len(worker.step_tokens)})
        ans = self.extract(text)
        if ans is not None:
            if worker.answer is None:
                worker.answer = ans
                self._emit(kind="answer", worker=worker.name, step=self.decode_passes - 1, text=ans)
            if self.cfg.layout == "independent":
                worker.active = False
            else:
                self.finished = True
        self.history += worker.step_tokens
        worker.step += 1
        nxt: list[int] = []
        if self.stepped:
            assert self.common is not None and worker.block is not None
            self.engine.cache.append_block(self.common, worker.block, self.engine.runner.rope)
            worker.block = self.engine.cache.new_block(worker.name)
            nxt = self._header(w)
        if self.cfg.check_every is not None and self.fed_since_check > self.cfg.check_every:
            nxt += self.encode(HOGWILD.render("check"))
            self.fed_since_check = 0
            worker.check_from = len(worker.stream) + 1 + len(nxt)
        worker.step_tokens = list(nxt)
        worker.pending = [tid] + nxt

    # -- answers ----------------------------------------------------------------------------
    def _snapshot(self, budget: int) -> None:
        self.states[budget] = _State(
            passes=min(budget, self.decode_passes), history=list(self.history),
            steps=[list(x.step_tokens) for x in self.workers],
            streams=[x.stream + x.pending[: x.sampled_lead] for x in self.workers],
            finished=self.finished, generated={x.name: x.generated for x in self.workers},
            n_events=len(self.events))

    def _bodies(self, state: _State) -> list[tuple[int | None, list[int]]]:
        """(worker, transcript after the prompt) to find answers in: one for the team, or one per
        worker of an independent hive (its own text).

        The team's transcript is the reference's compiled response: the finished steps, the
        others' section title, then every worker's unfinished step followed by a marker (in the
        contiguous layout, every worker's whole stream followed by a marker)."""
        t = self._titles()
        marker = self.encode(t["marker"] + STEP_SEPARATOR)
        if self.cfg.layout == "independent":
            return [(w, list(stream)) for w, stream in enumerate(state.streams)]
        if self.cfg.layout == "contiguous":
            return [(None, [tid for stream in state.streams for tid in stream + marker])]
        body = list(state.history) + self.encode(STEP_SEPARATOR + t["others_title"] + STEP_SEPARATOR)
        for steps in state.steps:
            body += steps + marker
        return [(None, body)]

    def _start_finish(self) -> None:
        """Find each budget's answer in its transcript; queue the finisher where there is none
        (one per distinct state: budgets past the end share the final one)."""
        self.phase = "finish"
        finisher = HOGWILD.render("finisher")
        by_state: dict[tuple[int, int | None], GenJob] = {}
        for b in self.budgets:
            state = self.states[b]
            for w, body in self._bodies(state):
                ans = self.extract(self.decode(body))
                if ans is not None:
                    self._answers[(b, w)] = (ans, "answer" if state.finished else "transcript")
                    continue
                key = (state.passes, w)
                job = by_state.get(key)
                if job is None:
                    # decoded whole (special tokens kept) and encoded again, as the reference does
                    text = self.tok.decode(self.prompt + body) + finisher
                    job = GenJob(self.encode(text), max_tokens=self.cfg.finisher_tokens,
                                 sampling=SamplingParams(seed=0), end_ids=self.engine.end_ids, tokenizer=self.tok)
                    job.id = self.id
                    job.admit(self.engine)
                    by_state[key] = job
                    self._finisher_jobs.append(job)
                self.finishers.append((b, w, job))
        if not self.finishers:
            self._conclude()

    def _conclude(self) -> None:
        finisher = HOGWILD.render("finisher")
        for b, w, job in self.finishers:
            body = next(bd for ww, bd in self._bodies(self.states[b]) if ww == w)
            self._answers[(b, w)] = (self.extract(self.decode(body) + finisher + job.text), "finisher")
            self._finisher_text[(b, w)] = (finisher + job.text, len(job.tokens))
        self.result = self._result(self.cfg.max_steps)
        self.result.at_budget = {b: self._result(b) for b in self.budgets}
        self.phase = "done"
        self.finish("stop")

    def _result(self, budget: int) -> HiveResult:
        state = self.states[budget]
        names = self.names
        events = self._token_events(state.passes) + [e for e in self.events[: state.n_events] if e.kind != "prompt"]
        events.sort(key=lambda e: e.t)  # stable: a pass's tokens before what its update found
        prompt_events = [e for e in self.events if e.kind == "prompt"]
        now = round(time.perf_counter() - self._t0, 4)
        if self.cfg.layout == "independent":
            per = {names[w]: self._answers[(budget, w)] for w in range(len(names))}
            answers = {n: a for n, (a, _) in per.items()}
            team = majority(answers.values())
            hows = {how for _, how in per.values()}
            by = "answer" if hows == {"answer"} else "finisher" if "finisher" in hows else "transcript"
        else:
            team, by = self._answers[(budget, None)]
            answers = {x.name: x.answer if self._answered_by(x, state) else None for x in self.workers}
        for (b, w), (text, n_tokens) in self._finisher_text.items():
            if b == budget:
                events.append(Event(kind="step", worker=FINISHER if w is None else names[w], step=state.passes,
                                    t=now, text=text, data={"finisher": True, "tokens": n_tokens}))
        for n, a in answers.items():
            if a is not None and not any(e.kind == "answer" and e.worker == n for e in events):
                events.append(Event(kind="answer", worker=n, text=a, step=state.passes, t=now))
        events.append(Event(kind="answer", worker="team", step=state.passes, t=now, text=team or "",
                            data={"finished_by": by, "budget": budget, **({"none": True} if team is None else {})}))
        gen_text = {x.name: self.decode([tid for (p, _, tid, f) in x.records if p < state.passes and not f])
                    for x in self.workers}
        imperson = {x.name: sum(1 for n in header_mentions(gen_text[x.name], names) if n != x.name)
                    for x in self.workers}
        for x in self.workers:
            for n in header_mentions(gen_text[x.name], names):
                if n != x.name:
                    events.append(Event(kind="error", worker=x.name, text=f"wrote a step header of {n}",
                                        step=state.passes, t=now, data={"reason": "impersonation", "as": n}))
        streams = {x.name: self.decode([tid for (p, _, tid, _) in x.records if p < state.passes]) for x in self.workers}
        return HiveResult(
            answer=team, finished_by=by, steps=state.passes, tokens=dict(state.generated), texts=streams,
            answers=answers, references={n: references(gen_text[n], n, names) for n in names},
            checks=sum(1 for e in events if e.kind == "check"),
            checks_yes=sum(1 for e in events if e.kind == "check" and e.data.get("answer") == "yes"),
            impersonations=imperson, wall_s=time.perf_counter() - self._t0,
            forced_tokens=sum(1 for x in self.workers for (p, _, _, f) in x.records if p < state.passes and f),
            visibility=self.cfg.visibility, events=prompt_events + events)

    def _answered_by(self, worker: Worker, state: _State) -> bool:
        return any(e.kind == "answer" and e.worker == worker.name for e in self.events[: state.n_events])

    def _token_events(self, passes: int) -> list[Event]:
        out = []
        for x in self.workers:
            for p, pos, tid, forced in x.records:
                if p < passes:
                    out.append(Event(kind="token", worker=x.name, step=p, position=pos, token_id=tid, t=self._pass_t[p],
                                     text=self.vocab.texts[tid], data={"forced": True} if forced else {}))
        return out


def _turn_parts(tokenizer: Any) -> tuple[str, str]:
    """The text a chat template puts before and after one user message (generation prompt
    included), so that worked examples can be written as the model would see a real turn."""
    mark = "\x00QUESTION\x00"
    if not getattr(tokenizer, "chat_template", None):
        return "User: ", "\n\nAssistant:"
    text = tokenizer.apply_chat_template([{"role": "user", "content": mark}], tokenize=False,
                                         add_generation_prompt=True)
    before, _, after = str(text).partition(mark)
    return before, after


class Hive:
    """The hive's API: solve one problem (a thin wrapper that submits one :class:`HiveJob` to an
    engine, its own unless one is given, and waits)."""

    def __init__(self, model: LoadedModel, config: HiveConfig, *, extractor: Extractor = boxed,
                 on_token: TokenCallback | None = None, engine: Engine | None = None):
        config.validate()
        self.model, self.cfg, self.extract = model, config, extractor
        self.on_token = on_token
        self.engine = engine
        self.names = worker_names(config.workers)

    def job(self, problem: str) -> HiveJob:
        return HiveJob(self.model, self.cfg, problem, extractor=self.extract, on_token=self.on_token)

    def prompt_ids(self, problem: str) -> list[int]:
        return self.job(problem).prompt

    def solve(self, problem: str) -> HiveResult:
        engine = self.engine or Engine(self.model, page_size=self.cfg.page_size,
                                       max_rows=max(64, self.cfg.workers * (len(self.cfg.snapshots) + 1) + 1))
        job = self.job(problem)
        engine.run_jobs([job])
        if job.result is None:
            raise HivethinkError(f"the hive failed: {job.error or job.finish_reason}")
        return job.result


def chat_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of a conversation with the generation prompt, by the tokenizer's own template
    (or a plain "Role: text" transcript when the tokenizer has none)."""
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)
    text = "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in messages) + "Assistant:"
    return list(tokenizer.encode(text))
