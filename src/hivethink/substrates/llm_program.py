"""``llm-program``: a hand-written program owns control flow; each call sees only its step.

After Schlag et al., "Large Language Model Programs" (arXiv 2305.05364; pseudocode only, no
code or prompts published). ``program: evidence`` is the paper's worked program on
StrategyQA-style questions (the ``evidence`` task):

1. **Rank** every candidate paragraph P by the average negative log-likelihood of the question
   given P (no instruction, no examples: the paragraph, then the question); keep the best
   ``keep`` (10).
2. **Best-first search** over reasoning chains, starting from the empty chain (the question
   alone): pop the best chain; for each kept paragraph generate ONE next step greedily, from a
   prompt holding the paragraph, the question and the chain so far and nothing else; rank each
   new step S by ``dP + dQ`` (``ranking: dpdq``) with ``nll(x) = -log p(x) / len(x)``,
   ``dP = nll(S|Q,P) - nll(S|Q)`` and ``dQ = nll(S|Q,P) - nll(S|P)`` (lower is better: the step
   uses the paragraph and stays on the question), or by ``nll(S|Q,P)`` (``ranking: nll``, the
   paper's simpler variant). A chain whose step states an answer is complete.
3. **Stop** when more than ``chains`` (3) chains are complete, or at ``max_expansions``; a chain
   that reaches ``max_steps`` steps without an answer gets one forced by likelihood (which of
   " yes" and " no" is likelier after the chain); so does the best open chain when the search
   ends with none complete.

The paper leaves open, so these are named options (defaults ours): the step delimiter
(``delimiter``: a step ends at the first newline), the answer detector (``detector``:
``answer-is`` finds "the answer is yes/no" in a step; ``final-word`` takes a step that ends with
yes or no), the step cap (``max_steps`` 4) and search cap (``max_expansions`` 8), which
complete chain answers (``answer_from``: ``best``-ranked, or a majority ``vote`` of the complete
chains, ties to the better chain), how a chain's steps add up to its rank (``aggregate``:
``mean`` of its step scores, ``sum`` or ``last``), and the texts (prompt book ``llm-program``).
In the scoring contexts a chain's steps are joined by single spaces; ``nll(S|Q)`` holds the
question and the chain, ``nll(S|P)`` the paragraph alone. Steps are generated through the chat
API (the backend's template); likelihoods are read from plain text (no template).

``program: countdown`` and ``program: math`` are hivethink's own programs *in the spirit of*
the paper (labelled so in ``info["variant"]``), on hivethink's tasks: propose, verify in code,
backtrack. Countdown: a depth-first search over the numbers still to combine; each call sees
the numbers left and the target and proposes up to ``proposals`` operations, which the program
checks with exact arithmetic and explores in order, backtracking from dead ends (at most
``max_calls`` calls). Math: a call solves the problem and writes its computation as one
expression; the program evaluates it exactly and accepts the answer only when the boxed
answer equals it, else asks again with the reason (at most ``math_tries`` calls; without a
verified answer the most frequent boxed answer stands).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

from hivethink import prompts
from hivethink.answers import majority
from hivethink.backends.base import Backend, Score, ScoreRequest
from hivethink.errors import HivethinkError
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Recorder, SubstrateBase, conversation
from hivethink.substrates.scoring import score_batch
from hivethink.tasks.base import Instance, Task

PROGRAMS = ("evidence", "countdown", "math")
RANKINGS = ("dpdq", "nll")
DETECTORS = ("answer-is", "final-word")
ANSWER_FROM = ("best", "vote")
AGGREGATES = ("mean", "sum", "last")
PROGRAM = "program"  # the worker that holds the team answer
SPIRIT = "in the spirit of LLM Programs (Schlag et al. 2023): hivethink's own program"

BOOK = prompts.book(
    "llm-program",
    {
        "rank_prompt": ["paragraph"],
        "step_system": [],
        "step_user": ["paragraph", "question", "chain"],
        "score_qp": ["paragraph", "question", "chain"],
        "score_q": ["question", "chain"],
        "score_p": ["paragraph"],
        "force": ["question", "chain"],
        "countdown_propose": ["numbers", "target", "k"],
        "math_propose": ["question"],
        "math_retry": ["question", "reason"],
    },
)

_ANSWER_IS = re.compile(r"answer\s+is\s*:?\s*\**\s*(yes|no)\b", re.IGNORECASE)
_FINAL_WORD = re.compile(r"\b(yes|no)\W*$", re.IGNORECASE)
_PROPOSAL = re.compile(r"(\d+)\s*([-+*/x×÷])\s*(\d+)(?:\s*=\s*(-?\d+(?:\.\d+)?))?")
_COMPUTE = re.compile(r"^\s*\**compute\**\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Chain:
    """A reasoning chain: its steps, each step's rank score and paragraph, and its answer."""

    steps: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    paragraphs: tuple[int, ...] = ()
    answer: str | None = None
    forced: bool = False
    order: int = 0  # creation order: ties go to the older chain

    def rank(self, aggregate: str) -> float:
        if not self.scores:
            return 0.0
        if aggregate == "sum":
            return sum(self.scores)
        if aggregate == "last":
            return self.scores[-1]
        return sum(self.scores) / len(self.scores)


