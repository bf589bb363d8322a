"""The MAST judge (protocols.md section 7): the prompt holds the modes, their definitions,
examples, the success question and the trace; the reply is read the published way."""

from __future__ import annotations

from collections.abc import Sequence

from hivethink.backends.base import Completion, GenRequest
from hivethink.lab.judge import mast_judge
from hivethink.metrics import MAST_GROUPS, MAST_MODES, parse_mast_reply
from hivethink.metrics.mast import MAST_PAPER_MODES, render_trace
from hivethink.trace import Event

EVENTS = [
    Event(kind="prompt", worker="Alice", text="Solve 2+2."),
    Event(kind="step", worker="Alice", text="Thank you!"),
    Event(kind="prompt", worker="Alice", text="Solve 2+2. (again, with history)"),
    Event(kind="step", worker="Bob", text="Thank you!"),
    Event(kind="token", worker="Bob", text="tok"),
]

ANSWER = """@@
A. The agents thanked each other in a loop: step repetition, and nobody checked the result.
B. no
C.
1.1 Disobey Task Specification: no
1.2 Disobey Role Specification: no
1.3 Step Repetition: yes
1.4 Loss of Conversation History: no
1.5 Unaware of Termination Conditions: yes
2.1 Conversation Reset: no
2.2 Fail to Ask for Clarification: no
2.3 Task Derailment: no
2.4 Information Withholding: no
2.5 Ignored Other Agent's Input: no
2.6 Action-Reasoning Mismatch: no
3.1 Premature Termination: no
3.2 No or Incorrect Verification: yes
3.3 Weak Verification: no
@@"""


class OneReply:
    name = "judge"

    def __init__(self, text: str, error: str | None = None) -> None:
        self.text, self.error = text, error
        self.requests: list[GenRequest] = []

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        self.requests.extend(requests)
        return [Completion(text=self.text, error=self.error) for _ in requests]


def test_fourteen_modes_in_three_groups():
    assert len(MAST_MODES) == 14 and [len(g) for g in MAST_GROUPS.values()] == [5, 6, 3]


def test_modes_are_named_as_the_authors_judge_prompt_names_them_and_the_paper_is_a_variant():
    """agentdash 0.1.0 annotator.py / openevolve-mast evaluator.py list 2.6, 3.2 and 3.3 under
    other names than the paper ("incorrect" sits on 3.2 there, on 3.3 in the paper)."""
    changed = {c: (MAST_MODES[c], MAST_PAPER_MODES[c]) for c in MAST_MODES if MAST_MODES[c] != MAST_PAPER_MODES[c]}
    assert changed == {
        "2.6": ("action-reasoning mismatch", "reasoning-action mismatch"),
        "3.2": ("no or incorrect verification", "no or incomplete verification"),
        "3.3": ("weak verification", "incorrect verification"),
    }
    published, paper = OneReply(ANSWER), OneReply(ANSWER)
    mast_judge(EVENTS, published)
    mast_judge(EVENTS, paper, taxonomy="paper")
    ours = published.requests[0].messages[0]["content"]
    theirs = paper.requests[0].messages[0]["content"]
    for code, name in MAST_MODES.items():  # the answer format lists the judge's names
        assert f"\n{code} {name}: <yes or no>" in ours.lower()
    assert "3.3 Incorrect Verification: <yes or no>" in theirs and "Weak Verification" not in theirs
    # the authors' definitions file numbers the two verification modes the other way round
    assert "\n3.2 Weak Verification: " in ours and "\n3.3 No or Incorrect Verification: " in ours


def test_the_prompt_has_definitions_examples_the_success_question_and_the_trace():
    judge = OneReply(ANSWER)
    verdict = mast_judge(EVENTS, judge)
    [request] = judge.requests
    prompt = request.messages[0]["content"]
    assert "B. Was the task completed successfully: <yes or no>" in prompt
    for code in MAST_MODES:
        assert f"\n{code} " in prompt  # in the answer format and the definitions
    assert "1.3 Step Repetition: steps that were already completed are repeated" in prompt
    assert "### Disobey Role Specification, Information Withholding ###" in prompt
    assert "[step] Alice: Thank you!" in prompt and "tok" not in prompt
    assert prompt.index("Here is the trace:") < prompt.index("Here are the definitions of the failure modes")
    # published quirk: the first "no" after "3.2" is the first word of the mode's name
    assert verdict["failures"] == ["1.3", "1.5"] and verdict["success"] is False
    assert mast_judge(EVENTS, judge, parse="lines")["failures"] == ["1.3", "1.5", "3.2"]
    assert verdict["summary"].startswith("The agents thanked each other") and verdict["parsed"]
    assert verdict["raw"] == ANSWER and verdict["error"] is None


def test_the_success_answer_is_read_right_after_b_as_published():
    """annotator._extract_task_completion: ``B\\.\\s*(yes|no)``, case-insensitive, default False."""
    assert parse_mast_reply("A. ok\nB. yes\nC.")["success"] is True
    assert parse_mast_reply("A. ok\nb.YES")["success"] is True
    # the answer format's own wording before the yes: the published reader finds no yes after "B."
    worded = "A. ok\nB. Was the task completed successfully: yes\nC. 1.1 no"
    assert parse_mast_reply(worded)["success"] is False
    assert parse_mast_reply(worded, "lines")["success"] is True  # the variant reads the line
    assert parse_mast_reply("no B section at all")["success"] is False
    assert parse_mast_reply("no B section at all", "lines")["success"] is None
    assert parse_mast_reply("A. loops B. no")["summary"] == "loops"


def test_the_trace_keeps_each_workers_first_prompt_only():
    text = render_trace(EVENTS)
    assert text.count("[prompt] Alice") == 1 and "(again" not in text
    assert render_trace(EVENTS * 200, max_chars=1000).count("[... trace cut ...]") == 1


def test_published_reading_of_terse_and_odd_replies():
    terse = parse_mast_reply("A. fine\nB. yes\nC.\n1.1 no\n1.2 yes\n2.6 yes\n3.3 no")
    assert terse["failures"] == ["1.2", "2.6"] and terse["success"] is True
    assert terse["parsed"]
    # a mode the judge left out counts as "no", as published; nothing found: parsed is False
    empty = parse_mast_reply("I cannot judge this.")
    assert empty["failures"] == [] and not empty["parsed"] and empty["success"] is False
    # the published patterns take the first yes/no after the code ("nothing" reads as "no")
    assert parse_mast_reply("C. 1.1 nothing special, yes")["modes"]["1.1"] is False
    assert parse_mast_reply("C. 1.1 nothing special, yes", "lines")["modes"]["1.1"] is True
    assert parse_mast_reply("1.1: no\n1.12 yes", "lines")["modes"]["1.1"] is False


def test_a_failed_judge_call_is_reported_not_raised():
    verdict = mast_judge(EVENTS, OneReply("", error="APIConnectionError: refused"))
    assert verdict["error"] == "APIConnectionError: refused" and not verdict["parsed"]
