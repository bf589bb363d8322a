r"""The arithmetic task of multi-agent debate (Du et al., ``math/gen_math.py``): ``a+b*c+d-e*f``.

The six operands are drawn uniformly from 0..29. The question is "What is the result of
a+b*c+d-e*f?"; the prompt asks to state the answer at the end of the response. The answer is
read from the last ``\boxed{}`` when there is one, else it is the last number of the text; it
scores 1 when it equals the exact value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from random import Random

from hivethink.answers import boxed
from hivethink.tasks._common import instance_id, instance_rng, params_of
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
    return [rng.randint(0, HIGH) for _ in range(OPERANDS)]


@dataclass
class ArithmeticTask:
    """``a+b*c+d-e*f`` problems; ``data``: ``{"question", "operands"}``; the target is the value."""

    name = "arithmetic"

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = params_of(self)
        out = []
        for i in range(n):
            operands = draw(instance_rng(self.name, params, seed, i))
            text = question(operands)
            out.append(Instance(
                task=self.name, id=instance_id(self.name, params, seed, i),
                prompt=f"{text} Make sure to state your answer at the end of the response.",
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
