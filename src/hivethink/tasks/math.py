r"""Multi-step arithmetic and word problems with exact answers, or the user's own problem file.

Generated problems chain ``steps`` operations in one of several templates (a bare expression,
an inventory, shopping, ages, a train journey). Every answer is an exact integer or a reduced
fraction written ``p/q``. Answers are read from the last ``\boxed{}`` and compared exactly,
then with math-verify (so ``\frac{1}{2}`` equals ``0.5``).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import pairwise
from random import Random

from hivethink.answers import boxed as last_boxed
from hivethink.errors import HivethinkError
from hivethink.tasks._common import (
    NAMES,
    answer_is,
    instance_id,
    instance_rng,
    params_of,
)
from hivethink.tasks.base import Instance
from hivethink.tasks.datasets import Problem, load_problems

TEMPLATES = ("arith", "inventory", "shopping", "ages", "train")
SELECTIONS = ("debate-du",)  # published selections of a file's rows
DEBATE_DU_QUESTIONS = 100
ANSWER_FORMAT = "Think step by step, then put the final answer in \\boxed{}."
_MAX_VERIFY_CHARS = 300  # math-verify on long junk is slow; real answers are short


def format_number(value: Fraction) -> str:
    """``7`` for integers, ``-7/3`` for the rest (the form targets are stored in)."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"


# --- templates: each returns (question, exact answer) ---------------------------------------


def _arith(rng: Random, steps: int) -> tuple[str, Fraction]:
    value = Fraction(rng.randint(2, 20))
    expr = str(value.numerator)
    for i in range(steps):
        op = rng.choice("+-*/")
        b = rng.randint(2, 12)
        if op == "/" and rng.random() < 0.5:
            # prefer an exact division half the time: small models handle fractions badly
            divisors = [
                d for d in range(2, 13) if value.denominator == 1 and value.numerator % d == 0
            ]
            if divisors:
                b = rng.choice(divisors)
        value = {
            "+": value + b, "-": value - b, "*": value * b, "/": value / b,
        }[op]  # fmt: skip
        expr = f"{expr} {op} {b}" if i == 0 else f"({expr}) {op} {b}"
    question = (
        f"Compute the exact value of {expr}. "
        "Give an integer, or a fraction in lowest terms if it is not a whole number."
    )
    return question, value


_GOODS = ("muffins", "books", "marbles", "stickers", "apples", "pencils", "shells", "cards")


def _inventory(rng: Random, steps: int) -> tuple[str, Fraction]:
    owner = rng.choice(NAMES[:40])
    goods = rng.choice(_GOODS)
    value = rng.randint(10, 40)
    parts = [f"{owner} has {value} {goods}."]
    for _ in range(steps):
        divisors = [d for d in (2, 3, 4, 5) if value % d == 0 and value // d >= 2]
        ops = ["add"] + (["mul"] if value <= 100 else []) + (["sub"] if value > 2 else [])
        ops += ["div"] if divisors else []
        op = rng.choice(ops)
        if op == "add":
            a = rng.randint(2, 20)
            value += a
            parts.append(f"Then {owner} gets {a} more.")
        elif op == "sub":
            b = rng.randint(1, min(value - 1, 20))
            value -= b
            parts.append(f"Then {owner} gives away {b}.")
        elif op == "mul":
            k = rng.choice((2, 3)) if value <= 60 else 2
            value *= k
            parts.append(f"Then the number of {goods} {owner} has becomes {k} times as large.")
        else:
            k = rng.choice(divisors)
            value //= k
            parts.append(
                f"Then {owner} splits the {goods} into {k} equal piles and keeps only one pile."
            )
    parts.append(f"How many {goods} does {owner} have now?")
    return " ".join(parts), Fraction(value)


_ITEMS = (  # (plural, lowest price, highest price)
    ("notebooks", 2, 6), ("pens", 1, 3), ("sandwiches", 4, 9), ("tickets", 5, 15),
    ("candles", 2, 8), ("mugs", 3, 10), ("plants", 6, 20), ("scarves", 8, 25),
)  # fmt: skip


def _shopping(rng: Random, steps: int) -> tuple[str, Fraction]:
    buyer = rng.choice(NAMES[:40])
    n_items = max(1, (steps + 1) // 2)
    chosen = rng.sample(_ITEMS, min(n_items, len(_ITEMS)))
    total = 0
    parts = []
    for item, lo, hi in chosen:
        qty, price = rng.randint(2, 6), rng.randint(lo, hi)
        total += qty * price
        parts.append(f"{qty} {item} at ${price} each")
    text = (
        f"{buyer} buys "
        + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1])
        + "."
    )
    if steps % 2 == 0:
        bill = next(b for b in (10, 20, 50, 100, 200, 500, 1000) if b > total)
        return (
            f"{text} {buyer} pays with a ${bill} bill. How many dollars of change does {buyer} get?",
            Fraction(bill - total),
        )
    return f"{text} How many dollars does {buyer} spend in total?", Fraction(total)


