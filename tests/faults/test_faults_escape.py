"""Model text with HTML, script, ANSI/OSC escapes, carriage returns, NUL and rich markup is shown
inertly: escaped in the HTML report, neutralised by ``hivethink lab show`` (a real subprocess),
by ``hivethink solve``'s final table and answer, and by its live side-by-side view."""

from __future__ import annotations

import html
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from hivethink.cli.live import SideBySide
from hivethink.cli.main import main
from hivethink.engine.hive import HiveResult
from hivethink.lab import parse_config, read_results, run_lab
from hivethink.report import build_report

EVIL = (
    "<script>alert(1)</script> \x1b[31mred\x1b[0m \x1b]0;pwned title\x07 \x1b]8;;http://x\x1b\\"
    "link\x1b]8;;\x1b\\ \x9b31m csi8 \rover\x00nul\x08bs \u202eevil\u202c [bold]b[/bold] [/] "
    "\\boxed{<img src=x onerror=alert(2)>\x1b[2J\x07}"
)
RAW_CONTROLS = ("\x1b", "\x07", "\x00", "\x08", "\x9b", "\u202e", "\r")


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run whose every model reply (hence answers and agent answers) is EVIL, with
    markup, HTML and escapes in the config's labels too."""
    out = tmp_path_factory.mktemp("evil")
    config = parse_config(
        {
            "name": "evil \x1b]0;t\x07<script>x</script>",
            "models": [{"kind": "echo", "reply": EVIL}],
            "substrates": [
                {"name": "independent", "label": "[/]<b>ind\x1b[31m $\\foo$"},  # no markup, math
                "sequential",
            ],
            "workers": [2],
            "tasks": [{"name": "math", "params": {"steps": 1}, "n": 1}],
            "budget": {"max_tokens": 100},
        }
    )
    progress = Console(file=io.StringIO(), force_terminal=True, width=100)
    run_lab(config, out, console=progress, progress=True)  # "[/]" in a label is no markup
    answers = {r["answer"] for r in read_results(out)}
    assert any(a and "<img src=x onerror=alert(2)>" in a for a in answers)  # the text got through
    return out


def test_html_report_escapes_model_text(hostile_run: Path) -> None:
    page = build_report(hostile_run).read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert re.findall(r"<img\b[^>]*>", page) == re.findall(
        r'<img alt="[^"<>]*" src="data:image/png;base64,[A-Za-z0-9+/=]+">', page
    )  # the only images are the report's own plots
    assert re.search(r"<[^<>]*onerror", page) is None  # onerror only in escaped text
    assert html.escape("<img src=x onerror=alert(2)>") in page  # in the answer columns
    assert html.escape("<script>alert(1)</script>") in page
    for raw in RAW_CONTROLS:
        assert raw not in page, repr(raw)
    assert "\\x00nul" in page and "\\x08bs" in page and "\\u202eevil" in page  # made visible


def _show(run: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hivethink.cli.main", "lab", "show", str(run), "--sample", "1",
         *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow  # a real subprocess (a fresh interpreter imports torch)
@pytest.mark.timeout(120)
def test_lab_show_neutralises_model_text(hostile_run: Path) -> None:
    env = {"COLUMNS": "160", "TERM": "xterm-256color"}
    plain = _show(hostile_run, "--prompts", env={**env, "NO_COLOR": "1"})
    colour = _show(hostile_run, env={**env, "FORCE_COLOR": "1"})
    out, err = plain.communicate(timeout=90)
    assert plain.returncode == 0, err.decode(errors="replace")
    for raw in RAW_CONTROLS:
        assert raw.encode("utf-8") not in out, repr(raw)  # no escape byte reaches the terminal
    text = out.decode("utf-8")
    assert "<script>alert(1)</script>" in text and "[bold]b[/bold] [/]" in text  # shown as text
    assert "\\x00nul" in text and "\\u202eevil" in text
    out, err = colour.communicate(timeout=90)
    assert colour.returncode == 0, err.decode(errors="replace")
    assert b"\x1b[" in out  # rich's own colours are there ...
    for sequence in (b"\x1b[31m", b"\x1b]", b"\x1b[2J", b"\x07", b"\x00", b"\x9b"):
        assert sequence not in out, sequence  # ... but none of the model's sequences


class _FakeHive:
    """Stands in for the engine: every worker writes EVIL and answers with it."""

    def __init__(self, model: object, config: object, on_token: object = None, **_: object):
        self.on_token = on_token

    def solve(self, problem: str) -> HiveResult:
        names = ["Alice", "Bob"]
        if callable(self.on_token):
            for name in names:
                for piece in EVIL.split(" "):
                    self.on_token(name, piece + " ")
        return HiveResult(
            answer="\x1b[31m[/]<b>42</b>\x07",
            finished_by="answer",
            steps=3,
            tokens=dict.fromkeys(names, 7),
            texts=dict.fromkeys(names, EVIL),
            answers={"Alice": "[bold]41\x1b]0;t\x07", "Bob": None},
            references=dict.fromkeys(names, 0),
            checks=0,
            checks_yes=0,
            impersonations=dict.fromkeys(names, 0),
            wall_s=0.5,
        )


def test_solve_output_is_neutralised(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import hivethink.engine.hive as hive
    import hivethink.models.loader as loader

    monkeypatch.setattr(loader, "load_model", lambda *a, **k: SimpleNamespace(plan=None))  # exact weights
    monkeypatch.setattr(hive, "Hive", _FakeHive)
    assert main(["solve", "x", "--workers", "2", "--no-live"]) == 0
    out = capsys.readouterr().out
    for raw in RAW_CONTROLS:
        assert raw not in out, repr(raw)
    assert "<script>alert(1)</script>" in out  # the streams are shown, as text
    assert "answer: [/]<b>42</b>\\x07" in out  # markup in model text is not markup
    assert "│ [bold]41 " in out  # the OSC title sequence is gone, the markup is text


def test_live_view_neutralises_model_text() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, color_system="truecolor", width=120)
    with SideBySide(["Alice", "Bob"], console, fps=1000) as view:
        for piece in EVIL.split(" "):
            view("Alice", piece + " ")
            view("Bob", piece + " ")
    out = buf.getvalue()
    assert "alert(1)" in out and "\x1b[" in out  # drawn, in rich's colours
    for sequence in ("\x1b[31m", "\x1b]", "\x1b[2J", "\x07", "\x00", "\x08", "\x9b", "\u202e"):
        assert sequence not in out, repr(sequence)
