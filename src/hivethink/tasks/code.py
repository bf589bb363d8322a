"""Code: write a Python function, scored pass@1 by running the problem's tests in the sandbox.

A problem file holds one problem per row in the HumanEval or MBPP layout (JSONL, JSON, Parquet
or CSV; :mod:`hivethink.tasks.datasets` reads it): ``task_id``, ``prompt``, ``entry_point`` and
either ``test`` (HumanEval: a ``check(candidate)`` function) or ``test_list`` (MBPP: assert
lines, with an optional ``test_setup_code``). A row without one of them refuses the whole file
with one line naming the row, when the task is built (before any model loads). Without a
``source`` the task reads its own small fixture (``tasks/data/code_mini.jsonl``: three
HumanEval-style and three MBPP-style problems written for hivethink).

The program that is run is ``test_setup_code`` (MBPP), the solution, then the tests
(HumanEval: ``check(<entry_point>)``). A solution that does not define the entry point is
taken as a HumanEval completion: the problem's ``prompt`` (signature and docstring) goes
before it. It runs in :func:`hivethink.sandbox.run_python` with this task's limits; score 1
when it runs to the end, else 0, and the way it failed (``syntax_error``, ``exception``,
``timeout``, ``memory_limit``...) is the sample's ``code_status`` metric.

:meth:`CodeTask.verify` is the task's verifier (any substrate may call it to check a
candidate); it returns a :class:`~hivethink.tasks.base.Verdict`.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

from hivethink.answers import python_code
from hivethink.errors import HivethinkError
from hivethink.sandbox import Limits, RunResult, run_python
from hivethink.tasks._common import instance_id, params_of
from hivethink.tasks.base import Instance, Metric, Verdict
from hivethink.tasks.datasets import read_rows, row_text

FIXTURE = Path(__file__).parent / "data" / "code_mini.jsonl"
FORMAT = "Write the complete function, its signature included, in one ```python code block."


@dataclass(frozen=True)
class CodeProblem:
    task_id: str
    prompt: str
    entry_point: str
    test: str | None  # HumanEval
    test_list: tuple[str, ...] | None  # MBPP
    setup: str
    where: str
    solution: str | None  # canonical_solution / code, when the file has one


NEEDS = "a code problem needs task_id, prompt, entry_point and test or test_list"


def load_code_problems(path: str, limit: int | None = None) -> list[CodeProblem]:
    """Every problem of a code file; a row missing a field is one :class:`HivethinkError`."""
    _, rows = read_rows(path, limit)
    if not rows:
        raise HivethinkError(f"{path}: no rows in the file")
    problems = []
    for row in rows:
        v, where = row.values, row.where
        task_id = row_text(v, "task_id", where, path, needs=NEEDS, numbers=True)
        prompt = row_text(v, "prompt", where, path, needs=NEEDS)
        entry = row_text(v, "entry_point", where, path, needs=NEEDS).strip()
        if not entry.isidentifier():
            raise HivethinkError(f"{path} {where}: entry_point {entry!r} is not a Python name")
        test = v.get("test")
        tests = v.get("test_list")
        if test is None and tests is None:
            raise HivethinkError(f"{path} {where}: no field 'test' or 'test_list'")
        if test is not None and (not isinstance(test, str) or not test.strip()):
            raise HivethinkError(f"{path} {where}: field 'test' must be a non-empty text")
        if tests is not None and (
            not isinstance(tests, list) or not tests or not all(isinstance(t, str) and t.strip() for t in tests)
        ):
            raise HivethinkError(f"{path} {where}: field 'test_list' must be a non-empty list of texts")
        setup = v.get("test_setup_code") or ""
        if not isinstance(setup, str):
            raise HivethinkError(f"{path} {where}: field 'test_setup_code' must be a text")
        solution = v.get("canonical_solution", v.get("code"))
        problems.append(CodeProblem(
            task_id=task_id, prompt=prompt, entry_point=entry, test=test,
            test_list=tuple(tests) if tests is not None else None, setup=setup, where=where,
            solution=solution if isinstance(solution, str) else None,
        ))  # fmt: skip
    ids = [p.task_id for p in problems]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise HivethinkError(f"{path}: task_id {dup[0]!r} appears more than once")
    return problems


def defines(code: str, name: str) -> bool:
    """Whether ``code`` defines ``name`` at the start of a line (a def, a class, an assignment)."""
    import re

    return re.search(rf"^(?:async\s+def|def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*=",
                     code, re.M) is not None


@dataclass
class CodeTask:
    """Problems from ``source`` (default: the built-in fixture); ``limit`` keeps the file's first rows, ``shuffle``
    draws them in an order given by the seed. ``show_tests`` shows an MBPP problem's assert
    lines in its prompt (as MBPP's own prompt does; HumanEval's ``check`` is never shown).
    ``timeout_s``, ``memory_mb``: the sandbox limits of one test run."""

    name = "code"

    source: str | None = None
    limit: int | None = None
    shuffle: bool = False
    show_tests: bool = True
    timeout_s: float = 10.0
    memory_mb: int = 1024
    _problems: list[CodeProblem] = field(default_factory=list, init=False, repr=False, compare=False)
    _cache: dict[tuple[str, str], RunResult] = field(default_factory=dict, init=False, repr=False,
                                                      compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.memory_mb < 64:
            raise HivethinkError("code: timeout_s must be positive and memory_mb at least 64")
        self._problems = load_code_problems(self.source or str(FIXTURE), self.limit)

    @property
    def limits(self) -> Limits:
        return Limits(wall_s=self.timeout_s, cpu_s=self.timeout_s, memory_mb=self.memory_mb)

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = params_of(self)
        order = list(range(len(self._problems)))
        if self.shuffle:
            Random(seed).shuffle(order)
        out = []
        for i, row in enumerate(order[:n]):
            p = self._problems[row]
            if p.test_list is not None:
                question = p.prompt.strip()
                if self.show_tests:
                    shown = "\n".join(p.test_list)
                    question += f"\n\nYour code should pass these tests:\n```python\n{shown}\n```"
                question += f"\n\nThe function must be called `{p.entry_point}`."
            else:
                question = f"Complete this Python function:\n\n```python\n{p.prompt.rstrip()}\n```"
            out.append(Instance(
                task=self.name, id=instance_id(self.name, params, seed, i),
                prompt=f"{question}\n\n{FORMAT}", target=p.solution,
                data={"question": question, "task_id": p.task_id, "entry_point": p.entry_point,
                      "code_prompt": p.prompt, "style": "mbpp" if p.test_list is not None else "humaneval",
                      "row": p.where},
            ))  # fmt: skip
        return out

    def problem(self, instance: Instance) -> CodeProblem:
        task_id = instance.data["task_id"]
        return next(p for p in self._problems if p.task_id == task_id)

    def program(self, instance: Instance, code: str) -> str:
        """The whole program a candidate is checked with: setup, solution, tests."""
        p = self.problem(instance)
        solution = code if defines(code, p.entry_point) else p.prompt + code
        parts = [p.setup, solution]
        if p.test is not None:
            parts += [p.test, f"check({p.entry_point})"]
        if p.test_list is not None:
            parts += list(p.test_list)
        return "\n\n".join(x.rstrip() for x in parts if x.strip()) + "\n"

    def run(self, instance: Instance, code: str) -> RunResult:
        """Run the candidate against the tests (cached per instance and code)."""
        key = (instance.id, code)
        with self._lock:
            known = self._cache.get(key)
        if known is not None:
            return known
        program = self.program(instance, code)
        try:  # a program that does not compile needs no process (compiling runs nothing)
            with warnings.catch_warnings():  # the sandbox reports what matters; not our log
                warnings.simplefilter("ignore")
                compile(program, "main.py", "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as err:
            result = RunResult("syntax_error", error=f"{type(err).__name__}: {err}"[:2000])
        else:
            result = run_python(program, limits=self.limits)
        with self._lock:
            self._cache[key] = result
        return result

    def verify(self, instance: Instance, answer: str | None) -> Verdict:
        """The task's verifier: does ``answer`` (code) pass the problem's tests?"""
        if answer is None or not answer.strip():
            return Verdict(False, "no_code", "no code to run")
        result = self.run(instance, answer)
        return Verdict(result.ok, result.status, result.summary())

    def extract(self, text: str) -> str | None:
        return python_code(text)

    def score(self, instance: Instance, answer: str | None) -> float:
        return 1.0 if self.verify(instance, answer).passed else 0.0

    def answer_metrics(self, instance: Instance, answer: str | None) -> dict[str, Metric]:
        """How the team answer's test run ended (``ok`` or the failure's kind)."""
        return {"code_status": self.verify(instance, answer).status}