def _ages(rng: Random, steps: int) -> tuple[str, Fraction]:
    people = rng.sample(NAMES[:60], steps + 1)
    age = rng.randint(4, 12)
    parts = [f"{people[0]} is {age} years old."]
    for prev, cur in pairwise(people):
        ops = ["older", "twice"] + (["younger"] if age > 3 else [])
        if age % 2 == 0 and age >= 4:
            ops.append("half")
        if age > 40:
            ops = [o for o in ops if o not in ("older", "twice")] or ["younger"]
        op = rng.choice(ops)
        if op == "older":
            d = rng.randint(2, 15)
            age += d
            parts.append(f"{cur} is {d} years older than {prev}.")
        elif op == "younger":
            d = rng.randint(1, min(age - 2, 15))
            age -= d
            parts.append(f"{cur} is {d} years younger than {prev}.")
        elif op == "twice":
            age *= 2
            parts.append(f"{cur} is twice as old as {prev}.")
        else:
            age //= 2
            parts.append(f"{cur} is half as old as {prev}.")
    parts.append(f"How old is {people[-1]}?")
    return " ".join(parts), Fraction(age)


def _train(rng: Random, steps: int) -> tuple[str, Fraction]:
    hour = rng.randint(1, 11)
    parts = [f"A train leaves the station at {hour} pm."]
    distance = 0
    for i in range(steps):
        hours, speed = rng.randint(1, 4), rng.choice((40, 50, 60, 70, 80, 90, 100, 120))
        distance += hours * speed
        lead = "It first travels" if i == 0 else "Then it travels"
        parts.append(f"{lead} for {hours} hour{'s' if hours > 1 else ''} at {speed} km/h.")
    parts.append("How many kilometres has the train travelled in total?")
    return " ".join(parts), Fraction(distance)


_BUILDERS = {
    "arith": _arith, "inventory": _inventory, "shopping": _shopping, "ages": _ages,
    "train": _train,
}  # fmt: skip


# --- answer comparison ----------------------------------------------------------------------

_FRAC_LATEX = re.compile(r"^(-?)\\[dt]?frac\{(-?\d+)\}\{(\d+)\}$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:/\d+)?$")


def _clean(text: str) -> str:
    text = text.strip().strip("$").strip()
    text = re.sub(r"\\[,!;: ]|\\text\{\s*\}", "", text)
    text = text.replace(" ", "").rstrip(".")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", text):
        text = text.replace(",", "")
    return text


def as_fraction(text: str) -> Fraction | None:
    r"""Exact value of a plain number (``12``, ``-2.5``, ``7/3``, ``\frac{7}{3}``), else None."""
    text = _clean(text)
    m = _FRAC_LATEX.match(text)
    if m:
        if int(m.group(3)) == 0:
            return None
        value = Fraction(int(m.group(2)), int(m.group(3)))
        return -value if m.group(1) else value
    if _NUMBER.match(text):
        try:
            return Fraction(text)
        except (ValueError, ZeroDivisionError):
            return None
    return None


def answers_match(target: str, answer: str) -> bool:
    """Exact string or number first (fast, no sympy), then math-verify; never raises."""
    if _clean(target) == _clean(answer):
        return True
    t, a = as_fraction(target), as_fraction(answer)
    if t is not None and a is not None:
        return t == a
    if len(answer) > _MAX_VERIFY_CHARS:
        return False
    try:
        from math_verify import parse, verify

        # math-verify's timeouts use SIGALRM, which only works on the main thread
        limit = 5 if threading.current_thread() is threading.main_thread() else None
        gold = parse(f"${target}$", parsing_timeout=limit)
        pred = parse(f"${answer}$", parsing_timeout=limit)
        if not gold or not pred:
            return False
        return bool(verify(gold, pred, timeout_seconds=limit))
    except Exception:  # a scorer must not crash a run on a strange answer
        return False


def extract_math(text: str) -> str | None:
    r"""Last ``\boxed{}`` content, else the value after a final "answer is"; None if neither."""
    boxed = last_boxed(text)
    if boxed:
        return boxed
    return answer_is(text)


def score_math(target: str, answer: str | None) -> float:
    if answer is None or not answer.strip():
        return 0.0
    return 1.0 if answers_match(str(target), answer) else 0.0


