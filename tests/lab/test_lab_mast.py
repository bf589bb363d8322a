"""The MAST judge wired into lab runs (``mast: {judge: ...}``): labels per sample, judge errors
recorded per sample, an unusable judge a one-line error, and the report's mode-rate table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab_fakes import config_dict, fake_factories
from rich.console import Console
from typer.testing import CliRunner

import hivethink.lab.runner as runner
from hivethink import prompts
from hivethink.backends.base import Completion, GenRequest
from hivethink.cli.lab import app
from hivethink.errors import HivethinkError
from hivethink.lab import Factories, parse_config, read_results, run_lab
from hivethink.report import build_report
from hivethink.report.data import mast_modes

REPLY = "A. Agents loop.\nB. no\nC.\n1.1 no\n1.3 yes\n2.5 yes\n3.3 no"


class Judge:
    name = "judge"

    def __init__(self, reply: str = REPLY, error: str | None = None) -> None:
        self.reply, self.error = reply, error
        self.prompts: list[str] = []

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        self.prompts += [r.messages[-1]["content"] for r in requests]
        return [Completion(text=self.reply, error=self.error) for _ in requests]


def with_judge(judge: Judge) -> Factories:
    base = fake_factories()

    def backend(kind: str, **params: Any):
        return judge if kind == "judge" else base.get_backend(kind, **params)

    return Factories(backend, base.get_task, base.get_substrate)


def run(tmp_path: Path, judge: Judge, **mast: Any):
    cfg = parse_config(config_dict(seeds=[0], workers=[2], mast={"judge": {"kind": "judge", "name": "j"}, **mast}))
    return run_lab(cfg, tmp_path, factories=with_judge(judge), console=Console(quiet=True), progress=False)


def test_every_sample_is_labelled_and_the_report_shows_mode_rates(tmp_path):
    judge = Judge()
    summary = run(tmp_path, judge)
    records = read_results(tmp_path)
    assert summary.ran == len(records) == len(judge.prompts) == 4
    assert all("[step] Alice:" in p for p in judge.prompts)  # the judge reads each trace
    for rec in records:
        mast = rec["mast"]
        assert mast["judge"] == "j" and mast["error"] is None and mast["success"] is False
        assert [c for c, v in mast["modes"].items() if v] == ["1.3", "2.5"]
    table = mast_modes(records)
    assert [r[0] for r in table.rows] == ["fake", "other"]
    row = dict(zip(table.headers, table.rows[0], strict=True))
    assert (row["judged"], row["judge errors"], row["success"]) == (2, 0, 0.0)
    assert (row["1.1"], row["1.3"], row["2.5"], row["3.3"]) == (0.0, 1.0, 1.0, 0.0)
    build_report(tmp_path)
    assert "## MAST failure modes (LLM judge)" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize("taxonomy", ["published", "paper"])
def test_the_labels_say_which_taxonomy_and_texts_made_them(tmp_path, taxonomy):
    """Default: the modes as the authors' judge prompt names them; ``taxonomy: paper`` the
    paper's (book ``mast-paper``). The report's table says which."""
    judge = Judge()
    run(tmp_path, judge, **({} if taxonomy == "published" else {"taxonomy": "paper"}))
    book = "mast" if taxonomy == "published" else "mast-paper"
    for rec in read_results(tmp_path):
        assert rec["mast"]["taxonomy"] == taxonomy and rec["mast"]["published_texts"] is None
        assert rec["mast"]["prompts_digest"] == prompts.digest([book])
    assert ("3.3 Weak Verification: <yes or no>" in judge.prompts[0]) == (taxonomy == "published")
    assert ("3.3 Incorrect Verification: <yes or no>" in judge.prompts[0]) == (taxonomy == "paper")
    note = mast_modes(read_results(tmp_path)).note
    assert f"modes named as in the {taxonomy} taxonomy; judge prompt: hivethink's texts" in note


def test_a_judge_that_cannot_be_reached_is_a_recorded_error_and_the_run_goes_on(tmp_path):
    summary = run(tmp_path, Judge(reply="", error="APIConnectionError: connection refused"))
    records = read_results(tmp_path)
    assert summary.ran == 4 and summary.failed == 0
    assert all(r["mast"] == {"judge": "j", "error": "APIConnectionError: connection refused"} for r in records)
    assert all(r["score"] == 1.0 for r in records)  # the samples themselves are fine
    build_report(tmp_path)
    assert "| fake | 0 | 2 |" in (tmp_path / "summary.md").read_text()


def test_a_judge_that_cannot_be_built_stops_before_any_sample(tmp_path):
    cfg = parse_config(config_dict(mast={"judge": {"kind": "nope"}}))
    with pytest.raises(HivethinkError, match="cannot build backend"):
        run_lab(cfg, tmp_path, factories=fake_factories(), console=Console(quiet=True), progress=False)
    assert not (tmp_path / "results.jsonl").exists()


def test_cli_bad_judge_and_bad_mast_section_exit_2(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "default_factories", fake_factories)
    for mast, message in (({"judge": {"kind": "nope"}}, "cannot build backend"),
                          ({"judge": {"kind": "echo"}, "parse": "fuzzy"}, "mast.parse"),
                          ({"judge": {"kind": "echo"}, "taxonomy": "mine"}, "mast.taxonomy"),
                          ({"model": "x"}, "mast.judge")):  # fmt: skip
        path = tmp_path / "lab.yaml"
        path.write_text(yaml.safe_dump(config_dict(mast=mast)), encoding="utf-8")
        result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
        assert result.exit_code == 2, result.output
        err = result.stderr.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err
