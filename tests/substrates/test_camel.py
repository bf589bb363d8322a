"""The camel preset replayed against fixed replies (protocols.md section 6), as the paper-era
code ran: the task specifier at 1.4, the role agents at 0.2, the opening, each agent's own
messages sent with the user role, the published detectors (exact ``Instruction:`` anywhere),
the checks once per round after the assistant answered, the context limit in cl100k tokens."""

from __future__ import annotations

import pytest

from hivethink.backends.fake import ScriptedBackend
from hivethink.errors import HivethinkError
from hivethink.substrates import Budget, get_substrate
from hivethink.substrates.camel import RepeatWords, count_tokens
from hivethink.tasks.base import Instance
from hivethink.tasks.math import MathTask

INSTANCE = Instance(task="math", id="m", prompt="What is 2+2? Put it in \\boxed{}.", target="4")
DONE = "<CAMEL_TASK_DONE>"
INIT = "Understood, I will follow these rules."  # the assistant's reply to its own system prompt


def role(request) -> str:
    system = request.messages[0]["content"]
    if system == "Your job is sharpening task descriptions.":
        return "specifier"
    return "instructor" if "RULES OF THE USER" in system else "assistant"


def run(instructor: list[str], assistant: list[str], specified: str = "Add two and two.", budget=None, **params):
    queues = {"instructor": list(instructor), "assistant": [INIT, *assistant], "specifier": [specified]}
    backend = ScriptedBackend(lambda request, index: queues[role(request)].pop(0))
    res = get_substrate("camel", **params).run(INSTANCE, MathTask(), backend, workers=2,
                                               budget=budget or Budget(), seed=0)  # fmt: skip
    return backend, res


def roles(request) -> list[str]:
    return [m["role"] for m in request.messages]


def test_the_whole_conversation_as_the_paper_era_code_ran_it():
    backend, res = run(
        ["Instruction: add 2 and 2\nInput: None", DONE],
        [f"Solution: 2+2 = \\boxed{{4}}. {DONE} Next request.", "Solution: done."],  # the assistant cannot end it
    )
    spec, init, i1, a1, i2, a2 = backend.requests
    assert role(spec) == "specifier" and spec.messages[1]["content"] == (
        "A task for Instructor, with Problem Solver assisting: What is 2+2? Put it in \\boxed{}..\n"
        "Turn it into a sharper, more detailed version; invent freely.\nAnswer with that version alone, in at "
        "most 50 words."
    )
    assert spec.temperature == 1.4 and {r.temperature for r in (init, i1, a1, i2, a2)} == {0.2}
    assert {r.max_tokens for r in backend.requests} == {4096}
    assistant_rules = init.messages[0]["content"]
    assert "you give me no orders, and we never trade places" in assistant_rules
    assert "Solution: <YOUR_SOLUTION>" in assistant_rules and "Next request." in assistant_rules
    for demand in ("Your reply holds the solution and nothing more", "You put no questions to me",
                   "A promise is not a solution", "plainly, in the present tense"):  # fmt: skip
        assert demand in assistant_rules
    # the opening: the assistant is stepped once with its own system prompt as a user message
    assert init.messages == [{"role": "system", "content": assistant_rules}, {"role": "user", "content": assistant_rules}]
    user_rules = i1.messages[0]["content"]
    assert "You play the Instructor; I play the Problem Solver." in user_rules
    assert "The task: Add two and two.\nKeep that task in view" in user_rules
    assert f"reply with the single word {DONE}" in user_rules
    # ... and the instructor's first message repeats its whole system prompt before the request
    assert i1.messages[1] == {"role": "user", "content": user_rules + (
        ". Send your first instruction: the Instruction and Input lines only, one instruction a message."
    )}  # fmt: skip
    # every agent's own earlier messages come with the user role; the opening reply stays the assistant's
    assert roles(a1) == ["system", "user", "assistant", "user"] and a1.messages[2]["content"] == INIT
    assert roles(i2) == ["system", "user", "user", "user"] and i2.messages[2]["content"].startswith("Instruction: add")
    assert roles(a2) == ["system", "user", "assistant", "user", "user", "user"]
    assert res.info == {"stop_reason": "task_done", "messages": 3, "task": "Add two and two.", "repeat_word_label": False}
    assert res.answer == "4" and res.agent_answers == {"Alice": None, "Bob": "4"}
    assert MathTask().score(INSTANCE, res.answer) == 1.0
    phases = [(e.worker, e.data["phase"]) for e in res.events if e.kind == "step"]
    assert phases == [("specifier", "specify"), ("Bob", "init"), ("Alice", "instruct"), ("Bob", "solve"),
                      ("Alice", "instruct"), ("Bob", "solve")]  # fmt: skip


