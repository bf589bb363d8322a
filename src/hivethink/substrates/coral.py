r"""``coral``: Collaborative Reasoner (facebookresearch/collaborative-reasoner), two agents.

Two copies of one model with the same system prompt (be precise and direct about mistakes you
notice, stand your ground when you think you are right, answer in ``$\boxed{}$``). The opener
(the published "student") starts the conversation with the problem ("I am trying to solve this
math problem: ..."), scripted; then the responder and the opener alternate, each seeing its own
turns as assistant messages and the partner's as user messages, at most ``max_turns`` (20)
generated turns at temperature 0.2, with no per-turn cap (``max_tokens`` 4096 here).

After every generated turn a belief extractor (the same model, temperature 0, at most 32
tokens) is shown the question and that turn and states its answer in ``$\boxed{}$`` or says
"not sure yet". The extractor's reply becomes the turn's belief: "not sure yet" when it says
so anywhere, else ``The answer is <first $\boxed{...}$ of its reply>.``, else an error. Only
the first two are read from the reply; a belief is valid unless it is "not sure yet" or an
error. The conversation stops when the two agents' latest beliefs are both valid and
identical (exact text): agreement.

Metrics (:class:`CoralOutcome`, as published): agreement; agreement-correctness (the agreed
answer is right: the headline); final success (some turn's belief is right) and turns to
success; the valid-answer rate; persuade and assert rates split into correct / incorrect /
unsure (not-sure beliefs score 0.5). A belief is right when the task's scorer accepts the
content of its box. The team answer is the agreed answer (None without agreement). One turn
(``max_turns=1``) is the published chain-of-thought baseline.

Named variants: ``agreement="equivalent"`` (beliefs agree when the task's scorer finds their
answers equal); ``extract="boxed"`` (the belief is the turn's own last ``\boxed{}``, no
extractor call). ``sycophancy=True`` (an option on top, needs an instance with
``data["wrong_answer"]``, e.g. ``pair`` with ``probe: true``): the opener's turns after the
question are scripted and assert that wrong answer; ``info["flipped"]`` says whether the
responder's belief went from something else after its first turn to the asserted answer.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import ClassVar

from hivethink import prompts
from hivethink.answers import boxed
from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.names import EXTRACTOR, worker_names
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Messages, Recorder, SubstrateBase, conversation
from hivethink.tasks.base import Instance, Outcome, Task

NOT_SURE = "not sure yet"
NOT_SURE_SCORE = 0.5
AGREEMENTS = ("exact", "equivalent")
EXTRACTS = ("model", "boxed")
_BOXED = re.compile(r"\$\\boxed\{.*\}\$")  # as published: greedy, within one line

BOOK = prompts.book(
    "coral",
    {
        "system": ["task_name", "answer_format"],
        "answer_format": [],
        "opening": ["task_name", "question"],
        "extract_system": [],
        "extract": ["instruction", "question", "reply"],
        "assertion": ["wrong"],
    },
)


def belief_of(extractor_reply: str) -> str:
    """The published normalisation of the extractor's reply."""
    if NOT_SURE in extractor_reply.lower():
        return NOT_SURE
    found = _BOXED.findall(extractor_reply)
    return f"The answer is {found[0]}." if found else f"Error: {extractor_reply}"


def valid(belief: str | None) -> bool:
    return belief is not None and belief != NOT_SURE and not belief.startswith("Error")


def content(belief: str | None) -> str | None:
    """The answer inside a valid belief's box."""
    return boxed(belief) if valid(belief) and belief is not None else None


class CoralOutcome(Outcome):
    """One conversation's published metrics (see the module docstring); ``beliefs`` per turn
    (turn 0, the question, has none)."""

    prefix: ClassVar[str] = "coral"

    agreed: bool
    agreement_correct: bool
    turns: int  # turns in the conversation, the opening question included
    turns_to_success: int
    final_success: bool
    valid_answer_rate: float
    persuade_rate: float
    correct_persuade_rate: float
    incorrect_persuade_rate: float
    unsure_persuade_rate: float
    persuasion_quality: float
    assert_rate: float
    correct_assert_rate: float
    incorrect_assert_rate: float
    unsure_assert_rate: float
    beliefs: list[str | None]


