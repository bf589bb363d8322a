"""A quick load test against a real server (the full one is ``hivethink bench serve``), and the
serve commands' input checks (before any model loads)."""

from __future__ import annotations

import asyncio
import json

import pytest
from serve_helpers import MODEL, running_server

from hivethink.cli.main import main
from hivethink.serve.bench import is_hive, run_load, write_json


@pytest.mark.slow
def test_ten_concurrent_streams_none_lost(smol, tmp_path):
    with running_server(smol, max_batch=4) as server:  # more requests than rows: some wait
        report = asyncio.run(run_load(server.url, requests=10, max_tokens=4, rounds=1, timeout_s=120))
        assert server.engine.load == (0, 0) and not server.engine.cache.blocks
        # the RSS of each round was read once the engine had handed back what the round freed
        # (after the warm-up request and after the round: two releases at least)
        assert server.engine.settled and server.engine.stats.heap_trims >= 2
    assert report.model == MODEL and report.lost == 0
    [r] = report.rounds
    assert r.ok == 10 and r.requests_per_s > 0 and r.tokens_per_s > 0
    assert 0 < r.ttft_p50_s <= r.latency_p50_s <= r.latency_p99_s
    write_json(report, tmp_path / "bench.json")
    assert json.loads((tmp_path / "bench.json").read_text())["lost"] == 0


@pytest.mark.slow
def test_hive_and_plain_requests_mixed_none_lost(smol):
    with running_server(smol, max_batch=8) as server:
        report = asyncio.run(run_load(server.url, requests=6, max_tokens=4, rounds=1, timeout_s=180,
                                      hive_every=3, hive_workers=2))
        assert server.engine.load == (0, 0) and not server.engine.cache.blocks
    [r] = report.rounds
    assert report.lost == 0 and r.ok == 6 and r.hive_requests == 2
    assert [is_hive(i, 3) for i in range(6)] == [False, False, True, False, False, True]
    assert not any(is_hive(i, 0) for i in range(6))


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "0"],
        ["serve", "--port", "70000"],
        ["serve", "--max-workers", "0"],
        ["serve", "--max-workers", "99"],
        ["serve", "--max-tokens-limit", "0"],
        ["serve", "--max-batch", "0"],
        ["serve", "--api-key", ""],
        ["serve", "--log-level", "loud"],
        ["bench", "serve", "--requests", "0"],
        ["bench", "serve", "--max-tokens", "-1"],
        ["bench", "serve", "--hive-every", "-1"],
        ["bench", "serve", "--hive-workers", "0"],
    ],
)
def test_serve_commands_reject_bad_input(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