def test_the_corrected_roles_variant():
    backend, _ = run(["Instruction: a\nInput: None", DONE], ["Solution: b.", "Solution: c."], history="corrected")
    _, _, _, _, i2, a2 = backend.requests
    assert roles(i2) == ["system", "user", "assistant", "user"]
    assert roles(a2) == ["system", "user", "assistant", "user", "assistant", "user"]


@pytest.mark.parametrize(
    ("instructor", "assistant", "params", "reason", "messages"),
    [
        # the detectors: the exact, case-sensitive "Instruction:" anywhere in the message
        (["Please. Instruction: add\nInput: None"] * 2 + [DONE], ["Solution: a."] * 3, {}, "task_done", 5),
        (["instruction: add"] * 3, ["Solution: a."] * 3, {}, "no_instruction", 4),  # lower case: none
        (["Instruction: go"], ["Solution: ok.\n**Instruction:** now you check it"], {}, "role_flip", 0),
        (["Instruction: go", DONE], ["Solution: my instruction: none.", "Solution: x."], {}, "task_done", 3),
        # a done token loses to a third idle message, and to a role flip in the reply to it
        (["Thanks!", "Great!", DONE], ["Solution: sure."] * 3, {}, "no_instruction", 4),
        (["Instruction: a", DONE], ["Solution: b", "Fine. Instruction: you do it"], {}, "role_flip", 2),
        (["Instruction: a"] * 3, ["Solution: b"] * 3, {"max_messages": 4}, "max_messages", 4),
        (["Thanks!", "Instruction: a", "Thanks!", "Thanks!"], ["Solution: b"] * 4, {"max_idle": 2}, "no_instruction", 6),
    ],
)
def test_stop_rules(instructor, assistant, params, reason, messages):
    _, res = run(instructor, assistant, **params)
    assert res.info["stop_reason"] == reason and res.info["messages"] == messages


def test_the_context_limit_counts_cl100k_tokens_as_published():
    message = [{"role": "user", "content": "Hello world, this is a test."}]
    assert count_tokens(message) == 2 + 4 + 1 + 8  # priming, per message, role, content
    assert count_tokens([]) == 2
    long = "Instruction: " + "word " * 300
    backend, res = run([long] * 5, ["Solution: " + "word " * 300] * 5, specify=False, context_limit=1200)
    assert res.info["stop_reason"] == "token_limit"
    init, i1, a1 = backend.requests  # round 2's instructor call is refused
    assert all(count_tokens(r.messages) < 1200 for r in backend.requests)
    refused = [*i1.messages, {"role": "user", "content": long}, {"role": "user", "content": "Solution: " + "word " * 300}]
    assert count_tokens(refused) >= 1200
    assert res.info["messages"] == 2  # round 1 was saved; the refused round saves nothing


def test_without_specification_and_a_budget():
    backend, res = run(["Instruction: a"] * 2, ["Solution: b"] * 2, specify=False, max_messages=4)
    assert role(backend.requests[0]) == "assistant"  # the opening step comes first
    assert "The task: What is 2+2? Put it in \\boxed{}.\nKeep" in backend.requests[1].messages[0]["content"]
    _, limited = run(["Instruction: a b c"] * 9, ["Solution: a b c"] * 9, specify=False, budget=Budget(tokens=12))
    assert limited.info["stop_reason"] == "budget"


def test_the_repeat_word_rule_labels_without_stopping():
    counter = RepeatWords()
    counter.round("Goodbye and good bye, thank you, bye!", "Solution: x.")
    assert counter.fired  # goodbye, good bye, thank, bye: four in a row
    quiet = RepeatWords()
    for _ in range(5):
        quiet.round("thank you", "bye")  # counts reset at every word that is absent
    assert not quiet.fired
    _, res = run(["Instruction: a. Goodbye, good bye, thank you, bye"] * 2, ["Solution: b"] * 2, max_messages=4)
    assert res.info["repeat_word_label"] and res.info["stop_reason"] == "max_messages"


@pytest.mark.parametrize(
    "params",
    [{"max_idle": 0}, {"done_token": " "}, {"word_limit": 0}, {"history": "modern"}, {"context_limit": -1}],
)
def test_bad_options(params):
    with pytest.raises(HivethinkError) as err:
        get_substrate("camel", **params)
    assert "\n" not in str(err.value)
