"""compute_metrics: all groups together, from a SampleResult."""

from __future__ import annotations

from hivethink.metrics import compute_metrics
from hivethink.substrates.base import SampleResult
from hivethink.tasks.base import Instance
from hivethink.trace import Event


class Exact:
    name = "exact"

    def generate(self, n: int, seed: int) -> list[Instance]:
        return []

    def extract(self, text: str) -> str | None:
        return text or None

    def score(self, instance: Instance, answer: str | None) -> float:
        return 1.0 if answer == instance.target else 0.0


def test_compute_metrics_from_a_result() -> None:
    instance = Instance(task="exact", id="i", prompt="What is six times seven?", target="42")
    events = [
        Event(kind="step", worker="A", text="six times seven is 42"),
        Event(kind="answer", worker="A", text="42"),
        Event(kind="step", worker="B", text="six times seven is 42"),
        Event(kind="answer", worker="B", text="42"),
        Event(kind="answer", worker="team", text="42"),
    ]
    result = SampleResult(
        events=events,
        answer="42",
        sequential_passes=12,
        sequential_calls=2,
        tokens=20,
        prompt_tokens=30,
        wall_s=0.5,
        info={"rounds": 2, "timeout": True},
    )
    m = compute_metrics(events, task=Exact(), instance=instance, result=result)
    assert (m["score"], m["correct"], m["sequential_passes"], m["tokens"], m["wall_s"]) == (
        1.0,
        1.0,
        12,
        20,
        0.5,
    )
    assert (m["rounds"], m["timeout"], m["agents"], m["agreement"], m["agreed_but_wrong"]) == (
        2,
        1.0,
        2,
        1.0,
        0.0,
    )
    assert m["redundancy"] == 1.0 and m["redundancy_unit"] == "ngram"
    assert m["patho_loops"] == 0 and m["outputs"] == 2
    bare = compute_metrics(events)
    assert "score" not in bare and bare["agreement"] == 1.0 and bare["agreed_but_wrong"] is None
