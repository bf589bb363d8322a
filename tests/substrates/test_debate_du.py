"""The debate-du preset replayed against fixed replies (protocols.md section 5): anonymous
solutions, the published rounds per setup, the published parsers, the majority and both
scores (the published one, where a missing majority counts as correct, and the strict one)."""

from __future__ import annotations

import pytest

from hivethink.backends.fake import ScriptedBackend
from hivethink.errors import HivethinkError
from hivethink.substrates import Budget, get_substrate
from hivethink.substrates.debate import most_frequent, parse_arithmetic, parse_gsm, published_score
from hivethink.tasks.arithmetic import ArithmeticTask
from hivethink.tasks.base import Instance
from hivethink.tasks.math import MathTask

GSM = Instance(task="math", id="q", prompt="Tom has 3 apples and buys 4. How many? (box it)",
               target="7", data={"question": "Tom has 3 apples and buys 4. How many?"})  # fmt: skip


def run(instance, task, replies: list[list[str]], workers: int, **params):
    """``replies[r][i]``: agent i's reply in round r."""
    def script(request, index):
        r, i = divmod(index, workers)
        return replies[r][i]

    backend = ScriptedBackend(script)
    res = get_substrate("debate-du", **params).run(instance, task, backend, workers=workers, budget=Budget(), seed=0)
    return backend, res


def test_gsm_setup_transcript():
    replies = [
        ["I count 3 + 4 = 7. \\boxed{7}", "It is \\boxed{8}", "Maybe 7 apples."],
        ["Still \\boxed{7}", "Agreed, \\boxed{{7}}", "Final: \\boxed{$7.00}"],
    ]
    backend, res = run(GSM, MathTask(), replies, workers=3)
    assert [len(b) for b in backend.calls] == [3, 3]  # 2 rounds: answer, then one revision
    first = backend.calls[0][0].messages
    assert first == [{"role": "user", "content": (
        "Solve this math problem: Tom has 3 apples and buys 4. How many? Show "
        "your reasoning. Your final answer should be one single number, written as \\boxed{answer}, "
        "at the end of your response."
    )}]  # fmt: skip
    second = backend.calls[1][1].messages  # agent 2 in round 2 sees agents 1 and 3, anonymously
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[2]["content"] == (
        "Here are the other agents' solutions: \n\n One agent's solution: "
        f"```{replies[0][0]}```\n\n One agent's solution: ```{replies[0][2]}```\n\n Taking their "
        "solutions into account, what is your answer to the math "
        "problem? \n The math problem was: Tom has 3 apples and buys 4. How many?. Your "
        "final answer should be one single number, written as \\boxed{answer}, at the end of "
        "your response."
    )
    assert "Alice" not in str(backend.requests) and "Bob" not in str(backend.requests)
    assert {(r.temperature, r.max_tokens) for r in backend.requests} == {(1.0, 4096)}
    assert res.agent_answers == {"Alice": "7", "Bob": "7", "Carol": "7.00"}
    assert res.answer == "7" and MathTask().score(GSM, res.answer) == 1.0
    assert res.outcome.published_score == 1.0 and res.outcome.rounds == 2
    assert [e.data["value"] for e in res.events if e.kind == "vote"] == ["7", "7", "7.00"]


def test_arithmetic_setup_has_three_rounds_and_no_restated_question():
    task = ArithmeticTask()
    inst = task.generate(1, 0)[0]
    replies = [["the result is 5"] * 2, ["So 6."] * 2, [f"result is {inst.target}.", "I get 1,5"]]
    backend, res = run(inst, task, replies, workers=2, setup="arithmetic")
    assert [len(b) for b in backend.calls] == [2, 2, 2]
    assert backend.requests[0].messages[0]["content"] == (
        f"{inst.question} State your answer at the end of your response."
    )
    revise = backend.calls[2][0].messages[-1]["content"]
    assert revise == (
        "Here are the latest opinions of the other agents: \n\n One agent's response: "
        "```So 6.```\n\n Weigh these opinions with care as further advice: what is your updated "
        "answer? State your answer at the end of your response."
    )
    assert inst.question not in revise  # the published arithmetic prompt does not restate it
    # "1,5" reads as 1.5; "{target}." reads as the target; a tie goes to the first agent
    assert res.agent_answers == {"Alice": inst.target, "Bob": "1.5"}
    assert res.answer == inst.target and res.outcome.published_score == 1.0


