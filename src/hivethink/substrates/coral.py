r"""``coral``: Collaborative Reasoner (facebookresearch/collaborative-reasoner), two agents.

Two copies of one model with the same system prompt (be precise and direct about mistakes you
notice, stand your ground when you think you are right, answer in ``$\boxed{}$``). The opener
(the published "student") starts the conversation with the problem ("I am trying to solve this
math problem: ..."), scripted; then the responder and the opener alternate, each seeing its own
turns as assistant messages and the partner's as user messages, at most ``max_turns`` (20)
generated turns at temperature 0.2, with no per-turn cap (``max_tokens`` 4096 here).

After every generated turn a belief extractor (the same model, temperature 0, at most 32
tokens; its system prompt is the extraction instruction) is shown the question and that turn
and states its answer in ``$\boxed{}$`` or says "not sure yet". Its user message is built as
the published code builds it (``MATHExtractionPromptingEvaluator.promptify_eval_response``): the
question-and-reply block is written into a ``StringIO`` that starts out holding the instruction,
without seeking to its end, so the block overwrites the instruction from its first character;
only the tail of the instruction that the block is too short to cover stays after it
(:func:`extractor_message`). The extractor's reply becomes the turn's belief: "not sure yet"
when it says so anywhere, else ``The answer is <first $\boxed{...}$ of its reply>.``, else an
error. A belief is valid unless it is "not sure yet" or an error. The conversation stops when
the two agents' latest beliefs are both valid and identical (exact text): agreement.

Every belief is graded as the published ``MATHMatchEvaluator`` grades it, invalid ones included
(:func:`graded_answer`): the content of its last ``\boxed{...}``, else the belief with the
characters of "The answer is $\boxed{" stripped from its start and those of "}$." from its end;
so an extractor reply with a bare ``\boxed{6}`` (an "Error" belief) can count as right. The
grade is the task's scorer on that text.

Metrics (:class:`CoralOutcome`, as published): agreement; agreement-correctness (the agreed
answer is right: the headline); final success (some turn's belief is right) and turns to
success; the valid-answer rate; persuade and assert rates split into correct / incorrect /
unsure (not-sure beliefs score 0.5). The team answer is the agreed answer (None without
agreement).

``variant="cot"`` is the published chain-of-thought baseline (``configs/cot/cot_math.yaml``):
its own system prompt (a helpful assistant that solves the problem step by step, with the same
answer format), one turn, the same extractor and grading; its team answer is the graded answer
of that turn, so the lab's score is the published final success. ``max_turns`` 0 means the
variant's published count (20 collaborative, 1 chain of thought).

Named variants: ``agreement="equivalent"`` (beliefs agree when the task's scorer finds their
answers equal); ``extract="boxed"`` (the belief is the turn's own last ``\boxed{}``, no
extractor call); ``extractor_prompt="appended"`` (the block after the whole instruction, as the
code seems meant to build it). ``sycophancy=True`` (an option on top, needs an instance with
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
EXTRACTOR_PROMPTS = ("published", "appended")
VARIANTS = {"collaborative": 20, "cot": 1}  # variant -> published turns
# the characters the published grader strips from an unparsable belief's ends (str.lstrip and
# str.rstrip take sets of characters, not prefixes)
_BELIEF_HEAD, _BELIEF_TAIL = "The answer is $\\boxed{", "}$."
_BOXED = re.compile(r"\$\\boxed\{.*\}\$")  # as published: greedy, within one line

BOOK = prompts.book(
    "coral",
    {
        "system": ["task_name", "answer_format"],
        "cot_system": ["task_name", "answer_format"],
        "answer_format": [],
        "opening": ["task_name", "question"],
        "extract_system": [],
        "extract": ["question", "reply"],
        "assertion": ["wrong"],
    },
)


def belief_of(extractor_reply: str) -> str:
    """The published normalisation of the extractor's reply."""
    if NOT_SURE in extractor_reply.lower():
        return NOT_SURE
    found = _BOXED.findall(extractor_reply)
    return f"The answer is {found[0]}." if found else f"Error: {extractor_reply}"


def extractor_message(instruction: str, block: str, mode: str = "published") -> str:
    """The extractor's user message: ``published``, the block written over the instruction
    from its start (a ``StringIO`` opened on the instruction, not seeked to its end);
    ``appended``, the block after the whole instruction."""
    return block + instruction[len(block):] if mode == "published" else instruction + block


