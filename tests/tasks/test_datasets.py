"""Problem files: every format and answer style on small fixture files (tests/tasks/data), broken
files as one-line errors naming the line, and the math task reading them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hivethink.errors import HivethinkError
from hivethink.tasks import get_task
from hivethink.tasks.datasets import AnswerError, check_file, load_problems, read_answer

DATA = Path(__file__).parent / "data"


def test_gsm8k_answers_are_read_after_the_hashes():
    problems = load_problems(DATA / "gsm8k.jsonl")
    assert [p.answer for p in problems] == ["72", "1072000", "-7"]
    assert {p.style for p in problems} == {"gsm8k"}
    assert [p.where for p in problems] == ["line 1", "line 2", "line 4"]  # blank line 3 skipped
    assert problems[0].question.startswith("Natalia sold clips")


def test_math500_fields_found_by_name_and_the_answer_field_preferred():
    scan = check_file(DATA / "math500.jsonl")
    assert (scan.fields.question, scan.fields.answer, scan.fields.id) == (
        "problem", "answer", "unique_id",
    )  # fmt: skip
    assert [p.answer for p in scan.problems] == [
        "\\left( 3, \\frac{\\pi}{2} \\right)", "\\frac{3}{4}",
    ]  # fmt: skip
    assert scan.problems[0].id == "test/precalculus/807.json"
    assert not scan.issues


def test_boxed_solutions_when_the_answer_is_mapped_to_them():
    problems = load_problems(DATA / "math500.jsonl", fields={"answer": "solution"})
    assert [(p.answer, p.style) for p in problems] == [
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "boxed"), ("\\frac{3}{4}", "boxed"),
    ]  # fmt: skip


def test_json_list_with_number_answers():
    problems = load_problems(DATA / "limo.json")
    assert [(p.answer, p.style, p.where) for p in problems] == [
        ("109", "plain", "row 1"), ("6", "plain", "row 2"),
    ]  # fmt: skip


def test_json_object_holding_the_list(tmp_path):
    path = tmp_path / "wrapped.json"
    path.write_text('{"version": 2, "data": [{"question": "q", "answer": "7"}]}')
    assert [p.answer for p in load_problems(path)] == ["7"]


def test_csv_with_capitalised_fields_and_a_multiline_question():
    scan = check_file(DATA / "aime.csv")
    assert (scan.fields.question, scan.fields.answer, scan.fields.id) == ("Problem", "Answer", "ID")
    first, second = scan.problems
    assert first.question.endswith("How many minutes does the walk take?") and "\n" in first.question
    assert (first.answer, first.id) == ("204", "2024-I-1")
    assert second.where == "line 4"  # the quoted question spans lines 2 and 3


def test_tsv():
    [problem] = load_problems(DATA / "tiny.tsv")
    assert (problem.question, problem.answer, problem.id) == ("What is 6 times 7?", "42", "q1")


def test_parquet(tmp_path):
    path = tmp_path / "aime.parquet"
    table = pa.table({"ID": ["a", "b"], "Problem": ["Find x.", "Find y."], "Answer": [17, 204]})
    pq.write_table(table, path)
    problems = load_problems(path)
    assert [(p.question, p.answer, p.id, p.where) for p in problems] == [
        ("Find x.", "17", "a", "row 1"), ("Find y.", "204", "b", "row 2"),
    ]  # fmt: skip


def test_explicit_mapping_and_a_missing_mapped_field():
    problems = load_problems(DATA / "limo.json", fields={"question": "question", "answer": "solution"})
    assert [p.answer for p in problems] == ["109", "6"]  # read from the boxed solutions
    with pytest.raises(HivethinkError, match="no field 'statement' for the question"):
        load_problems(DATA / "limo.json", fields={"question": "statement"})
    with pytest.raises(HivethinkError, match="unknown role 'hint'"):
        load_problems(DATA / "limo.json", fields={"hint": "solution"})


def test_limit_reads_only_the_first_rows():
    assert [p.answer for p in load_problems(DATA / "gsm8k.jsonl", limit=2)] == ["72", "1072000"]


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("Work.\n#### 1,234", "auto", ("1234", "gsm8k")),
        ("#### $5.", "gsm8k", ("5", "gsm8k")),
        ("so $\\boxed{\\frac{1}{2}}$ and \\boxed{2^{10}}", "auto", ("2^{10}", "boxed")),
        (" 42 ", "auto", ("42", "plain")),
        (3.5, "plain", ("3.5", "plain")),
        ("\\boxed{1}", "plain", ("\\boxed{1}", "plain")),  # plain means as written
    ],
)
def test_answer_styles(value, fmt, expected):
    assert read_answer(value, fmt) == expected


@pytest.mark.parametrize(
    ("value", "fmt", "reason"),
    [
        ("The sum is 5.", "gsm8k", "no '#### ' line"),
        ("#### ", "gsm8k", "nothing after"),
        ("The sum is 5.", "boxed", "no \\\\boxed"),
        ("\\boxed{5", "boxed", "no \\\\boxed"),
        ("We add.\nThe sum is five.", "auto", "worked solution"),
        ("x" * 300, "auto", "worked solution"),
        (None, "auto", "NoneType"),
        (True, "auto", "bool"),
        ([1], "auto", "list"),
        (float("nan"), "auto", "nan"),
        ("  ", "plain", "empty"),
    ],
)
def test_unparsable_answers(value, fmt, reason):
    with pytest.raises(AnswerError, match=reason):
        read_answer(value, fmt)


def test_check_lists_every_unusable_row_and_load_refuses_at_the_first():
    scan = check_file(DATA / "solutions_only.jsonl")
    assert scan.rows == 5 and [p.answer for p in scan.problems] == ["6"]
    assert [(i.where, i.reason.split(" (")[0]) for i in scan.issues] == [
        ("line 1", "answer looks like a worked solution with no final answer"),
        ("line 3", "answer is NoneType, not text or a number"),
        ("line 4", "question"),
        ("line 5", "answer is list, not text or a number"),
    ]
    with pytest.raises(HivethinkError, match=r"line 1: answer looks like .* \(3 more such rows\)") as err:
        load_problems(DATA / "solutions_only.jsonl")
    assert "\n" not in str(err.value) and "hivethink data check" in str(err.value)


def test_duplicate_ids_are_reported(tmp_path):
    path = tmp_path / "dups.jsonl"
    path.write_text("".join(f'{{"id": "{i}", "question": "q", "answer": 1}}\n' for i in "abacb"))
    assert check_file(path).duplicate_ids == ["a", "b"]
    assert check_file(DATA / "math500.jsonl").duplicate_ids == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken.jsonl", "broken.jsonl line 3: not JSON"),
        ("not_an_object.jsonl", "not_an_object.jsonl line 2: not an object but list"),
        ("wrong_fields.csv", "wrong_fields.csv line 4: 3 fields, the header has 2"),
        ("broken.json", "broken.json line 4: not JSON"),
        ("broken.parquet", "broken.parquet: not a readable Parquet file"),
    ],
)
def test_a_malformed_file_is_one_line_naming_the_line(name, message):
    with pytest.raises(HivethinkError, match=message) as err:
        load_problems(DATA / name)
    assert "\n" not in str(err.value)


def test_files_that_cannot_be_used(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    (tmp_path / "p.txt").write_text("What is 1+1?")
    (tmp_path / "latin1.csv").write_bytes("question,answer\nCaf\xe9?,1\n".encode("latin-1"))
    (tmp_path / "scalar.json").write_text("42")
    (tmp_path / "nofields.jsonl").write_text('{"text": "q", "label": 1}\n')
    cases = {
        "missing.jsonl": "no such file",
        "empty.jsonl": "no rows",
        "p.txt": "unknown data format '.txt'",
        "latin1.csv": "not UTF-8",
        "scalar.json": "expected a list of objects",
        "nofields.jsonl": r"no question field found \(fields: text, label\)",
    }
    for name, message in cases.items():
        with pytest.raises(HivethinkError, match=message):
            load_problems(tmp_path / name)


def test_the_math_task_reads_any_format_with_its_parameters():
    task = get_task("math", source=str(DATA / "aime.csv"), shuffle=False)
    first, second = task.generate(5, 0)
    assert (first.target, second.target) == ("204", "25")
    assert first.data["source_id"] == "2024-I-1" and first.data["where"] == "line 2"
    assert task.score(first, "204") == 1.0 and task.score(first, "25") == 0.0
    assert "\\boxed{}" in first.prompt
    boxed = get_task("math", source=str(DATA / "math500.jsonl"), fields={"answer": "solution"},
                     answer_format="boxed", shuffle=False)
    assert boxed.score(boxed.generate(1, 0)[0], "(3, \\pi/2)") == 1.0  # math-verify's equality
    limited = get_task("math", source=str(DATA / "gsm8k.jsonl"), limit=1)
    assert [i.target for i in limited.generate(5, 0)] == ["72"]


def test_shuffle_follows_the_seed():
    task = get_task("math", source=str(DATA / "gsm8k.jsonl"))
    orders = {tuple(i.target for i in task.generate(3, seed)) for seed in range(8)}
    assert len(orders) > 1  # the seed picks the order
    assert all(sorted(o) == sorted(("72", "1072000", "-7")) for o in orders)
    assert [i.target for i in task.generate(3, 5)] == [i.target for i in task.generate(3, 5)]


def test_bad_task_parameters():
    with pytest.raises(HivethinkError, match="unknown answer format 'latex'"):
        get_task("math", source=str(DATA / "gsm8k.jsonl"), answer_format="latex")
    with pytest.raises(HivethinkError, match="fields must map roles"):
        get_task("math", source=str(DATA / "gsm8k.jsonl"), fields={"question": 3})
    with pytest.raises(HivethinkError, match="apply to a source file"):
        get_task("math", limit=3)
    with pytest.raises(HivethinkError, match="limit must be at least 1"):
        get_task("math", source=str(DATA / "gsm8k.jsonl"), limit=0)
