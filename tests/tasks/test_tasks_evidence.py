"""The evidence task: StrategyQA-style rows (paragraphs as texts, objects or a mapping)."""

from __future__ import annotations

import json
from pathlib import Path

from hivethink.tasks import get_task
from hivethink.tasks.evidence import read_yes_no

EVIDENCE = str(Path(__file__).resolve().parents[2] / "src" / "hivethink" / "tasks" / "data" / "evidence_mini.jsonl")


def test_rows_paragraphs_and_scores(tmp_path):
    task = get_task("evidence", source=EVIDENCE)
    inst = task.generate(1, 0)[0]
    assert inst.target == "no" and len(inst.data["paragraphs"]) == 10
    assert "Penguins are flightless" in inst.prompt and inst.data["question"] in inst.prompt
    assert task.score(inst, task.extract("Penguins cannot fly. The answer is no.")) == 1.0
    assert task.score(inst, task.extract("So yes, it could.")) == 0.0
    path = tmp_path / "map.jsonl"
    path.write_text(json.dumps({"qid": 7, "question": "Q?", "answer": "yes",
                                "paragraphs": {"Ice": "Ice is cold.", "Fire": "Fire is hot."}}) + "\n")
    inst = get_task("evidence", source=str(path), show_paragraphs=False).generate(1, 0)[0]
    assert [p["title"] for p in inst.data["paragraphs"]] == ["Ice", "Fire"] and "Ice is cold" not in inst.prompt
    assert inst.data["source_id"] == "7"


def test_read_yes_no():
    assert read_yes_no("No doubt it works. Answer: **Yes**") == "yes"
    assert read_yes_no("yes, well, no") == "no"
    assert read_yes_no("maybe") is None
