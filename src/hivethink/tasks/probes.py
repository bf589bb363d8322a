"""Two probes no published protocol has, on any substrate that runs its calls through the
:class:`~hivethink.substrates.common.Recorder` (every multi-round text substrate).

Both use the debate arithmetic problems (``a+b*c+d-e*f``, operands 0..29) and put a
:class:`~hivethink.tasks.base.Probe` on each instance; the Recorder shows it, the metrics
(:mod:`hivethink.metrics.probes`) read the trace.

- ``common-ground``: from the ``start``-th round of agent calls on, every agent is shown a
  partner's revision of a premise (the fourth number changes). The target is the value of the
  revised problem; the probe's ``misled`` answer is the value of the first one. Does the team
  follow the revision, or keep the first frame?
- ``error-propagation``: one agent (the first called) is told, in every call, a wrong claim
  about a product in the problem (off by 1..9). How many other agents repeat the wrong number,
  and after how many rounds? The target is the true value; ``misled`` is the value the wrong
  claim leads to.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random
from typing import ClassVar

from hivethink import prompts
from hivethink.errors import HivethinkError
from hivethink.tasks._common import instance_id, instance_rng, params_of
from hivethink.tasks.arithmetic import ArithmeticTask, draw, evaluate, question
from hivethink.tasks.base import Instance, Probe

# The substrates whose agents talk over more than one round of Recorder calls.
PROBE_SUBSTRATES = (
    "chat", "blackboard", "sequential", "centralized", "program", "debate-du", "coral", "camel",
)  # fmt: skip

BOOK = prompts.book("probes", {"revision": ["old", "new", "question"], "seed": ["claim"]})


def _other(value: int, rng: Random, avoid: set[int]) -> int:
    """A value off ``value`` by 1..9 (further only if all of those are taken), at least 0, not
    in ``avoid``."""
    for span in (10, 100):
        choices = [v for d in range(1, span) for v in (value - d, value + d) if v >= 0 and v not in avoid]
        if choices:
            return rng.choice(choices)
    raise ValueError(f"no value near {value} outside {sorted(avoid)}")


@dataclass
class CommonGroundTask(ArithmeticTask):
    """Arithmetic problems whose fourth number a partner revises from round ``start`` on."""

    name = "common-ground"
    substrates: ClassVar[tuple[str, ...]] = PROBE_SUBSTRATES
    prompt_books: ClassVar[tuple[str, ...]] = ("probes",)

    start: int = 1

    def __post_init__(self) -> None:
        if self.start < 1:
            raise HivethinkError(f"common-ground: start must be at least 1 (mid-run), got {self.start}")

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = params_of(self)
        out = []
        for i in range(n):
            rng = instance_rng(self.name, params, seed, i)
            first = draw(rng)
            revised = list(first)
            revised[3] = _other(first[3], rng, {first[3]})
            text = BOOK.render("revision", old=first[3], new=revised[3], question=question(revised))
            out.append(Instance(
                task=self.name, id=instance_id(self.name, params, seed, i),
                prompt=f"{question(first)} State your answer at the end of your response.",
                target=str(evaluate(revised)),
                data={"question": question(first), "operands": first, "revised": revised},
                probe=Probe("revision", text, misled=str(evaluate(first)), start=self.start),
            ))  # fmt: skip
        return out


@dataclass
class ErrorPropagationTask(ArithmeticTask):
    """Arithmetic problems where one agent is told a wrong value of ``b*c``."""

    name = "error-propagation"
    substrates: ClassVar[tuple[str, ...]] = PROBE_SUBSTRATES
    prompt_books: ClassVar[tuple[str, ...]] = ("probes",)

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = params_of(self)
        out = []
        for i in range(n):
            rng = instance_rng(self.name, params, seed, i)
            ops = draw(rng)
            a, b, c, d, e, f = ops
            # the wrong product must not occur in the problem or its true working, so that an
            # agent writing it can only have taken it from the claim
            avoid = {*ops, b * c, e * f, evaluate(ops), a + b * c, a + b * c + d}
            wrong = _other(b * c, rng, avoid)
            misled = a + wrong + d - e * f
            out.append(Instance(
                task=self.name, id=instance_id(self.name, params, seed, i),
                prompt=f"{question(ops)} State your answer at the end of your response.",
                target=str(evaluate(ops)), data={"question": question(ops), "operands": ops},
                probe=Probe("seed", BOOK.render("seed", claim=f"{b}*{c} = {wrong}"),
                            misled=str(misled), marker=str(wrong)),
            ))  # fmt: skip
        return out
