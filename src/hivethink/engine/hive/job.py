"""The hive as one job of the engine (:class:`HiveJob`), and its API (:class:`Hive`).

A hive goes through four phases: ``new`` (it wants its blocks: the prompt's, the layout's
headers, one per worker), ``prefill`` (the prompt and headers, in chunks), ``decode`` (one token
per live worker per pass, the policy applied after each pass) and ``finish`` (the finisher's
generations, where a budget has no answer). It declares what it needs and never touches the
cache: a finished step is a :class:`~hivethink.engine.scheduler.Move` the engine does before the
next pass.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from hivethink.engine.cache import Block
from hivethink.engine.hive.config import HiveConfig
from hivethink.engine.hive.finisher import Finisher
from hivethink.engine.hive.layouts import LAYOUTS, HiveBlocks
from hivethink.engine.hive.policy import Guard, StepPolicy, Vocab, Worker
from hivethink.engine.hive.prompt import HOGWILD, THINK, HiveText
from hivethink.engine.hive.results import (
    FinisherText,
    Found,
    HiveResult,
    Record,
    Snapshot,
    hive_result,
)
from hivethink.engine.sampling import ConfigProcessors, new_generator
from hivethink.engine.scheduler import Engine, Intent, Job, JobHost, Move, NewBlock, PassRow
from hivethink.engine.text import Extractor, boxed, boxed_float
from hivethink.errors import HivethinkError
from hivethink.models.loader import LoadedModel
from hivethink.names import worker_names

TokenCallback = Callable[[str, str], None]  # (worker name, text piece)

PREFILL_CHUNK = 128  # prompt tokens a block writes per pass


class HiveJob(Job):
    """The Hogwild! policy as one job of the engine (see the package docstring)."""

    def __init__(self, model: LoadedModel, config: HiveConfig, problem: str, *,
                 extractor: Extractor = boxed, on_token: TokenCallback | None = None):
        super().__init__()
        self.model, self.cfg, self.problem, self.task_extract = model, config, problem, extractor
        self.on_token = on_token
        self.tok = model.tokenizer
        self.names = worker_names(config.workers)
        self.layout = LAYOUTS[config.layout]()
        self.text = HiveText(self.tok, self.names)
        self.vocab = Vocab.of(model)
        self.generation = config.generation_config(model)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        self.policy = StepPolicy(config, self.vocab, pad if pad is not None else 0)
        self.budgets = sorted(set(config.snapshots) | {config.max_steps})
        self.prompt = self.text.prompt(problem, config, self.vocab.id_of(THINK))
        self._host: JobHost | None = None
        self._reset()

    def encode(self, text: str) -> list[int]:
        return self.text.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.text.decode(ids)

    def extract(self, text: str) -> str | None:
        """The answer in ``text`` (a step, a transcript, a finisher's words), in the hive's answer
        format only: a box. ``extract: float`` (the reference) takes the rightmost box whose
        content parses as a number; ``task``, the rightmost balanced box, read by the task's
        extractor. Text outside a box is never an answer (a task extractor that falls back to
        the whole text would otherwise return the transcript, view headers and all)."""
        if self.cfg.extract == "float":
            return boxed_float(text)
        box = boxed(text)
        return None if box is None else self.task_extract("\\boxed{" + box + "}")

    @property
    def width(self) -> int:
        """Prefill: the prompt and the header blocks; decode: N; finish: one finisher per budget
        (per worker and budget where workers answer alone)."""
        n = self.cfg.workers
        per_budget = n if self.layout.votes else 1
        return max(n + 1, per_budget * len(self.budgets))

    def _reset(self) -> None:
        cfg = self.cfg
        self.phase = "new"
        self.workers = [Worker(n) for n in self.names]
        self.blocks: HiveBlocks | None = None
        self._prefill: list[tuple[Block, list[int], int]] = []  # (block, tokens, fed)
        self._moves: list[Move] = []  # finished steps to move before the next pass
        self.history: list[int] = []  # token ids of finished steps, in the order they finished
        self.decode_passes = 0
        self.fed_since_check = 0
        self.finished = False
        self.record = Record()
        self.states: dict[int, Snapshot] = {}
        self.finisher: Finisher | None = None
        self.found: dict[tuple[int, int | None], tuple[str | None, str]] = {}  # (budget, worker) -> answer, how
        self.result: HiveResult | None = None
        self._gens = [new_generator(cfg.seed * 1000 + w) for w in range(cfg.workers)]
        self._streamed = 0  # callback pieces sent (a restart does not send them again)
        self._sent = 0
        for w, worker in enumerate(self.workers):
            worker.pending = self.encode(self.layout.first_text(worker.name, lead=w == 0 and cfg.workers > 1))
            worker.step_tokens = list(worker.pending)

    def restart(self) -> None:
        sent = self._sent
        self._reset()
        self._streamed = sent

    def _say(self, name: str, piece: str) -> None:
        if self.on_token is None:
            return
        self._sent += 1
        if self._sent > self._streamed:
            self.on_token(name, piece)

    # -- the engine's side ----------------------------------------------------------------------
    @property
    def host(self) -> JobHost:
        assert self._host is not None, "the job has not been admitted"
        return self._host

    def attach(self, host: JobHost) -> None:
        self._host = host
        self.guard = Guard.of(self.vocab, self.model, self.names, self.cfg.guard_headers, host.device)
        self.processors = ConfigProcessors(self.generation, self.guard.suppressed, self.vocab.size, host.device)
        self._gens = [new_generator(self.cfg.seed * 1000 + w, host.device) for w in range(self.cfg.workers)]

    def wants(self) -> list[NewBlock]:
        if self.phase == "new":
            return ([NewBlock("common", self.prompt)]
                    + [NewBlock(key, self.encode(t)) for key, t in self.layout.header_texts(self.cfg.workers).items()]
                    + [NewBlock(w.name) for w in self.workers])
        if self.phase == "finish" and self.finisher is not None:
            return self.finisher.wants()
        return []

    def given(self, blocks: list[Block]) -> None:
        if self.phase == "finish":
            assert self.finisher is not None
            self.finisher.given(blocks)
            return
        headers = self.layout.header_texts(self.cfg.workers)
        common, named, own = blocks[0], blocks[1 : 1 + len(headers)], blocks[1 + len(headers) :]
        self.blocks = HiveBlocks(common, own, dict(zip(headers, named, strict=True)))
        self._prefill = [(common, self.prompt, common.length)]
        self._prefill += [(b, self.encode(t), b.length) for b, t in zip(named, headers.values(), strict=True)]
        self.record.emit(kind="prompt", worker="all", text=self.decode(self.prompt),
                         data={"tokens": len(self.prompt), "cached": common.length,
                               "visibility": self.cfg.visibility, "layout": self.layout.name,
                               "sampling": self.processors.describe(), "prompts": HOGWILD.source,
                               "weights": self.model.weights,
                               "headers": self.layout.header_texts(self.cfg.workers)})
        self.phase = "prefill"

    def view(self, w: int) -> list[Block]:
        assert self.blocks is not None
        return self.layout.view(self.blocks, w)

    def intent(self) -> Intent | None:
        if self.phase == "prefill":
            return Intent([PassRow([b], toks[fed : fed + PREFILL_CHUNK], want_logits=False, self_contained=True)
                           for b, toks, fed in self._prefill if fed < len(toks)])
        if self.phase == "decode":
            live = [w for w, x in enumerate(self.workers) if x.active]
            return Intent([PassRow(self.view(w), self.workers[w].pending, visibility=self.cfg.visibility)
                           for w in live], moves=list(self._moves))
        if self.phase == "finish" and self.finisher is not None:
            return Intent(self.finisher.rows())
        return None

    def update(self, logits: list[torch.Tensor | None], positions: list[int]) -> None:
        if self.phase == "prefill":
            self._prefill = [(b, toks, min(len(toks), fed + PREFILL_CHUNK)) for b, toks, fed in self._prefill]
            if all(fed == len(toks) for _, toks, fed in self._prefill):
                self.phase = "decode"
            return
        if self.phase == "decode":
            self._moves = []  # the engine did them before the pass
            self._decode(logits, positions)
            return
        assert self.finisher is not None
        self.finisher.update(logits, positions)
        if self.finisher.done:
            self._conclude()

    # -- one lockstep pass --------------------------------------------------------------------
    def _decode(self, logits: list[torch.Tensor | None], positions: list[int]) -> None:
        cfg = self.cfg
        live = [w for w, x in enumerate(self.workers) if x.active]
        p = self.decode_passes
        self.record.pass_written()
        for w, first in zip(live, positions, strict=True):
            worker = self.workers[w]
            for j, tid in enumerate(worker.pending):
                forced = j >= worker.sampled_lead
                worker.stream.append(tid)
                worker.records.append((p, first + j, tid, forced))
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
            if self.policy.ends_step(self.text, worker.step_tokens, tid):
                self._end_step(w, tid)
            self.fed_since_check += len(worker.pending)
        if self.decode_passes in self.budgets:
            self._snapshot(self.decode_passes)
        if self.layout.votes and not any(x.active for x in self.workers):
            self.finished = True
        if self.finished or self.decode_passes >= cfg.max_steps:
            for b in self.budgets:
                if b not in self.states:
                    self._snapshot(b)
            self._start_finish()

    def choose(self, logits: torch.Tensor, live: list[int]) -> list[int]:
        """The next token of each live worker (logits [len(live), V]). Tests replace it to script
        a run."""
        return self.policy.choose(self.processors, self.guard, logits, [self.workers[w].pending for w in live],
                                  [self.workers[w].tail for w in live], [self._gens[w] for w in live])

    def _read_check(self, worker: Worker, tid: int) -> None:
        assert worker.check_from is not None
        ans = self.policy.check_answer(self.decode(worker.stream[worker.check_from :] + [tid]),
                                       len(worker.stream) - worker.check_from)
        if ans is not None:
            self.record.emit(kind="check", worker=worker.name, step=self.decode_passes - 1, data={"answer": ans})
            worker.check_from = None

    def _end_step(self, w: int, tid: int) -> None:
        """A step just ended with ``tid`` (sampled, not yet written): record it, check for an
        answer, move it (stepped layouts) and queue the next header, with the check when due."""
        worker = self.workers[w]
        self.record.emit(kind="step", worker=worker.name, step=self.decode_passes - 1,
                         text=self.decode(worker.step_tokens),
                         data={"index": worker.step, "tokens": len(worker.step_tokens)})
        ans = self.extract(self.text.raw(worker.step_tokens))
        if ans is not None:
            if worker.answer is None:
                worker.answer = ans
                self.record.emit(kind="answer", worker=worker.name, step=self.decode_passes - 1, text=ans)
            if self.layout.votes:
                worker.active = False
            else:
                self.finished = True
        self.history += worker.step_tokens
        worker.step += 1
        header = ""
        if self.layout.stepped:
            assert self.blocks is not None
            self._moves.append(Move(self.blocks.own[w], self.blocks.common))  # the step joins the history
            header = HOGWILD.render("step_header", name=worker.name, index=worker.step)
        due = self.policy.check_due(self.fed_since_check)
        if due:
            header += HOGWILD.render("check")
            self.fed_since_check = 0
        nxt = self.encode(header) if header else []  # one text, as the reference encodes it
        if due:
            worker.check_from = len(worker.stream) + 1 + len(nxt)
        worker.step_tokens = list(nxt)
        worker.pending = [tid] + nxt

    # -- answers ----------------------------------------------------------------------------
    def _snapshot(self, budget: int) -> None:
        self.states[budget] = Snapshot(
            passes=min(budget, self.decode_passes), history=list(self.history),
            steps=[list(x.step_tokens) for x in self.workers],
            streams=[x.stream + x.pending[: x.sampled_lead] for x in self.workers],
            finished=self.finished, generated={x.name: x.generated for x in self.workers},
            n_events=len(self.record.events))

    def _transcripts(self, state: Snapshot) -> list[tuple[int | None, list[int]]]:
        return self.layout.transcripts(self.text, state.history, state.steps, state.streams)

    def _start_finish(self) -> None:
        """Find each budget's answer in its transcript; ask the finisher where there is none."""
        self.phase = "finish"
        self.finisher = Finisher(self.tok, self.cfg.finisher_tokens, self.host, self.id)
        for b in self.budgets:
            state = self.states[b]
            for w, body in self._transcripts(state):
                ans = self.extract(self.text.raw(body))
                if ans is not None:
                    self.found[(b, w)] = (ans, "answer" if state.finished else "transcript")
                else:
                    self.finisher.ask(b, w, state.passes, self.prompt + body)
        if self.finisher.done:  # none needed (or none may write a token)
            self._conclude()

    def _conclude(self) -> None:
        assert self.finisher is not None
        written: dict[int, FinisherText] = {}
        for b, w, job in self.finisher.asked:
            body = next(bd for ww, bd in self._transcripts(self.states[b]) if ww == w)
            self.found[(b, w)] = (self.extract(self.text.raw(body) + self.finisher.text + self.text.raw(job.tokens)),
                                  "finisher")
            written.setdefault(b, {})[w] = (self.finisher.text + job.text, len(job.tokens))
        self.result = self._result(self.cfg.max_steps, written)
        self.result.at_budget = {b: self._result(b, written) for b in self.budgets}
        self.phase = "done"
        self.finish("stop")

    def _result(self, budget: int, written: dict[int, FinisherText]) -> HiveResult:
        found: Found = {w: v for (b, w), v in self.found.items() if b == budget}
        return hive_result(budget=budget, state=self.states[budget], record=self.record, workers=self.workers,
                           votes=self.layout.votes, found=found, finisher_text=written.get(budget, {}),
                           token_texts=self.vocab.texts, decode=self.decode, visibility=self.cfg.visibility)


class Hive:
    """The hive's API: solve one problem (a thin wrapper that submits one :class:`HiveJob` to an
    engine, its own unless one is given, and waits)."""

    def __init__(self, model: LoadedModel, config: HiveConfig, *, extractor: Extractor = boxed,
                 on_token: TokenCallback | None = None, engine: Engine | None = None):
        self.model, self.cfg, self.extract = model, config, extractor
        self.on_token = on_token
        self.engine = engine
        self.names = worker_names(config.workers)

    def job(self, problem: str) -> HiveJob:
        return HiveJob(self.model, self.cfg, problem, extractor=self.extract, on_token=self.on_token)

    def solve(self, problem: str) -> HiveResult:
        engine = self.engine or Engine(self.model, max_rows=max(64, self.cfg.workers * (len(self.cfg.snapshots) + 1) + 1))
        job = self.job(problem)
        engine.run_jobs([job])
        if job.result is None:
            raise HivethinkError(f"the hive failed: {job.error or job.finish_reason}")
        return job.result