def detect_answer(step: str, detector: str) -> str | None:
    """The yes/no a step states, by the named detector (see the module docstring)."""
    pattern = _ANSWER_IS if detector == "answer-is" else _FINAL_WORD
    found = pattern.search(step)
    return found.group(1).lower() if found else None


@dataclass
class LlmProgram(SubstrateBase):
    """Parameters: ``program`` (evidence | countdown | math) and the options of the module
    docstring. ``temperature`` 0: steps and proposals are greedy."""

    name = "llm-program"
    prompt_books: ClassVar[tuple[str, ...]] = ("llm-program",)
    temperature: float = 0.0
    program: str = "evidence"
    keep: int = 10
    ranking: str = "dpdq"
    chains: int = 3
    max_steps: int = 4
    max_expansions: int = 8
    delimiter: str = "\n"
    detector: str = "answer-is"
    answer_from: str = "best"
    aggregate: str = "mean"
    step_tokens: int = 48
    proposals: int = 3
    max_calls: int = 12
    math_tries: int = 3
    max_tokens: int = 512

    def __post_init__(self) -> None:
        for name, allowed in (("program", PROGRAMS), ("ranking", RANKINGS), ("detector", DETECTORS),
                              ("answer_from", ANSWER_FROM), ("aggregate", AGGREGATES)):
            if getattr(self, name) not in allowed:
                raise HivethinkError(f"llm-program: {name} must be one of {', '.join(allowed)}, "
                                     f"not {getattr(self, name)!r}")
        for name in ("keep", "max_steps", "max_expansions", "step_tokens", "proposals", "max_calls",
                     "math_tries", "max_tokens"):
            if getattr(self, name) < 1:
                raise HivethinkError(f"llm-program: {name} must be at least 1")
        if self.chains < 0:
            raise HivethinkError("llm-program: chains must be 0 or more")
        if not self.delimiter:
            raise HivethinkError("llm-program: delimiter must not be empty")

    @property
    def scores_text(self) -> bool:
        """Whether this configuration calls ``Backend.score`` (the evidence program does): a lab
        grid refuses a backend kind that cannot score before any model loads."""
        return self.program == "evidence"

    def accepts(self, task: Task) -> bool:
        """A program runs on the task it was written for (a grid refuses other pairings)."""
        return getattr(task, "name", None) == self.program

    def run(self, instance: Instance, task: Task, backend: Backend, *, workers: int, budget: Budget,
            seed: int) -> SampleResult:
        rec = Recorder(backend, budget, seed=seed, temperature=self.temperature, probe=instance.probe)
        if self.program == "evidence":
            return self._evidence(instance, backend, rec)
        if self.program == "countdown":
            return self._countdown(instance, task, rec)
        return self._math(instance, task, rec)

    # -- the evidence program -----------------------------------------------------------------
    def _evidence(self, instance: Instance, backend: Backend, rec: Recorder) -> SampleResult:
        paragraphs = [p for p in instance.data.get("paragraphs") or [] if isinstance(p, dict)]
        info: dict[str, Any] = {"program": "evidence", "ranking": self.ranking}
        if not paragraphs:
            rec.error(PROGRAM, "the instance has no candidate paragraphs", step=0)
            return self._done(rec, None, info | {"stop_reason": "no_paragraphs"})
        question = instance.question
        ranked = score_batch(
            rec, backend,
            [ScoreRequest(BOOK.render("rank_prompt", paragraph=p["text"]), question) for p in paragraphs],
            step=0, phase="rank", labels=[p.get("title", f"P{i + 1}") for i, p in enumerate(paragraphs)],
        )  # fmt: skip
        if ranked is None:
            return self._done(rec, None, info | {"stop_reason": "scoring_failed"})
        kept = sorted(range(len(paragraphs)), key=lambda i: (ranked[i].mean_nll, i))[: self.keep]
        info["kept"] = [paragraphs[i].get("title", f"P{i + 1}") for i in kept]
        texts = [paragraphs[i]["text"] for i in kept]
        search = _Search(self, rec, backend, question, texts)
        return self._done(rec, search.run(), info | search.info)

    def _done(self, rec: Recorder, answer: str | None, info: dict[str, Any]) -> SampleResult:
        rec.answers({PROGRAM: answer})
        return rec.finish(answer, agent_answers={PROGRAM: answer}, info=info)

    # -- countdown: propose, verify, backtrack -----------------------------------------------
    def _countdown(self, instance: Instance, task: Task, rec: Recorder) -> SampleResult:
        numbers = [int(x) for x in instance.data["numbers"]]
        target = int(instance.data["target"])
        calls = 0
        tried: list[str] = []

        def search(state: list[tuple[Fraction, str]], depth: int) -> str | None:
            nonlocal calls
            if len(state) == 1:
                return state[0][1] if state[0][0] == target else None
            if calls >= self.max_calls or rec.exhausted:
                return None
            calls += 1
            shown = ", ".join(_show(v) for v, _ in state)
            user = BOOK.render("countdown_propose", numbers=shown, target=target, k=self.proposals)
            [reply] = rec.round([Call(PROGRAM, [{"role": "user", "content": user}])], step=calls - 1,
                                max_tokens=self.step_tokens * 2, data={"depth": depth})
            for child, line in _proposals(reply, state)[: self.proposals]:
                tried.append(line)
                rec.event("message", PROGRAM, line, step=calls - 1, data={"numbers": shown, "depth": depth})
                result = search(child, depth + 1)
                if result is not None:
                    return result
            return None

        found = search([(Fraction(n), str(n)) for n in numbers], 0)
        return self._done(rec, found, {"program": "countdown", "variant": SPIRIT, "calls": calls,
                                        "explored": len(tried), "solved": found is not None})

    # -- math: propose, verify the computation, retry ----------------------------------------
    def _math(self, instance: Instance, task: Task, rec: Recorder) -> SampleResult:
        from hivethink.tasks.countdown import evaluate
        from hivethink.tasks.math import answers_match, format_number

        question = instance.question
        proposed: list[str | None] = []
        reason: str | None = None
        verified: str | None = None
        for attempt in range(self.math_tries):
            if rec.exhausted:
                break
            user = (BOOK.render("math_propose", question=question) if reason is None
                    else BOOK.render("math_retry", question=question, reason=reason))
            [reply] = rec.round([Call(PROGRAM, [{"role": "user", "content": user}])], step=attempt,
                                max_tokens=self.max_tokens)
            answer = task.extract(reply)
            proposed.append(answer)
            computed = _COMPUTE.findall(reply)
            value = evaluate(computed[-1]) if computed else None
            if answer is None:
                reason = "it gave no final answer in \\boxed{}."
            elif not computed:
                reason = "it wrote no 'Compute:' line."
            elif value is None:
                reason = f"its computation {computed[-1]!r} is not plain arithmetic."
            elif not answers_match(format_number(value[0]), answer):
                reason = (f"its computation {computed[-1]} equals {format_number(value[0])}, "
                          f"not the answer it gave ({answer}).")
            else:
                verified = answer
            if verified is not None:
                break
            rec.error(PROGRAM, f"not verified: {reason}", step=attempt)
        final = verified if verified is not None else majority(proposed)
        return self._done(rec, final, {"program": "math", "variant": SPIRIT,
                                       "attempts": len(proposed), "verified": verified is not None})


