"""The code task: HumanEval and MBPP rows, pass@1 in the sandbox with the failure's kind, the
verifier hook, and a file with a missing field refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hivethink.errors import HivethinkError
from hivethink.metrics.outcome import outcome_metrics
from hivethink.tasks import get_task
from hivethink.tasks.base import VerifiableTask

CODE = str(Path(__file__).resolve().parents[2] / "src" / "hivethink" / "tasks" / "data" / "code_mini.jsonl")


def test_canonical_solutions_pass_and_wrong_ones_fail_by_kind():
    task = get_task("code", source=CODE)
    assert isinstance(task, VerifiableTask)
    instances = task.generate(10, 0)
    assert len(instances) == 6 and {i.data["style"] for i in instances} == {"humaneval", "mbpp"}
    for inst in instances:
        assert task.score(inst, inst.target) == 1.0, inst.data["task_id"]
    add, square = instances[0], instances[4]
    # a HumanEval completion (the body alone) is run after the prompt's signature
    assert task.verify(add, "    return a + b\n").passed
    assert task.verify(add, "def add(a, b):\n    return a - b\n").status == "exception"
    assert task.verify(add, "def add(a, b) return a").status == "syntax_error"
    assert task.verify(add, None).status == "no_code"
    # the results line says how the team answer's run ended
    assert outcome_metrics(task, square, "def square(x):\n    return x + x\n") == {
        "score": 0.0, "correct": 0.0, "code_status": "exception"}
    assert outcome_metrics(task, square, "def square(x):\n    return x * x\n")["code_status"] == "ok"


def test_prompts_show_mbpp_tests_but_never_the_humaneval_check():
    task = get_task("code", source=CODE)
    add, largest = task.generate(4, 0)[0], task.generate(4, 0)[3]
    assert "def add(a: int, b: int)" in add.prompt and "check(" not in add.prompt
    assert "assert max_of_three(1, 2, 3) == 3" in largest.prompt and "`max_of_three`" in largest.prompt
    hidden = get_task("code", source=CODE, show_tests=False).generate(4, 0)[3]
    assert "assert" not in hidden.prompt


def test_extract_reads_the_code_block():
    task = get_task("code", source=CODE)
    reply = "Here:\n```python\ndef add(a, b):\n    return a + b\n```\nUsage:\n```python\nprint(add(1, 2))\n```"
    assert task.extract(reply) == "def add(a, b):\n    return a + b"
    assert task.extract("def add(a, b):\n    return a + b") == "def add(a, b):\n    return a + b"
    assert task.extract("no code here") is None


@pytest.mark.parametrize(("row", "message"), [
    ({"task_id": "t", "prompt": "p", "test": "assert 1"}, "line 1: no field 'entry_point'"),
    ({"task_id": "t", "entry_point": "f", "test": "assert 1"}, "line 1: no field 'prompt'"),
    ({"task_id": "t", "prompt": "p", "entry_point": "f"}, "line 1: no field 'test' or 'test_list'"),
    ({"task_id": "t", "prompt": "p", "entry_point": "f", "test_list": []}, "non-empty list"),
    ({"task_id": "t", "prompt": "p", "entry_point": "not a name", "test": "x"}, "not a Python name"),
])  # fmt: skip
def test_a_row_missing_a_field_refuses_the_file_in_one_line(tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(HivethinkError, match=message) as err:
        get_task("code", source=str(path))
    assert "\n" not in str(err.value)
