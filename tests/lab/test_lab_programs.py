"""metagpt and llm-program through the lab on a scripted backend: results lines carry the code
task's test status and the presets' facts, and the report marks the math adaptation."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from hivethink.backends.base import Score
from hivethink.backends.fake import ScriptedBackend
from hivethink.lab import parse_config, read_results, run_lab
from hivethink.lab.grid import Factories, default_factories
from hivethink.report.build import build_report

DATA = Path(__file__).resolve().parents[2] / "src" / "hivethink" / "tasks" / "data"
GOOD = "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```"


def script(request, index):
    user = request.messages[-1]["content"]
    if "As the engineer" in user:
        return GOOD
    if "As the solver" in user:
        return "```python\n2 * 3\n```\n\\boxed{6}"
    if "Write only the next reasoning step" in user:
        return "Penguins cannot fly. So the answer is no."
    return "Plain words, no format."


def test_programs_in_the_lab(tmp_path: Path):
    registry = default_factories()
    factories = Factories(lambda kind, **p: ScriptedBackend(script, scores=lambda r, i: Score(-1.0, 1)),
                          registry.get_task, registry.get_substrate)
    config = parse_config({
        "models": [{"kind": "fake"}],
        "substrates": [{"name": "metagpt", "label": "chat", "params": {"version": "v0.1.0", "feedback": False,
                                                                     "artifacts": "chat"}},
                       {"name": "llm-program", "params": {"keep": 2}}],
        "workers": [1],
        "tasks": [{"name": "code", "params": {"source": str(DATA / "code_mini.jsonl")}, "n": 1},
                  {"name": "evidence", "params": {"source": str(DATA / "evidence_mini.jsonl")}, "n": 1},
                  {"name": "math", "params": {"steps": 1, "template": "arith"}, "n": 1, "substrates": ["chat"]}],
    })  # fmt: skip
    summary = run_lab(config, tmp_path, factories=factories, console=Console(quiet=True), progress=False)
    assert summary.ran == 3 and summary.failed == 0
    lines = {r["task"].split("(")[0]: r for r in read_results(tmp_path)}
    assert lines["code"]["score"] == 1.0 and lines["code"]["metrics"]["code_status"] == "ok"
    assert lines["code"]["info"]["acted"] == [[0, "Alice", "WritePRD"], [1, "Bob", "WriteDesign"],
                                              [2, "Eve", "WriteTasks"], [3, "Alex", "WriteCode"]]
    assert lines["evidence"]["score"] == 1.0 and lines["evidence"]["info"]["kept"]
    assert lines["math"]["info"]["adaptation"]
    report = (tmp_path / "summary.md").read_text() if build_report(tmp_path) else ""
    assert "chat (adaptation, not published)" in report
