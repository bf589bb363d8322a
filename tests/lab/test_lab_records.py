"""Versioned records: provenance on every line, validation on read and write, resume refused
over records that disagree with the running code (unless --allow-mixed), version-0 records."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab_fakes import Calls, config_dict, fake_factories
from rich.console import Console
from typer.testing import CliRunner

import hivethink.lab.records as records
import hivethink.lab.runner as runner
from hivethink import prompts
from hivethink.cli.lab import app
from hivethink.errors import HivethinkError
from hivethink.lab import (
    SCHEMA_VERSION,
    ResultRecord,
    parse_config,
    read_records,
    read_results,
    run_lab,
)
from hivethink.lab.store import write_sample
from hivethink.report import build_report

QUIET = Console(quiet=True)
CLI = CliRunner()
PROVENANCE = ("schema_version", "hivethink", "commit", "prompts_digest")


@pytest.fixture(autouse=True)
def builtin_prompts() -> Any:
    """Every test starts and ends with the built-in prompt books."""
    prompts.use_directory(None)
    yield
    prompts.use_directory(None)


def _run(out: Path, factories: Any = None, **kw: Any):
    cfg = parse_config(config_dict(**kw.pop("config", {})))
    return run_lab(
        cfg, out, factories=factories or fake_factories(), console=QUIET, progress=False, **kw
    )


def _rewrite(out: Path, change: Any) -> None:
    """Rewrite every results line through ``change(record) -> record``."""
    lines = [change(r) for r in read_results(out)]
    (out / "results.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8"
    )


def _one_line_error(args: list[str]) -> str:
    result = CLI.invoke(app, args)
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in result.output
    return err


def test_every_record_says_which_code_and_prompts_made_it(tmp_path: Path) -> None:
    _run(tmp_path, limit=3)
    version, commit = records.code_version()
    assert re.fullmatch(r"\d+\.\d+.*", version)
    package = Path(records.__file__).parents[1]
    head = subprocess.run(["git", "-C", str(package), "rev-parse", "HEAD"], capture_output=True,
                          text=True)
    if head.returncode == 0:  # tests run from a checkout: its commit (-dirty for local edits)
        assert commit is not None and re.fullmatch(head.stdout.strip() + "(-dirty)?", commit)
    else:
        assert commit is None
    empty = prompts.digest([])  # the fake substrate declares no prompt books
    for raw in read_results(tmp_path):
        assert {k: raw[k] for k in PROVENANCE} == {
            "schema_version": SCHEMA_VERSION,
            "hivethink": version,
            "commit": commit,
            "prompts_digest": empty,
        }
        assert raw["mixed"] == [] and raw["budget"] is None
    typed = read_records(tmp_path)
    assert [r.key for r in typed] == [r["key"] for r in read_results(tmp_path)]
    assert typed[0].workers == 2 and typed[0].metrics["agreement"] == 1.0


def test_a_record_that_would_not_read_back_is_never_written(tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    with pytest.raises(HivethinkError, match=r"sample k: results record does not validate: index"):
        # Built unvalidated, as a hook's assignment of a wrong type would leave it.
        write_sample(tmp_path, ResultRecord.model_construct(key="k", index="first"), [])
    assert not (tmp_path / "results.jsonl").exists()


def test_version_0_records_are_read_and_resumed_only_with_allow_mixed(tmp_path: Path) -> None:
    """Lines written before records had a schema (no provenance fields) still make a report; a
    resume over them is refused (their prompts cannot be checked) unless allowed."""
    _run(tmp_path, limit=4)
    _rewrite(tmp_path, lambda r: {k: v for k, v in r.items() if k not in (*PROVENANCE, "mixed", "budget")})
    old = read_records(tmp_path)
    assert {r.schema_version for r in old} == {0} and old[0].prompts_digest is None
    build_report(tmp_path)
    assert "4 samples" in (tmp_path / "report.html").read_text(encoding="utf-8")
    with pytest.raises(HivethinkError) as info:
        _run(tmp_path)
    message = str(info.value)
    assert "\n" not in message and f"schema 0 in 4 record(s), now {SCHEMA_VERSION}" in message
    assert "--allow-mixed" in message
    assert len(read_results(tmp_path)) == 4  # nothing was added
    summary = _run(tmp_path, allow_mixed=True)
    assert (summary.skipped, summary.ran) == (4, 12)
    new = [r for r in read_records(tmp_path) if r.schema_version == SCHEMA_VERSION]
    assert len(new) == 12 and all(r.mixed == [f"schema 0 in 4 record(s), now {SCHEMA_VERSION}"] for r in new)


def test_a_newer_schema_is_one_error_line_for_report_and_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "default_factories", fake_factories)
    config = tmp_path / "lab.yaml"
    config.write_text(yaml.safe_dump(config_dict()), encoding="utf-8")
    out = tmp_path / "out"
    assert CLI.invoke(app, ["run", str(config), "--out", str(out), "--limit", "2"]).exit_code == 0
    _rewrite(out, lambda r: {**r, "schema_version": SCHEMA_VERSION + 1})
    for args in (["report", str(out)], ["run", str(config), "--out", str(out)],
                 ["show", str(out), "--sample", "0"]):
        err = _one_line_error(args)
        assert f"record schema {SCHEMA_VERSION + 1}; this one reads schemas up to {SCHEMA_VERSION}" in err
    _rewrite(out, lambda r: {**r, "schema_version": SCHEMA_VERSION, "workers": "many"})
    assert "record 1: not a valid results record: workers" in _one_line_error(["report", str(out)])


def _book(root: Path, text: str) -> Path:
    (root / "lab-fake").mkdir(parents=True, exist_ok=True)
    (root / "lab-fake" / "ask.txt").write_text(text, encoding="utf-8")
    return root


def test_resuming_with_a_changed_prompt_file_is_refused_unless_allow_mixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls()
    monkeypatch.setattr(runner, "default_factories", lambda: fake_factories(calls))
    config = tmp_path / "lab.yaml"
    config.write_text(yaml.safe_dump(config_dict(substrates=["prompted"])), encoding="utf-8")
    books = _book(tmp_path / "books", "Please: {{prompt}}\n")
    out = tmp_path / "out"
    run = ["run", str(config), "--out", str(out), "--prompts", str(books)]
    result = CLI.invoke(app, [*run, "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert prompts.active_directory() is None  # the run's books are not left behind
    first = read_records(out)
    digest = first[0].prompts_digest
    assert {r.prompts_digest for r in first} == {digest} and digest != prompts.digest([])
    assert all(
        req.messages[-1]["content"].startswith("Please: ") for req in calls.built[0].requests
    )

    _book(books, "Answer tersely: {{prompt}}\n")  # the prompt file changes between runs
    built = len(calls.built)
    err = _one_line_error(run)
    assert f"substrate 'prompted' prompts {digest} in 3 record(s), now " in err
    assert "--allow-mixed" in err and len(calls.built) == built  # refused before any model loads
    assert len(read_results(out)) == 3

    result = CLI.invoke(app, [*run, "--allow-mixed"])
    assert result.exit_code == 0, result.output
    assert "5 ran (0 failed), 3 already done" in result.stderr
    assert "disagree with this code (--allow-mixed)" in result.stderr
    after = read_records(out)
    new = after[3:]
    assert len({r.key for r in after}) == 8 and len(new) == 5
    prompts.use_directory(books)
    assert {r.prompts_digest for r in new} == {prompts.digest(["lab-fake"])} != {digest}
    assert all(len(r.mixed) == 1 and f"prompts {digest} in 3 record(s)" in r.mixed[0] for r in new)
    assert calls.built[-1].requests[0].messages[-1]["content"].startswith("Answer tersely: ")


def test_a_prompts_key_in_the_config_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "default_factories", fake_factories)
    _book(tmp_path / "conf" / "books", "Q: {{prompt}}")
    config = tmp_path / "conf" / "lab.yaml"
    config.write_text(yaml.safe_dump(config_dict(substrates=["prompted"], prompts="books")))
    monkeypatch.chdir(tmp_path)
    result = CLI.invoke(app, ["run", str(config), "--out", "out", "--limit", "1"])
    assert result.exit_code == 0, result.output
    prompts.use_directory(tmp_path / "conf" / "books")
    assert read_records(tmp_path / "out")[0].prompts_digest == prompts.digest(["lab-fake"])


def test_bad_prompt_directories_are_one_line_before_any_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls()
    monkeypatch.setattr(runner, "default_factories", lambda: fake_factories(calls))
    config = tmp_path / "lab.yaml"
    config.write_text(yaml.safe_dump(config_dict(substrates=["prompted"])), encoding="utf-8")
    out = tmp_path / "out"
    err = _one_line_error(["run", str(config), "--out", str(out), "--prompts", str(tmp_path / "no")])
    assert "no such prompts directory" in err
    _book(tmp_path / "bad", "{{prompt}} and {{secret}}")
    err = _one_line_error(["run", str(config), "--out", str(out), "--prompts", str(tmp_path / "bad")])
    assert "unknown placeholder(s) {{secret}}" in err
    (tmp_path / "odd" / "nobook").mkdir(parents=True)
    err = _one_line_error(["run", str(config), "--out", str(out), "--prompts", str(tmp_path / "odd")])
    assert "no prompt book is called 'nobook'" in err
    assert calls.built == [] and not out.exists()


def test_another_hivethink_version_or_commit_is_a_note_not_a_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "code_version", lambda: ("0.0.9", "abc"))
    _run(tmp_path, limit=2)
    monkeypatch.setattr(records, "code_version", lambda: ("0.1.0", None))
    console = Console(record=True, width=300)
    cfg = parse_config(config_dict())
    summary = run_lab(cfg, tmp_path, factories=fake_factories(), console=console, progress=False)
    assert (summary.skipped, summary.ran) == (2, 14)
    text = console.export_text()
    assert "note: 2 finished sample(s) were made by hivethink 0.0.9 (commit abc); this is " \
           "hivethink 0.1.0 (commit none)" in text
    makers = {(r.hivethink, r.commit) for r in read_records(tmp_path)}
    assert makers == {("0.0.9", "abc"), ("0.1.0", None)}
    assert all(r.mixed == [] for r in read_records(tmp_path))


def test_records_of_samples_outside_the_grid_are_not_compared(tmp_path: Path) -> None:
    """A record the run does not resume (its sample left the grid) does not block it."""
    _run(tmp_path, limit=2, config={"seeds": [7]})
    _rewrite(tmp_path, lambda r: {**r, "prompts_digest": "0" * 16})
    assert _run(tmp_path).ran == 16


def _imported(root: Path, text: str) -> Path:
    """A prompts directory as ``hivethink prompts import`` leaves it: the lab-fake book and a
    SOURCE.json naming the (fictional) authors' repository and commit behind its text."""
    from hivethink.prompts import source

    _book(root, text)
    entry = source.Import(
        system="fake", repository="authors/fake", kind="git", source="/checkout", commit="c0ffee" * 7,
        pinned="c0ffee" * 7, at_pin=True, hivethink="test", imported_at="2026-01-01T00:00:00+00:00",
        texts={"lab-fake/ask": source.TextSource(origin="published", sha256=source.sha256(text.rstrip("\n")),
                                                 file="prompts.py", object="ASK", how="constant")})
    (root / source.MANIFEST).write_text(source.Manifest(imports=[entry]).model_dump_json(), encoding="utf-8")
    return root


