"""show_sample: readable, coloured per worker, and model text neutralised."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from hivethink.errors import HivethinkError
from hivethink.report import neutralise, show_sample


def _show(run_dir: Path, sample: int | str, **console_kw: object) -> str:
    buf = io.StringIO()
    show_sample(run_dir, sample, Console(file=buf, width=120, **console_kw))
    return buf.getvalue()


def test_neutralise() -> None:
    assert neutralise("\x1b[31mred\x1b[0m") == "red"
    assert neutralise("a\x07b\x1b]0;title\x07c") == "a\\x07bc"
    assert neutralise("[bold]x[/bold]") == "\\[bold]x\\[/bold]"
    assert neutralise("x\u202ey") == "x\\u202ey"
    assert neutralise("a\tb\r\nc") == "a   b\nc"


def test_show_sample_plain(run_dir: Path) -> None:
    out = _show(run_dir, 0, color_system=None)
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "red" in out and "[bold]not bold[/bold]" in out and "[/]" in out
    assert "<script>alert(1)</script>" in out
    assert "Alice" in out and "Bob" in out and "score 1.000" in out


def test_show_sample_in_colour_keeps_only_rich_styles(run_dir: Path) -> None:
    out = _show(run_dir, 0, force_terminal=True, color_system="standard")
    assert "\x1b[31m" not in out  # the model's red is gone; the palette has no plain red
    assert "\x1b[" in out  # rich's own colours are there


def test_show_by_key_prefix_and_errors(run_dir: Path) -> None:
    from hivethink.lab import read_results

    rec = next(r for r in read_results(run_dir) if r["error"])
    out = _show(run_dir, rec["key"][:8], color_system=None)
    assert "error: RuntimeError: boom" in out
    with pytest.raises(HivethinkError, match="no sample with index 999"):
        _show(run_dir, 999)
    with pytest.raises(HivethinkError, match="no sample with key"):
        _show(run_dir, "zzzz")


def test_interleaved_engine_tokens_merge_per_worker() -> None:
    from hivethink.report.data import merge_tokens
    from hivethink.trace import Event

    events = [Event(kind="prompt", worker="all", text="p")]
    for a, b in (("Hel", "Wor"), ("lo", "ld")):
        events += [
            Event(kind="token", worker="Alice", text=a),
            Event(kind="token", worker="Bob", text=b),
        ]
    events += [Event(kind="check", worker="Alice", data={"answer": "no"}),
               Event(kind="token", worker="Alice", text="!")]  # fmt: skip
    merged = [(e.kind, e.worker, e.text) for e in merge_tokens(events)]
    assert merged == [("prompt", "all", "p"), ("token", "Alice", "Hello"), ("token", "Bob", "World"),
                      ("check", "Alice", ""), ("token", "Alice", "!")]  # fmt: skip
