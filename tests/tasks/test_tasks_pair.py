import random
from fractions import Fraction

import pytest

from hivethink.errors import HivethinkError
from hivethink.tasks.math import MathTask, as_fraction
from hivethink.tasks.pair import PairTask, wrong_answer


def test_probe_wrong_answer_is_plausible_and_never_right():
    insts = PairTask(probe=True, steps=2).generate(60, 0)
    for inst in insts:
        target, wrong = as_fraction(inst.target), as_fraction(inst.data["wrong_answer"])
        assert wrong is not None and wrong != target
        assert abs(wrong - target) in (1, 2, 3, 5, 10)
        if target >= 0:
            assert wrong >= 0
        assert PairTask().score(inst, inst.data["wrong_answer"]) == 0.0
        assert PairTask().score(inst, inst.target) == 1.0


def test_wrong_answer_for_fractions_and_small_targets():
    rng = random.Random(0)
    for target in (Fraction(0), Fraction(1), Fraction(7, 3), Fraction(-4)):
        for _ in range(20):
            w = wrong_answer(target, rng)
            assert w != target
            if target >= 0:
                assert w >= 0


def test_no_probe_has_no_wrong_answer():
    inst = PairTask(probe=False).generate(1, 1)[0]
    assert "wrong_answer" not in inst.data


def test_problems_come_from_the_math_task():
    inst = PairTask(steps=3, template="arith").generate(1, 2)[0]
    assert inst.task == "pair" and inst.id.startswith("pair-")
    assert inst.data["template"] == "arith"
    assert inst.data["question"] in inst.prompt and "\\boxed{}" in inst.prompt
    assert inst.question == inst.data["question"]  # what the coral preset states as the problem
    assert "agree" not in inst.prompt.lower()  # the task does not tell the pair how to talk
    assert PairTask().extract(r"we agree: \boxed{12}") == "12"


def test_generation_is_deterministic():
    a = PairTask(probe=True).generate(5, 7)
    b = PairTask(probe=True).generate(5, 7)
    assert [(i.id, i.prompt, i.data) for i in a] == [(i.id, i.prompt, i.data) for i in b]


def test_bad_parameters_are_checked_by_math():
    with pytest.raises(HivethinkError):
        PairTask(steps=0)
    assert MathTask(steps=2).generate(1, 0)[0].target  # same defaults work


def test_a_math_resplit_file_runs_as_the_published_evaluation_set(tmp_path):
    """Coral's published sets are MATH JSONL rows with ``problem`` and ``answer`` (what the
    published grader compares with): every row in file order (the resplit validation file), or
    the first 1000 (the chain-of-thought baseline's test file)."""
    import json

    rows = [{"problem": f"Problem {i}: what is {i}+1?", "solution": f"It is $\\boxed{{{i + 1}}}$.",
             "answer": str(i + 1), "level": "Level 1", "type": "Algebra"} for i in range(5)]  # fmt: skip
    rows[2]["answer"] = "\\frac{1}{2}"
    path = tmp_path / "val.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = PairTask(source=str(path), shuffle=False)
    got = task.generate(10, 0)  # asked for more than the file holds: every row, once
    assert [i.data["question"] for i in got] == [r["problem"] for r in rows]
    assert [i.target for i in got] == ["1", "2", "\\frac{1}{2}", "4", "5"]
    assert all(i.task == "pair" and i.id.startswith("pair-") for i in got)
    assert task.score(got[2], "0.5") == 1.0
    assert [i.target for i in PairTask(source=str(path), shuffle=False, limit=2).generate(10, 0)] == ["1", "2"]
    with pytest.raises(HivethinkError, match="probe needs generated problems"):
        PairTask(source=str(path), probe=True)
