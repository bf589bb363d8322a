r"""Problem files: JSONL, JSON, Parquet or CSV, any field names, the common answer styles.

A file is read by its extension (``.jsonl``/``.ndjson``, ``.json``, ``.parquet``/``.pq``,
``.csv``, ``.tsv``). ``.json`` holds a list of objects, or an object with one list of objects
(``{"data": [...]}``). The fields that hold the question, the answer and an optional id are
named by a mapping (``{"question": "problem", "answer": "solution", "id": "unique_id"}``); a
field left out is the first of ``QUESTION_FIELDS``/``ANSWER_FIELDS``/``ID_FIELDS`` the file has
(exact name first, then in any case), so GSM8K, MATH-500, LIMO and AIME files need no mapping.

Answer styles (``answer_format``): ``gsm8k`` (a worked solution ending ``#### 42``), ``boxed``
(a worked solution with a final ``\boxed{...}``, MATH-style), ``plain`` (the value itself), or
``auto``: per row, ``####`` means gsm8k, else ``\boxed`` means boxed, else plain, where a
multi-line or long plain text is refused (a worked solution with no final answer to score).

A file that cannot be read as rows (bad JSON, a row that is no object, a CSV row with the wrong
number of fields) is one :class:`HivethinkError` naming the line (the row, for JSON and Parquet).
A row whose question or answer is unusable is an *issue*: :func:`load_problems` refuses the file
at the first one, :func:`check_file` lists them all (``hivethink data check``).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hivethink.answers import boxed
from hivethink.errors import HivethinkError

FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
    ".pq": "parquet", ".csv": "csv", ".tsv": "tsv",
}  # fmt: skip
ANSWER_FORMATS = ("auto", "gsm8k", "boxed", "plain")
QUESTION_FIELDS = ("question", "problem", "prompt", "input", "query")
ANSWER_FIELDS = ("answer", "final_answer", "expected_answer", "target", "solution")
ID_FIELDS = ("id", "unique_id", "problem_id", "idx", "uid")
ROLES = ("question", "answer", "id")
# A plain answer longer than this, or on several lines, is a worked solution, not a value.
MAX_PLAIN_CHARS = 200


@dataclass(frozen=True)
class Row:
    """One record of a file: its 1-based number among the records, how errors name it."""

    number: int
    where: str  # "line 12" (JSONL, CSV) or "row 12" (JSON, Parquet)
    values: dict[str, Any]


@dataclass(frozen=True)
class Fields:
    """The file's field for each role (``id`` may be absent)."""

    question: str
    answer: str
    id: str | None


@dataclass(frozen=True)
class Problem:
    """One usable row: the question, the final answer as text, and where it came from."""

    question: str
    answer: str
    id: str | None
    number: int
    where: str
    style: str  # how the answer was read: gsm8k, boxed or plain
    reference: str = ""  # the answer field as written (a worked solution, for published scorers)


@dataclass(frozen=True)
class Issue:
    """A row that cannot be used, and why."""

    where: str
    reason: str


@dataclass
class Scan:
    """Everything read from one file: what ``data check`` reports and what a task loads."""

    path: Path
    format: str
    columns: list[str]
    fields: Fields
    rows: int
    problems: list[Problem] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def styles(self) -> Counter[str]:
        return Counter(p.style for p in self.problems)

    @property
    def duplicate_ids(self) -> list[str]:
        counts = Counter(p.id for p in self.problems if p.id is not None)
        return sorted(i for i, n in counts.items() if n > 1)


# --- reading rows ------------------------------------------------------------------------------


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise HivethinkError(
            f"{path}: unknown data format {path.suffix or '(no extension)'!r} "
            f"(use {', '.join(FORMATS)})"
        )
    return fmt