def _show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _proposals(reply: str, state: list[tuple[Fraction, str]]) -> list[tuple[list[tuple[Fraction, str]], str]]:
    """The operations in ``reply`` that are valid on ``state`` (both operands available, exact
    result a non-negative integer, a stated result correct), as (next state, line), in order and
    without repeats."""
    out: list[tuple[list[tuple[Fraction, str]], str]] = []
    seen: set[tuple[str, ...]] = set()
    for m in _PROPOSAL.finditer(reply):
        a, op, b, stated = Fraction(int(m.group(1))), m.group(2), Fraction(int(m.group(3))), m.group(4)
        op = {"x": "*", "×": "*", "÷": "/"}.get(op, op)
        pool = list(state)
        ia = next((i for i, (v, _) in enumerate(pool) if v == a), None)
        if ia is None:
            continue
        left = pool.pop(ia)
        ib = next((i for i, (v, _) in enumerate(pool) if v == b), None)
        if ib is None:
            continue
        right = pool.pop(ib)
        if op == "/" and b == 0:
            continue
        value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else a}[op]
        if value < 0 or value.denominator != 1:
            continue
        if stated is not None and Fraction(stated) != value:
            continue
        child = pool + [(value, f"({left[1]} {op} {right[1]})")]
        key = tuple(sorted(_show(v) for v, _ in child))
        if key in seen:
            continue
        seen.add(key)
        out.append((child, f"{_show(a)} {op} {_show(b)} = {_show(value)}"))
    for i, (child, line) in enumerate(out):  # the last expression loses its outer parentheses
        if len(child) == 1 and child[0][1].startswith("("):
            out[i] = ([(child[0][0], child[0][1][1:-1])], line)
    return out


