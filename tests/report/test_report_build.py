"""build_report: files, plots, escaping, skipped categories; the plots on synthetic records."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from hivethink.lab import read_results
from hivethink.report import build_report
from hivethink.report.plots import all_plots, success_vs_group_size


def test_report_files_and_escaping(run_dir: Path) -> None:
    path = build_report(run_dir)
    assert path == run_dir / "report.html"
    page = path.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "onerror=" not in page.replace("onerror=&quot;", "")  # only as escaped text
    assert html.escape("<script>alert(1)</script>") in page
    assert (
        "\x1b" not in page and "\x07" not in page and "\\x07bell" in page
    )  # controls made visible
    assert re.search(r"https?://", page) is None  # no external resources
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert len(images) >= 3 and all(len(i) > 1000 for i in images)
    assert "skipped: no graph-task or consensus-game samples" in page
    summary = (run_dir / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("# hivethink lab report: t")
    assert (
        "| model | substrate | task |" in summary and "Graph-task and consensus success" in summary
    )
    assert "RuntimeError" in page  # the failed sample's error is listed


def test_empty_run_builds_without_plots(tmp_path: Path) -> None:
    (tmp_path / "results.jsonl").write_text("", encoding="utf-8")
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "<img" not in page and page.count("skipped:") == 6
    assert "0 samples" in page


def test_missing_run_dir_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "nope")


def _rec(task: str, substrate: str, agents: int, score: float, **metrics: float) -> dict:
    return {
        "key": f"{task}{substrate}{agents}{score}",
        "model": "m",
        "substrate": substrate,
        "task": task,
        "workers": agents,
        "seed": 0,
        "score": score,
        "error": None,
        "cell": {"task": {"name": task}},
        "metrics": {"agents": agents, "sequential_passes": 10, **metrics},
    }


def test_group_size_plot_on_graph_and_consensus_records() -> None:
    records = [
        _rec("graph", "chat", 4, 1.0),
        _rec("graph", "chat", 8, 0.0),
        _rec("agree", "agree", 4, 1.0),
        _rec("math", "single", 1, 1.0),
    ]
    plot = success_vs_group_size(records)
    assert plot.png is not None and plot.note == ""
    assert success_vs_group_size(records[3:]).png is None


def test_all_plots_on_no_records_are_skipped_with_notes() -> None:
    plots = all_plots([])
    assert [p.png for p in plots] == [None] * 6 and all(p.note for p in plots)


def test_run_records_have_the_hostile_text(run_dir: Path) -> None:
    records = read_results(run_dir)
    assert any(r["error"] for r in records) and any(not r["error"] for r in records)
