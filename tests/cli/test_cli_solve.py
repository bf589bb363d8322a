"""The CLI end to end: a full solve with a trace; bad arguments give one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hivethink.cli.main import main
from hivethink.trace import read_jsonl


def test_solve_writes_a_valid_trace(tmp_path, capsys):
    trace = tmp_path / "out.jsonl"
    problem = tmp_path / "p.txt"
    problem.write_text("What is 6 times 7?")
    rc = main(["solve", f"@{problem}", "--workers", "3", "--max-steps", "20", "--no-examples", "--trace", str(trace),
               "--no-live"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "answer:" in out and "sequential passes" in out and "tokens/s" in out and "lab run" in out
    events = list(read_jsonl(trace))
    for line in trace.read_text().splitlines():
        json.loads(line)
    tokens = [e for e in events if e.kind == "token"]
    assert {e.worker for e in tokens} == {"Alice", "Bob", "Carol"}
    assert all(e.step is not None and e.position is not None and e.text is not None for e in tokens)
    assert [e.t for e in events] == sorted(e.t for e in events)
    assert sum(e.kind == "answer" and e.worker == "team" for e in events) == 1


@pytest.mark.parametrize("args", [
    ["solve", "x", "--workers", "0"],
    ["solve", "x", "--layout", "spiral"],
    ["solve", "x", "--model", "./missing-model.gguf"],
    ["solve", "@/no/such/problem.txt"],
    ["solve", "x", "--workers", "many"],
    ["bench", "engine", "--contexts", "0"],
])
def test_bad_arguments_exit_2_with_one_line(args):
    proc = subprocess.run([sys.executable, "-m", "hivethink.cli.main", *args], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr


def test_non_utf8_problem_file(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00bad")
    assert main(["solve", f"@{bad}"]) == 2
    assert "not UTF-8" in capsys.readouterr().err
