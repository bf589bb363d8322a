"""The lab's ``openai`` backend runs a small grid against ``hivethink serve``: every sample succeeds."""

from __future__ import annotations

import pytest
from rich.console import Console
from serve_helpers import MODEL, running_server

from hivethink.lab import parse_config, read_results, read_trace, run_lab

pytestmark = pytest.mark.slow


def test_lab_grid_over_the_server(smol, tmp_path):
    with running_server(smol, max_batch=4) as server:
        config = parse_config({
            "name": "serve-grid",
            "models": [{"kind": "openai", "base_url": server.base_url, "model": MODEL, "concurrency": 4,
                        "max_retries": 0, "timeout_s": 60}],
            "substrates": ["single", "independent"],
            "workers": [2],
            "tasks": [{"name": "math", "params": {"steps": 2}, "n": 1}],
            "seeds": [0],
            "budget": {"max_tokens": 8, "rounds": 1},
        })
        summary = run_lab(config, tmp_path / "run", console=Console(quiet=True), progress=False)
        assert (summary.total, summary.ran, summary.failed) == (2, 2, 0)
        records = read_results(tmp_path / "run")
        assert sorted(r["substrate"] for r in records) == ["independent", "single"]
        for record in records:
            assert record["error"] is None and record["model"] == MODEL
            events = read_trace(tmp_path / "run", record)
            assert not [e for e in events if e.kind == "error"]
            assert any(e.text for e in events)  # the server's text made it into the trace
