"""``metagpt`` on a scripted backend: who acts in which round, what each action is shown (only
the documents it watches; the v0.1.0 engineer its whole memory), the parse retry and the abort,
the QA loop ending at a pass and at its round cap, the chat ablation and the math adaptation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hivethink.backends.fake import ScriptedBackend
from hivethink.errors import HivethinkError
from hivethink.substrates import get_substrate
from hivethink.substrates.base import Budget
from hivethink.substrates.metagpt import ADAPTATION
from hivethink.substrates.metagpt_docs import DESIGN_081, PRD_081, TASKS_081, Schema
from hivethink.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
CODE = str(ROOT / "src" / "hivethink" / "tasks" / "data" / "code_mini.jsonl")
GOOD = "def add(a: int, b: int) -> int:\n    return a + b\n"


def fenced(code: str) -> str:
    return f"```python\n{code}```"


PRD_010 = """## Original Requirements
Add two numbers.
## Product Goals
```python
["Add"]
```
## User Stories
```python
["As a user, I add"]
```
## Competitive Analysis
```python
["None"]
```
## Competitive Quadrant Chart
```mermaid
quadrantChart
```
## Requirement Analysis
Simple.
## Requirement Pool
```python
[("add", "P0")]
```
## Anything UNCLEAR
No.
"""
DESIGN_010 = """## Implementation approach
Plain Python.
## Python package name
```python
"adder"
```
## File list
```python
["add.py"]
```
## Data structures and interface definitions
```mermaid
classDiagram
```
## Program call flow
```mermaid
sequenceDiagram
```
## Anything UNCLEAR
No.
"""
TASKS_010 = """## Required Python third-party packages
```python
\"\"\"none\"\"\"
```
## Required Other language third-party packages
```python
\"\"\"none\"\"\"
```
## Full API spec
```python
\"\"\"none\"\"\"
```
## Logic Analysis
```python
[("add.py", "add")]
```
## Task list
```python
["add.py"]
```
## Shared Knowledge
```python
\"\"\"none\"\"\"
```
## Anything UNCLEAR
No.
"""


def tagged(schema: Schema, **given: object) -> str:
    """A v0.8.1 document: every node filled, as JSON between the content tags."""
    fill = {"str": "x", "list[str]": ["x"], "list[list[str]]": [["P0", "x"]]}
    data = {k: given.get(k, fill[t]) for k, t in schema.sections}
    return f"[CONTENT]\n{json.dumps(data)}\n[/CONTENT]"


def role_of(request) -> str:
    system = request.messages[0]["content"]
    for name in ("Alice", "Bob", "Eve", "Alex", "Edward"):
        if name in system:
            return name
    return "Alex" if system == "" else "?"


def run(params: dict, script, task=None, index: int = 0):
    task = task or get_task("code", source=CODE)
    instance = task.generate(6, 0)[index]
    backend = ScriptedBackend(script)
    result = get_substrate("metagpt", **params).run(instance, task, backend, workers=1, budget=Budget(), seed=0)
    prompts = [(e.step, e.worker, e.text, e.data.get("action")) for e in result.events if e.kind == "prompt"]
    return result, backend, prompts, task, instance


def test_v010_pipeline_one_stage_per_round_with_a_parse_retry():
    replies = {"Alice": ["## Original Requirements\nno other section", PRD_010], "Bob": [DESIGN_010],
               "Eve": [TASKS_010], "Alex": [fenced(GOOD)]}
    seen: list[str] = []

    def script(request, index):
        who = role_of(request)
        seen.append(who)
        return replies[who].pop(0)

    result, backend, prompts, task, instance = run({"version": "v0.1.0", "feedback": False}, script)
    assert result.info["acted"] == [[0, "Alice", "WritePRD"], [0, "Alice", "WritePRD"], [1, "Bob", "WriteDesign"],
                                    [2, "Eve", "WriteTasks"], [3, "Alex", "WriteCode"]]
    assert result.info["rounds"] == 4 and result.info["stop_reason"] == "n_round" and result.info["idle_from"] == 4
    retry = [e for e in result.events if e.kind == "error" and e.data.get("reason") == "parse"]
    assert len(retry) == 1 and retry[0].worker == "Alice" and "missing section" in retry[0].text
    first, again = backend.requests[0].messages, backend.requests[1].messages
    assert first == again  # the retry repeats the identical messages
    requirement = instance.data["question"]
    pm, arch, pjm, eng = (p[2] for p in prompts[1:])
    assert f"[BOSS: {requirement}]" in pm
    # each document action is shown only the raw reply it watches, as a list printout
    assert "[Product Manager: ## Original Requirements" in arch and "BOSS:" not in arch
    assert "[Architect: ## Implementation approach" in pjm and "Product Manager:" not in pjm
    # the engineer: an empty system message and its whole memory
    assert backend.requests[-1].messages[0] == {"role": "system", "content": ""}
    for who in ("BOSS:", "Product Manager:", "Architect:", "Project Manager:"):
        assert who in eng
    assert "## add.py: write the code" in eng
    assert result.answer == GOOD and task.score(instance, result.answer) == 1.0
    # the engineer published only "all done."
    done = [e for e in result.events if e.kind == "message" and e.worker == "Alex"]
    assert [e.text for e in done] == ["all done."]


def test_v010_second_parse_failure_aborts_and_save_checks_abort_too():
    result, *_ = run({"version": "v0.1.0", "feedback": False}, lambda r, i: "no sections at all")
    assert result.info["stop_reason"] == "aborted" and result.answer is None
    assert result.info["acted"] == [[0, "Alice", "WritePRD"], [0, "Alice", "WritePRD"]]
    unfenced = DESIGN_010.replace('```python\n"adder"\n```', '"adder"')
    replies = {"Alice": [PRD_010], "Bob": [unfenced]}
    result, *_ = run({"version": "v0.1.0", "feedback": False}, lambda r, i: replies[role_of(r)].pop(0))
    assert result.info["stop_reason"] == "aborted"
    assert any("saving the documents failed" in e.text for e in result.events if e.kind == "error")
    replies = {"Alice": [PRD_010], "Bob": [unfenced], "Eve": [TASKS_010], "Alex": [fenced(GOOD)]}
    result, *_ = run({"version": "v0.1.0", "feedback": False, "save_checks": False},
                     lambda r, i: replies[role_of(r)].pop(0))
    assert result.info["stop_reason"] == "n_round" and result.answer == GOOD


def v081_script(run_verdicts: list[str], code: str = GOOD, log: list | None = None):
    """Replies of every v0.8.1 action; RunCode summaries come from ``run_verdicts``."""
    test = ("import unittest\nfrom add import add\nclass T(unittest.TestCase):\n"
            "    def test(self):\n        self.assertEqual(add(2, 3), 5)\nunittest.main()\n")

    def script(request, index):
        user = request.messages[-1]["content"]
        action = next(a for k, a in (
            ("Code Review Result: str", "review"), ("# Instruction: rewrite the code", "rewrite"),
            ("## Code Review All", "summarize"), ("Does the log above", "is_pass"),
            ("## Write test cases", "write_test"), ("sum up the result of running", "run_code"),
            ("Now rewrite the code", "debug"), ("## Code: add.py", "code"),
            ('"Task list"', "tasks"), ('"File list"', "design"), ('"Product Goals"', "prd")) if k in user)
        if log is not None:
            log.append((action, user))
        if action == "prd":
            return tagged(PRD_081)
        if action == "design":
            return tagged(DESIGN_081, **{"File list": ["add.py"]})
        if action == "tasks":
            return tagged(TASKS_081, **{"Task list": ["add.py"]})
        if action in ("code", "rewrite"):
            return fenced(code)
        if action == "review":
            return "## Code Review Result\nLGTM"
        if action == "summarize":
            return "## Summary\nadd.py adds."
        if action == "is_pass":
            return '{"YES": true}'
        if action in ("write_test", "debug"):
            return fenced(test)
        return f"## Status:\nFAIL\n## Send To:\n{run_verdicts.pop(0)}\n"
    return script


def test_v081_qa_loop_ends_at_a_pass():
    log: list = []
    result, backend, prompts, task, instance = run({"code_review": False}, v081_script(["NoOne"], log=log))
    acted = [(r, who, what) for r, who, what in result.info["acted"]]
    assert acted == [(0, "Alice", "PrepareDocuments"), (1, "Alice", "WritePRD"), (2, "Bob", "WriteDesign"),
                     (3, "Eve", "WriteTasks"), (4, "Alex", "WriteCode"), (5, "Alex", "SummarizeCode"),
                     (5, "Alex", "IsPass"), (6, "Edward", "WriteTest"), (7, "Edward", "RunCode")]
    assert result.info["test_rounds"] == 2 and result.info["stop_reason"] == "n_round"
    shown = dict(log)
    # the architect sees the PRD's JSON (its typed fields), not the requirement document
    assert '"Product Goals": ["x"]' in shown["design"] and "### Original Requirements" not in shown["design"]
    assert '"File list": ["add.py"]' in shown["tasks"] and '"Product Goals"' not in shown["tasks"]
    assert '"Task list": ["add.py"]' in shown["code"] and '"File list": ["add.py"]' in shown["code"]
    runs = [e for e in result.events if e.kind == "message" and e.data.get("sandbox")]
    assert len(runs) == 1 and runs[0].data["passed"] is True and runs[0].data["status"] == "exit"
    assert "Ran 1 test" in shown["run_code"]  # the sandbox's real unittest output, shown to the QA
    assert result.answer == GOOD and task.score(instance, result.answer) == 1.0


def test_v081_qa_loop_stops_after_five_test_rounds():
    verdicts = ["QaEngineer"] * 10
    result, backend, prompts, *_ = run({"code_review": False, "n_round": 30}, v081_script(verdicts))
    qa = [(r, what) for r, who, what in result.info["acted"] if who == "Edward"]
    # WriteTest, then RunCode / DebugError alternating: six turns (test rounds 0..5), then skipped
    assert [w for _, w in qa] == ["WriteTest", "RunCode", "DebugError", "RunCode", "DebugError", "RunCode",
                                  "skip (test rounds exceeded)"]
    assert result.info["test_rounds"] == 6
    assert [r for r, _ in qa] == [6, 7, 8, 9, 10, 11, 12]


def test_results_sent_to_the_engineer_are_ignored_as_published_or_fixed_by_the_variant():
    bad = "def add(a: int, b: int) -> int:\n    return a - b\n"
    result, *_ = run({"code_review": False}, v081_script(["Engineer"], code=bad))
    last = result.info["acted"][-1]
    assert last == [8, "Alex", "nothing (RunCode has no rule)"] and result.answer == bad
    log: list = []
    codes = iter([bad, GOOD])
    base = v081_script(["Engineer", "NoOne"], log=log)

    def fixing(request, index):
        reply = base(request, index)
        return fenced(next(codes)) if reply.startswith("```python\ndef add") else reply

    result, *_ = run({"code_review": False, "feedback_to": "engineer"}, fixing)
    rewrites = [user for action, user in log if action == "code"]
    assert len(rewrites) == 2 and "AssertionError" in rewrites[1] and "AssertionError" not in rewrites[0]
    assert result.answer == GOOD


def test_code_review_rewrites_on_lbtm():
    reviews = iter(["## Code Review Result\nLBTM", "## Code Review Result\nLGTM"])
    fixed = "def add(a, b):\n    return b + a\n"
    base = v081_script(["NoOne"])

    def script(request, index):
        user = request.messages[-1]["content"]
        if "Code Review Result: str" in user:
            return next(reviews)
        if "# Instruction: rewrite the code" in user:
            return fenced(fixed)
        return base(request, index)

    result, *_ = run({"feedback": False, "n_round": 6}, script)
    steps = [w for _, who, w in result.info["acted"] if who == "Alex"]
    assert steps[:4] == ["WriteCode", "WriteCodeReview", "RewriteCode", "WriteCodeReview"]
    assert result.answer == fixed


def test_chat_ablation_keeps_roles_and_order_with_free_messages():
    log: list = []

    def script(request, index):
        user = request.messages[-1]["content"]
        log.append((role_of(request), user))
        if "As the engineer" in user:
            return fenced(GOOD)
        return "Let us just add the numbers, no need for more."

    result, backend, prompts, task, instance = run({"version": "v0.1.0", "feedback": False,
                                                    "artifacts": "chat"}, script)
    assert [w for _, w, _ in result.info["acted"]] == ["Alice", "Bob", "Eve", "Alex"]
    assert [r for r, _, _ in result.info["acted"]] == [0, 1, 2, 3]
    # the project manager sees the whole conversation: the boss and both earlier roles
    pjm = next(u for who, u in log if who == "Eve")
    assert "BOSS (BOSS)" in pjm and "Alice (Product Manager)" in pjm and "Bob (Architect)" in pjm
    assert not [e for e in result.events if e.kind == "error"]
    assert result.answer == GOOD and task.score(instance, result.answer) == 1.0


def test_math_adaptation_checks_the_computation_in_the_sandbox():
    task = get_task("math", steps=1, template="arith")
    instance = task.generate(1, 0)[0]
    target = instance.target
    solutions = iter([f"## Working\nw\n## Computation\n```python\n{target} + 1\n```\n## Final Answer\n\\boxed{{{target}}}",
                      f"## Working\nw\n## Computation\n```python\n{target}\n```\n## Final Answer\n\\boxed{{{target}}}"])
    log: list = []

    def script(request, index):
        user = request.messages[-1]["content"]
        log.append(user)
        if "## Restated Problem:" in user:
            return "## Restated Problem\np\n## Given Quantities\n```python\n['a']\n```\n## Goal\ng"
        if "## Steps:" in user:
            return "## Steps\n```python\n['s']\n```"
        return next(solutions)

    result, *_ = run({"version": "v0.1.0"}, script, task=task)
    assert result.info["adaptation"] == ADAPTATION
    assert [(r, w) for r, w, _ in result.info["acted"]] == [(0, "Alice"), (1, "Bob"), (2, "Alex"), (3, "Edward"),
                                                         (4, "Alex"), (5, "Edward")]
    assert "evaluates to" in log[-1] and "but your final answer is" in log[-1]  # the checker's report
    assert result.answer == str(target) and task.score(instance, result.answer) == 1.0


def test_bad_options_and_pairings_are_one_line_errors():
    with pytest.raises(HivethinkError, match="version must be one of"):
        get_substrate("metagpt", version="v2")
    with pytest.raises(HivethinkError, match="no QA engineer"):
        get_substrate("metagpt", version="v0.1.0").accepts(get_task("code", source=CODE))
    assert not get_substrate("metagpt").accepts(get_task("countdown"))


def test_the_budget_is_checked_at_each_rounds_start_v010_above_v081_at():
    task = get_task("code", source=CODE)
    instance = task.generate(1, 0)[0]
    spent = len(PRD_010.split())  # the scripted backend counts words as tokens
    replies = {"Alice": [PRD_010], "Bob": [DESIGN_010], "Eve": [TASKS_010], "Alex": [fenced(GOOD)]}
    result = get_substrate("metagpt", version="v0.1.0", feedback=False).run(
        instance, task, ScriptedBackend(lambda r, i: replies[role_of(r)].pop(0)), workers=1,
        budget=Budget(tokens=spent), seed=0)
    # v0.1.0 stops when the cost is above the budget: at the budget, the architect still acts
    assert [w for _, w, _ in result.info["acted"]] == ["Alice", "Bob"] and result.info["stop_reason"] == "budget"
    prd = tagged(PRD_081)
    result = get_substrate("metagpt", feedback=False).run(
        instance, task, ScriptedBackend(lambda r, i: prd), workers=1, budget=Budget(tokens=len(prd.split())), seed=0)
    # v0.8.1 stops when it is at the budget
    assert [w for _, _, w in result.info["acted"]] == ["PrepareDocuments", "WritePRD"]
    assert result.info["stop_reason"] == "budget"
