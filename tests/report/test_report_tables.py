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
