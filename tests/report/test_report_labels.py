"""The overview marks substrates whose records are adaptations or variants of a paper."""

from __future__ import annotations

from hivethink.report.data import overview


def record(substrate: str, info: dict) -> dict:
    return {"model": "m", "substrate": substrate, "task": "math", "score": 1.0, "error": None,
            "metrics": {"correct": 1.0, "sequential_passes": 3, "tokens": 10, "wall_s": 0.1}, "info": info}


def test_adaptations_and_variants_are_labelled():
    table = overview([record("metagpt", {"adaptation": "metagpt math adaptation"}),
                      record("llm-program", {"variant": "in the spirit of LLM Programs"}),
                      record("metagpt-code", {"version": "v0.8.1"})])
    assert [row[1] for row in table.rows] == [
        "metagpt (adaptation, not published)", "llm-program (in the spirit of the paper)", "metagpt-code"]