def test_named_variant_and_explicit_rounds():
    backend, res = run(GSM, MathTask(), [["\\boxed{7}"] * 2] * 3, workers=2, names=True, rounds=3)
    assert len(backend.calls) == 3 and res.info["rounds"] == 3
    assert backend.requests[0].messages[0] == {"role": "system", "content": "You are Alice."}
    assert "Bob's solution" in backend.calls[1][0].messages[-1]["content"]


def test_a_lone_agent_is_asked_to_check_its_answer():
    backend, _ = run(GSM, MathTask(), [["\\boxed{7}"], ["\\boxed{7}"]], workers=1)
    assert backend.calls[1][0].messages[-1]["content"].startswith("Check once more whether your answer is correct")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("so \\boxed{1,234} dollars", "1234"), ("\\boxed{$5.5} then {x}", "5.5"),
     ("{12} then {}", "12"),  # groups read from the last one back: the first that keeps a digit
     ("{} no box, 12 and 13.", ""), ("{,} 4", ""), ("\\boxed{1{,}200}", ""),  # braces, no digit: empty
     ("no braces, 12 and 13.", "13."), ("nothing", None)],  # only a text without groups falls back
)  # fmt: skip
def test_gsm_parser(text, expected):
    assert parse_gsm(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("the result is 550.", 550.0), ("is 1,5 now", 1.5), ("550 is the result", 550.0), ("none here", None)],
)
def test_arithmetic_parser(text, expected):
    assert parse_arithmetic(text) == expected


def test_published_scores_and_their_quirks():
    assert most_frequent(["8", "7", "7", "8"]) == "8"  # the first most frequent, in agent order
    assert published_score("gsm", [None, None, "7"], "7") == (None, 1.0)  # a missing majority counts!
    assert published_score("gsm", ["6", "6", "7"], "The answer is 7") == ("6", 0.0)
    assert published_score("gsm", ["1.2.3"], "7") == ("1.2.3", 0.0)  # the published code crashes
    assert published_score("gsm", ["", "", "7"], "7") == ("", 0.0)  # an empty majority: it crashes too
    # the published scorer reads the last number of the reference solution text
    solution = "She sells 1,000 + 500 cups.\n#### 1,500"
    assert published_score("gsm", ["500", "500", "1500"], "1500", solution) == ("500", 1.0)
    assert published_score("gsm", ["1500", "1500"], "1500", solution) == ("1500", 0.0)
    assert published_score("arithmetic", [None, "3", "4"], 3) == ("3", 1.0)  # None left out
    assert published_score("arithmetic", [None, None], 3) == (None, None)  # not scored
    # the lab's score is the task's own (strict): no majority answer scores 0
    backend, res = run(GSM, MathTask(), [["no idea"] * 3, ["still none"] * 3], workers=3)
    assert res.answer is None and res.outcome.published_score == 1.0
    assert MathTask().score(GSM, res.answer) == 0.0


@pytest.mark.parametrize("params", [{"setup": "mmlu"}, {"rounds": -1}])
def test_bad_options(params):
    with pytest.raises(HivethinkError):
        get_substrate("debate-du", **params)


def test_the_published_score_beside_the_strict_one_on_a_gsm_file(tmp_path):
    """A GSM8K row whose answer is written ``#### 1,500``: the strict score (the lab's) reads
    1500, the published one reads 500 from the solution text."""
    import json

    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps({"question": "How many cups?", "answer": "1,000 + 500 = 1,500\n#### 1,500"}) + "\n")
    task = MathTask(source=str(path), selection="debate-du")
    [inst] = task.generate(100, 7)
    assert inst.target == "1500" and inst.data["reference"].endswith("#### 1,500")
    _, right = run(inst, task, [["\\boxed{1500}"] * 3, ["\\boxed{1500}"] * 3], workers=3)
    assert task.score(inst, right.answer) == 1.0 and right.outcome.published_score == 0.0
    _, odd = run(inst, task, [["\\boxed{500}"] * 3, ["\\boxed{500}"] * 3], workers=3)
    assert task.score(inst, odd.answer) == 0.0 and odd.outcome.published_score == 1.0
