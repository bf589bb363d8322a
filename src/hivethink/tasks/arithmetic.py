r"""The arithmetic task of multi-agent debate (Du et al., ``math/gen_math.py``): ``a+b*c+d-e*f``.

The six operands are drawn uniformly from 0..29 as the published generator draws them: after
``np.random.seed(seed)`` each problem is ``np.random.randint(0, 30, size=6)`` (numpy's legacy
Mersenne-Twister stream, 64-bit integers as on the published Linux runs), problem after problem.
With the lab's default instance seed 0 the first 100 instances are the published 100. The
question is "What is the result of a+b*c+d-e*f?"; the prompt asks to state the answer at the end
of the response. The answer is
read from the last ``\boxed{}`` when there is one, else it is the last number of the text; it
scores 1 when it equals the exact value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from random import Random

import numpy as np

from hivethink.answers import boxed
from hivethink.tasks._common import instance_id, params_of
from hivethink.tasks.base import Instance

OPERANDS = 6
HIGH = 29
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def expression(operands: list[int]) -> str:
    a, b, c, d, e, f = operands
    return f"{a}+{b}*{c}+{d}-{e}*{f}"


def evaluate(operands: list[int]) -> int:
    a, b, c, d, e, f = operands
    return a + b * c + d - e * f


def question(operands: list[int]) -> str:
    return f"What is the result of {expression(operands)}?"


def draw(rng: Random) -> list[int]:
    """Six operands from a Python generator (the probes' problems)."""
    return [rng.randint(0, HIGH) for _ in range(OPERANDS)]


def published_draws(n: int, seed: int = 0) -> list[list[int]]:
    """The first ``n`` operand lists of the published generator (``math/gen_math.py``):
    ``np.random.seed(seed)``, then ``np.random.randint(0, 30, size=6)`` per problem."""
    stream = np.random.RandomState(seed)  # the legacy seeding np.random.seed uses
    return [[int(v) for v in stream.randint(0, HIGH + 1, size=OPERANDS, dtype=np.int64)] for _ in range(n)]


@dataclass
class ArithmeticTask:
    """``a+b*c+d-e*f`` problems, the published generator's stream from the lab's instance seed;
    ``data``: ``{"question", "operands"}``; the target is the value."""

    name = "arithmetic"

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = params_of(self)
        out = []
        for i, operands in enumerate(published_draws(n, seed)):
            text = question(operands)
            out.append(Instance(
                task=self.name, id=instance_id(self.name, params, seed, i),
                prompt=f"{text} State your answer at the end of your response.",
                target=str(evaluate(operands)), data={"question": text, "operands": operands},
            ))  # fmt: skip
        return out

    def extract(self, text: str) -> str | None:
        found = boxed(text)
        if found is not None:
            return found
        numbers = _NUMBER.findall(text)
        return numbers[-1] if numbers else None

    def score(self, instance: Instance, answer: str | None) -> float:
        return 1.0 if answer is not None and same_number(answer, str(instance.target)) else 0.0


def same_number(answer: str, target: str) -> bool:
    """Whether ``answer`` (a number, possibly inside text such as ``$-5$``) equals ``target``."""
    found = _NUMBER.findall(answer.replace(",", ""))
    return len(found) == 1 and float(found[0]) == float(target)
