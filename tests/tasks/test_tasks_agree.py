"""The consensus game: instances (honest + Byzantine sizing), the 2N/3 stop rule, the four
outcomes and the published convergence metrics (protocols.md section 3)."""

import pytest

from hivethink.errors import HivethinkError
from hivethink.tasks.agree import AgreeTask, game_outcome, honest_agents, stop_reached
from hivethink.tasks.base import Instance
from hivethink.tasks.graph import GraphOutcome

# Alice, Bob and Carol are honest (start 10, 20, 30); Dave is Byzantine (no start value).
INST = Instance(
    task="agree", id="t", prompt="",
    data={"agents": ["Alice", "Bob", "Carol", "Dave"], "byzantine": ["Dave"],
          "start_values": {"Alice": 10, "Bob": 20, "Carol": 30}, "max_rounds": 10},
)  # fmt: skip


def rounds(*values: tuple[int | None, ...]) -> list[dict[str, int | None]]:
    return [dict(zip(["Alice", "Bob", "Carol", "Dave"], v, strict=True)) for v in values]


@pytest.mark.parametrize(
    ("stops", "n", "expected"),
    [(2, 3, True), (1, 3, False), (3, 4, True), (2, 4, False), (4, 6, True), (3, 6, False),
     (8, 11, True), (7, 11, False), (0, 0, False)],
)  # fmt: skip
def test_stop_needs_two_thirds_of_all_agents(stops, n, expected):
    votes = {f"a{i}": "stop" if i < stops else "continue" for i in range(n)}
    assert stop_reached(votes, n) is expected


def test_abstentions_and_missing_votes_are_not_stops():
    assert not stop_reached({"a": "stop", "b": "abstain", "c": None}, 3)
    assert not stop_reached({"a": "stop", "b": "stop"}, 4)  # N counts every agent


@pytest.mark.parametrize(
    ("trajectory", "by_vote", "result"),
    [
        (rounds((20, 20, 20, 7)), True, "valid"),  # the Byzantine value does not matter
        (rounds((20, 20, 20, 7)), False, "timeout"),  # the deadline wins over unanimity
        (rounds((25, 25, 25, 25)), True, "invalid"),  # unanimous on a value nobody started with
        (rounds((20, 20, 30, 20)), True, "none"),  # not unanimous
        (rounds((10, 20, 30, None), (40, 40, 40, None)), True, "invalid"),
    ],
)
def test_the_four_outcomes(trajectory, by_vote, result):
    outcome = game_outcome(INST, trajectory, by_vote)
    assert outcome.result == result
    assert AgreeTask().score_outcome(INST, outcome) == (1.0 if result == "valid" else 0.0)


def test_convergence_metrics_of_a_valid_game():
    traj = rounds((10, 20, 30, 5), (20, 20, 30, 5), (20, 20, 20, 40), (20, 20, 20, 1))
    out = game_outcome(INST, traj, True)
    assert out.result == "valid" and out.rounds == 4 and out.consensus_value == 20
    assert out.first_agreed_round == 3 and out.stability_rounds == 2
    # honest median 20, spread 30 - 10: centrality 1; efficiency 1 - 4/10
    assert out.distance_from_median == 0 and out.centrality == 1.0
    assert out.quality == pytest.approx(50 + 30 + 20 * 0.6)
    assert out.trajectory_stability == pytest.approx((10 + 5.773502691896258 + 0 + 0) / 4)
    assert out.honest_final == {"Alice": 20, "Bob": 20, "Carol": 20}
    metrics = out.metrics()
    assert metrics["game_result"] == "valid" and metrics["game_ended_by_vote"] == 1
    assert "game_trajectory" not in metrics


def test_off_centre_consensus_and_timeouts():
    out = game_outcome(INST, rounds((10, 10, 10, 3)), True)
    assert out.centrality == pytest.approx(1 - 10 / 20) and out.quality == pytest.approx(50 + 15 + 18)
    timeout = game_outcome(INST, rounds((10, 20, 30, 3), (10, 10, 10, 3)), False)
    assert timeout.result == "timeout" and timeout.consensus_value is None
    assert timeout.first_agreed_round == 2  # reported even on a timeout
    assert timeout.quality == 0.0 and timeout.centrality is None
    stopped_apart = game_outcome(INST, rounds((10, 20, 30, 3)), True)
    assert stopped_apart.result == "none" and stopped_apart.quality == 0.0


def test_instances_size_honest_and_byzantine_separately():
    task = AgreeTask(honest=5, byzantine=2, max_rounds=7)
    for inst in task.generate(4, 3):
        d = inst.data
        assert len(d["agents"]) == 7 and len(d["byzantine"]) == 2
        assert sorted(d["start_values"]) == sorted(honest_agents(inst))  # Byzantines: no value
        assert all(0 <= v <= 50 for v in d["start_values"].values())
        assert inst.target == sorted(set(d["start_values"].values())) and d["max_rounds"] == 7
    assert task.generate(2, 3)[1].data == task.generate(2, 3)[1].data
    assert AgreeTask.substrates == ("consensus-game",)
    assert AgreeTask().extract("x") is None and AgreeTask().score(INST, "20") == 0.0
    with pytest.raises(HivethinkError, match="cannot score a GraphOutcome"):
        AgreeTask().score_outcome(INST, GraphOutcome(answers={}))


@pytest.mark.parametrize(
    "params", [{"honest": 0}, {"byzantine": -1}, {"honest": 150, "byzantine": 60}, {"max_rounds": 0}]
)
def test_bad_parameters(params):
    with pytest.raises(HivethinkError):
        AgreeTask(**params)
