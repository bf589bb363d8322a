"""``hivethink lab`` commands: happy paths, and bad input -> one line on stderr, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from lab_fakes import config_dict, fake_factories
from typer.testing import CliRunner

import hivethink.lab.runner as runner
from hivethink.cli.lab import app

CLI = CliRunner()


def _one_line_error(args: list[str]) -> str:
    result = CLI.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in result.output
    return err


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(runner, "default_factories", fake_factories)
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(config_dict()), encoding="utf-8")
    return path


def test_run_report_show(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CLI.invoke(app, ["run", str(config_file), "--out", str(out), "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert "3 ran (0 failed), 0 already done, 13 left of 16" in result.stderr
    result = CLI.invoke(app, ["run", str(config_file), "--out", str(out)])
    assert result.exit_code == 0 and "13 ran (0 failed), 3 already done" in result.stderr
    result = CLI.invoke(app, ["report", str(out)])
    assert result.exit_code == 0 and result.stdout.strip().endswith("report.html")
    assert (out / "report.html").exists() and (out / "summary.md").exists()
    result = CLI.invoke(app, ["show", str(out), "--sample", "2"])
    assert result.exit_code == 0 and "Alice" in result.stdout


def test_run_default_out_dir_uses_config_name(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert CLI.invoke(app, ["run", str(config_file), "--limit", "1"]).exit_code == 0
    assert (tmp_path / "runs" / "t" / "results.jsonl").exists()


def test_bad_inputs_are_one_line(config_file: Path, tmp_path: Path) -> None:
    assert "no such config file" in _one_line_error(["run", str(tmp_path / "missing.yaml")])
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("models: [\n", encoding="utf-8")
    assert "invalid YAML" in _one_line_error(["run", str(bad_yaml)])
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump(config_dict(colour="blue")), encoding="utf-8")
    assert "colour: unknown key" in _one_line_error(["run", str(unknown)])
    bad_model = tmp_path / "model.yaml"
    bad_model.write_text(yaml.safe_dump(config_dict(models=[{"kind": "nope"}])), encoding="utf-8")
    assert "cannot build backend" in _one_line_error(
        ["run", str(bad_model), "--out", str(tmp_path / "o")]
    )
    assert "no results" in _one_line_error(["report", str(tmp_path / "nowhere")])
    assert "no results" in _one_line_error(["show", str(tmp_path / "nowhere"), "--sample", "0"])
    out = tmp_path / "ok"
    assert (
        CLI.invoke(app, ["run", str(config_file), "--out", str(out), "--limit", "1"]).exit_code == 0
    )
    assert "no sample with index 7" in _one_line_error(["show", str(out), "--sample", "7"])
    trace = next((out / "traces").iterdir())
    trace.write_text("{not json\n" + trace.read_text(encoding="utf-8"), encoding="utf-8")
    assert "corrupt trace" in _one_line_error(["show", str(out), "--sample", "0"])
    assert CLI.invoke(app, ["report", str(out)]).exit_code == 0  # the page notes the bad trace
    assert "trace unreadable" in (out / "report.html").read_text(encoding="utf-8")
    (out / "results.jsonl").write_text('{"key": "a"}\nnot json\n{"key": "b"}\n', encoding="utf-8")
    assert "line 2 is corrupt" in _one_line_error(["report", str(out)])



@pytest.mark.parametrize(
    ("substrate", "task", "message"),
    [
        ("agentsnet", {"name": "graph", "params": {"source": "{bad}"}}, "not valid JSON"),
        ("agentsnet", {"name": "graph", "params": {"source": "{missing}"}}, "no such graph file"),
        ({"name": "agentsnet", "params": {"answers": "lenient"}}, {"name": "graph"}, "no parameter answers"),
        ({"name": "consensus-game", "params": {"memory": 99}}, {"name": "agree"}, "memory must be 1..15"),
    ],
)
def test_bad_graph_files_and_preset_options_exit_2(tmp_path: Path, substrate, task, message) -> None:
    bad = tmp_path / "graphs.json"
    bad.write_text("{not json", encoding="utf-8")
    text = yaml.safe_dump(config_dict(substrates=[substrate], tasks=[task]))
    path = tmp_path / "lab.yaml"
    path.write_text(text.replace("'{bad}'", str(bad)).replace("'{missing}'", str(tmp_path / "nope")), encoding="utf-8")
    err = _one_line_error(["run", str(path), "--out", str(tmp_path / "out")])
    assert message in err
    assert not (tmp_path / "out" / "results.jsonl").exists()
