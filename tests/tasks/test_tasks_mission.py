"""``mission``: the fixture format and its one-line errors, runs of missions, and the judge."""

from __future__ import annotations

import pytest

from hivethink.backends.base import Completion
from hivethink.backends.fake import ScriptedBackend
from hivethink.errors import HivethinkError
from hivethink.tasks import get_task
from hivethink.tasks.base import is_judged, meant_for
from hivethink.tasks.mission import (
    BUILTIN,
    MissionTask,
    judge_run,
    load_missions,
    parse_rating,
    run_missions,
)


def write(tmp_path, text: str):
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_builtin_missions_cover_four_levels():
    missions = load_missions(BUILTIN)
    assert {m.level for m in missions} == {1, 2, 3, 4}
    assert all(m.text and m.id for m in missions)


def test_instances_are_runs_drawn_deterministically(tmp_path):
    task = get_task("mission", run=3)
    a, b = task.generate(3, 7), task.generate(3, 7)
    assert [i.id for i in a] == [i.id for i in b] and [i.data for i in a] == [i.data for i in b]
    assert len({i.id for i in a}) == 3
    drawn = [m["id"] for i in a for m in i.data["run"]]
    assert len(drawn) == 9 and len(set(drawn[:8])) == 8  # without replacement until the file wraps
    assert a[0].prompt == a[0].data["run"][0]["prompt"]
    assert [i.prompt for i in run_missions(a[0])] == [m["prompt"] for m in a[0].data["run"]]
    only = get_task("mission", level=4).generate(2, 0)
    assert all(i.data["level"] == 4 for i in only)


def test_an_edited_file_gives_new_instance_ids(tmp_path):
    path = write(tmp_path, "missions:\n  - {text: A, level: 1}\n")
    first = MissionTask(file=path).generate(1, 0)[0].id
    write(tmp_path, "missions:\n  - {text: B, level: 1}\n")
    assert MissionTask(file=path).generate(1, 0)[0].id != first


def test_a_run_of_several_missions_is_meant_for_the_self_organizing_substrate():
    class Sub:
        def __init__(self, name):
            self.name, self.kind = name, "text"

    assert meant_for(MissionTask(run=1), Sub("chat"))
    assert not meant_for(MissionTask(run=2), Sub("chat"))
    assert meant_for(MissionTask(run=2), Sub("self-organizing"))
    assert is_judged(MissionTask())


@pytest.mark.parametrize(("text", "message"), [
    ("missions:\n  - {text: Do it}\n", "mission 1: missing field 'level'"),
    ("missions:\n  - {level: 2}\n", "mission 1: missing field 'text'"),
    ("missions:\n  - {text: a, level: 1}\n  - {text: b, level: 9}\n", "mission 2: Input should be less than or equal to 4"),
    ("missions:\n  - {text: a, level: 1, prize: 3}\n", "mission 1: unknown field 'prize'"),
    ("missions:\n  - {text: '  ', level: 1}\n", "mission 1: empty 'text'"),
    ("missions: []\n", "expected a non-empty list under 'missions'"),
    ("- {text: a, level: 1}\n", "expected a non-empty list under 'missions'"),
    ("missions: [1]\n", "mission 1 is not a mapping"),
    ("missions:\n  - {text: a, level: 1, id: x}\n  - {text: b, level: 1, id: x}\n", "duplicate mission id"),
    ("missions: [\n", "invalid YAML"),
])  # fmt: skip
def test_a_bad_mission_file_is_one_line(tmp_path, text, message):
    with pytest.raises(HivethinkError, match=message) as err:
        MissionTask(file=write(tmp_path, text))
    assert "\n" not in str(err.value)


def test_bad_parameters_and_a_missing_file(tmp_path):
    with pytest.raises(HivethinkError, match="no such file"):
        MissionTask(file=str(tmp_path / "nope.yaml"))
    with pytest.raises(HivethinkError, match="run must be at least 1"):
        MissionTask(run=0)
    with pytest.raises(HivethinkError, match="level must be one of"):
        MissionTask(level=5)
    instance = MissionTask().generate(1, 0)[0]
    assert MissionTask().score(instance, None) == MissionTask().score(instance, " ") == 0.0
    with pytest.raises(HivethinkError, match="scored by the LLM judge"):
        MissionTask().score(instance, "x")


@pytest.mark.parametrize(("reply", "quality"), [
    ('{"rating": 7}', 0.7), ("Rating: 10", 1.0), ('{"rating": 0}', 0.0), ("I give it 4.5/10", 0.45),
    ('{"rating": 11}', None), ("no number", None), ('{"rating": "high"} 3', 0.3),
])  # fmt: skip
def test_parse_rating(reply, quality):
    assert parse_rating(reply) == (pytest.approx(quality) if quality is not None else None)


def test_the_judge_rates_each_mission_of_a_run_in_one_batch():
    instance = MissionTask(run=3).generate(1, 0)[0]
    judge = ScriptedBackend(['{"rating": 8}', '{"rating": 4}'])
    verdict = judge_run(judge, instance, ["first deliverable", None, "third deliverable"])
    assert [len(c) for c in judge.calls] == [2]  # the missing deliverable is not asked about
    assert verdict["qualities"] == [0.8, 0.0, 0.4] and verdict["error"] is None
    assert verdict["quality"] == pytest.approx(0.4)
    prompt = judge.requests[0].messages[-1]["content"]
    first = instance.data["run"][0]
    assert first["prompt"] in prompt and first["rubric"] in prompt and "first deliverable" in prompt
    assert judge.requests[0].json_schema is not None and judge.requests[0].temperature == 0.0
    short = judge_run(ScriptedBackend(['{"rating": 8}']), instance, ["only one"])
    assert short["qualities"] == [0.8, 0.0, 0.0]  # a run cut short: the rest score 0


def test_a_judge_that_fails_or_answers_nonsense_gives_no_score():
    instance = MissionTask().generate(1, 0)[0]
    down = judge_run(ScriptedBackend([Completion(text="", error="connection refused")]), instance, ["d"])
    assert down["quality"] is None and "connection refused" in down["error"]
    vague = judge_run(ScriptedBackend(["quite good"]), instance, ["d"])
    assert vague["quality"] is None and "no rating" in vague["error"]
    long = judge_run(ScriptedBackend(['{"rating": 5}']), instance, ["x" * 10000], max_chars=1000)
    assert long["quality"] == 0.5
