"""The report's per-group metric tables: grouping, sample counts, mean vs total, failed samples;
means and rates carry 95% intervals (Wilson for 0/1 values, bootstrap otherwise)."""

from __future__ import annotations

from hivethink.report.data import agreement, coordination, pathologies


def rec(substrate: str, workers: int, error: str | None = None, **metrics: object) -> dict:
    return {"substrate": substrate, "workers": workers, "error": error, "metrics": metrics}


RECORDS = [
    rec("chat", 2, redundancy=0.5, checks=3, agreement=1, patho_loops=1),
    rec("chat", 2, redundancy=1.0, checks=2, agreement=0, patho_loops=2),
    rec("chat", 4, redundancy=0.25, checks=None, agreement=True),  # bools are not numbers
    rec("chat", 2, error="boom", redundancy=9.0, checks=99, patho_loops=50),  # failed: left out
    rec("debate", 2, redundancy="n/a"),
]


def test_coordination_groups_by_substrate_and_workers() -> None:
    t = coordination(RECORDS)
    assert t.headers[:5] == ["substrate", "N", "samples", "redundancy", "division of labour"]
    rows = {(r[0], r[1]): r for r in t.rows}
    assert list(rows) == [("chat", 2), ("chat", 4), ("debate", 2)]
    chat2 = dict(zip(t.headers, rows["chat", 2], strict=True))
    assert chat2["samples"] == 2 and chat2["redundancy"].value == 0.75 and chat2["checks"] == 5
    assert chat2["redundancy"].method == "bootstrap"
    assert (chat2["redundancy"].low, chat2["redundancy"].high) == (0.5, 1.0)  # two values
    assert rows["chat", 4][t.headers.index("checks")] is None
    assert rows["debate", 2][t.headers.index("redundancy")] is None


def test_agreement_and_pathologies_group_by_substrate() -> None:
    a = agreement(RECORDS)
    assert a.headers[:3] == ["substrate", "samples", "agreement"]
    assert [r[:2] for r in a.rows] == [["chat", 3], ["debate", 1]]
    rate = a.rows[0][2]  # 1 of 2 agreed (the bool True is not a number): a Wilson interval
    assert (rate.value, rate.n, rate.method) == (0.5, 2, "wilson")
    assert round(rate.low, 4) == 0.0945 and round(rate.high, 4) == 0.9055
    assert a.rows[1][2] is None
    p = pathologies(RECORDS)
    assert p.headers[:3] == ["substrate", "samples", "loops"]
    assert [r[:3] for r in p.rows] == [["chat", 3, 3], ["debate", 1, None]]


def test_consensus_game_tables_show_the_published_statistics() -> None:
    from hivethink.report.build import table_md
    from hivethink.report.data import consensus_game, detection_keywords
    from hivethink.tasks.agree import game_outcome
    from hivethink.tasks.base import Instance

    inst = Instance(task="agree", id="g", prompt="", data={
        "agents": ["A", "B", "D"], "byzantine": ["D"], "start_values": {"A": 10, "B": 20}, "max_rounds": 10,
    })  # fmt: skip
    valid = game_outcome(inst, [{"A": 10, "B": 20, "D": 1}, {"A": 10, "B": 10, "D": 10}], True,
                         [{"A": "stop", "B": "continue", "D": "continue"}] * 2,
                         [{"A": "an outlier here", "B": "fine"}, {"A": "ok", "B": "suspicious outlier"}])  # fmt: skip
    timeout = game_outcome(inst, [{"A": 10, "B": 20, "D": 1}], False, [{"A": "stop", "B": "stop", "D": "stop"}],
                           [{"A": "byzantine!"}])  # fmt: skip
    records = [
        {"model": "m", "substrate": "consensus-game", "workers": 3, "error": None,
         "metrics": {"correct": float(o.result == "valid"), **o.metrics()}, "outcome": o.model_dump(mode="json")}
        for o in (valid, timeout)
    ] + [rec("chat", 2, redundancy=0.5)]  # fmt: skip
    t = consensus_game(records)
    assert len(t.rows) == 1
    row = dict(zip(t.headers, t.rows[0], strict=True))
    assert row["samples"] == 2 and row["valid"].value == 0.5
    assert row["inclusivity"].value == 1.0 and row["Byzantine infiltration"].value == 1.0  # valid game only
    assert row["agreed = median"].value == 0.0 and row["agreed = extreme"].value == 0.5  # 10 is the minimum
    assert row["convergence rate"].value == 0.25 and row["first half-stop round"].value == 1.0
    assert row["keyword mentions"] == 4
    k = detection_keywords(records)
    kw = dict(zip(k.headers, k.rows[0], strict=True))
    assert (kw["games"], kw["reasonings"], kw["outlier"], kw["suspicious"], kw["byzantine"]) == (2, 5, 2, 1, 1)
    assert "Consensus game" in table_md(t)


def test_a_traced_call_shows_its_phase_and_attempt_and_an_undelivered_message_its_address() -> None:
    from hivethink.report.build import trace_html
    from hivethink.report.data import call_note
    from hivethink.trace import Event

    step = Event(kind="step", worker="agent_2", text="{}", step=3, data={"phase": "propose", "attempt": 2})
    lost = Event(kind="message", worker="Bob", text="psst", step=0, recipients=[], data={"to": "Dave", "delivered": False})
    assert call_note(step) == " (propose, attempt 2)"
    assert call_note(lost) == " (not delivered: addressed to Dave)"
    assert call_note(Event(kind="step", worker="a", data={"attempt": 1})) == " (attempt 1)"
    assert call_note(Event(kind="vote", worker="a", data={"value": "stop"})) == ""
    page = trace_html({"index": 0, "substrate": "s", "task": "t", "workers": 2, "seed": 0, "key": "k"}, [step, lost])
    assert "step [3] (propose, attempt 2)" in page and "(not delivered: addressed to Dave)" in page
