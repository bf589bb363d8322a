"""Rule-based pathology detectors on hand-made traces."""

from __future__ import annotations

from hivethink.metrics import (
    is_drift,
    is_flake,
    is_instruction,
    is_loop,
    is_repetitive,
    pathology_metrics,
)
from hivethink.tasks.base import Instance
from hivethink.trace import Event


def ev(kind: str, worker: str, text: str = "", **data: object) -> Event:
    return Event(kind=kind, worker=worker, text=text, data=dict(data))


def test_loop_rule() -> None:
    assert is_loop("Thank you!", "thank you")
    assert is_loop("we add two and three to get five now", "We add two and three to get five now.")
    assert not is_loop("we add two and three", "then we multiply the result by four")
    assert not is_loop("", "")


def test_repetition_rule() -> None:
    assert is_repetitive("the cat sat on the mat " * 5)
    assert not is_repetitive(
        "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
    )
    assert not is_repetitive("short short short short")  # too short to judge


def test_instruction_rule() -> None:
    assert is_instruction("Solution: done.\nInstruction: compute 3 + 4.")
    assert is_instruction("**Next instruction:** list primes")
    assert is_instruction("Thanks. Your task is to sum them.")
    assert not is_instruction("Solution: the instruction was clear, the answer is 7.")


def test_flake_rule() -> None:
    assert is_flake("I will do that.")
    assert is_flake("Sure, I'll get on it right away")
    assert is_flake("Let me think about it")
    assert not is_flake("I will compute 3 + 4 = 7.")
    assert not is_flake("I will list them: cat, dog.")
    assert not is_flake("I will check. The sum is seven. Then we stop.")
    assert not is_flake("The answer is seven.")


def test_drift_rule() -> None:
    prompt = "Compute the sum of 17 and 25."
    assert is_drift("The weather in Paris is lovely today with sunshine and a mild breeze.", prompt)
    assert not is_drift("The sum of 17 and 25 is 42, computed by adding tens then units.", prompt)
    assert not is_drift("Okay.", prompt)  # too few words to judge


def test_pathology_counts_on_a_trace() -> None:
    instance = Instance(task="t", id="i", prompt="Compute the sum of 17 and 25.")
    events = [
        ev("role", "Alice", "instructor"),
        ev("role", "Bob", "assistant"),
        ev(
            "step", "Alice", "Instruction: compute the sum of 17 and 25."
        ),  # instructor may instruct
        ev("step", "Bob", "Instruction: you compute it."),  # role flip
        ev("step", "Bob", "I will do that."),  # flake
        ev("step", "Bob", "Thank you!"),
        ev("step", "Bob", "Thank you!"),  # loop (one consecutive pair)
        ev(
            "step", "Bob", "Movies about dragons and castles entertain children everywhere always."
        ),  # drift
        ev("error", "Bob", "unparseable JSON", reason="format"),
        ev("error", "Alice", "no answer", reason="format"),
        ev("answer", "team", "42"),
    ]
    m = pathology_metrics(events, instance)
    assert m["outputs"] == 6
    assert (
        m["patho_loops"],
        m["patho_role_flips"],
        m["patho_flakes"],
        m["patho_drift"],
        m["patho_format_failures"],
        m["patho_repetition"],
    ) == (1, 1, 1, 1, 2, 0)
    assert 0 < m["task_overlap"] < 1
    assert pathology_metrics(events)["patho_drift"] is None  # drift needs the task prompt


def test_role_flip_rule_falls_back_to_all_workers_without_roles() -> None:
    events = [
        ev("step", "Alice", "Instruction: do it"),
        ev("step", "coordinator", "Instruction: do it"),
    ]
    assert pathology_metrics(events)["patho_role_flips"] == 1


def test_drift_is_judged_against_the_task_as_the_worker_was_told() -> None:
    instance = Instance(task="t", id="i", prompt="Agree on one integer.")
    reply = "The game proposals look fine, every player keeps voting until the round stops."
    events = [
        ev("prompt", "Alice", "You play a game: send proposals each round, then vote stop."),
        ev("step", "Alice", reply),
        ev("step", "Bob", reply),  # Bob was never told about a game
    ]
    assert pathology_metrics(events, instance)["patho_drift"] == 1
