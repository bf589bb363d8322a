import json

import pytest

from hivethink.errors import HivethinkError
from hivethink.tasks.agree import (
    AgreeTask,
    agent_system_prompt,
    honest_agents,
    parse_proposal,
    parse_vote,
    score_game,
    stop_reached,
    team_answer,
)
from hivethink.tasks.base import Instance


def _inst(byzantine: list[str] | None = None) -> Instance:
    data = {
        "agents": ["Alice", "Bob", "Carol", "Dave"],
        "start_values": {"Alice": 10, "Bob": 20, "Carol": 30, "Dave": 40},
        "byzantine": byzantine or [],
        "max_rounds": 50,
    }
    return Instance(task="agree", id="t", prompt="", data=data)


@pytest.mark.parametrize(
    ("final", "ended_by_vote", "expected"),
    [
        ({"Alice": 20, "Bob": 20, "Carol": 20, "Dave": 20}, True, 1.0),  # valid
        ({"Alice": 20, "Bob": 20, "Carol": 20, "Dave": 20}, False, 0.0),  # deadline
        ({"Alice": 25, "Bob": 25, "Carol": 25, "Dave": 25}, True, 0.0),  # not a start value
        ({"Alice": 20, "Bob": 20, "Carol": 20, "Dave": 30}, True, 0.0),  # disagreement
        ({"Alice": 20, "Bob": 20, "Carol": 20, "Dave": None}, True, 0.0),  # one without value
        ({"Alice": 20, "Bob": 20, "Carol": 20}, True, 0.0),  # one missing
        ({"Alice": None, "Bob": None, "Carol": None, "Dave": None}, True, 0.0),
    ],
)
def test_score_game_without_byzantine(final, ended_by_vote, expected):
    assert score_game(_inst(), final, ended_by_vote) == expected


def test_score_game_with_byzantine():
    inst = _inst(byzantine=["Dave"])
    assert honest_agents(inst) == ["Alice", "Bob", "Carol"]
    # the Byzantine agent's value is irrelevant
    assert score_game(inst, {"Alice": 30, "Bob": 30, "Carol": 30, "Dave": 7}, True) == 1.0
    # 40 is only the Byzantine agent's start value: not valid
    assert score_game(inst, {"Alice": 40, "Bob": 40, "Carol": 40, "Dave": 40}, True) == 0.0


@pytest.mark.parametrize(
    ("votes", "n_agents", "expected"),
    [
        ({"A": "stop", "B": "stop", "C": "continue"}, None, True),  # 2 of 3 = exactly 2/3
        ({"A": "stop", "B": "continue", "C": "continue"}, None, False),
        ({"A": "stop", "B": "stop", "C": "stop", "D": "continue"}, None, True),  # 3/4
        ({"A": "stop", "B": "stop", "C": "continue", "D": "continue"}, None, False),  # 1/2
        ({"A": "stop", "B": "stop", "C": None, "D": None}, None, False),
        ({"A": "stop", "B": "stop", "C": "stop"}, 6, False),  # absent agents count as continue
        ({"A": "stop", "B": "stop", "C": "stop", "D": "stop"}, 6, True),  # 4/6 = 2/3
        ({}, None, False),
    ],
)
def test_stop_reached(votes, n_agents, expected):
    assert stop_reached(votes, n_agents) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"value": 17, "reasoning": "median"}', {"value": 17, "reasoning": "median"}),
        (
            'I propose: ```json\n{"value": "23", "reasoning": 5}\n```',
            {"value": 23, "reasoning": "5"},
        ),
        ('{"value": 17.0}', {"value": 17, "reasoning": ""}),
        ('{"value": 51, "reasoning": "x"}', None),  # out of range
        ('{"value": -1}', None),
        ('{"value": "many"}', None),
        ('{"value": 12, "reasoning": "we should conv', {"value": 12, "reasoning": ""}),  # cut off
        ("I propose 12", None),
        ('{"vote": "stop"}', None),
    ],
)
def test_parse_proposal(text, expected):
    assert parse_proposal(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"vote": "stop"}', "stop"),
        ('{"vote": "Continue"}', "continue"),
        ("Vote: STOP", "stop"),
        ("I vote to continue, not stop.", "continue"),
        ("stop", "stop"),
        ("We should stop or continue?", None),
        ("no idea", None),
    ],
)
def test_parse_vote(text, expected):
    assert parse_vote(text) == expected


def test_task_score_reads_team_answer():
    task = AgreeTask()
    inst = _inst()
    good = team_answer({"Alice": 10, "Bob": 10, "Carol": 10, "Dave": 10}, True)
    assert task.score(inst, good) == 1.0
    assert task.extract(f"result: {good}") == good
    timeout = team_answer({"Alice": 10, "Bob": 10, "Carol": 10, "Dave": 10}, False)
    assert task.score(inst, timeout) == 0.0
    assert (
        task.score(inst, json.dumps({"final_values": {"Alice": 10}, "ended_by_vote": True})) == 0.0
    )
    assert task.score(inst, "10") == 0.0
    assert task.score(inst, None) == 0.0


def test_generation():
    task = AgreeTask(agents=6, byzantine=2, max_rounds=20)
    insts = task.generate(5, 3)
    for inst in insts:
        d = inst.data
        assert list(d) == ["agents", "start_values", "byzantine", "max_rounds"]
        assert d["agents"] == ["Alice", "Bob", "Carol", "Dave", "Eve", "Frank"]
        assert set(d["start_values"]) == set(d["agents"])
        assert all(0 <= v <= 50 for v in d["start_values"].values())
        assert len(d["byzantine"]) == 2 and set(d["byzantine"]) <= set(d["agents"])
        assert d["max_rounds"] == 20
        assert inst.target == sorted({d["start_values"][a] for a in honest_agents(inst)})
        json.dumps(d)
    assert [i.data for i in insts] == [i.data for i in task.generate(5, 3)]
    assert [i.data for i in insts] != [i.data for i in task.generate(5, 4)]


def test_prompts():
    inst = _inst(byzantine=["Dave"])
    honest = agent_system_prompt(inst, "Alice")
    assert "You are Alice" in honest and "start with the value 10" in honest
    assert '"value"' in honest and "two thirds" in honest and "50 rounds" in honest
    assert "secret goal" not in honest
    assert "secret goal" in agent_system_prompt(inst, "Dave")


def test_bad_parameters():
    with pytest.raises(HivethinkError):
        AgreeTask(agents=1)
    with pytest.raises(HivethinkError):
        AgreeTask(agents=4, byzantine=4)
    with pytest.raises(HivethinkError):
        AgreeTask(max_rounds=0)
