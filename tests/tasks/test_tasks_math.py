import json
import re
from fractions import Fraction

import pytest

from hivethink.errors import HivethinkError
from hivethink.tasks.base import Instance
from hivethink.tasks.countdown import evaluate
from hivethink.tasks.math import TEMPLATES, MathTask, answers_match, as_fraction


def _inst(target: str) -> Instance:
    return Instance(task="math", id="t", prompt="", target=target)


@pytest.mark.parametrize(
    ("target", "answer", "expected"),
    [
        ("1/2", r"\frac{1}{2}", 1.0),
        ("1/2", "0.5", 1.0),
        (r"\frac{1}{2}", "0.5", 1.0),
        ("42", "42", 1.0),
        ("42", "42.0", 1.0),
        ("1000", "1,000", 1.0),
        ("-7/3", r"-\frac{7}{3}", 1.0),
        ("7/3", "2.33", 0.0),
        ("42", "43", 0.0),
        ("42", "", 0.0),
        ("42", None, 0.0),
        ("42", "banana", 0.0),
        (r"\sqrt{2}", r"\frac{2}{\sqrt{2}}", 1.0),  # needs math-verify, not the fast path
        (r"\sqrt{2}", r"\sqrt{3}", 0.0),
    ],
)
def test_score_equivalences(target, answer, expected):
    assert MathTask().score(_inst(target), answer) == expected


def test_score_never_raises_on_junk():
    task = MathTask()
    for junk in [r"\frac{", "}}}{{{", "1/0", "x" * 5000, r"\boxed{\boxed{"]:
        assert task.score(_inst("3"), junk) == 0.0


def test_as_fraction_fast_path():
    assert as_fraction(r"\dfrac{3}{4}") == Fraction(3, 4)
    assert as_fraction("$-2.5$") == Fraction(-5, 2)
    assert as_fraction("1/0") is None
    assert as_fraction("x+1") is None
    assert answers_match("5", " 5. ")


def test_extract_boxed_then_answer_is():
    task = MathTask()
    assert task.extract(r"so \boxed{3} no wait \boxed{\frac{7}{2}}") == r"\frac{7}{2}"
    assert task.extract("Thus the final answer is 17.") == "17"
    assert task.extract("I am not sure.") is None


def test_generation_is_deterministic_per_seed():
    task = MathTask(steps=3)
    a, b, c = task.generate(6, 11), task.generate(6, 11), task.generate(6, 12)
    assert [(i.id, i.prompt, i.target) for i in a] == [(i.id, i.prompt, i.target) for i in b]
    assert [i.prompt for i in a] != [i.prompt for i in c]
    assert [i.prompt for i in task.generate(3, 11)] == [i.prompt for i in a[:3]]
    assert len({i.id for i in a}) == 6
    assert a[0].id != MathTask(steps=4).generate(1, 11)[0].id


def test_prompt_asks_for_boxed_answer():
    for inst in MathTask().generate(5, 0):
        assert "\\boxed{}" in inst.prompt
        assert inst.data["question"] in inst.prompt
        assert inst.data["template"] in TEMPLATES


def test_arith_targets_match_the_expression():
    for inst in MathTask(template="arith", steps=4).generate(30, 3):
        expr = re.search(r"value of (.+?)\. Give", inst.prompt).group(1)
        value, _ = evaluate(expr)
        assert as_fraction(inst.target) == value
        assert expr.count("(") == 3


@pytest.mark.parametrize("template", ["inventory", "shopping", "ages", "train"])
def test_word_problem_targets_are_nonnegative_integers(template):
    for inst in MathTask(template=template, steps=3).generate(40, 5):
        assert re.fullmatch(r"\d+", inst.target), inst.prompt


def test_known_train_problem():
    inst = MathTask(template="train", steps=2).generate(1, 0)[0]
    legs = re.findall(r"for (\d+) hours? at (\d+) km/h", inst.prompt)
    assert len(legs) == 2
    assert int(inst.target) == sum(int(h) * int(s) for h, s in legs)


def test_bad_parameters():
    with pytest.raises(HivethinkError):
        MathTask(steps=0)
    with pytest.raises(HivethinkError):
        MathTask(template="poetry")


def test_source_file(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [{"question": f"What is {i}+{i}?", "answer": 2 * i} for i in range(5)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    task = MathTask(source=str(path))
    insts = task.generate(3, 0)
    assert len(insts) == 3
    assert len(task.generate(10, 0)) == 5  # no more than the file holds
    for inst in insts:
        i = int(re.search(r"What is (\d+)", inst.prompt).group(1))
        assert inst.target == str(2 * i)
        assert "\\boxed{}" in inst.prompt
        assert task.score(inst, str(2 * i)) == 1.0
    assert [i.prompt for i in insts] == [i.prompt for i in task.generate(3, 0)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no rows"),
        ('{"question": "q"}\n', "no answer field"),
        ('{"question": "q", "answer": 1}\n{"question": "r"}\n', "line 2: no field 'answer'"),
        ('{"question": "q", "answer": 1}\nnot json\n', "line 2: not JSON"),
        ('{"question": "", "answer": 1}\n', "question"),
        ('{"question": "q", "answer": null}\n', "answer"),
        ("[1, 2]\n", "line 1"),
    ],
)
def test_bad_source_file_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(HivethinkError, match=message) as err:
        MathTask(source=str(path))
    assert "\n" not in str(err.value)


def test_missing_source_file(tmp_path):
    with pytest.raises(HivethinkError, match="no such file"):
        MathTask(source=str(tmp_path / "nope.jsonl"))


def test_debate_du_selection_is_the_published_seeded_shuffle(tmp_path):
    """gen_gsm.py: ``random.seed(0); random.shuffle(questions)``, the first 100, whatever the
    lab's seed; the reference solution text is kept for the published scorer."""
    import json
    import random

    rows = [{"question": f"Question {i}?", "answer": f"Work.\n#### {i}"} for i in range(1319)]
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    expected = list(rows)
    random.Random(0).shuffle(expected)  # what the published script does to its list of rows
    task = MathTask(source=str(path), selection="debate-du")
    for seed in (0, 5):
        got = task.generate(500, seed)
        assert [i.data["question"] for i in got] == [r["question"] for r in expected[:100]]
    assert got[0].data["reference"] == expected[0]["answer"]
    assert got[0].target == str(rows.index(expected[0]))


def test_debate_du_selection_needs_the_fields_the_published_script_reads(tmp_path):
    import json

    path = tmp_path / "gsm.jsonl"
    path.write_text(json.dumps({"problem": "What?", "answer": "#### 3"}) + "\n")
    with pytest.raises(HivethinkError, match="no field 'question' for the question") as err:
        MathTask(source=str(path), selection="debate-du")
    assert "\n" not in str(err.value)
    with pytest.raises(HivethinkError, match="selection must be one of debate-du"):
        MathTask(source=str(path), selection="du")
    with pytest.raises(HivethinkError, match="picks rows of a source file"):
        MathTask(selection="debate-du")
    mapped = MathTask(source=str(path), selection="debate-du", fields={"question": "problem"})
    assert mapped.generate(1, 0)[0].target == "3"