def test_records_of_a_run_with_imported_texts_name_them_and_the_report_marks_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls()
    monkeypatch.setattr(runner, "default_factories", lambda: fake_factories(calls))
    config = tmp_path / "lab.yaml"
    config.write_text(yaml.safe_dump(config_dict(substrates=["prompted", "fake"])), encoding="utf-8")
    books = _imported(tmp_path / "published", "Authors say: {{prompt}}\n")
    out = tmp_path / "out"
    run = ["run", str(config), "--out", str(out), "--prompts", str(books)]
    result = CLI.invoke(app, run)
    assert result.exit_code == 0, result.output
    manifest = prompts.source.read(books)
    assert manifest is not None
    by_substrate = {r.substrate: r.published_texts for r in read_records(out)}
    assert by_substrate == {
        "prompted": {"manifest": manifest[1], "sources": {"lab-fake": "authors/fake@c0ffeec0ffee"}},
        "fake": None,  # its substrate uses no imported book
    }
    build_report(out)
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "| prompted (published texts, authors/fake@c0ffeec0ffee) |" in summary
    assert "| fake |" in summary

    (books / "lab-fake" / "ask.txt").write_text("My own words: {{prompt}}\n", encoding="utf-8")
    before = (out / "results.jsonl").read_bytes()
    built = len(calls.built)
    err = _one_line_error(run)
    assert "ask.txt: changed since it was imported from authors/fake@c0ffeec0ffee" in err
    assert (out / "results.jsonl").read_bytes() == before and len(calls.built) == built
