"""A small finished run (fake task, substrate and backend) whose trace holds hostile text."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parents[1] / "lab"))

from lab_fakes import config_dict, fake_factories  # noqa: E402

from hivethink.lab import parse_config, run_lab  # noqa: E402

HOSTILE = (
    '\n<script>alert(1)</script><img src=x onerror="window.__pwned=1">'
    "\x1b[31mred\x1b[0m [bold]not bold[/bold] [/] \x07bell\x1b]0;title\x07 \u202etxet"
)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    cfg = parse_config(config_dict())
    run_lab(
        cfg,
        out,
        factories=fake_factories(extra=HOSTILE, fail_on=("add-10-0-1",)),
        console=Console(quiet=True),
        progress=False,
    )
    return out