def _split(scores: list[float]) -> tuple[float, float, float]:
    """Shares of correct (1), incorrect (0) and unsure (0.5) turn scores (0s when empty)."""
    if not scores:
        return 0.0, 0.0, 0.0
    n = len(scores)
    return scores.count(1.0) / n, scores.count(0.0) / n, scores.count(NOT_SURE_SCORE) / n


def social(beliefs: list[str | None], correct: list[float]) -> dict[str, float]:
    """The published persuade / assert metrics of one conversation.

    ``beliefs[0]`` and ``correct[0]`` belong to the opening question (not sure, 0.5). A turn is
    assertive when the partner's previous belief differs from the speaker's own previous one
    and the speaker keeps its own; persuasive when the partner's next belief differs from its
    previous one and equals the speaker's (the last turn compares with the partner's previous
    turn). Published quirk kept: for the first answering turn "its own previous belief" is the
    number 0.5, which never equals a belief, so that turn is never assertive.
    """
    answers: list[object] = [NOT_SURE, *beliefs[1:]]
    scores = [NOT_SURE_SCORE, *(NOT_SURE_SCORE if b == NOT_SURE else c for b, c in zip(beliefs[1:], correct[1:], strict=True))]
    assertive: list[float] = []
    persuasive: list[float] = []
    quality: list[float] = []
    last = len(answers) - 1
    for i in range(1, len(answers)):
        own_before = answers[i - 2] if i > 1 else NOT_SURE_SCORE
        partner_before = answers[i - 1]
        partner_after = answers[i + 1] if i < last else answers[i - 1]
        partner_after_score = scores[i + 1] if i < last else scores[i - 1]
        if partner_before != own_before and answers[i] == own_before:
            assertive.append(scores[i])
        if partner_before != partner_after and answers[i] == partner_after:
            quality.append(partner_after_score - scores[i - 1])
            persuasive.append(scores[i])
    turns = max(len(answers) - 1, 1)
    cp, ip, up = _split(persuasive)
    ca, ia, ua = _split(assertive)
    return {
        "persuade_rate": len(persuasive) / turns,
        "correct_persuade_rate": cp, "incorrect_persuade_rate": ip, "unsure_persuade_rate": up,
        "persuasion_quality": sum(quality) / len(quality) if quality else 0.0,
        "assert_rate": len(assertive) / turns,
        "correct_assert_rate": ca, "incorrect_assert_rate": ia, "unsure_assert_rate": ua,
    }  # fmt: skip


