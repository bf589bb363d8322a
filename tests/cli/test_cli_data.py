"""``hivethink data check``: what it reports, its exit codes, and hostile file contents."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hivethink.cli.main import main

DATA = Path(__file__).parents[1] / "tasks" / "data"


def test_a_good_file(capsys):
    assert main(["data", "check", str(DATA / "math500.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "jsonl, 2 rows" in out
    assert "fields in the file: problem, solution, answer, subject, level, unique_id" in out
    assert "question <- 'problem'  (found by name)" in out
    assert "id       <- 'unique_id'  (found by name)" in out
    assert "answers (auto): 2 read (plain 2), 0 unusable" in out
    assert "ok: in a lab config" in out and '"source":' in out


def test_a_mapping_and_an_answer_format(capsys):
    args = ["data", "check", str(DATA / "math500.jsonl"), "--answer", "solution", "--answer-format", "boxed"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "answer   <- 'solution'  (mapped)" in out and "(boxed 2)" in out
    assert '"fields": {"answer": "solution"}' in out and '"answer_format": "boxed"' in out


def test_unusable_answers_are_listed_and_exit_1(capsys):
    assert main(["data", "check", str(DATA / "solutions_only.jsonl")]) == 1
    out = capsys.readouterr().out
    assert "1 read (boxed 1), 4 unusable" in out
    for line in ("line 1: answer looks like a worked solution", "line 3: answer is NoneType",
                 "line 4: question", "line 5: answer is list"):
        assert line in out
    assert "math would refuse this file" in out


def test_limit(capsys):
    assert main(["data", "check", str(DATA / "gsm8k.jsonl"), "--limit", "1"]) == 0
    assert "jsonl, 1 rows" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    ([str(DATA / "broken.jsonl")], "broken.jsonl line 3: not JSON"),
    ([str(DATA / "wrong_fields.csv")], "wrong_fields.csv line 4: 3 fields, the header has 2"),
    ([str(DATA / "gsm8k.jsonl"), "--task", "graph"], "--task 'graph' reads no files"),
    ([str(DATA / "gsm8k.jsonl"), "--answer-format", "latex"], "unknown answer format"),
    ([str(DATA / "gsm8k.jsonl"), "--question", "nope"], "no field 'nope' for the question"),
    (["/no/such/file.jsonl"], "no such file"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(["data", "check", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


@pytest.mark.slow  # a real subprocess (a fresh interpreter imports torch)
def test_a_broken_file_from_the_shell_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "hivethink.cli.main", "data", "check",
                           str(DATA / "broken.parquet")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {DATA / 'broken.parquet'}: not a readable Parquet file (")


def test_file_text_is_neither_markup_nor_escape_codes(tmp_path, capsys):
    path = tmp_path / "hostile.jsonl"
    path.write_text('{"question": "[bold]x[/bold] \\u001b[31mred", "answer": "[red]4"}\n')
    assert main(["data", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "[bold]x[/bold] red" in out and "answer: [red]4" in out and "\x1b" not in out
