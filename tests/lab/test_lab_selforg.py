"""Self-organising protocols and single-or-multi in lab runs: missions scored by the judge (per
sample errors when it cannot be reached), the records' defects, the report's tables, and config
errors (exit 2) before any model loads."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

import hivethink.lab.runner as runner
from hivethink.backends.base import Completion, GenRequest
from hivethink.backends.fake import ScriptedBackend
from hivethink.cli.lab import app
from hivethink.errors import HivethinkError
from hivethink.lab import Factories, default_factories, parse_config, read_results, run_lab
from hivethink.report import build_report

PROTOCOLS = ("sequential", "coordinator", "broadcast", "shared")


def agent(request: GenRequest, _: int) -> str:
    text = request.messages[-1]["content"]
    if "Rate the deliverable" in text:
        return '{"rating": 6}'
    if "How difficult" in text:
        return "2"
    name = re.findall(r"You are (\w+)", request.messages[0]["content"] + text)
    who = name[-1] if name else "someone"
    if who == "Bob":
        return "ABSTAIN"
    return f"ROLE: planner for {who}\nThe plan by {who}: \\boxed{{1 + 2}}"


def factories(judge: Any = None, built: list[str] | None = None) -> Factories:
    base = default_factories()
    built = built if built is not None else []

    def backend(kind: str, **params: Any):
        built.append(kind)
        if kind == "judge":
            return judge
        if kind == "agents":
            return ScriptedBackend(agent, name="agents")
        if kind == "openai":  # a real client: nothing loads, and nothing listens there
            return base.get_backend(kind, **params)
        raise AssertionError(f"a model was loaded: {kind}")

    return Factories(backend, base.get_task, base.get_substrate)


def grid(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "selforg",
        "models": [{"kind": "agents"}],
        "substrates": [{"name": "self-organizing", "label": p, "params": {"protocol": p}} for p in PROTOCOLS],
        "workers": [3],
        "tasks": [{"name": "mission", "params": {"run": 2}, "n": 2}],
        "judge": {"model": {"kind": "agents"}},
        "budget": {"max_tokens": 16},
    }
    config.update(overrides)
    return config


def run(tmp_path: Path, config: dict[str, Any], judge: Any = None, built: list[str] | None = None):
    return run_lab(parse_config(config), tmp_path, factories=factories(judge, built),
                   console=Console(quiet=True), progress=False)  # fmt: skip


def test_missions_are_scored_by_the_judge_and_the_report_shows_the_protocols(tmp_path):
    built: list[str] = []
    summary = run(tmp_path, grid(), built=built)
    assert built == ["agents"]  # the judge's entry is the model's: one backend for both
    records = read_results(tmp_path)
    assert summary.ran == len(records) == 8 and summary.failed == 0
    for rec in records:
        assert rec["score"] == pytest.approx(0.6) and rec["metrics"]["quality"] == pytest.approx(0.6)
        assert rec["judge"]["qualities"] == [pytest.approx(0.6)] * 2 and rec["judge"]["error"] is None
        assert rec["metrics"]["abstention_rate"] > 0 and rec["metrics"]["role_stability"] == 1.0
        assert rec["defects"] is not None and rec["metrics"]["graph_nodes"] > 0
        assert len(rec["info"]["outputs"]) == 2
    build_report(tmp_path)
    summary_md = (tmp_path / "summary.md").read_text()
    assert "## Self-organisation" in summary_md and "## Defect attribution (mean per sample)" in summary_md
    rows = [line for line in summary_md.splitlines() if line.startswith("| ") and "mission(run=2)" in line]
    assert {row.split(" | ")[0].removeprefix("| ") for row in rows} >= set(PROTOCOLS)


class Down:
    name = "down"

    def generate(self, requests):
        return [Completion(text="", error="APIConnectionError: connection refused") for _ in requests]


def test_a_judge_that_cannot_be_reached_is_a_per_sample_error_and_the_run_goes_on(tmp_path):
    summary = run(tmp_path, grid(judge={"model": {"kind": "judge", "name": "j"}}), judge=Down())
    records = read_results(tmp_path)
    assert summary.ran == len(records) == 8 and summary.failed == 8
    for rec in records:
        assert rec["score"] is None and rec["error"].startswith("judge: mission 1: APIConnectionError")
        assert rec["judge"]["judge"] == "j"
        assert rec["metrics"]["abstention_rate"] is not None  # the sample itself is kept


def test_an_unreachable_openai_judge_is_recorded_per_sample(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    judge = {"kind": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": "j", "max_retries": 0}
    summary = run(tmp_path, grid(judge={"model": judge}, substrates=[grid()["substrates"][0]]))
    records = read_results(tmp_path)
    assert summary.ran == len(records) == 2
    assert all(r["score"] is None and "Connection" in r["judge"]["error"] for r in records)


def test_single_or_multi_in_a_run_and_its_report(tmp_path):
    mas = {"name": "self-organizing", "params": {"protocol": "sequential"}}
    config = grid(
        substrates=[{"name": "self-organizing", "label": "mas"}, {"name": "sas", "params": {"of": "self-organizing"}},
                    {"name": "cascade", "params": {"mas": mas}}, {"name": "router", "params": {"mas": mas, "threshold": 3}}],
        tasks=[{"name": "countdown", "params": {"numbers": 2}, "n": 2}],
    )  # fmt: skip
    del config["judge"]
    run(tmp_path, config)
    records = {r["substrate"]: r for r in read_results(tmp_path)}
    assert records["cascade"]["metrics"]["escalated"] == 1.0  # "1 + 2" is never right
    assert records["router"]["metrics"]["routed_mas"] == 0.0 and records["router"]["metrics"]["difficulty"] == 2
    for rec in records.values():
        assert rec["metrics"]["prompt_tokens"] > 0 and rec["metrics"]["tokens"] > 0
    assert records["sas"]["metrics"]["agents"] == 1 and records["sas"]["defects"] is None
    build_report(tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert "## Single or multi: accuracy against prefill and decode tokens" in md
    assert "Single or multi: accuracy vs prefill and decode tokens" in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["substrates"][0]["params"].update(protocol="anarchy"), "unknown protocol 'anarchy'"),
    (lambda c: c["substrates"][0]["params"].update(speed=3), "has no parameter speed"),
    (lambda c: c["substrates"][1]["params"].update(batch=2), "batch is an option of protocol sequential"),
    (lambda c: c["tasks"][0]["params"].update(file="MISSING_FIELD"), "mission 1: missing field 'level'"),
    (lambda c: c.pop("judge"), "is scored by an LLM judge: add judge:"),
    (lambda c: (c["tasks"][0]["params"].update(run=1), c["substrates"].append({"name": "cascade"})),
     "task 'mission' has no verifier"),
    (lambda c: c["judge"].update(model={"name": "x"}), "judge.model.kind"),
])  # fmt: skip
def test_config_errors_exit_2_before_any_model_loads(tmp_path, monkeypatch, change, message):
    built: list[str] = []
    monkeypatch.setattr(runner, "default_factories", lambda: factories(built=built))
    bad = tmp_path / "bad.yaml"
    bad.write_text("missions:\n  - {text: Do it}\n", encoding="utf-8")
    config = grid()
    change(config)
    for task in config["tasks"]:
        if task["params"].get("file") == "MISSING_FIELD":
            task["params"]["file"] = str(bad)
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert built == []


def test_a_missing_judge_fails_before_any_backend_is_built(tmp_path):
    built: list[str] = []
    config = grid()
    del config["judge"]
    with pytest.raises(HivethinkError, match="scored by an LLM judge"):
        run(tmp_path, config, built=built)
    assert built == [] and not (tmp_path / "results.jsonl").exists()
