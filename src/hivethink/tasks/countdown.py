r"""Countdown: reach a target from given numbers with + - * / and parentheses.

Every instance is solvable by construction (the target is built from a random expression that
uses all the numbers). The checker parses the answer with :mod:`ast` and evaluates only integer
literals and the four operators, exactly with fractions, so no text is ever executed.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from random import Random

from hivethink.answers import boxed as last_boxed
from hivethink.errors import HivethinkError
from hivethink.tasks._common import instance_id, instance_rng, params_of
from hivethink.tasks.base import Instance, Verdict

_MAX_EXPR_CHARS = 200  # a real answer is short; this also bounds parser recursion
_MAX_DEPTH = 40

_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


class _Invalid(Exception):
    """The expression uses something other than integers, + - * / and parentheses."""


def normalize_expression(text: str) -> str:
    r"""Plain ASCII arithmetic: ``\times``/``×``/``x`` -> ``*``, ``\div``/``÷`` -> ``/``, drop ``= ...``."""
    expr = text.strip().strip("$").strip()
    expr = re.sub(r"\\left|\\right", "", expr)
    expr = re.sub(r"\\times|\\cdot|×|·|∗", "*", expr)
    expr = re.sub(r"\\div|÷", "/", expr)
    expr = expr.replace("−", "-").replace("\\{", "(").replace("\\}", ")")
    expr = expr.replace("[", "(").replace("]", ")")
    expr = re.sub(r"(?<=[\d)])(\s*)[xX](\s*)(?=[\d(])", r"\1*\2", expr)
    if "=" in expr:  # "3 * 8 = 24" or "24 = 3 * 8": keep the side with an operator
        sides = [s.strip() for s in expr.split("=")]
        with_ops = [s for s in sides if re.search(r"[-+*/]", s)]
        expr = with_ops[0] if with_ops else sides[0]
    return expr.strip()


def _walk(node: ast.AST, used: list[int], depth: int) -> Fraction:
    if depth > _MAX_DEPTH:
        raise _Invalid("too deep")
    if isinstance(node, ast.Expression):
        return _walk(node.body, used, depth + 1)
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _Invalid("only non-negative integer literals")
        used.append(value)
        return Fraction(value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left = _walk(node.left, used, depth + 1)
        right = _walk(node.right, used, depth + 1)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise _Invalid("division by zero")
        return left / right
    raise _Invalid(f"not allowed: {type(node).__name__}")


def evaluate(expr: str) -> tuple[Fraction, list[int]] | None:
    """(exact value, integer literals used) of a safe arithmetic expression, or None."""
    expr = normalize_expression(expr)
    if not expr or len(expr) > _MAX_EXPR_CHARS:
        return None
    try:
        tree = ast.parse(expr, mode="eval")
        used: list[int] = []
        value = _walk(tree, used, 0)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError, _Invalid):
        return None
    return value, used


def check(expr: str | None, numbers: list[int], target: int) -> bool:
    """True iff ``expr`` equals ``target`` and uses each given number at most once."""
    if not expr:
        return False
    result = evaluate(expr)
    if result is None:
        return False
    value, used = result
    if Counter(used) - Counter(numbers):  # some literal not given, or used too often
        return False
    return value == target


def _build(rng: Random, numbers: list[int]) -> tuple[int, str]:
    """Combine all numbers pairwise with random valid operations; (value, expression)."""
    items: list[tuple[int, str]] = [(n, str(n)) for n in numbers]
    while len(items) > 1:
        i, j = rng.sample(range(len(items)), 2)
        (a, ea), (b, eb) = items[i], items[j]
        choices = ["+"]
        if a * b <= 1000 and 1 not in (a, b):
            choices.append("*")
        if a > b:
            choices.append("-")
        if b > 1 and a % b == 0:
            choices.append("/")
        op = rng.choice(choices)
        value = {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]  # all values stay >= 1
        expr = f"({ea} {op} {eb})"
        items = [it for n, it in enumerate(items) if n not in (i, j)] + [(value, expr)]
    value, expr = items[0]
    return value, expr[1:-1] if expr.startswith("(") else expr


@dataclass
class CountdownTask:
    r"""Make ``target`` from ``numbers`` values in 1..``max_value``; the answer goes in ``\boxed{}``.

    ``data``: ``{"numbers": [int], "target": int, "solution": str}`` (one known solution).
    Score 1 iff the expression evaluates exactly to the target and uses only the given numbers,
    each at most once; anything else (including ``**``, names, calls) scores 0.
    """

    name = "countdown"

    numbers: int = 4
    max_value: int = 12
    max_target: int = 200

    def __post_init__(self) -> None:
        if not 2 <= self.numbers <= 8:
            raise HivethinkError(f"countdown: numbers must be between 2 and 8, got {self.numbers}")
        if not 2 <= self.max_value <= 100:
            raise HivethinkError(
                f"countdown: max_value must be between 2 and 100, got {self.max_value}"
            )
        if self.max_target < 10:
            raise HivethinkError(
                f"countdown: max_target must be at least 10, got {self.max_target}"
            )

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = params_of(self)
        out = []
        for i in range(n):
            rng = instance_rng(self.name, params, seed, i)
            while True:  # almost always the first or second try
                numbers = [rng.randint(1, self.max_value) for _ in range(self.numbers)]
                target, solution = _build(rng, numbers)
                if 2 <= target <= self.max_target and target not in numbers:
                    break
            shown = ", ".join(str(x) for x in numbers)
            prompt = (
                f"Using the numbers {shown}, write an arithmetic expression that equals {target}. "
                "Use each number at most once; only +, -, *, / and parentheses are allowed.\n\n"
                "Put the final expression (without '= ...') inside \\boxed{}."
            )
            out.append(Instance(
                task=self.name, id=instance_id(self.name, params, seed, i), prompt=prompt,
                target=target, data={"numbers": numbers, "target": target, "solution": solution},
            ))  # fmt: skip
        return out

    def extract(self, text: str) -> str | None:
        r"""The last ``\boxed{}`` content, else the last line that looks like arithmetic."""
        boxed = last_boxed(text)
        if boxed:
            return normalize_expression(boxed)
        for line in reversed(text.strip().splitlines()):
            candidates = re.findall(r"[\d\s+\-*/×÷().=]+", line)
            candidates = [c for c in candidates if re.search(r"\d\s*[-+*/×÷]\s*[\d(]", c)]
            if candidates:
                return normalize_expression(max(candidates, key=len))
        return None

    def score(self, instance: Instance, answer: str | None) -> float:
        data = instance.data
        return 1.0 if check(answer, list(data["numbers"]), int(data["target"])) else 0.0

    def verify(self, instance: Instance, answer: str | None) -> Verdict:
        """The cascade's checker: the arithmetic check, which needs only what the prompt shows
        (the numbers and the target), so a solver could run it itself."""
        if self.score(instance, answer) == 1.0:
            return Verdict(True, "ok")
        return Verdict(False, "wrong", "the expression does not use the numbers to reach the target")
