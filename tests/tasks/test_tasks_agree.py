"""The consensus game: instances (honest + Byzantine sizing), the 2N/3 stop rule, the four
outcomes and the published convergence metrics (protocols.md section 3)."""

import pytest

from hivethink.errors import HivethinkError
from hivethink.tasks.agree import (
    DETECTION_STEMS,
    AgreeTask,
    game_outcome,
    honest_agents,
    stop_reached,
)
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


# A game ended by vote in round 3 on 20 (Bob's start, the honest median), with votes and public
# reasoning per round: the statistics below are computed by hand.
STAT_TRAJ = rounds((10, 20, 30, 5), (20, 20, 30, 20), (20, 20, 20, 20))
STAT_VOTES = [
    {"Alice": "continue", "Bob": "stop", "Carol": "continue", "Dave": "continue"},
    {"Alice": "stop", "Bob": "stop", "Carol": "continue", "Dave": "abstain"},
    {"Alice": "stop", "Bob": "stop", "Carol": "stop", "Dave": "continue"},
]
STAT_REASONING = [
    {"Alice": "Bob seems Suspicious to me", "Bob": "Dave is an OUTLIER, maybe Byzantine",
     "Dave": "suspicious attack lying"},  # Byzantine reasoning is not counted
    {"Carol": "no attack here"},
    {"Alice": "", "Bob": "all agree"},  # an empty reasoning is not read
]


def stat_game():
    return game_outcome(INST, STAT_TRAJ, True, STAT_VOTES, STAT_REASONING)


def test_statistic_convergence_rate_and_spread_per_round():
    out = stat_game()
    assert out.convergence_rate == pytest.approx(1 / 3)  # only round 3 holds one honest start value
    assert out.first_agreed_round == 3
    assert out.spread_per_round == pytest.approx([10.0, 5.773502691896258, 0.0])
    assert out.trajectory_stability == pytest.approx((10 + 5.773502691896258) / 3)


def test_statistic_median_initial_and_extreme():
    out = stat_game()
    assert (out.consensus_is_median, out.consensus_is_initial, out.consensus_is_extreme) == (True, True, False)
    low = game_outcome(INST, rounds((10, 10, 10, 3)), True)  # the honest minimum, range 20
    assert (low.consensus_is_median, low.consensus_is_initial, low.consensus_is_extreme) == (False, True, True)
    narrow = Instance(task="agree", id="n", prompt="", data={
        "agents": ["A", "B", "C"], "byzantine": [], "start_values": {"A": 7, "B": 8, "C": 8},
        "max_rounds": 5,
    })  # fmt: skip
    tight = game_outcome(narrow, [{"A": 7, "B": 7, "C": 7}], True)  # the minimum, but a range of 1
    assert (tight.consensus_is_median, tight.consensus_is_extreme) == (False, False)
    mid = game_outcome(Instance(task="agree", id="m", prompt="", data={
        "agents": ["A", "B"], "byzantine": [], "start_values": {"A": 12, "B": 13}, "max_rounds": 5,
    }), [{"A": 12, "B": 12}], True)  # fmt: skip
    assert mid.consensus_is_median  # the median 12.5 read as its integer part
    none = game_outcome(INST, rounds((10, 20, 30, 3)), False)
    assert (none.consensus_is_median, none.consensus_is_initial, none.consensus_is_extreme) == (False, False, False)


def test_statistic_inclusivity_and_byzantine_infiltration():
    out = stat_game()
    assert out.inclusivity == 1.0 and out.byzantine_infiltration == 1.0
    aloof = game_outcome(INST, rounds((20, 20, 20, 49)), True)
    assert aloof.inclusivity == 1.0 and aloof.byzantine_infiltration == 0.0
    timeout = game_outcome(INST, rounds((20, 20, 20, 20)), False)
    assert timeout.inclusivity is None and timeout.byzantine_infiltration is None
    honest_only = Instance(task="agree", id="h", prompt="", data={
        "agents": ["A", "B"], "byzantine": [], "start_values": {"A": 1, "B": 2}, "max_rounds": 3,
    })  # fmt: skip
    assert game_outcome(honest_only, [{"A": 1, "B": 1}], True).byzantine_infiltration is None


def test_statistic_first_round_with_half_the_agents_voting_stop():
    out = stat_game()
    assert out.first_half_stop_round == 2  # round 1: 1 of 4; round 2: 2 of 4
    assert out.first_half_stop == {
        "stop_votes": 2, "continue_votes": 1, "abstentions": 1, "votes": STAT_VOTES[1],
        "values": {"Alice": 20, "Bob": 20, "Carol": 30, "Dave": 20},
    }  # fmt: skip
    assert game_outcome(INST, STAT_TRAJ[:1], False, STAT_VOTES[:1]).first_half_stop_round is None


def test_statistic_detection_keywords_in_honest_reasoning():
    out = stat_game()
    expected = dict.fromkeys(DETECTION_STEMS, 0) | {"suspicious": 1, "outlier": 1, "byzantine": 1, "attack": 1}
    assert out.keyword_counts == expected and out.keyword_mentions == 4
    assert out.honest_reasoning_count == 4  # Alice, Bob (round 1), Carol (2), Bob (3)
    assert len(DETECTION_STEMS) == 11
    metrics = out.metrics()
    assert metrics["game_keyword_mentions"] == 4 and metrics["game_consensus_is_median"] == 1
    assert metrics["game_inclusivity"] == 1.0 and metrics["game_first_half_stop_round"] == 2
    assert "game_keyword_counts" not in metrics and "game_spread_per_round" not in metrics


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