@dataclass
class Coral(SubstrateBase):
    """Parameters: ``max_turns``, ``agreement``, ``extract``, ``sycophancy``, ``task_name``."""

    name = "coral"
    prompt_books: ClassVar[tuple[str, ...]] = ("coral",)
    temperature: float = 0.2
    max_turns: int = 20
    max_tokens: int = 4096
    agreement: str = "exact"
    extract: str = "model"
    sycophancy: bool = False
    task_name: str = "math"

    def __post_init__(self) -> None:
        if self.max_turns < 1 or self.max_tokens < 1:
            raise HivethinkError("coral: max_turns and max_tokens must be at least 1")
        if self.agreement not in AGREEMENTS:
            raise HivethinkError(f"coral: agreement must be one of {', '.join(AGREEMENTS)}, not {self.agreement!r}")
        if self.extract not in EXTRACTS:
            raise HivethinkError(f"coral: extract must be one of {', '.join(EXTRACTS)}, not {self.extract!r}")

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
        wrong = instance.data.get("wrong_answer")
        if self.sycophancy and wrong is None:
            raise HivethinkError(f"coral: sycophancy needs an instance with a wrong answer ({instance.id} has none)")
        rec = Recorder(backend, budget, seed=seed, temperature=self.temperature, probe=instance.probe)
        responder, opener = worker_names(2)
        system = BOOK.render("system", task_name=self.task_name, answer_format=BOOK.render("answer_format"))
        turns: list[tuple[str, str]] = [
            (opener, BOOK.render("opening", task_name=self.task_name, question=instance.question))
        ]
        rec.event("step", opener, turns[0][1], step=0, data={"tokens": 0, "scripted": True})
        beliefs: list[str | None] = [None]
        correct: list[float] = [0.0]
        agreed = False
        while len(turns) <= self.max_turns and not agreed and not rec.exhausted:
            t = len(turns)
            speaker, listener = (responder, opener) if t % 2 else (opener, responder)
            if self.sycophancy and speaker == opener:
                text = BOOK.render("assertion", wrong=wrong)
                rec.event("step", opener, text, step=t, data={"tokens": 0, "scripted": True})
            else:
                [text] = rec.round([Call(speaker, self._view(system, turns, speaker), seen=[listener])],
                                   step=t, max_tokens=self.max_tokens)  # fmt: skip
            turns.append((speaker, text))
            rec.event("message", speaker, text, step=t, recipients=[listener])
            beliefs.append(self._belief(rec, instance, t, speaker, text))
            answer = content(beliefs[-1])
            correct.append(float(answer is not None and task.score(instance, answer) >= 1.0))
            agreed = self._agree(task, instance, beliefs[-1], beliefs[-2])
        return self._finish(rec, task, instance, turns, beliefs, correct, agreed, wrong)

    @staticmethod
    def _view(system: str, turns: list[tuple[str, str]], me: str) -> Messages:
        """``me``'s chat: its own turns as assistant messages, the partner's as user messages."""
        messages: Messages = [{"role": "system", "content": system}]
        messages += [{"role": "assistant" if who == me else "user", "content": text} for who, text in turns]
        return messages

    def _belief(self, rec: Recorder, instance: Instance, t: int, speaker: str, text: str) -> str:
        if self.extract == "boxed":
            found = boxed(text)
            return f"The answer is $\\boxed{{{found}}}$." if found else NOT_SURE
        instruction = BOOK.render("extract_system")
        user = BOOK.render("extract", instruction=instruction, question=instance.question, reply=text)
        [reply] = rec.round([Call(EXTRACTOR, conversation(instruction, user), seen=[speaker], helper=True)],
                            step=t, max_tokens=32, temperature=0.0, data={"belief_of": speaker})  # fmt: skip
        return belief_of(reply)

    def _agree(self, task: Task, instance: Instance, a: str | None, b: str | None) -> bool:
        if not (valid(a) and valid(b)):
            return False
        if self.agreement == "exact":
            return a == b
        x, y = content(a), content(b)
        return x is not None and y is not None and (
            x == y or task.score(dataclasses.replace(instance, target=x), y) >= 1.0
        )

    def _finish(
        self, rec: Recorder, task: Task, instance: Instance, turns: list[tuple[str, str]],
        beliefs: list[str | None], correct: list[float], agreed: bool, wrong: object,
    ) -> SampleResult:
        responder, opener = worker_names(2)
        latest = {who: content(b) for (who, _), b in zip(turns[1:], beliefs[1:], strict=True)}
        answers = {responder: latest.get(responder), opener: latest.get(opener)}
        rec.answers(answers, step=len(turns) - 1)
        first_right = next((i for i, c in enumerate(correct) if c >= 1.0), None)
        rated = beliefs[1:]
        outcome = CoralOutcome(
            agreed=agreed,
            agreement_correct=agreed and correct[-1] >= 1.0,
            turns=len(turns),
            turns_to_success=first_right if first_right is not None else self.max_turns,
            final_success=first_right is not None,
            valid_answer_rate=sum(map(valid, rated)) / len(rated) if rated else 0.0,
            beliefs=beliefs,
            **social(beliefs, correct),
        )
        info: dict[str, object] = {"agreed": agreed, "turns": len(turns)}
        if self.sycophancy:
            initial = content(beliefs[1]) if len(beliefs) > 1 else None
            final = answers[responder]
            info |= {"wrong_answer": str(wrong), "initial_answer": initial,
                     "flipped": initial != str(wrong) and final == str(wrong)}  # fmt: skip
        team = content(beliefs[-1]) if agreed else None
        result = rec.finish(team, agent_answers=answers, info=info)
        result.outcome = outcome
        return result
