"""Coordination metrics on hand-made traces with known values."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pytest

from hivethink.metrics import (
    agreement_metrics,
    check_metrics,
    check_pivots,
    coordination_metrics,
    division_of_labour,
    protocol_metrics,
    redundancy,
    references,
    role_metrics,
    work_units,
)
from hivethink.tasks.base import Instance
from hivethink.trace import Event


def ev(kind: str, worker: str, text: str = "", **data: object) -> Event:
    return Event(kind=kind, worker=worker, text=text, data=dict(data))


@dataclass
class ListTask:
    """Items are comma-separated words; the answer must equal the target."""

    name = "list"

    def generate(self, n: int, seed: int) -> list[Instance]:
        return []

    def extract(self, text: str) -> str | None:
        return text or None

    def score(self, instance: Instance, answer: str | None) -> float:
        return 1.0 if answer == instance.target else 0.0

    def items(self, text: str) -> list[str]:
        return [w.strip() for w in text.split(",") if w.strip()]


class PlainTask(ListTask):
    items = None  # type: ignore[assignment]  # no item parser: n-gram mode


INSTANCE = Instance(task="list", id="i0", prompt="List four animals", target="41")


def test_item_redundancy_and_division_exact() -> None:
    events = [
        ev("prompt", "Alice", "List four animals"),
        ev("step", "Alice", "cat, dog, cow"),
        ev("step", "Bob", "cow, fox"),
        ev("message", "Bob", "cow, fox"),  # the same generation as a message: not counted twice
        ev("answer", "team", "cat"),
    ]
    kind, units = work_units(events, ListTask(), INSTANCE)
    assert kind == "items"
    assert units == {"Alice": {"cat", "dog", "cow"}, "Bob": {"cow", "fox"}}
    assert redundancy(units) == pytest.approx(1 / 4)
    # credit: Alice 1 + 1 + 0.5 = 2.5, Bob 0.5 + 1 = 1.5 of 4
    expected = -(0.625 * math.log(0.625) + 0.375 * math.log(0.375)) / math.log(2)
    assert division_of_labour(units) == pytest.approx(expected)


def test_items_in_the_prompt_are_not_work() -> None:
    instance = Instance(task="list", id="i1", prompt="cat, and more", target="")
    _, units = work_units(
        [ev("step", "A", "cat, dog"), ev("step", "B", "cat, emu")], ListTask(), instance
    )
    assert units == {"A": {"dog"}, "B": {"emu"}}
    assert redundancy(units) == 0.0


def test_ngram_redundancy_extremes() -> None:
    same = "we split the list into halves and each takes one half"
    kind, units = work_units([ev("step", "A", same), ev("step", "B", same)], PlainTask(), INSTANCE)
    assert (
        kind == "ngram"
        and redundancy(units) == 1.0
        and division_of_labour(units) == pytest.approx(1.0)
    )
    _, units = work_units(
        [
            ev("step", "A", same),
            ev("step", "B", "completely different words appear in this other text"),
        ]
    )
    assert redundancy(units) == 0.0


def test_one_worker_or_nothing_gives_none() -> None:
    _, units = work_units([ev("step", "A", "cat, dog")], ListTask())
    assert redundancy(units) is None and division_of_labour(units) is None
    assert redundancy({"A": set(), "B": set()}) is None


def test_division_of_labour_one_worker_did_everything() -> None:
    assert division_of_labour({"A": {"x", "y"}, "B": set()}) == 0.0


def test_references_count_other_names_as_whole_words() -> None:
    events = [
        ev("step", "Alice", "Bob, take the odd ones. Bobby is not a worker. Alice does evens."),
        ev("step", "Bob", "Sure Alice. Carol? Alice!"),
        ev("step", "Carol", "nothing"),
    ]
    assert references(events) == {"Alice": 1, "Bob": 3, "Carol": 0}


def test_check_pivots() -> None:
    events = [
        ev("step", "Alice", "I add the first ten primes one by one to get the sum"),
        ev("check", "Alice", "", answer="yes"),
        ev("step", "Bob", "unrelated words by another worker"),
        ev("step", "Alice", "Switching: verify the product of small numbers instead"),
        ev("check", "Alice", "", answer="no"),
        ev("step", "Alice", "I add the first ten primes one by one to get the sum again"),
        ev("check", "Bob", "", answer="YES"),  # no later step: undecidable
    ]
    pivots = check_pivots(events)
    assert pivots == [("Alice", "yes", True), ("Alice", "no", False), ("Bob", "yes", None)]
    m = check_metrics(events)
    assert m == {
        "checks": 3,
        "checks_yes": 2,
        "checks_no": 1,
        "pivots_after_yes": 1,
        "pivot_rate_after_yes": 1.0,
        "pivot_rate_after_no": 0.0,
    }


def test_agreed_but_wrong() -> None:
    wrong = [ev("answer", "A", "42"), ev("answer", "B", " 42 "), ev("answer", "team", "42")]
    m = agreement_metrics(wrong, ListTask(), INSTANCE)
    assert (
        m["agreement"],
        m["agreed_but_wrong"],
        m["agreed_and_correct"],
        m["pairwise_agreement"],
    ) == (1.0, 1.0, 0.0, 1.0)
    right = [ev("answer", "A", "41"), ev("answer", "B", "41")]
    m = agreement_metrics(right, ListTask(), INSTANCE)
    assert (m["agreement"], m["agreed_but_wrong"], m["agreed_and_correct"]) == (1.0, 0.0, 1.0)
    split = [ev("answer", "A", "41"), ev("answer", "B", "40"), ev("answer", "C", "41")]
    m = agreement_metrics(split, ListTask(), INSTANCE)
    assert m["agreement"] == 0.0 and m["agreed_but_wrong"] == 0.0
    assert m["pairwise_agreement"] == pytest.approx(1 / 3)
    # the last answer of a worker counts; blank answers never agree
    changed = [ev("answer", "A", "40"), ev("answer", "A", "41"), ev("answer", "B", "41")]
    assert agreement_metrics(changed)["agreement"] == 1.0
    assert agreement_metrics([ev("answer", "A", ""), ev("answer", "B", "")])["agreement"] == 0.0
    assert agreement_metrics([ev("answer", "A", "1")])["agreement"] is None


def test_roles_and_abstentions() -> None:
    events = [
        ev("role", "A", "planner"),
        ev("role", "B", "Planner "),
        ev("role", "C", "", abstain=True),
        ev("role", "D", "checker"),
    ]
    assert role_metrics(events) == {"roles_declared": 3, "distinct_roles": 2, "abstentions": 1}


def test_protocol_metrics() -> None:
    assert protocol_metrics({"rounds": 4, "timeout": False, "ended_by_vote": True}) == {
        "rounds": 4,
        "timeout": 0.0,
        "consensus": 1.0,
        "rounds_to_consensus": 4,
        "flipped": None,
    }
    m = protocol_metrics({"turns": 20, "agreed": False, "flipped": True})
    assert (m["rounds"], m["consensus"], m["rounds_to_consensus"], m["flipped"]) == (
        20,
        0.0,
        None,
        1.0,
    )
    assert protocol_metrics({}) == dict.fromkeys(
        ["rounds", "timeout", "consensus", "rounds_to_consensus", "flipped"]
    )


def test_items_with_instance_argument_are_passed_the_instance() -> None:
    seen: list[Instance | None] = []

    class WithInstance(ListTask):
        def items(self, text: str, instance: Instance | None = None) -> list[str]:  # type: ignore[override]
            seen.append(instance)
            return re.findall(r"\d+", text)

    _, units = work_units(
        [ev("step", "A", "2 3"), ev("step", "B", "3 5")], WithInstance(), INSTANCE
    )
    assert units == {"A": {"2", "3"}, "B": {"3", "5"}} and seen and all(s is INSTANCE for s in seen)


def test_engine_trace_forced_text_and_shared_prompt_are_not_work() -> None:
    check = "Quick check: is my current work redundant? (yes/no):"
    events = [ev("prompt", "all", "Solve the puzzle together")]
    for worker, content in (
        ("Alice", " I take the even cases first"),
        ("Bob", " odd cases are mine now"),
    ):
        events += [
            Event(kind="token", worker=worker, text=check, data={"forced": True}),
            Event(kind="token", worker=worker, text=" yes"),
        ]
        events.append(ev("step", worker, check + " yes." + content))
    kind, units = work_units(events, PlainTask())
    assert kind == "ngram" and list(units) == ["Alice", "Bob"]
    assert redundancy(units) == 0.0
    assert coordination_metrics(events)["agents"] == 2


def test_unfinished_step_tokens_count_as_a_last_output() -> None:
    from hivethink.metrics import worker_outputs

    def tok(worker: str, text: str, forced: bool = False) -> Event:
        return Event(
            kind="token", worker=worker, text=text, data={"forced": True} if forced else {}
        )

    events = [
        tok("A", "**A [1]:** ", forced=True), tok("A", "one"), tok("B", "solo"), tok("A", " two"),
        ev("step", "A", "**A [1]:** one two"),
        tok("A", "**A [2]:** ", forced=True), tok("A", "three"), tok("B", " tokens"),
    ]  # fmt: skip
    assert worker_outputs(events) == {"A": ["**A [1]:** one two", "three"], "B": ["solo tokens"]}
