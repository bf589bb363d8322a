"""The arithmetic task of multi-agent debate and the two probe tasks built on it."""

import re

import pytest

from hivethink.errors import HivethinkError
from hivethink.tasks.arithmetic import ArithmeticTask, evaluate
from hivethink.tasks.probes import PROBE_SUBSTRATES, CommonGroundTask, ErrorPropagationTask

EXPR = re.compile(r"What is the result of (\d+)\+(\d+)\*(\d+)\+(\d+)-(\d+)\*(\d+)\?")


def test_arithmetic_problems_are_du_expressions():
    for inst in ArithmeticTask().generate(30, 1):
        ops = [int(x) for x in EXPR.fullmatch(inst.question).groups()]
        assert ops == inst.data["operands"] and all(0 <= x <= 29 for x in ops)
        a, b, c, d, e, f = ops
        assert inst.target == str(a + b * c + d - e * f)
        assert inst.prompt.endswith("State your answer at the end of your response.")
    task = ArithmeticTask()
    inst = task.generate(1, 0)[0]
    assert task.score(inst, task.extract(f"so it is {inst.target}")) == 1.0
    assert task.extract(rf"\boxed{{{inst.target}}} then 3") == inst.target
    assert task.score(inst, f"{inst.target}.0") == 1.0 and task.score(inst, "1 or 2") == 0.0


def test_arithmetic_problems_are_the_published_generator_stream():
    """gen_math.py: ``np.random.seed(0)``, then ``np.random.randint(0, 30, size=6)`` per problem."""
    import numpy as np

    from hivethink.tasks.arithmetic import published_draws

    np.random.seed(0)
    published = [[int(v) for v in np.random.randint(0, 30, size=6)] for _ in range(100)]
    got = ArithmeticTask().generate(100, 0)
    assert [i.data["operands"] for i in got] == published == published_draws(100)
    assert got[0].question == "What is the result of 12+15*21+0-3*27?"  # numpy's legacy stream
    assert [i.data["operands"] for i in ArithmeticTask().generate(3, 0)] == published[:3]


def test_common_ground_revises_the_fourth_number_mid_run():
    for inst in CommonGroundTask(start=2).generate(20, 0):
        first, revised = inst.data["operands"], inst.data["revised"]
        assert first[:3] == revised[:3] and first[4:] == revised[4:] and first[3] != revised[3]
        assert inst.target == str(evaluate(revised)) and inst.probe is not None
        assert inst.probe.kind == "revision" and inst.probe.start == 2
        assert inst.probe.misled == str(evaluate(first)) != inst.target
        assert f"is {revised[3]}, not {first[3]}" in inst.probe.text
        assert f"{revised[0]}+{revised[1]}*{revised[2]}+{revised[3]}-" in inst.probe.text
    with pytest.raises(HivethinkError, match="start must be at least 1"):
        CommonGroundTask(start=0)


def test_error_propagation_seeds_a_wrong_product_that_nothing_else_contains():
    for inst in ErrorPropagationTask().generate(40, 0):
        a, b, c, d, e, f = inst.data["operands"]
        probe = inst.probe
        assert probe is not None and probe.kind == "seed" and probe.marker is not None
        wrong = int(probe.marker)
        assert wrong != b * c and 1 <= abs(wrong - b * c) <= 9 and wrong >= 0
        assert wrong not in (a, b, c, d, e, f, e * f, a + b * c, a + b * c + d)
        assert f"{b}*{c} = {wrong}" in probe.text
        assert probe.misled == str(a + wrong + d - e * f) and inst.target == str(evaluate([a, b, c, d, e, f]))
    assert ErrorPropagationTask.substrates == CommonGroundTask.substrates == PROBE_SUBSTRATES
    assert ErrorPropagationTask.prompt_books == CommonGroundTask.prompt_books == ("probes",)
