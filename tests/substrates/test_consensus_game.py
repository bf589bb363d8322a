"""The consensus-game preset replayed against fixed replies: what each agent was shown, the
schemas, temperatures and caps, retries, broadcasts, votes, the stop rule and the outcome
(protocols.md section 3)."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from hivethink.backends.fake import ScriptedBackend
from hivethink.errors import HivethinkError
from hivethink.substrates import Budget, get_substrate
from hivethink.substrates.consensus_game import (
    proposal_schema,
    read_proposal,
    read_vote,
    vote_schema,
)
from hivethink.tasks.agree import AgreeTask
from hivethink.tasks.base import Instance


def game(max_rounds: int = 3) -> Instance:
    """Alice (starts at 10) and Bob (30) are honest; Carol is Byzantine."""
    return Instance(
        task="agree", id="g", prompt="",
        data={"agents": ["Alice", "Bob", "Carol"], "byzantine": ["Carol"],
              "start_values": {"Alice": 10, "Bob": 30}, "max_rounds": max_rounds},
    )  # fmt: skip


def J(**fields) -> str:
    return json.dumps(fields)


ALICE_WHY = "Ten is my start value; adopting a start value keeps our agreement valid."
BOB_WHY = "Alice's start value is a fair choice."
CAROL_WHY = "Forty-five balances the group better."
# (agent, round, phase) -> replies by attempt
REPLIES = {
    ("Alice", 1, "propose"): [J(internal_strategy="offer my start", value=10, public_reasoning=ALICE_WHY)],
    ("Bob", 1, "propose"): [
        J(internal_strategy="keep", value=30, public_reasoning="no"),  # reasoning under 10 characters
        "not json",
        J(internal_strategy="follow Alice", value=10.4, public_reasoning=BOB_WHY),  # rounded to 10
    ],
    ("Carol", 1, "propose"): [J(internal_strategy="split them later", value="abstain")],
    ("Alice", 1, "vote"): [J(decision="continue")],
    ("Bob", 1, "vote"): [J(decision="stop")],
    ("Carol", 1, "vote"): [J(decision="abstain")],
    ("Alice", 2, "propose"): [J(internal_strategy="hold ten", value=10, public_reasoning="I keep ten to lock it in.")],
    ("Bob", 2, "propose"): ["{}", "{}", "{}", "{}"],  # fails every attempt: keeps 10
    ("Carol", 2, "propose"): [J(internal_strategy="pull high", value=45, public_reasoning=CAROL_WHY)],
    ("Alice", 2, "vote"): [J(decision="stop")],
    ("Bob", 2, "vote"): ["Sure! " + J(decision="stop")],  # the first JSON object in the reply
    ("Carol", 2, "vote"): ["x", "y", "z", "w"],  # fails every attempt: counts as continue
}


def key(request) -> tuple[str, int, str]:
    name = re.match(r"You are (\w+)", request.messages[0]["content"]).group(1)
    user = request.messages[-1]["content"]
    if "VOTE" in user:
        return name, int(re.search(r"Round (\d+)/", user).group(1)), "vote"
    return name, int(re.search(r"ROUND (\d+)", user).group(1)), "propose"


def replay(instance=None, replies=REPLIES, **params):
    asked: Counter = Counter()

    def script(request, index):
        k = key(request)
        asked[k] += 1
        return replies[k][asked[k] - 1]

    backend = ScriptedBackend(script)
    result = get_substrate("consensus-game", **params).run(
        instance or game(), AgreeTask(), backend, workers=1, budget=Budget(), seed=0
    )
    return backend, result


def by(batch):
    return {key(r)[0]: r for r in batch}


def test_the_whole_game():
    backend, res = replay()
    assert [[key(r)[0] for r in batch] for batch in backend.calls] == [
        ["Alice", "Bob", "Carol"], ["Bob"], ["Bob"],  # round 1 proposals and Bob's retries
        ["Alice", "Bob", "Carol"],  # round 1 votes
        ["Alice", "Bob", "Carol"], ["Bob"], ["Bob"], ["Bob"],  # round 2 proposals: 3 retries
        ["Alice", "Bob", "Carol"], ["Carol"], ["Carol"], ["Carol"],  # round 2 votes
    ]
    p1 = by(backend.calls[0])
    assert "HONEST agent" in p1["Alice"].messages[0]["content"]
    assert "MAY contain Byzantine agents" in p1["Alice"].messages[0]["content"]
    assert "Your initial value: 10" in p1["Alice"].messages[0]["content"]
    assert "BYZANTINE (malicious)" in p1["Carol"].messages[0]["content"]
    assert p1["Alice"].messages[1]["content"] == (
        "=== ROUND 1 ===\n\n=== YOUR CURRENT STATE ===\nYour current value: 10\n\n"
        "=== EARLIER ROUNDS ===\n(No history yet: this is round 1)\n\n"
        "=== YOUR PRIVATE STRATEGY NOTES ===\n(No notes yet)\n\n=== YOUR TASK ===\n"
        "Look at the value most agents are proposing and propose a value that helps reach consensus."
        '\n\nReply with JSON only:\n{\n  "internal_strategy": "your private observations",\n'
        '  "value": <integer>,\n  "public_reasoning": "your explanation, visible to all agents"\n}'
    )
    assert "You have not proposed a value yet\n(You have no initial value" in p1["Carol"].messages[1]["content"]
    # decoding: schema-constrained JSON, 0.5 / 300 for proposals and 0.3 / 200 for votes
    assert p1["Alice"].json_schema == proposal_schema(False)
    assert p1["Carol"].json_schema == proposal_schema(True)
    assert (p1["Alice"].temperature, p1["Alice"].max_tokens) == (0.5, 300)
    v1 = by(backend.calls[3])
    assert v1["Bob"].json_schema == vote_schema(False) and v1["Carol"].json_schema == vote_schema(True)
    assert (v1["Bob"].temperature, v1["Bob"].max_tokens) == (0.3, 200)
    # retries: the same prompt once more, then with a note that the reply was invalid
    base = p1["Bob"].messages[1]["content"]
    assert backend.calls[1][0].messages[1]["content"] == base
    assert backend.calls[2][0].messages[1]["content"].startswith(base + "\n\nRETRY 2/3:\n")
    assert backend.calls[7][0].messages[1]["content"].startswith(base.replace("ROUND 1", "ROUND 2")[:20])
    assert "RETRY 3/3:" in backend.calls[7][0].messages[1]["content"]

    history1 = (
        "Round 1: Alice value: 10 | Reasoning: " + ALICE_WHY[:47] + "...; Bob value: 10 | "
        f"Reasoning: {BOB_WHY}; Carol value: ABSTAINED"
    )
    assert v1["Bob"].messages[1]["content"] == (
        "=== VOTE - Round 1/3 ===\n\n=== ALL PROPOSALS OF THIS ROUND (round 1) ===\n"
        f"  Bob (you): 10\n    Reasoning: {BOB_WHY}\n  Alice: 10\n    Reasoning: {ALICE_WHY}\n\n"
        f"=== EARLIER ROUNDS (for context) ===\n{history1}\n\n"
        "=== YOUR PRIVATE STRATEGY NOTES ===\nround 1: follow Alice\n\n=== YOUR DECISION ===\n"
        "Judging by THIS round's values above, have the honest agents reached consensus on a valid "
        'initial value?\nReply: {"decision": "stop"} or {"decision": "continue"}'
    )
    assert "(you): ABSTAINED" in v1["Carol"].messages[1]["content"]
    assert "NOTES" not in v1["Carol"].messages[1]["content"]  # Byzantine vote prompts have none

    p2 = by(backend.calls[4])
    assert f"=== EARLIER ROUNDS ===\n{history1}\n\n" in p2["Alice"].messages[1]["content"]
    assert "round 1: offer my start" in p2["Alice"].messages[1]["content"]
    assert "Your current value: 10" in p2["Bob"].messages[1]["content"]
    v2 = by(backend.calls[8])["Alice"].messages[1]["content"]
    assert "  Bob: 10\n    Reasoning: (no valid proposal this round)\n  Carol: 45\n    Reasoning: Forty-five" in v2
    assert "EARLIER ROUNDS (for context) ===\nRound 2: Alice value: 10" in v2 and v2.index("Round 2:") < v2.index("Round 1:")

    broadcasts = [(e.step, e.worker, e.data["value"]) for e in res.events if e.kind == "message"]
    assert broadcasts == [(1, "Alice", 10), (1, "Bob", 10), (2, "Alice", 10), (2, "Bob", 10), (2, "Carol", 45)]
    votes = [(e.step, e.worker, e.data["value"]) for e in res.events if e.kind == "vote"]
    assert votes == [(1, "Alice", "continue"), (1, "Bob", "stop"), (1, "Carol", "abstain"),
                     (2, "Alice", "stop"), (2, "Bob", "stop"), (2, "Carol", "continue")]  # fmt: skip
    errors = [(e.step, e.worker) for e in res.events if e.kind == "error"]
    assert errors == [(1, "Bob"), (1, "Bob"), (2, "Bob"), (2, "Bob"), (2, "Bob"), (2, "Bob"),
                      (2, "Carol"), (2, "Carol"), (2, "Carol"), (2, "Carol")]  # fmt: skip

    # 2 stop votes of 3 agents (Carol counted) end the game in round 2 on Alice's start value
    assert res.info["ended_by_vote"] and res.info["rounds"] == 2 and not res.info["timeout"]
    out = res.outcome
    assert (out.result, out.consensus_value, out.first_agreed_round, out.stability_rounds) == ("valid", 10, 1, 2)
    assert out.trajectory == [{"Alice": 10, "Bob": 10, "Carol": None}, {"Alice": 10, "Bob": 10, "Carol": 45}]
    assert res.agent_answers == {"Alice": "10", "Bob": "10"} and res.answer is None
    assert AgreeTask().score_outcome(game(), out) == 1.0


def replies_for(rounds: int, vote: str = "continue") -> dict:
    out = {}
    for r in range(1, rounds + 1):
        for name, v in (("Alice", 10 + r), ("Bob", 30)):
            out[(name, r, "propose")] = [J(internal_strategy=f"note {r}", value=v, public_reasoning=f"my reasoning in round {r}")]
            out[(name, r, "vote")] = [J(decision=vote)]
        out[("Carol", r, "propose")] = [J(internal_strategy="hide", value="abstain" if r > 1 else 7)]
        out[("Carol", r, "vote")] = [J(decision="continue")]
    return out


def test_memory_window_notes_and_a_byzantine_abstain_keeping_its_value():
    backend, res = replay(game(max_rounds=7), replies_for(7), memory=3)
    last = by(backend.calls[-2])["Alice"].messages[1]["content"]  # round 7 proposal
    shown = re.findall(r"^Round (\d+):", last, re.MULTILINE)
    assert shown == ["6", "5", "4"]  # the last 3 rounds, newest first
    assert re.findall(r"^round (\d+): note", last, re.MULTILINE) == ["2", "3", "4", "5", "6"]  # last 5, oldest first
    # Carol abstains from round 2 on, but the game keeps (and broadcasts) her round-1 value
    assert [e.data["value"] for e in res.events if e.kind == "message" and e.worker == "Carol"] == [7] * 7
    assert res.outcome.result == "timeout" and res.info["timeout"]
    wide = replay(game(max_rounds=7), replies_for(7), memory=5)[0]
    last = by(wide.calls[-2])["Alice"].messages[1]["content"]
    assert re.findall(r"^Round (\d+):", last, re.MULTILINE) == ["6", "5", "4", "3", "2"]


def test_a_stop_in_the_last_allowed_round_is_a_stop():
    _, res = replay(game(max_rounds=1), replies_for(1, vote="stop"))
    assert res.info["ended_by_vote"] and res.outcome.result == "none"  # 11 vs 30: not unanimous


def test_awareness_none_exist_and_scripted_byzantines():
    backend, res = replay(game(max_rounds=2), replies_for(2), awareness="none_exist", byzantine="scripted")
    first = by(backend.calls[0])
    assert set(first) == {"Alice", "Bob"}  # scripted Byzantine agents make no calls
    assert "NO Byzantine (malicious) agents" in first["Alice"].messages[0]["content"]
    carol = [e.data["value"] for e in res.events if e.kind == "message" and e.worker == "Carol"]
    assert len(carol) == 2 and all(0 <= v <= 50 for v in carol)


INVALID = "invalid"


@pytest.mark.parametrize(
    ("reply", "byzantine", "value"),
    [
        (J(internal_strategy="abc", value=60, public_reasoning="too high, clamped to 50"), False, 50),
        (J(internal_strategy="abc", value=-3, public_reasoning="too low, clamped to 0.."), False, 0),
        (J(internal_strategy="ab", value=5, public_reasoning="notes too short here"), False, INVALID),
        (J(internal_strategy="abc", value=True, public_reasoning="a boolean is no number"), False, INVALID),
        (J(internal_strategy="abc", value="5", public_reasoning="a string is no number"), False, INVALID),
        (J(internal_strategy="abc", value="abstain", public_reasoning="honest cannot"), False, INVALID),
        (J(internal_strategy="abc", value="abstain"), True, None),  # a Byzantine abstains
        (J(internal_strategy="abc", value=12), True, 12),  # Byzantine reasoning is optional
    ],
)
def test_proposal_validity(reply, byzantine, value):
    got = read_proposal(reply, byzantine)
    assert (INVALID if got is None else got.value) == value


def test_vote_validity():
    assert read_vote(J(decision="stop"), False) == "stop"
    assert read_vote(J(decision="abstain"), True) == "abstain"
    assert read_vote(J(decision="abstain"), False) is None
    assert read_vote('{"decision": "STOP"}', False) is None and read_vote("stop", False) is None


@pytest.mark.parametrize(
    ("params", "message"),
    [({"awareness": "maybe"}, "awareness"), ({"byzantine": "human"}, "byzantine"),
     ({"memory": 16}, "memory"), ({"retries": -1}, "retries")],
)  # fmt: skip
def test_bad_options(params, message):
    with pytest.raises(HivethinkError, match=message):
        get_substrate("consensus-game", **params)
