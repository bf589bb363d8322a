"""The CLI end to end: a full solve with a trace; bad arguments give one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hivethink.cli.main import main
from hivethink.trace import read_jsonl


@pytest.mark.slow  # loads the embedded model
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


@pytest.mark.slow  # a real subprocess (a fresh interpreter imports torch)
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


def test_the_summary_reads_loops_from_what_each_worker_wrote_itself():
    """A worker that writes the same sentence step after step loops, even though the forced text
    between its steps (numbered headers, checks) makes its whole stream look varied (the demo's
    run, where the summary said "no")."""
    import io

    from rich.console import Console

    from hivethink.cli.live import summary
    from hivethink.engine.hive import HiveConfig, HiveResult
    from hivethink.trace import Event

    events, streams = [], {"Alice": "", "Bob": ""}
    seeded = ("Hello, {} here. Let us read the problem carefully, agree who computes which part, "
              "write each intermediate result down once, compare our totals at the end, and box "
              "the final number only after both of us have checked every single step twice.")
    for worker in streams:  # the forced first step, long and varied
        events.append(Event(kind="token", worker=worker, text=seeded.format(worker), data={"forced": True}))
        streams[worker] += seeded.format(worker)
    for k in range(1, 10):
        for worker, said in (("Alice", "I'm not sure how to split the work. "),
                             ("Bob", f"Step {k}: {k} times {k + 1} is {k * (k + 1)}, so we add it up next. ")):
            header = f"\n\n**{worker} [{k}]:** "
            if k % 3 == 0:  # the redundancy check, forced as in the demo's run
                header += "Quick check: is my current work redundant? (yes/no): "
            events.append(Event(kind="token", worker=worker, text=header, data={"forced": True}))
            events.append(Event(kind="token", worker=worker, text=said))
            streams[worker] += header + said
    result = HiveResult(answer=None, finished_by="finisher", steps=90, tokens={"Alice": 90, "Bob": 90},
                        texts=streams, answers={}, references={}, checks=0, checks_yes=0,
                        impersonations={}, wall_s=1.0, events=events)
    out = io.StringIO()
    summary(Console(file=out, width=200), result, HiveConfig(workers=2))
    rows = {line.split("│")[1].strip(): line for line in out.getvalue().splitlines() if line.count("│") > 5}
    loops = {name: row.split("│")[7].strip() for name, row in rows.items() if name in ("Alice", "Bob")}
    assert loops == {"Alice": "yes", "Bob": "no"}


@pytest.mark.parametrize(("args", "flag"), [
    (["--top-p", "2"], "--top-p"),
    (["--check-every", "-1"], "--check-every"),
    (["--finisher-tokens", "-3"], "--finisher-tokens"),
])
def test_a_bad_hive_option_is_named_by_its_flag(args, flag, capsys):
    assert main(["solve", "x", *args]) == 2  # before the model loads
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: solve: {flag}: "), err
