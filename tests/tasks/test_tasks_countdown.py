import pytest

from hivethink.errors import HivethinkError
from hivethink.tasks.base import Instance
from hivethink.tasks.countdown import CountdownTask, check, evaluate, normalize_expression


def _inst(numbers: list[int], target: int) -> Instance:
    return Instance(
        task="countdown", id="t", prompt="", target=target,
        data={"numbers": numbers, "target": target, "solution": ""},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("(3 + 5) * 3", 1.0),
        ("3 * (3 + 5)", 1.0),
        ("8 * 3", 1.0),  # not every number has to be used
        ("(3 + 5) * 3 = 24", 1.0),
        (r"(3 + 5) \times 3", 1.0),
        ("(3 + 5) × 3", 1.0),
        ("(5 - 3 / 3) * 6", 0.0),  # 6 is not given
        ("8 * 3 * 1", 0.0),  # 1 is not given
        ("(3 + 3 + 3) * 5 - 21", 0.0),  # 3 three times, 21 not given
        ("3 * 8", 1.0),
        ("(5 + 3) * 3 + 0", 0.0),  # 0 is not given
        ("24", 0.0),
        ("(3 + 5) * 3.0", 0.0),  # floats are not integers
        ("-3 * -8", 0.0),  # unary minus is not an operator here
        ("", 0.0),
        (None, 0.0),
    ],
)
def test_score(answer, expected):
    assert CountdownTask().score(_inst([3, 5, 3, 8], 24), answer) == expected


def test_exact_division():
    assert check("(8 / 3) * 3", [8, 3, 3], 8)  # 8/3 is kept exact, not 2.666...
    assert check("6 / (1 - 3 / 4)", [6, 1, 3, 4], 24)
    assert not check("5 / (3 - 3)", [5, 3, 3], 1)  # division by zero


@pytest.mark.parametrize(
    "malicious",
    [
        "__import__('os').system('echo pwned')",
        "2 ** 10000000000",
        "9 ** 9 ** 9",
        "open('/etc/passwd').read()",
        "[x for x in range(10**9)]",
        "lambda: 1",
        "(" * 5000 + "1" + ")" * 5000,
        "1 +" * 10000 + "1",
        "9" * 5000,
        "3 if 1 else 5",
        "a + b",
        "True + True",
        "(3).__class__",
        "3 // 1",
        "3 % 2",
    ],
)
def test_malicious_expressions_score_zero_without_raising(malicious):
    task = CountdownTask()
    assert task.score(_inst([3, 5, 3, 8, 2, 10, 9, 1], 24), malicious) == 0.0
    assert task.score(_inst([2, 10], 1024), malicious) == 0.0


def test_evaluate_returns_literals_used():
    value, used = evaluate("(10 - 4) * (2 + 2)")
    assert value == 24 and used == [10, 4, 2, 2]
    assert evaluate("2 ** 3") is None


def test_normalize_expression():
    assert normalize_expression(r"$(3 + 5) \times 3 = 24$") == "(3 + 5) * 3"
    assert normalize_expression("24 = 8 ÷ 2 x 6") == "8 / 2 * 6"
    assert normalize_expression(r"\left(3+5\right) \cdot 3") == "(3+5) * 3"


def test_extract():
    task = CountdownTask()
    assert task.extract(r"I try \boxed{(3 + 5) \times 3}") == "(3 + 5) * 3"
    assert task.extract("Let me see.\n(3 + 5) * 3 = 24\nThat works!") == "(3 + 5) * 3"
    assert task.extract("No idea.") is None


def test_generated_instances_are_solvable_and_deterministic():
    task = CountdownTask(numbers=4, max_value=12, max_target=200)
    insts = task.generate(40, 2)
    for inst in insts:
        d = inst.data
        assert len(d["numbers"]) == 4 and all(1 <= x <= 12 for x in d["numbers"])
        assert inst.target == d["target"] and 2 <= d["target"] <= 200
        assert d["target"] not in d["numbers"]
        assert task.score(inst, d["solution"]) == 1.0
        assert str(d["target"]) in inst.prompt
    assert [i.data for i in insts] == [i.data for i in task.generate(40, 2)]
    assert [i.data for i in insts] != [i.data for i in task.generate(40, 3)]


def test_bad_parameters():
    with pytest.raises(HivethinkError):
        CountdownTask(numbers=1)
    with pytest.raises(HivethinkError):
        CountdownTask(max_value=1)
