"""The durable run directory.

``OUT/results.jsonl`` holds one JSON line per finished sample, appended and fsynced one at a
time; ``OUT/traces/<key>.jsonl`` holds its trace, written (and fsynced) before its line, so every
line points at a complete trace. A line cut short by a kill is dropped on the next run and its
sample runs again. ``OUT/summary.parquet`` is a flat table of all lines, rewritten at the end.

:func:`read_results` gives the lines as they are (the crash-safety layer); :func:`read_records`
validates them as :class:`hivethink.lab.records.ResultRecord` (the typed, versioned layer), and
:func:`write_sample` writes only records that validate.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hivethink.errors import HivethinkError
from hivethink.lab.grid import canonical_json
from hivethink.lab.records import ResultRecord, checked, parse_record
from hivethink.trace import Event, read_jsonl, write_jsonl

RESULTS = "results.jsonl"
TRACES = "traces"
SUMMARY = "summary.parquet"
CONFIG = "config.json"
LOCK = ".lock"


def trace_path(run_dir: Path, key: str) -> Path:
    return run_dir / TRACES / f"{key}.jsonl"


def _scan(data: bytes, source: Path) -> tuple[list[dict[str, Any]], int]:
    """Parse complete lines; return the records and the byte length of the valid prefix.

    Bytes after the last newline are a torn line; so is an unparseable last complete line (a
    partial write later followed by a newline). An unparseable line before that is corruption.
    """
    records: list[dict[str, Any]] = []
    good = 0
    lines = data.split(b"\n")[:-1]  # the piece after the last newline is incomplete (or empty)
    for i, raw in enumerate(lines):
        end = good + len(raw) + 1
        if raw.strip():
            try:
                record = json.loads(raw)
                if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                    raise ValueError("not a results record")
            except (ValueError, RecursionError):  # bad JSON or bytes, not a record, deep nesting
                if i == len(lines) - 1:
                    break
                raise HivethinkError(
                    f"{source}: line {i + 1} is corrupt (not a results record)"
                ) from None
            records.append(record)
        good = end
    return records, good


def read_results(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every complete results line of a run directory (a torn tail is ignored, not removed)."""
    path = Path(run_dir) / RESULTS
    if not path.exists():
        raise FileNotFoundError(f"{path}: no results (is this a run directory?)")
    return _scan(path.read_bytes(), path)[0]


def read_records(run_dir: str | Path) -> list[ResultRecord]:
    """Every complete results line, validated (a newer schema or a bad field: HivethinkError)."""
    path = Path(run_dir) / RESULTS
    return [
        parse_record(raw, f"{path}: record {i}") for i, raw in enumerate(read_results(run_dir), 1)
    ]


def repair_results(run_dir: Path) -> int:
    """Cut a torn last line off ``results.jsonl``; return how many bytes were dropped."""
    path = run_dir / RESULTS
    if not path.exists():
        return 0
    data = path.read_bytes()
    _, good = _scan(data, path)
    if good < len(data):
        with open(path, "r+b") as f:
            f.truncate(good)
            f.flush()
            os.fsync(f.fileno())
    return len(data) - good


def append_result(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one record as one line, then fsync. A short write is continued (a large line on a
    full disk, say); an error leaves at most a torn last line, which the next run drops."""
    line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    fd = os.open(run_dir / RESULTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        rest = memoryview(line)
        while rest:
            rest = rest[os.write(fd, rest) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_sample(run_dir: Path, record: ResultRecord, events: Iterable[Event]) -> None:
    """Make one finished sample durable: its trace (fsynced) first, then its results line
    (validated first: a record that would not read back is never written).

    The only writer of a run directory; local and Ray runs both go through it (on the driver).
    """
    line = checked(record)
    write_jsonl(trace_path(run_dir, line["key"]), events)
    append_result(run_dir, line)


def read_trace(run_dir: str | Path, record: dict[str, Any]) -> list[Event]:
    """The trace a results record points at (a corrupt line: HivethinkError; missing file:
    FileNotFoundError)."""
    path = Path(run_dir) / record["trace"]
    try:
        return list(read_jsonl(path))
    except ValueError as err:  # trace.TraceError: a bad line before the last one
        raise HivethinkError(f"corrupt trace: {err}") from None


_BASE_COLUMNS = (
    "key",
    "index",
    "model",
    "substrate",
    "task",
    "workers",
    "instance",
    "seed",
    "budget",
    "score",
    "answer",
    "error",
    "schema_version",
    "hivethink",
    "commit",
    "prompts_digest",
)


def summary_rows(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per record: identity columns, budget, then every metric as its own column."""
    rows = []
    for rec in records:
        row = {c: rec.get(c) for c in _BASE_COLUMNS}
        for name, value in (rec.get("cell", {}).get("budget") or {}).items():
            row[f"budget_{name}"] = value
        for name, value in (rec.get("metrics") or {}).items():
            row.setdefault(name, value)
        rows.append(row)
    return rows


def _column(values: list[Any]) -> pa.Array:
    present = [v for v in values if v is not None]
    if all(isinstance(v, (int, float)) for v in present):
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    return pa.array(
        [None if v is None else (v if isinstance(v, str) else canonical_json(v)) for v in values],
        type=pa.string(),
    )


def write_summary(run_dir: Path, records: list[dict[str, Any]]) -> Path:
    """Rewrite ``summary.parquet`` (atomically) from the results records."""
    rows = summary_rows(records)
    names: dict[str, None] = dict.fromkeys(_BASE_COLUMNS)
    for row in rows:
        names.update(dict.fromkeys(row))
    text_columns = {
        "key", "model", "substrate", "task", "instance", "answer", "error", "hivethink", "commit",
        "prompts_digest",
    }
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if name in text_columns:
            columns[name] = pa.array(
                [None if v is None else str(v) for v in values], type=pa.string()
            )
        else:
            columns[name] = _column(values)
    path = run_dir / SUMMARY
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(pa.table(columns), tmp)
    os.replace(tmp, path)
    return path
