"""``lab run`` progress: a live bar on a terminal, plain lines (one per sample) anywhere else."""

from __future__ import annotations

import io
import re
from pathlib import Path

from lab_fakes import config_dict, fake_factories
from rich.console import Console

from hivethink.lab import parse_config, run_lab


def _run(out: Path, terminal: bool, **config) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=terminal, width=200)
    run_lab(parse_config(config_dict(**config)), out, factories=fake_factories(fail_on=("add-10-0-1",)),
            console=console, progress=True)
    return buffer.getvalue()


def test_plain_lines_without_a_terminal(tmp_path: Path) -> None:
    text = _run(tmp_path, terminal=False, seeds=[0], workers=[2])
    lines = text.strip().splitlines()
    assert lines[0] == f"4 samples to run, 0 already done -> {tmp_path}"
    assert len(lines) == 5
    for n, line in enumerate(lines[1:], 1):
        assert re.fullmatch(rf"\[{n}/4\] (fake|other) / add / N=2 / seed 0: .* \(\d+\.\ds\)", line)
    assert sum("score 1" in line for line in lines) == 2
    assert sum("failed: RuntimeError: boom on add-10-0-1" in line for line in lines) == 2
    assert "\x1b" not in text and "━" not in text  # no escape codes, no bar


def test_resumed_run_counts_what_is_done(tmp_path: Path) -> None:
    _run(tmp_path, terminal=False, seeds=[0], workers=[2])
    again = _run(tmp_path, terminal=False, seeds=[0, 1], workers=[2])
    assert again.splitlines()[0].startswith("4 samples to run, 4 already done")


def test_a_terminal_gets_the_bar_not_the_lines(tmp_path: Path) -> None:
    text = _run(tmp_path, terminal=True, seeds=[0], workers=[2])
    assert "[1/4]" not in text and "samples to run" not in text
    assert "4/4" in text  # the bar's count column
