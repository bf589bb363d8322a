r"""``debate-du``: multi-agent debate (Du et al.; composable-models/llm_multiagent_debate).

``workers`` agents (published: 3 on GSM8K, 2 on arithmetic), each with its own conversation and
no system prompt. Round 0: every agent answers the question. Each later round, every agent is
shown the other agents' answers of the previous round, anonymously ("One agent's solution:
```...```"), and asked for an updated answer: the ``gsm`` setup restates the question and the
answer format, the ``arithmetic`` setup does not (as published). A lone agent is asked to check
its answer instead. Rounds: 2 (``gsm``) or 3 (``arithmetic``) unless ``rounds`` is set;
sampling at ``temperature`` (1.0, the API default), no per-call cap (``max_tokens`` 4096 here).

Final answer: the majority of the agents' last answers, read by the setup's published parser
(``gsm``: :func:`parse_gsm`; ``arithmetic``: commas become dots and the last space-separated word
that reads as a number). The majority is the first most frequent answer in agent order; on
``gsm`` a missing answer counts as an answer (None), on ``arithmetic`` it is left out. The team
answer is that majority; the lab's score is the task's scorer on it (the strict score).
:class:`DebateOutcome` also holds the published score (``eval_gsm.compute_accuracy``): on
``gsm``, a None majority counts as correct (a published quirk), and the majority is compared as a
float with the last number of the reference *solution text* (the instance's
``data["reference"]``, else its target), so a solution ending ``#### 1,500`` reads as 500; on
``arithmetic`` a run where no agent answered is not scored (None).

Named variant: ``names=True`` (agents are told their names and see each other's names).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from hivethink import prompts
from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.names import worker_names
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Messages, Recorder, SubstrateBase
from hivethink.tasks.base import Instance, Outcome, Task

SETUPS = {"gsm": 2, "arithmetic": 3}  # setup -> published rounds

BOOK = prompts.book(
    "debate-du",
    {
        **{f"{s}_question": ["question"] for s in SETUPS},
        "gsm_others": ["solutions", "question"],
        "arithmetic_others": ["solutions"],
        **{f"{s}_solution": ["who", "text"] for s in SETUPS},
        **{f"{s}_alone": [] for s in SETUPS},
        "anonymous": [],
        "named_system": ["name"],
    },
)

_BRACED = re.compile(r"\{([0-9.,$]*)\}")
_NUMBER = re.compile(r"\d+\.?\d*")


def parse_gsm(text: str) -> str | None:
    """The published GSM answer (``eval_gsm.parse_answer``, then ``compute_accuracy``'s
    fallback): the groups ``{...}`` of digits, dots, commas and dollars are read from the last
    one back, with everything but digits and dots removed, and the first that keeps something is
    the answer. When the text has such groups but none keeps a digit or dot (``{}``, ``{,}``,
    LaTeX ``1{,}200``) the answer is empty (""), with no fallback. Only a text without any such
    group falls back to its last number (None without one)."""
    solution: str | None = None
    for match in reversed(_BRACED.findall(text)):
        solution = re.sub(r"[^0-9.]", "", match)
        if solution:
            break
    if solution is not None:
        return solution
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def parse_arithmetic(text: str) -> float | None:
    """The published arithmetic parser (see the module docstring)."""
    for word in reversed(text.replace(",", ".").split(" ")):
        try:
            return float(word)
        except ValueError:
            continue
    return None


T = TypeVar("T")


def most_frequent(values: Sequence[T]) -> T:
    """The published majority: the first value with the highest count, in order."""
    best, count = values[0], 0
    for v in values:
        if values.count(v) > count:
            best, count = v, values.count(v)
    return best


def as_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


class DebateOutcome(Outcome):
    """Each agent's parsed last answer, the majority and the published score (None: the
    published evaluation leaves the run out)."""

    prefix: ClassVar[str] = "debate"

    answers: dict[str, str | None]
    majority: str | None
    published_score: float | None
    rounds: int


def published_score(
    setup: str, answers: list[str | None], target: object, reference: str | None = None
) -> tuple[str | None, float | None]:
    """(majority, published score) of the agents' parsed answers (see the module docstring);
    ``reference``: the reference solution text the published GSM scorer reads its number from."""
    truth = _NUMBER.findall(str(target if reference is None else reference))
    if setup == "gsm":
        majority = most_frequent(answers)
        if not truth:
            return majority, None
        if majority is None:
            return None, 1.0  # the published scorer counts a missing majority as correct
        try:
            return majority, float(float(truth[-1]) == float(majority))
        except ValueError:  # "" or "1.2.3": the published scorer crashes here
            return majority, 0.0
    numbers = [float(a) for a in answers if a is not None]
    if not numbers:
        return None, None  # the published evaluation skips the run
    value = most_frequent(numbers)
    expected = _as_float(str(target))
    return as_text(value), None if expected is None else float(value == expected)


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass
class DebateDu(SubstrateBase):
    """Parameters: ``setup`` (gsm | arithmetic), ``rounds`` (0: published), ``names``."""

    name = "debate-du"
    prompt_books: ClassVar[tuple[str, ...]] = ("debate-du",)
    temperature: float = 1.0
    setup: str = "gsm"
    rounds: int = 0
    names: bool = False
    max_tokens: int = 4096

    def __post_init__(self) -> None:
        if self.setup not in SETUPS:
            raise HivethinkError(f"debate-du: setup must be one of {', '.join(SETUPS)}, not {self.setup!r}")
        if self.rounds < 0 or self.max_tokens < 1:
            raise HivethinkError("debate-du: rounds must be >= 0 (0: published) and max_tokens >= 1")

    def run(
        self,
        instance: Instance,
        task: Task,
        backend: Backend,
        *,
        workers: int,
        budget: Budget,
        seed: int,
    ) -> SampleResult:
        rec = Recorder(backend, budget, seed=seed, temperature=self.temperature, probe=instance.probe)
        names = worker_names(workers)
        s = self.setup
        first = BOOK.render(f"{s}_question", question=instance.question)
        history: dict[str, Messages] = {
            n: ([{"role": "system", "content": BOOK.render("named_system", name=n)}] if self.names else [])
            + [{"role": "user", "content": first}]
            for n in names
        }
        rounds = self.rounds or SETUPS[s]
        latest: dict[str, str] = {}
        done = 0
        for r in range(rounds):
            if r > 0:
                if rec.exhausted:
                    break
                for n in names:
                    history[n].append({"role": "user", "content": self._revise(n, names, latest, instance)})
            calls = [Call(n, list(history[n]), seen=[m for m in names if m != n] if r else [])
                     for n in names]  # fmt: skip
            texts = rec.round(calls, step=r, max_tokens=self.max_tokens, phase="answer" if r == 0 else "revise")
            for n, text in zip(names, texts, strict=True):
                history[n].append({"role": "assistant", "content": text})
                latest[n] = text
            done = r + 1
        parsed: dict[str, str | None] = {}
        for n in names:
            if s == "gsm":
                parsed[n] = parse_gsm(latest[n])
            else:
                value = parse_arithmetic(latest[n])
                parsed[n] = None if value is None else as_text(value)
        reference = instance.data.get("reference")
        majority, score = published_score(s, [parsed[n] for n in names], instance.target,
                                          None if reference is None else str(reference))  # fmt: skip
        rec.answers(parsed, step=done - 1)
        for n, a in parsed.items():
            rec.event("vote", n, a or "", step=done - 1, data={"value": a})
        result = rec.finish(majority, agent_answers=parsed,
                            info={"rounds": done, "budget_exhausted": done < rounds})  # fmt: skip
        result.outcome = DebateOutcome(answers=parsed, majority=majority, published_score=score, rounds=done)
        return result

    def _revise(self, me: str, names: list[str], latest: dict[str, str], instance: Instance) -> str:
        s = self.setup
        others = [n for n in names if n != me]
        if not others:
            return BOOK.render(f"{s}_alone")
        solutions = "".join(
            BOOK.render(f"{s}_solution", who=n if self.names else BOOK.render("anonymous"), text=latest[n])
            for n in others
        )
        if s == "gsm":
            return BOOK.render("gsm_others", solutions=solutions, question=instance.question)
        return BOOK.render("arithmetic_others", solutions=solutions)