# --- the task --------------------------------------------------------------------------------


class MathAnswers:
    r"""Extraction and scoring of a final maths answer (``\boxed{}``), shared by the tasks whose
    answer is a number: math and pair."""

    def extract(self, text: str) -> str | None:
        return extract_math(text)

    def score(self, instance: Instance, answer: str | None) -> float:
        return score_math(instance.target, answer)


@dataclass
class MathTask(MathAnswers):
    r"""Math word problems; the answer goes in ``\boxed{}``.

    ``steps``: operations chained per problem. ``template``: one of ``TEMPLATES`` or ``"mixed"``.
    ``source``: a problem file used instead of generation (JSONL, JSON, Parquet or CSV; see
    :mod:`hivethink.tasks.datasets`), read with ``fields`` (``{"question": ..., "answer": ...,
    "id": ...}``, each left out is found by name) and ``answer_format`` (auto, gsm8k, boxed,
    plain). ``limit``: use only the file's first rows. ``shuffle``: draw the instances in an
    order given by the seed ``generate`` gets (the lab's ``instance_seed``), else in file order.
    At most one instance per row: ``generate`` returns fewer than ``n`` when the file is short.
    Every instance from a file keeps its answer field as written in ``data["reference"]``.

    ``selection="debate-du"``: the GSM8K questions multi-agent debate was published on
    (``gsm/gen_gsm.py``): the file's rows shuffled by Python's ``random.seed(0)`` (whatever the
    lab's seed) and the first 100 of them. The published script reads the fields ``question``
    and ``answer`` (a GSM8K test file); without a ``fields`` mapping the file must have both.
    """

    name = "math"

    steps: int = 3
    template: str = "mixed"
    source: str | None = None
    fields: dict[str, str] | None = None
    answer_format: str = "auto"
    limit: int | None = None
    shuffle: bool = True
    selection: str | None = None
    _problems: list[Problem] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 20:
            raise HivethinkError(f"math: steps must be between 1 and 20, got {self.steps}")
        if self.template != "mixed" and self.template not in TEMPLATES:
            raise HivethinkError(
                f"math: unknown template {self.template!r} (choose mixed, {', '.join(TEMPLATES)})"
            )
        if self.fields is not None and not (
            isinstance(self.fields, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in self.fields.items())
        ):
            raise HivethinkError(f"math: fields must map roles to field names, got {self.fields!r}")
        if self.selection is not None and self.selection not in SELECTIONS:
            raise HivethinkError(
                f"math: selection must be one of {', '.join(SELECTIONS)}, not {self.selection!r}"
            )
        if self.selection is not None and self.source is None:
            raise HivethinkError(f"math: selection {self.selection!r} picks rows of a source file; none is given")
        if self.source is not None:
            fields = self.fields
            if self.selection == "debate-du" and fields is None:  # the fields gen_gsm.py reads
                fields = {"question": "question", "answer": "answer"}
            self._problems = load_problems(self.source, fields, self.answer_format, self.limit)
        elif self.fields is not None or self.limit is not None:
            raise HivethinkError("math: fields and limit apply to a source file; none is given")

    def problem(self, rng: Random) -> tuple[str, Fraction, str]:
        """One generated problem: (question, exact answer, template name)."""
        template = rng.choice(TEMPLATES) if self.template == "mixed" else self.template
        question, value = _BUILDERS[template](rng, self.steps)
        return question, value, template

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = params_of(self)
        if self._problems is not None:
            order = list(range(len(self._problems)))
            if self.selection == "debate-du":  # random.seed(0); random.shuffle(questions); [:100]
                Random(0).shuffle(order)
                order = order[:DEBATE_DU_QUESTIONS]
            elif self.shuffle:
                Random(seed).shuffle(order)
            out = []
            for i, row in enumerate(order[:n]):
                p = self._problems[row]
                data = {"question": p.question, "template": "source", "row": p.number,
                        "where": p.where, "answer_style": p.style, "reference": p.reference}
                if p.id is not None:
                    data["source_id"] = p.id
                out.append(Instance(
                    task=self.name, id=instance_id(self.name, params, seed, i),
                    prompt=f"{p.question}\n\n{ANSWER_FORMAT}", target=p.answer, data=data,
                ))  # fmt: skip
            return out
        out = []
        for i in range(n):
            question, value, template = self.problem(instance_rng(self.name, params, seed, i))
            out.append(Instance(
                task=self.name, id=instance_id(self.name, params, seed, i),
                prompt=f"{question}\n\n{ANSWER_FORMAT}", target=format_number(value),
                data={"question": question, "template": template},
            ))  # fmt: skip
        return out