def last_box(text: str) -> str | None:
    r"""The published ``parse_answer`` (multiagent-ft ``eval_math``): from the last ``oxed``
    (else ``box``), the text up to where its braces balance, unwrapped only when it starts
    with ``oxed{``; no strip, and no fallback to an earlier box."""
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if text[i] == "}" and depth == 0:
            box = text[start : i + 1]
            return box[len("\\boxed{") : -1] if box.startswith("\\boxed{") else None
    return None


def graded_answer(belief: str) -> str:
    """What the published match evaluator grades for a belief, valid or not: the last box's
    content, else the belief with its ends stripped (see the module docstring)."""
    return last_box(belief) or belief.lstrip(_BELIEF_HEAD).rstrip(_BELIEF_TAIL)


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
    """Parameters: ``variant``, ``max_turns``, ``agreement``, ``extract``, ``extractor_prompt``,
    ``sycophancy``, ``task_name``."""

    name = "coral"
    prompt_books: ClassVar[tuple[str, ...]] = ("coral",)
    temperature: float = 0.2
    variant: str = "collaborative"
    max_turns: int = 0
    max_tokens: int = 4096
    agreement: str = "exact"
    extract: str = "model"
    extractor_prompt: str = "published"
    sycophancy: bool = False
    task_name: str = "math"

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise HivethinkError(f"coral: variant must be one of {', '.join(VARIANTS)}, not {self.variant!r}")
        if self.max_turns < 0 or self.max_tokens < 1:
            raise HivethinkError("coral: max_turns must be >= 0 (0: published) and max_tokens >= 1")
        if self.extractor_prompt not in EXTRACTOR_PROMPTS:
            raise HivethinkError(
                f"coral: extractor_prompt must be one of {', '.join(EXTRACTOR_PROMPTS)}, "
                f"not {self.extractor_prompt!r}"
            )
        if self.variant == "cot" and self.sycophancy:
            raise HivethinkError("coral: the cot variant has no partner, so no sycophancy probe")
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
        system = BOOK.render("cot_system" if self.variant == "cot" else "system", task_name=self.task_name,
                             answer_format=BOOK.render("answer_format"))  # fmt: skip
        max_turns = self.max_turns or VARIANTS[self.variant]
        turns: list[tuple[str, str]] = [
            (opener, BOOK.render("opening", task_name=self.task_name, question=instance.question))
        ]
        rec.event("step", opener, turns[0][1], step=0, data={"tokens": 0, "scripted": True})
        beliefs: list[str | None] = [None]
        correct: list[float] = [0.0]
        agreed = False
        while len(turns) <= max_turns and not agreed and not rec.exhausted:
            t = len(turns)
            speaker, listener = (responder, opener) if t % 2 else (opener, responder)
            if self.sycophancy and speaker == opener:
                text = BOOK.render("assertion", wrong=wrong)
                rec.event("step", opener, text, step=t, data={"tokens": 0, "scripted": True})
            else:
                [text] = rec.round([Call(speaker, self._view(system, turns, speaker), seen=[listener])],
                                   step=t, max_tokens=self.max_tokens, phase="turn")  # fmt: skip
            turns.append((speaker, text))
            rec.event("message", speaker, text, step=t, recipients=[listener])
            belief = self._belief(rec, instance, t, speaker, text)
            beliefs.append(belief)
            correct.append(float(task.score(instance, graded_answer(belief)) >= 1.0))
            agreed = self._agree(task, instance, beliefs[-1], beliefs[-2])
        return self._finish(rec, task, instance, turns, beliefs, correct, agreed, wrong, max_turns)

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
        block = BOOK.render("extract", question=instance.question, reply=text)
        user = extractor_message(instruction, block, self.extractor_prompt)
        [reply] = rec.round([Call(EXTRACTOR, conversation(instruction, user), seen=[speaker], helper=True)],
                            step=t, max_tokens=32, temperature=0.0, phase="belief",
                            data={"belief_of": speaker})  # fmt: skip
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
        beliefs: list[str | None], correct: list[float], agreed: bool, wrong: object, max_turns: int,
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
            turns_to_success=first_right if first_right is not None else max_turns,
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
        if self.variant == "cot":  # the baseline's score is its final success: the graded answer
            last = beliefs[-1]
            team = graded_answer(last) if last is not None else None
        else:
            team = content(beliefs[-1]) if agreed else None
        result = rec.finish(team, agent_answers=answers, info=info)
        result.outcome = outcome
        return result
