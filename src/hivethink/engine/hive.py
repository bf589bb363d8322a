"""The hive: N workers decoding in lockstep over one shared KV cache.

Each sequential forward pass gives every active worker one new token (or writes its forced
tokens: step headers, the redundancy check, the finisher). Between passes the hive detects
finished steps, moves them into the common history (layouts that do so), asks the periodic
redundancy check, and stops on a final answer or when the budget of passes is spent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hivethink.engine import prompts
from hivethink.engine.forward import Runner
from hivethink.engine.layouts import LAYOUTS, Blocks, moves_steps, view
from hivethink.engine.sampling import Sampler, SamplingParams
from hivethink.engine.text import Extractor, boxed, step_ended, yes_no
from hivethink.errors import HivethinkError
from hivethink.models.loader import LoadedModel
from hivethink.trace import Event


@dataclass
class HiveConfig:
    workers: int = 2
    layout: str = "combined"
    max_steps: int = 512  # budget: sequential forward passes after the prompt
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    check_interval: int | None = 1024  # generated tokens (all workers) between redundancy checks
    finisher_tokens: int = 16
    system_prompt: str | None = None  # None: the built-in collaboration prompt
    page_size: int = 64

    def validate(self) -> None:
        if not 1 <= self.workers <= prompts.MAX_WORKERS:
            raise HivethinkError(f"workers must be between 1 and {prompts.MAX_WORKERS}, got {self.workers}")
        if self.layout not in LAYOUTS:
            raise HivethinkError(f"unknown layout {self.layout!r} (choose from {', '.join(LAYOUTS)})")
        if self.max_steps < 1:
            raise HivethinkError(f"max-steps must be at least 1, got {self.max_steps}")
        if not 0 <= self.temperature < float("inf") or not 0 < self.top_p <= 1:  # NaN fails too
            raise HivethinkError("temperature must be >= 0 and top-p in (0, 1]")
        if self.check_interval is not None and self.check_interval < 1:
            raise HivethinkError("the redundancy-check interval must be positive (or off)")


@dataclass
class HiveResult:
    answer: str | None
    finished_by: str  # "answer" | "finisher" | "budget"
    steps: int  # sequential forward passes used (the budget's unit)
    tokens: dict[str, int]  # generated tokens per worker
    texts: dict[str, str]  # each worker's whole stream
    answers: dict[str, str | None]  # each worker's answer, where it gave one
    references: dict[str, int]  # times each worker named another worker
    checks: int  # redundancy checks asked
    checks_yes: int  # ... answered "yes"
    wall_s: float
    events: list[Event] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return sum(self.tokens.values()) / self.wall_s if self.wall_s > 0 else 0.0


TokenCallback = Callable[[str, str], None]  # (worker name, text piece)


class Hive:
    def __init__(self, model: LoadedModel, config: HiveConfig, *, extractor: Extractor = boxed,
                 on_token: TokenCallback | None = None):
        config.validate()
        self.model, self.cfg, self.extract = model, config, extractor
        self.tok = model.tokenizer
        self.on_token = on_token
        self.names = prompts.worker_names(config.workers)

    # -- text helpers ---------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True)

    def prompt_ids(self, problem: str) -> list[int]:
        system = self.cfg.system_prompt or prompts.system_prompt(self.names)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": problem}]
        return chat_ids(self.tok, messages)

    # -- the loop -------------------------------------------------------------------------
    def solve(self, problem: str) -> HiveResult:
        cfg, N, layout = self.cfg, self.cfg.workers, self.cfg.layout
        names, t0 = self.names, time.perf_counter()
        runner = Runner(self.model, page_size=cfg.page_size)
        cache = runner.cache
        events: list[Event] = []

        def emit(**kw: Any) -> None:
            events.append(Event(t=round(time.perf_counter() - t0, 4), **kw))

        prompt = self.prompt_ids(problem)
        common = cache.new_block("common")
        runner.prefill(common, prompt)
        emit(kind="prompt", worker="all", text=self.decode(prompt), data={"tokens": len(prompt)})
        blocks = Blocks(common=common, own=[cache.new_block(n) for n in names])
        if layout == "combined" and N > 1:
            for attr, text in (("others_header", prompts.OTHERS_HEADER), ("own_header", prompts.OWN_HEADER)):
                b = cache.new_block(attr)
                runner.extend([[common, b]], [self.encode(text)])  # written once, shared by all
                setattr(blocks, attr, b)
        runner.passes = 0  # the budget counts passes after the prompt

        stepped = moves_steps(layout)
        step_no = [1] * N
        # What each worker writes in the next pass; the first `lead[w]` tokens were sampled,
        # the rest are forced (headers, the redundancy check).
        pending = [self.encode(prompts.step_header(n, 1) if stepped else prompts.stream_header(n))
                   for n in names]
        lead = [0] * N
        stream: list[list[int]] = [[] for _ in range(N)]  # every token each worker wrote
        step_start = [0] * N  # where the current step begins in `stream`
        closing = [False] * N  # the step ends once the pending token is written
        check_open: list[int | None] = [None] * N  # where a check's answer begins in `stream`
        generated = [0] * N
        answers: dict[str, str | None] = {}
        first_answer: str | None = None
        checks = checks_yes = 0
        check_at, check_due = cfg.check_interval, False
        active = list(range(N))
        sampler = Sampler([SamplingParams(cfg.temperature, cfg.top_p, cfg.seed)] * N)
        eos = {t for t in (*self.model.cfg.eos_token_ids, self.tok.eos_token_id) if t is not None}

        def close_step(w: int, tokens: list[int]) -> None:
            """Record a finished step; its answer, if any; start the next step (stepped layouts)."""
            nonlocal first_answer
            text = self.decode(tokens)
            emit(kind="step", worker=names[w], step=runner.passes, text=text,
                 data={"index": step_no[w], "tokens": len(tokens)})
            ans = self.extract(text)
            if ans is not None:
                answers[names[w]] = ans
                first_answer = first_answer if first_answer is not None else ans
                emit(kind="answer", worker=names[w], step=runner.passes, text=ans)
            step_no[w] += 1

        def open_check(w: int, nxt: list[int], at: int) -> list[int]:
            nonlocal check_due
            if not check_due:
                return nxt
            check_due = False
            forced = self.encode(prompts.REDUNDANCY_CHECK)
            check_open[w] = at + len(nxt) + len(forced)
            return nxt + forced

        def start_next_step(w: int) -> None:
            """Move the finished step into the common history; the worker opens a new one."""
            cache.append_block(common, blocks.own[w], runner.rope)
            blocks.own[w] = cache.new_block(names[w])
            step_start[w] = len(stream[w])
            header = self.encode(prompts.step_header(names[w], step_no[w]))
            pending[w], lead[w] = open_check(w, header, len(stream[w])), 0

        while active and runner.passes < cfg.max_steps:
            rows = list(active)
            views = [view(layout, blocks, w) for w in rows]
            positions = [sum(b.length for b in v) for v in views]
            feed = [pending[w] for w in rows]
            logits = runner.extend(views, feed)
            for w, ids, pos in zip(rows, feed, positions, strict=True):
                stream[w] += ids
                for j, tid in enumerate(ids):
                    piece = self.decode([tid])
                    emit(kind="token", worker=names[w], step=runner.passes, position=pos + j,
                         token_id=tid, text=piece, data={} if j < lead[w] else {"forced": True})
                    if j >= lead[w] and self.on_token:  # forced text (headers, checks) shows too
                        self.on_token(names[w], piece)
            sampled = sampler.sample(logits, rows)
            for w, tid in zip(rows, sampled, strict=True):
                if closing[w]:  # the step's last token is in: move it; this sample is void
                    closing[w] = False
                    close_step(w, stream[w][step_start[w]:])
                    start_next_step(w)
                    continue
                generated[w] += 1
                if self.on_token:
                    self.on_token(names[w], self.decode([tid]))
                start = check_open[w]
                if start is not None:
                    ans = yes_no(self.decode(stream[w][start:] + [tid]))
                    if (ans is not None and ans != "?") or len(stream[w]) - start >= 8:
                        checks += 1
                        checks_yes += ans == "yes"
                        emit(kind="check", worker=names[w], step=runner.passes, data={"answer": ans or "?"})
                        check_open[w] = None
                if tid in eos:  # end of turn: the step ends here and the token is not written
                    close_step(w, stream[w][step_start[w]:])
                    if stepped:
                        start_next_step(w)
                    else:
                        active.remove(w)
                    continue
                pending[w], lead[w] = [tid], 1
                if step_ended(self.decode(stream[w][step_start[w]:] + [tid])):
                    if stepped:
                        closing[w] = True
                    else:  # nothing moves: close now, the token is written in the next pass
                        close_step(w, stream[w][step_start[w]:] + [tid])
                        step_start[w] = len(stream[w]) + 1
                        pending[w] = open_check(w, [tid], len(stream[w]))
            if check_at is not None and sum(generated) >= check_at:
                check_due, check_at = True, check_at + (cfg.check_interval or 1)
            if layout == "independent":
                active = [w for w in active if names[w] not in answers]
            elif first_answer is not None:
                break

        steps = runner.passes
        if not answers:
            self._finish(runner, blocks, pending, lead, stream, answers, emit)
            finished_by = "finisher"
        elif layout == "independent":
            finished_by = "answer" if len(answers) == N else "budget"
        else:
            finished_by = "answer"
        votes = majority([answers.get(n) for n in names])
        team = first_answer if layout != "independent" and first_answer is not None else votes
        emit(kind="answer", worker="team", step=runner.passes, text=team or "",
             data={"finished_by": finished_by})
        texts = {n: self.decode(stream[w]) for w, n in enumerate(names)}
        refs = {n: sum(texts[n].count(o) for o in names if o != n) for n in names}
        return HiveResult(
            answer=team, finished_by=finished_by, steps=steps,
            tokens={n: generated[w] for w, n in enumerate(names)}, texts=texts,
            answers={n: answers.get(n) for n in names}, references=refs, checks=checks,
            checks_yes=checks_yes, wall_s=time.perf_counter() - t0, events=events,
        )

    def _finish(self, runner: Runner, blocks: Blocks, pending: list[list[int]], lead: list[int],
                stream: list[list[int]], answers: dict[str, str | None], emit: Callable[..., None]) -> None:
        """Budget spent with no answer: every worker is told to answer now; a few greedy tokens.

        The first ``lead[w]`` pending tokens were sampled (and shown) already; the rest is forced."""
        N, names = self.cfg.workers, self.names
        finisher = self.encode(prompts.FINISHER)
        feed = [[t for t in pending[w] if t not in self.model.cfg.eos_token_ids] + finisher for w in range(N)]
        tails: list[list[int]] = [[] for _ in range(N)]
        rows = list(range(N))
        for _ in range(self.cfg.finisher_tokens):
            views = [view(self.cfg.layout, blocks, w) for w in rows]
            positions = [sum(b.length for b in v) for v in views]
            logits = runner.extend(views, [feed[w] for w in rows])
            for w, pos in zip(rows, positions, strict=True):
                stream[w] += feed[w]
                # the first feed is pending (its first lead[w] tokens sampled and shown already)
                # plus the finisher text; after it, one sampled token per pass
                first = not tails[w]
                for j, tid in enumerate(feed[w]):
                    piece = self.decode([tid])
                    forced = first and j >= lead[w]
                    emit(kind="token", worker=names[w], step=runner.passes, position=pos + j, token_id=tid,
                         text=piece, data={"forced": True} if forced else {})
                    if self.on_token and (forced or not first):
                        self.on_token(names[w], piece)
            nxt = [int(x) for x in logits.argmax(-1).tolist()]
            for w, tid in zip(rows, nxt, strict=True):
                tails[w].append(tid)
                feed[w] = [tid]
            rows = [w for w in rows if "}" not in self.decode(tails[w]) and tails[w][-1] not in
                    self.model.cfg.eos_token_ids]
            if not rows:
                break
        for w in range(N):
            ans = boxed(prompts.FINISHER + self.decode(tails[w]) + "}")
            answers[names[w]] = ans
            emit(kind="answer", worker=names[w], step=runner.passes, text=ans or "", data={"finisher": True})


def majority(values: list[str | None]) -> str | None:
    """Most common non-empty value; ties go to the one given first."""
    present = [v for v in values if v]
    if not present:
        return None
    counts = Counter(present)
    best = max(counts.values())
    return next(v for v in present if counts[v] == best)


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
