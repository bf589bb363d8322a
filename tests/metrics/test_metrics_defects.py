"""Defect attribution on hand-built traces: the dependency graph, and one trace per label."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "substrates"))
from substrate_helpers import ToyTask  # noqa: E402

from hivethink.metrics.defects import attribute, defect_metrics, dependency_graph  # noqa: E402
from hivethink.tasks.mission import MissionTask  # noqa: E402
from hivethink.trace import Event  # noqa: E402

TASK = ToyTask()  # answers are "ANSWER: x"; the target is 4
INSTANCE = TASK.generate(1, 0)[0]


def trace(*turns, team=None, team_seen=None, errors=(), abstain=()):
    """Events of contributions ``(worker, seen, text)`` in order, then a team answer."""
    events = []
    for worker, seen, text in turns:
        events.append(Event(kind="prompt", worker=worker, text="...", seen=list(seen)))
        events.append(Event(kind="step", worker=worker, text=text))
        if worker in errors:
            events.append(Event(kind="error", worker=worker, text="timeout", data={"reason": "timeout", "backend": True}))
        if worker in abstain:
            events.append(Event(kind="role", worker=worker, data={"abstain": True}))
    if team is not None or team_seen is not None:
        events.append(Event(kind="answer", worker="team", text=team or "", seen=team_seen,
                            data={} if team else {"none": True}))  # fmt: skip
    return events


def labels(events, task=TASK):
    found = attribute(events, task, INSTANCE if task is TASK else task.generate(1, 0)[0])
    assert found is not None
    out = found.labels()
    return {
        "nodes": {n["id"]: n["labels"] for n in out["nodes"]},
        "edges": {(e["from"], e["to"]): e["labels"] for e in out["edges"]},
        "paths": [(p["label"], p["nodes"]) for p in out["paths"]],
    }


def test_the_graph_is_who_read_whose_newest_output():
    events = trace(("Alice", [], "a1 ANSWER: 4"), ("Bob", ["Alice"], "b1"), ("Alice", ["Bob"], "a2"),
                   ("Carol", ["Alice", "Bob", "Zed"], "c1"), team="4", team_seen=["Carol"])  # fmt: skip
    g = dependency_graph(events, TASK, INSTANCE)
    assert sorted(g.edges) == sorted([("Alice#1", "Bob#1"), ("Bob#1", "Alice#2"), ("Alice#2", "Carol#1"),
                                      ("Bob#1", "Carol#1"), ("Carol#1", "team#1")])  # fmt: skip
    assert g.nodes["Alice#1"]["correct"] is True and g.nodes["Bob#1"]["correct"] is None
    assert g.nodes["team#1"]["answer"] == "4" and g.nodes["team#1"]["correct"] is True
    unnamed = trace(("Alice", [], "x"), ("Bob", [], "y"), team="4")
    assert sorted(dependency_graph(unnamed).in_edges("team#1")) == [("Alice#1", "team#1"), ("Bob#1", "team#1")]


def test_node_failed():
    found = labels(trace(("Alice", [], "   "), ("Bob", [], "text ANSWER: 4"), ("Carol", [], "ok ANSWER: 4"),
                         team="4", team_seen=["Bob"], errors={"Carol"}))  # fmt: skip
    assert found["nodes"] == {"Alice#1": ["failed"], "Carol#1": ["failed"]}


def test_node_origin():
    found = labels(trace(("Alice", [], "ANSWER: 5"), ("Bob", ["Alice"], "ANSWER: 5"),
                         ("Carol", ["Alice"], "ANSWER: 6"), team="4", team_seen=["Bob"]))  # fmt: skip
    assert found["nodes"] == {"Alice#1": ["origin"], "Carol#1": ["origin"]}  # Bob repeated Alice's


def test_edge_ignored():
    source = "we should plant red apples and green pears along the river"
    found = labels(trace(
        ("Alice", [], source),
        ("Bob", ["Alice"], "the weather is nice today for a walk"),
        ("Carol", ["Alice"], "as Alice says, fine"),
        ("Dave", ["Alice"], "yes plant red apples and green pears, agreed"),
        ("Eve", ["Alice"], "ABSTAIN"),
        abstain={"Eve"},
    ))  # fmt: skip
    assert found["edges"] == {("Alice#1", "Bob#1"): ["ignored"]}


def test_edge_dropped():
    found = labels(trace(("Alice", [], "sum ANSWER: 4"), ("Bob", ["Alice"], "no Alice, sum ANSWER: 5"), team="4",
                         team_seen=["Alice"]))  # fmt: skip
    assert found["edges"] == {("Alice#1", "Bob#1"): ["dropped"]}


def test_edge_overloaded():
    turns = [(w, [], f"{w} thinks ANSWER: {x}") for w, x in zip(["Alice", "Bob", "Carol", "Dave"], "4567", strict=True)]
    found = labels(trace(*turns, ("Eve", ["Alice", "Bob", "Carol", "Dave"], "Alice Bob Carol Dave ANSWER: 9")))
    assert found["edges"] == {("Alice#1", "Eve#1"): ["overloaded"]}  # four inputs, the correct one lost
    three = labels(trace(*turns[:3], ("Eve", ["Alice", "Bob", "Carol"], "Alice Bob Carol ANSWER: 9")))
    assert three["edges"] == {("Alice#1", "Eve#1"): ["dropped"]}


def test_path_lost_correct():
    found = labels(trace(("Alice", [], "I get ANSWER: 4"), ("Bob", ["Alice"], "Alice is wrong ANSWER: 5"),
                         ("Carol", ["Bob"], "Bob: ANSWER: 5"), team="5", team_seen=["Carol"]))  # fmt: skip
    assert ("lost_correct", ["Alice#1", "Bob#1", "Carol#1", "team#1"]) in found["paths"]
    right = labels(trace(("Alice", [], "ANSWER: 4"), ("Bob", ["Alice"], "Alice ANSWER: 4"), team="4",
                         team_seen=["Bob"]))  # fmt: skip
    assert right["paths"] == []


def test_path_propagated_error():
    found = labels(trace(("Alice", [], "ANSWER: 7"), ("Bob", ["Alice"], "Alice ANSWER: 7"),
                         ("Carol", ["Bob"], "Bob ANSWER: 7"), team="7", team_seen=["Carol"]))  # fmt: skip
    assert found["paths"] == [("propagated_error", ["Alice#1", "Bob#1", "Carol#1", "team#1"])]
    assert found["nodes"] == {"Alice#1": ["origin"]}
    alone = labels(trace(("Alice", [], "ANSWER: 7"), ("Bob", [], "ANSWER: 4"), team="7", team_seen=["Alice"]))
    assert [label for label, _ in alone["paths"]] == []  # carried straight to the output: no chain


def test_counts_chain_depth_and_single_agents():
    events = trace(("Alice", [], "first we list the big red apples"),
                   ("Bob", ["Alice"], "the big red apples need pears too"),
                   ("Carol", ["Bob"], "apples need pears too and then plums"),
                   ("Dave", ["Alice", "Bob", "Carol"], "unrelated words entirely here"),
                   team="x", team_seen=["Dave"])  # fmt: skip
    metrics = defect_metrics(events, TASK, INSTANCE)
    assert metrics["chain_depth"] == 3 and metrics["graph_edges"] == 6 and metrics["fan_in_max"] == 3
    assert metrics["defect_edge_ignored"] == 3
    assert metrics["defect_path_lost_correct"] == 0
    solo = trace(("Alice", [], "ANSWER: 5"), ("Alice", [], "ANSWER: 5"), team="5")
    assert attribute(solo, TASK, INSTANCE) is None
    assert set(defect_metrics(solo, TASK, INSTANCE).values()) == {None}


def test_a_judged_task_gets_only_the_labels_that_need_no_score():
    task = MissionTask()
    found = labels(trace(("Alice", [], "plan the park picnic with sandwiches"), ("Bob", ["Alice"], "   "),
                         ("Carol", ["Alice"], "totally different matter"), team="y", team_seen=["Carol"]),
                   task)  # fmt: skip
    assert found["nodes"] == {"Bob#1": ["failed"]}
    assert found["edges"] == {("Alice#1", "Carol#1"): ["ignored"]} and found["paths"] == []
