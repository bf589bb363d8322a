"""The camel preset replayed against fixed replies (protocols.md section 6): the task
specifier, the role prompts, the opening, and every stop rule (only the instructor ends)."""

from __future__ import annotations

import pytest

from hivethink.backends.fake import ScriptedBackend
from hivethink.errors import HivethinkError
from hivethink.substrates import Budget, get_substrate
from hivethink.tasks.base import Instance
from hivethink.tasks.math import MathTask

INSTANCE = Instance(task="math", id="m", prompt="What is 2+2? Put it in \\boxed{}.", target="4")
DONE = "<CAMEL_TASK_DONE>"


def role(request) -> str:
    system = request.messages[0]["content"]
    if system == "You can make a task more specific.":
        return "specifier"
    return "instructor" if "RULES OF THE USER" in system else "assistant"


def run(instructor: list[str], assistant: list[str], specified: str = "Add two and two.", **params):
    queues = {"instructor": list(instructor), "assistant": list(assistant), "specifier": [specified]}
    backend = ScriptedBackend(lambda request, index: queues[role(request)].pop(0))
    res = get_substrate("camel", **params).run(INSTANCE, MathTask(), backend, workers=2, budget=Budget(), seed=0)
    return backend, res


def test_the_whole_conversation():
    backend, res = run(
        ["Instruction: add 2 and 2\nInput: None", DONE],
        [f"Solution: 2+2 = \\boxed{{4}}. {DONE} Next request."],  # the assistant cannot end it
    )
    spec, i1, a1, i2 = backend.requests
    assert role(spec) == "specifier" and spec.messages[1]["content"] == (
        "Here is a task that Problem Solver will help Instructor to complete: What is 2+2? Put it "
        "in \\boxed{}..\nPlease make it more specific. Be creative and imaginative.\nReply with the "
        "specified task in 50 words or fewer. Do not add anything else."
    )
    user_rules = i1.messages[0]["content"]
    assert "you are a Instructor and I am a Problem Solver" in user_rules
    assert "This is the task: Add two and two.. Never forget our task!" in user_rules
    assert "Instruction: <YOUR_INSTRUCTION>\nInput: <YOUR_INPUT>" in user_rules
    assert f"reply with the single word {DONE}" in user_rules
    assert i1.messages[1] == {"role": "user", "content": (
        "Now start to give me instructions one by one. Only reply with Instruction and Input."
    )}  # fmt: skip
    assistant_rules = a1.messages[0]["content"]
    assert "Never swap roles! Never instruct me!" in assistant_rules
    assert "Solution: <YOUR_SOLUTION>" in assistant_rules and "Next request." in assistant_rules
    assert [m["role"] for m in a1.messages] == ["system", "assistant", "user"]
    assert a1.messages[2]["content"] == "Instruction: add 2 and 2\nInput: None"
    assert [m["role"] for m in i2.messages] == ["system", "user", "assistant", "user"]
    assert res.info == {"stop_reason": "task_done", "messages": 3, "task": "Add two and two."}
    assert res.answer == "4" and res.agent_answers == {"Alice": None, "Bob": "4"}
    assert MathTask().score(INSTANCE, res.answer) == 1.0
    assert {r.temperature for r in backend.requests} == {1.0}


@pytest.mark.parametrize(
    ("instructor", "assistant", "params", "reason", "messages"),
    [
        (["Instruction: go\nInput: None"], ["Solution: ok.\nInstruction: now you check it"], {}, "role_flip", 2),
        (["Thanks!", "Great!", "Lovely!"], ["Solution: sure.", "Solution: sure."], {}, "no_instruction", 5),
        (["Instruction: a"] * 3, ["Solution: b"] * 3, {"max_messages": 5}, "max_messages", 5),
        (["Thanks!", "Instruction: a", "Thanks!", "Thanks!"], ["Solution: b"] * 3, {"max_idle": 2}, "no_instruction", 7),
    ],
)
def test_stop_rules(instructor, assistant, params, reason, messages):
    _, res = run(instructor, assistant, **params)
    assert res.info["stop_reason"] == reason and res.info["messages"] == messages


def test_without_specification_and_a_token_limit():
    backend, res = run(["Instruction: a"] * 2, ["Solution: b"] * 2, specify=False, max_messages=4)
    assert role(backend.requests[0]) == "instructor"
    assert "This is the task: What is 2+2? Put it in \\boxed{}.. Never" in backend.requests[0].messages[0]["content"]
    limited = get_substrate("camel", specify=False).run(
        INSTANCE, MathTask(),
        ScriptedBackend(lambda r, i: "Solution: a b c" if role(r) == "assistant" else "Instruction: a b c"), workers=2,
        budget=Budget(tokens=8), seed=0,
    )  # fmt: skip
    assert limited.info["stop_reason"] == "token_limit" and limited.info["messages"] == 2


@pytest.mark.parametrize("params", [{"max_idle": 0}, {"done_token": " "}, {"word_limit": 0}])
def test_bad_options(params):
    with pytest.raises(HivethinkError):
        get_substrate("camel", **params)