def _object(value: Any, where: str, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise HivethinkError(f"{path} {where}: not an object but {type(value).__name__}")
    return value


def _jsonl(path: Path) -> Iterator[Row]:
    with open(path, encoding="utf-8") as f:
        number = 0
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except (ValueError, RecursionError) as e:
                raise HivethinkError(f"{path} line {n}: not JSON ({_reason(e)})") from None
            number += 1
            yield Row(number, f"line {n}", _object(value, f"line {n}", path))


def _json(path: Path) -> Iterator[Row]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise HivethinkError(f"{path} line {e.lineno}: not JSON ({e.msg})") from None
    except RecursionError:
        raise HivethinkError(f"{path}: not JSON (nested too deeply)") from None
    if isinstance(data, dict):  # {"data": [...]}: the one list of objects in it
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise HivethinkError(
                f"{path}: expected a list of objects, or an object holding one such list"
            )
        data = lists[0]
    if not isinstance(data, list):
        raise HivethinkError(f"{path}: expected a list of objects, got {type(data).__name__}")
    for i, value in enumerate(data, 1):
        yield Row(i, f"row {i}", _object(value, f"row {i}", path))


def _parquet(path: Path) -> Iterator[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise HivethinkError(f"{path}: not a readable Parquet file ({_reason(e)})") from None
    for i, values in enumerate(table.to_pylist(), 1):
        yield Row(i, f"row {i}", values)


def _csv(path: Path, delimiter: str) -> Iterator[Row]:
    # utf-8-sig: spreadsheet exports often start with a byte-order mark
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None:
                return
            number = 0
            start = reader.line_num + 1  # a quoted field may span lines: name the first one
            for values in reader:
                where, start = f"line {start}", reader.line_num + 1
                if not any(v.strip() for v in values):
                    continue
                if len(values) != len(header):
                    raise HivethinkError(
                        f"{path} {where}: {len(values)} fields, the header has {len(header)}"
                    )
                number += 1
                yield Row(number, where, dict(zip(header, values, strict=True)))
        except csv.Error as e:
            raise HivethinkError(f"{path} line {reader.line_num}: not CSV ({e})") from None


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def read_rows(path: str | Path, limit: int | None = None) -> tuple[str, list[Row]]:
    """(format, the first ``limit`` rows of the file)."""
    p = Path(path)
    if not p.is_file():
        raise HivethinkError(f"{p}: no such file")
    fmt = file_format(p)
    readers = {
        "jsonl": lambda: _jsonl(p), "json": lambda: _json(p), "parquet": lambda: _parquet(p),
        "csv": lambda: _csv(p, ","), "tsv": lambda: _csv(p, "\t"),
    }  # fmt: skip
    rows: list[Row] = []
    try:
        for row in readers[fmt]():
            if limit is not None and len(rows) >= limit:
                break
            rows.append(row)
    except UnicodeDecodeError as e:
        raise HivethinkError(f"{p}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise HivethinkError(f"{p}: cannot read ({e.strerror or _reason(e)})") from None
    return fmt, rows


def row_text(values: dict[str, Any], name: str, where: str, path: str | Path, *, needs: str,
             numbers: bool = False, empty: bool = False) -> str:
    """Field ``name`` of a row as a text: a missing field, or one that is not a (non-empty, unless
    ``empty``) text, is one HivethinkError naming the file, the row and ``needs`` (what a row of
    the task holds). ``numbers``: an integer is taken as its text (ids)."""
    if name not in values:
        raise HivethinkError(f"{path} {where}: no field {name!r} ({needs})")
    value = values[name]
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise HivethinkError(f"{path} {where}: field {name!r} must be a non-empty text")
    return value


# --- fields and answers ------------------------------------------------------------------------


def _pick(
    columns: list[str], mapping: dict[str, str], role: str, known: tuple[str, ...]
) -> str | None:
    """The field of ``role``: as mapped (it must exist), else the first known name the file has
    (exact spelling first, then in any case)."""
    if role in mapping:
        name = mapping[role]
        if not isinstance(name, str) or name not in columns:
            raise KeyError(name)
        return name
    lower = {c.lower(): c for c in reversed(columns)}  # the first spelling wins
    exact = next((k for k in known if k in columns), None)
    return exact or next((lower[k] for k in known if k in lower), None)


def resolve_fields(path: Path, columns: list[str], mapping: dict[str, str] | None) -> Fields:
    """The field for each role, from the mapping or found by name (see the module)."""
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(ROLES))
    if unknown:
        raise HivethinkError(
            f"field mapping: unknown role {unknown[0]!r} (roles: {', '.join(ROLES)})"
        )
    have = ", ".join(columns) or "none"
    found: dict[str, str | None] = {}
    for role, known in (
        ("question", QUESTION_FIELDS),
        ("answer", ANSWER_FIELDS),
        ("id", ID_FIELDS),
    ):
        try:
            found[role] = _pick(columns, mapping, role, known)
        except KeyError as e:
            raise HivethinkError(
                f"{path}: no field {e.args[0]!r} for the {role} (fields: {have})"
            ) from None
    question, answer = found["question"], found["answer"]
    if question is None or answer is None:
        role = "question" if question is None else "answer"
        raise HivethinkError(
            f"{path}: no {role} field found (fields: {have}); name it in the field mapping "
            f"({role}: FIELD)"
        )
    return Fields(question=question, answer=answer, id=found["id"])


class AnswerError(ValueError):
    """No final answer can be read from a row's answer field (the message says why)."""


_THOUSANDS = re.compile(r"-?\d{1,3}(,\d{3})+(\.\d+)?")


def read_answer(value: Any, answer_format: str = "auto") -> tuple[str, str]:
    r"""(the final answer, the style it was read in) of one answer field.

    ``gsm8k``: the text after the last ``####`` (thousands separators dropped); ``boxed``: the
    content of the last balanced ``\boxed{}``; ``plain``: the value; ``auto``: see the module.
    """
    if answer_format not in ANSWER_FORMATS:
        raise HivethinkError(
            f"unknown answer format {answer_format!r} (choose {', '.join(ANSWER_FORMATS)})"
        )
    if value is None or isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise AnswerError(f"answer is {type(value).__name__}, not text or a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise AnswerError(f"answer is {value}")
    text = str(value).strip()
    if not text:
        raise AnswerError("answer is empty")
    style = answer_format
    if style == "auto":
        style = "gsm8k" if "####" in text else "boxed" if "\\boxed" in text else "plain"
        if style == "plain" and ("\n" in text or len(text) > MAX_PLAIN_CHARS):
            raise AnswerError(
                "answer looks like a worked solution with no final answer ('#### ' line or "
                "\\boxed{}); map the answer to a field holding the value, or set answer_format"
            )
    if style == "gsm8k":
        if "####" not in text:
            raise AnswerError("answer has no '#### ' line")
        lines = text.rsplit("####", 1)[1].strip().splitlines()
        final = lines[0].strip().strip("$").strip().rstrip(".") if lines else ""
        if _THOUSANDS.fullmatch(final):
            final = final.replace(",", "")
        if not final:
            raise AnswerError("nothing after '####'")
        return final, style
    if style == "boxed":
        content = boxed(text)
        if not content:
            raise AnswerError("answer has no \\boxed{} with balanced braces")
        return content, style
    return text, style


def read_problem(row: Row, fields: Fields, answer_format: str) -> Problem | Issue:
    """One row as a :class:`Problem`, or the :class:`Issue` that makes it unusable."""
    values = row.values
    for name in (fields.question, fields.answer):
        if name not in values:
            return Issue(row.where, f"no field {name!r}")
    question = values[fields.question]
    if not isinstance(question, str) or not question.strip():
        return Issue(row.where, f"question ({fields.question!r}) is not a non-empty text")
    try:
        answer, style = read_answer(values[fields.answer], answer_format)
    except AnswerError as e:
        return Issue(row.where, f"{e} ({fields.answer!r})")
    raw_id = values.get(fields.id) if fields.id is not None else None
    return Problem(
        question=question.strip(), answer=answer, id=None if raw_id is None else str(raw_id),
        number=row.number, where=row.where, style=style, reference=str(values[fields.answer]),
    )  # fmt: skip


# --- whole files -------------------------------------------------------------------------------


def check_file(
    path: str | Path,
    fields: dict[str, str] | None = None,
    answer_format: str = "auto",
    limit: int | None = None,
) -> Scan:
    """Read the first ``limit`` rows of a file and sort them into problems and issues."""
    if answer_format not in ANSWER_FORMATS:
        raise HivethinkError(
            f"unknown answer format {answer_format!r} (choose {', '.join(ANSWER_FORMATS)})"
        )
    if limit is not None and limit < 1:
        raise HivethinkError(f"limit must be at least 1, got {limit}")
    p = Path(path)
    fmt, rows = read_rows(p, limit)
    if not rows:
        raise HivethinkError(f"{p}: no rows in the file")
    # every reader gives each row all the fields of the file (CSV header, Parquet schema) in
    # order, except JSON, whose first row stands for the file
    columns = list(rows[0].values)
    scan = Scan(
        path=p,
        format=fmt,
        columns=columns,
        fields=resolve_fields(p, columns, fields),
        rows=len(rows),
    )
    for row in rows:
        item = read_problem(row, scan.fields, answer_format)
        if isinstance(item, Issue):
            scan.issues.append(item)
        else:
            scan.problems.append(item)
    return scan


def load_problems(
    path: str | Path,
    fields: dict[str, str] | None = None,
    answer_format: str = "auto",
    limit: int | None = None,
) -> list[Problem]:
    """Every problem of the first ``limit`` rows; an unusable row is a one-line error."""
    scan = check_file(path, fields, answer_format, limit)
    if scan.issues:
        first = scan.issues[0]
        more = f" ({len(scan.issues) - 1} more such rows)" if len(scan.issues) > 1 else ""
        raise HivethinkError(
            f"{scan.path} {first.where}: {first.reason}{more}; "
            f"'hivethink data check {scan.path}' lists them"
        )
    return scan.problems
