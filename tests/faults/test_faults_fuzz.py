"""Fuzzing (hypothesis, bounded) the readers of traces and results and the answer extractors.

The contract of the line readers: a file of whole lines plus anything after the last good one
reads back the good lines, never raising for a torn tail; a bad line BEFORE the last one raises
one clear error (``trace.TraceError``, a ``ValueError``, naming the line; for ``results.jsonl``
a ``HivethinkError``). Extractors and scorers take any text: they never raise, and scores lie in
[0, 1].
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hivethink.answers import boxed
from hivethink.engine.text import step_ends, yes_no
from hivethink.errors import HivethinkError
from hivethink.lab.store import read_results, repair_results
from hivethink.metrics.mast import parse_mast_reply
from hivethink.substrates.agentsnet import parse_answer, parse_messages, parse_messages_lenient
from hivethink.substrates.blackboard import parse_entries
from hivethink.substrates.common import find_json
from hivethink.substrates.consensus_game import read_proposal, read_vote
from hivethink.substrates.coral import belief_of
from hivethink.substrates.debate import parse_arithmetic, parse_gsm
from hivethink.substrates.sequential import parse_role
from hivethink.tasks import TASKS, get_task
from hivethink.tasks.base import is_judged
from hivethink.tasks.graph import network
from hivethink.tasks.mission import parse_rating
from hivethink.trace import Event, TraceError, read_jsonl

FAST = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# text that looks like what models write: prose, boxes, JSON, markers, controls, deep nesting
PIECES = st.sampled_from(
    ["\\boxed{", "}", "{", "[", "]", '"', ":", ",", "\n", "\n\n", ".", "ANSWER:", "answer is",
     "```", "$$", "\\[", "\\]", "yes", "no", "stop", "continue", "value", "final_values",
     "Alice", "Bob", "colour 2", "12", "-3/4", "7.5", "\\frac{1}{2}", "x", " ", "\x00", "\x1b[31m",
     "\ufffd", "é", "NaN", "1e999", '{"value": 7}', '{"vote": "stop"}', "[" * 1200, '{"a":' * 1100]
)
TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(PIECES, max_size=25).map("".join),
    st.builds(lambda a, b, c: f"{a}\\boxed{{{b}}}{c}", st.text(max_size=40), st.text(max_size=40),
              st.text(max_size=40)),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["Alice", "Bob", "value", "final_values", "x"]) | st.text(max_size=8),
            inner,
            max_size=4,
        ),
        max_leaves=12,
    ).map(json.dumps),
)


def _with_file(data: bytes, check) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.jsonl"
        path.write_bytes(data)
        check(Path(d), path)


EVENTS = st.lists(
    st.builds(
        Event,
        kind=st.sampled_from(["token", "step", "message", "error", "answer"]),
        worker=st.text(max_size=10),
        text=st.text(max_size=60),
        step=st.none() | st.integers(0, 10**6),
        data=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=10), max_size=2),
    ),
    max_size=6,
)


@FAST
@given(EVENTS, st.binary(max_size=200).filter(lambda b: b"\n" not in b))
@example([Event(kind="step", worker="A", text="hi")], b'{"kind": "step", "wor')
@example([Event(kind="step", worker="A", text="hi")], b"[" * 100_000)
def test_read_jsonl_returns_the_whole_lines_and_skips_a_torn_tail(events, tail) -> None:
    body = "".join(e.model_dump_json(exclude_none=True) + "\n" for e in events).encode()

    def check(_: Path, path: Path) -> None:
        got = list(read_jsonl(path))
        assert got[: len(events)] == events
        assert len(got) <= len(events) + 1  # the tail can only be one more (whole) event

    _with_file(body + tail, check)
    _with_file(body + tail + b"\n", check)  # a torn line that got its newline is skipped too


@FAST
@given(EVENTS.filter(bool), st.binary(min_size=1, max_size=100).filter(lambda b: b"\n" not in b))
@example([Event(kind="step", worker="A")], b"{" * 100_000)
@example([Event(kind="step", worker="A"), Event(kind="step", worker="B")], b"\r{not json")
def test_read_jsonl_refuses_a_bad_line_before_the_last(events, junk) -> None:
    body = [e.model_dump_json(exclude_none=True).encode() + b"\n" for e in events]
    data = b"".join(body[:-1]) + junk + b"\n" + body[-1]

    def check(_: Path, path: Path) -> None:
        try:
            got = list(read_jsonl(path))
        except TraceError as err:
            assert f"line {len(events)} is not a trace event" in str(err)
            assert isinstance(err, ValueError)
        else:  # the junk happened to be blank or a valid event itself
            assert got[-1] == events[-1] and len(got) in (len(events), len(events) + 1)

    _with_file(data, check)


@FAST
@given(st.binary(max_size=400))
@example(b"\xff\xfe\n\x00")
@example(b"{}\n" + b"[" * 100_000 + b"\n{}\n")
def test_read_jsonl_on_arbitrary_bytes_raises_only_trace_error(data) -> None:
    def check(_: Path, path: Path) -> None:
        try:
            events = list(read_jsonl(path))
        except TraceError:
            return
        assert all(isinstance(e, Event) for e in events)

    _with_file(data, check)


RECORD = st.fixed_dictionaries(
    {"key": st.text(min_size=1, max_size=16), "index": st.integers(0, 10**6)},
    optional={"answer": st.none() | st.text(max_size=30), "score": st.floats(0, 1)},
)


@FAST
@given(st.lists(RECORD, max_size=6), st.binary(max_size=200))
@example([{"key": "a", "index": 0}], b"[" * 100_000 + b"\n")
def test_results_reader_drops_only_the_torn_tail(records, tail) -> None:
    body = b"".join(
        (json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8") for r in records
    )
    if tail.count(b"\n") > 1 or (tail.count(b"\n") == 1 and not tail.endswith(b"\n")):
        tail = tail.replace(b"\n", b" ")  # one torn line at most: a kill leaves no more

    def check(run: Path, path: Path) -> None:
        path.rename(run / "results.jsonl")
        got = read_results(run)
        assert got[: len(records)] == records and len(got) <= len(records) + 1
        dropped = repair_results(run)
        assert read_results(run) == got
        assert (run / "results.jsonl").read_bytes() == (body + tail)[: len(body + tail) - dropped]
        assert dropped == 0 or not (run / "results.jsonl").read_bytes().endswith(tail)

    _with_file(body + tail, check)


@FAST
@given(st.binary(max_size=300))
@example(b'{"key": "a"}\n' + b"{" * 100_000 + b"\n" + b'{"key": "b"}\n')
def test_results_reader_on_arbitrary_bytes(data) -> None:
    def check(run: Path, path: Path) -> None:
        path.rename(run / "results.jsonl")
        try:
            records = read_results(run)
        except HivethinkError as err:
            assert "is corrupt" in str(err)
            return
        assert all(isinstance(r, dict) and isinstance(r["key"], str) for r in records)

    _with_file(data, check)


@FAST
@given(TEXT)
@example("\\boxed{" * 1000)
@example("\\boxed {a}\\boxed{b{c}}")
def test_text_rules_never_raise(text) -> None:
    got = boxed(text)
    assert got is None or (isinstance(got, str) and got in text)
    assert step_ends(text) in (True, False) and step_ends(text, fenced=False) in (True, False)
    assert yes_no(text) in ("yes", "no", "?", None)
    assert find_json(text, dict) is None or isinstance(find_json(text, dict), dict)
    assert find_json(text, list) is None or isinstance(find_json(text, list), list)
    assert all(kind and isinstance(body, str) for kind, body in parse_entries(text))
    role, abstain = parse_role(text)
    assert role is None or isinstance(role, str)
    for byzantine in (False, True):
        proposal = read_proposal(text, byzantine)
        assert proposal is None or proposal.value is None or 0 <= proposal.value <= 50
        assert read_vote(text, byzantine) in ("stop", "continue", "abstain", None)
    messages = parse_messages(text, frozenset({"Alice", "Bob"}))
    assert messages is None or all(isinstance(v, str) for v in messages.values())
    lenient = parse_messages_lenient(text, ["Alice"])
    assert lenient is None or set(lenient) <= {"Alice"}
    for mode in ("published", "bounded", "lenient"):
        assert parse_answer(text, ["Yes", "No", "Group 1"], mode) in ("Yes", "No", "Group 1", None)
    assert isinstance(belief_of(text), str)
    assert parse_gsm(text) is None or isinstance(parse_gsm(text), str)
    assert parse_arithmetic(text) is None or isinstance(parse_arithmetic(text), float)
    for parse in ("published", "lines"):
        assert isinstance(parse_mast_reply(text, parse)["parsed"], bool)
    quality = parse_rating(text)
    assert quality is None or 0.0 <= quality <= 1.0


def _tasks():
    out = []
    for name in sorted(TASKS):
        params = {"graph": {"size": 4}, "agree": {"honest": 3}, "pair": {"probe": True}}
        task = get_task(name, **params.get(name, {}))
        out += [(name, task, inst) for inst in task.generate(2, 0)]
    return out


TASK_CASES = _tasks()


@pytest.mark.parametrize(
    ("name", "task", "instance"),
    TASK_CASES,
    ids=[f"{c[0]}-{i % 2}" for i, c in enumerate(TASK_CASES)],
)
@settings(FAST, max_examples=40)
@given(text=TEXT)
def test_task_extract_and_score_never_raise(name, task, instance, text) -> None:
    answer = task.extract(text)
    assert answer is None or isinstance(answer, str)
    if is_judged(task):  # scored by the lab's LLM judge, which has its own fuzz-free parser
        return
    for candidate in (answer, text, None, ""):
        score = task.score(instance, candidate)
        assert isinstance(score, float) and 0.0 <= score <= 1.0, (name, candidate, score)
    if name == "graph":
        net = network(instance)
        for node in net.nodes:
            assert parse_answer(text, net.options(node)) in (*net.options(node), None)