class _Search:
    """The evidence program's best-first search over chains (see the module docstring)."""

    def __init__(self, cfg: LlmProgram, rec: Recorder, backend: Backend, question: str,
                 paragraphs: Sequence[str]) -> None:
        self.cfg, self.rec, self.backend = cfg, rec, backend
        self.question, self.paragraphs = question, list(paragraphs)
        self.info: dict[str, Any] = {}
        self.made = 0
        self.failed = False

    def chain_text(self, chain: Chain) -> str:
        return "".join(f" {s}" for s in chain.steps)

    def new(self, **fields: Any) -> Chain:
        self.made += 1
        return Chain(order=self.made, **fields)

    def run(self) -> str | None:
        cfg = self.cfg
        frontier = [Chain()]
        complete: list[Chain] = []
        expansions = 0
        while True:
            stop = ("chains" if len(complete) > cfg.chains else "frontier_empty" if not frontier
                    else "max_expansions" if expansions >= cfg.max_expansions
                    else "budget" if self.rec.exhausted else None)
            if stop is not None:
                break
            best = min(frontier, key=lambda c: (c.rank(cfg.aggregate), c.order))
            frontier.remove(best)
            expansions += 1
            children = self.expand(best, expansions)
            if children is None:
                stop = "scoring_failed"
                break
            for child in children:
                (complete if child.answer is not None else frontier).append(child)
        self.info.update(expansions=expansions, complete=len(complete), stop_reason=stop)
        if self.failed:
            return None
        if not complete:  # force an answer on the best open chain (the question alone if none)
            best = min(frontier or [Chain()], key=lambda c: (c.rank(cfg.aggregate), c.order))
            forced = self.force([best], expansions + 1)
            if forced is None:
                return None
            complete = forced
        ordered = sorted(complete, key=lambda c: (c.rank(cfg.aggregate), c.order))
        if cfg.answer_from == "vote":
            counts = Counter(c.answer for c in ordered)
            top = max(counts.values())
            answer = next(c.answer for c in ordered if counts[c.answer] == top)
        else:
            answer = ordered[0].answer
        winner = next(c for c in ordered if c.answer == answer)
        self.info.update(chain=list(winner.steps), forced=winner.forced,
                         chain_answers=[c.answer for c in ordered])
        return answer

    def expand(self, chain: Chain, step: int) -> list[Chain] | None:
        """One step per kept paragraph after ``chain``, ranked; chains at the step cap get an
        answer forced. None when scoring failed."""
        cfg, rec = self.cfg, self.rec
        shown = "\n".join(chain.steps) or "(none yet)"
        calls = [
            Call(f"para{k + 1}", conversation(
                BOOK.render("step_system"),
                BOOK.render("step_user", paragraph=p, question=self.question, chain=shown),
            ))
            for k, p in enumerate(self.paragraphs)
        ]  # fmt: skip
        texts = rec.round(calls, step=step, max_tokens=cfg.step_tokens, stop=[cfg.delimiter],
                          data={"expands": chain.order})
        candidates: dict[str, int] = {}
        for k, text in enumerate(texts):
            s = text.split(cfg.delimiter, 1)[0].strip()
            if s and s not in candidates:
                candidates[s] = k
        if not candidates:
            return []
        before = self.chain_text(chain)
        requests: list[ScoreRequest] = []
        labels: list[str] = []
        for s, k in candidates.items():
            p = self.paragraphs[k]
            requests.append(ScoreRequest(BOOK.render("score_qp", paragraph=p, question=self.question,
                                                     chain=before), f" {s}"))
            labels.append(f"para{k + 1}: S|Q,P")
            if cfg.ranking == "dpdq":
                requests.append(ScoreRequest(BOOK.render("score_q", question=self.question, chain=before), f" {s}"))
                requests.append(ScoreRequest(BOOK.render("score_p", paragraph=p), f" {s}"))
                labels += [f"para{k + 1}: S|Q", f"para{k + 1}: S|P"]
        scores = score_batch(rec, self.backend, requests, step=step, phase="steps", labels=labels)
        if scores is None:
            self.failed = True
            return None
        per = 3 if cfg.ranking == "dpdq" else 1
        children: list[Chain] = []
        for j, (s, k) in enumerate(candidates.items()):
            group = scores[j * per : (j + 1) * per]
            value = _rank(group) if per == 3 else group[0].mean_nll
            children.append(self.new(steps=chain.steps + (s,), scores=chain.scores + (value,),
                                     paragraphs=chain.paragraphs + (k,),
                                     answer=detect_answer(s, cfg.detector)))
        capped = [c for c in children if c.answer is None and len(c.steps) >= cfg.max_steps]
        if capped:
            forced = self.force(capped, step)
            if forced is None:
                return None
            children = [c for c in children if c not in capped] + forced
        return children

    def force(self, chains: list[Chain], step: int) -> list[Chain] | None:
        """Each chain with the likelier of " yes" and " no" as its (forced) answer."""
        requests = []
        for c in chains:
            context = BOOK.render("force", question=self.question, chain=self.chain_text(c))
            requests += [ScoreRequest(context, " yes"), ScoreRequest(context, " no")]
        scores = score_batch(self.rec, self.backend, requests, step=step, phase="force",
                             labels=[f"chain{c.order}: {w}" for c in chains for w in ("yes", "no")])
        if scores is None:
            self.failed = True
            return None
        out = []
        for i, c in enumerate(chains):
            yes, no = scores[2 * i], scores[2 * i + 1]
            out.append(Chain(steps=c.steps, scores=c.scores, paragraphs=c.paragraphs, order=c.order,
                             answer="yes" if yes.logprob >= no.logprob else "no", forced=True))
        return out


def _rank(group: Sequence[Score]) -> float:
    """dP + dQ of one step from its three scores (S|Q,P; S|Q; S|P)."""
    qp, q, p = (s.mean_nll for s in group)
    return (qp - q) + (qp - p)


__all__ = ["LlmProgram", "detect_answer"]
