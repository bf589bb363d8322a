"""The consensus-game preset replayed against fixed replies: what each agent was shown (the
initial value in every system prompt while values move), the schemas, temperatures and caps,
the published batch check and retries (batches, then each agent's own loop), broadcasts, votes,
the stop rule, the listing order, ``/no_think`` and the outcome (protocols.md section 3)."""

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
    read_json,
    read_proposal,
    read_vote,
    vote_schema,
    wants_no_think,
)
from hivethink.tasks.agree import AgreeTask
from hivethink.tasks.base import Instance


def game(max_rounds: int = 3) -> Instance:
    """Alice (starts at 10), Bob (20) and Carol (30) are honest; Dave is Byzantine."""
    return Instance(
        task="agree", id="g", prompt="",
        data={"agents": ["Alice", "Bob", "Carol", "Dave"], "byzantine": ["Dave"],
              "start_values": {"Alice": 10, "Bob": 20, "Carol": 30}, "max_rounds": max_rounds},
    )  # fmt: skip


def J(**fields) -> str:
    return json.dumps(fields)


def P(value, notes: str = "my notes", why: str = "a reasoning long enough") -> str:
    return J(internal_strategy=notes, value=value, public_reasoning=why)


def V(decision: str) -> str:
    return J(decision=decision)


ALICE_WHY = "Ten is my start value; adopting a start value keeps our agreement valid."
CAROL_WHY = "Ten is an initial value and most agents are on it now."
# (agent, round, phase) -> replies by attempt
REPLIES = {
    ("Alice", 1, "propose"): [P(10, "offer my start", ALICE_WHY)],
    ("Bob", 1, "propose"): [P(20, "keep", "no"), P(10.7, "follow Alice", "Alice's start value is fair.")],
    ("Carol", 1, "propose"): [P(30, "hold thirty", "Thirty is where I start from.")],
    # a Byzantine abstain without public reasoning fails the batch check twice (2 of 4 agents
    # failed the first batch: more than 30%, so a second batch), then its own loop accepts it
    ("Dave", 1, "propose"): [J(internal_strategy="stay hidden", value="abstain")] * 3,
    ("Alice", 1, "vote"): [V("continue")],
    ("Bob", 1, "vote"): [V("stop")],
    ("Carol", 1, "vote"): [V("continue")],
    ("Dave", 1, "vote"): [V("abstain"), V("abstain")],  # fails the batch check, own loop accepts
    ("Alice", 2, "propose"): [P(10, "hold ten", "I keep ten to lock it in.")],
    ("Bob", 2, "propose"): ["{}", "{}", "not json", '{"value": 10}'],  # fails every attempt
    ("Carol", 2, "propose"): [P(10, "move to ten", CAROL_WHY)],  # an honest agent moves
    ("Dave", 2, "propose"): [P(45, "pull high", "Forty-five balances the group better.")],
    ("Alice", 2, "vote"): [V("stop")],
    ("Bob", 2, "vote"): ["Sure! " + V("stop")],  # the first balanced object in the reply
    ("Carol", 2, "vote"): [V("continue")],
    ("Dave", 2, "vote"): [V("continue")],
    **{(n, 3, "propose"): [P(10, "ten", "Everyone is on ten now, keep it.")] for n in ("Alice", "Bob", "Carol")},
    ("Dave", 3, "propose"): [P(10, "blend in", "I join ten as everyone else did.")],
    **{(n, 3, "vote"): [V("stop")] for n in ("Alice", "Bob", "Carol")},
    ("Dave", 3, "vote"): [V("continue")],
}


def key(request) -> tuple[str, int, str]:
    name = re.match(r"You are (\w+)", request.messages[0]["content"]).group(1)
    user = request.messages[-1]["content"]
    if "VOTE" in user:
        return name, int(re.search(r"round (\d+) of", user).group(1)), "vote"
    return name, int(re.search(r"ROUND (\d+)", user).group(1)), "propose"


def replay(instance=None, replies=REPLIES, backend_name="fake", **params):
    asked: Counter = Counter()

    def script(request, index):
        k = key(request)
        asked[k] += 1
        return replies[k][asked[k] - 1]

    backend = ScriptedBackend(script, name=backend_name)
    result = get_substrate("consensus-game", **params).run(
        instance or game(), AgreeTask(), backend, workers=1, budget=Budget(), seed=0
    )
    return backend, result


def by(batch):
    return {key(r)[0]: r for r in batch}


def names(batch) -> list[str]:
    return [key(r)[0] for r in batch]


def test_the_whole_game_with_moving_values_and_the_published_retries():
    backend, res = replay()
    assert [names(batch) for batch in backend.calls] == [
        ["Alice", "Bob", "Carol", "Dave"], ["Bob", "Dave"], ["Dave"],  # round 1 proposals
        ["Alice", "Bob", "Carol", "Dave"], ["Dave"],  # round 1 votes: Dave's own loop
        ["Alice", "Bob", "Carol", "Dave"], ["Bob"], ["Bob"], ["Bob"],  # round 2: Bob's own loop
        ["Alice", "Bob", "Carol", "Dave"],  # round 2 votes
        ["Alice", "Bob", "Carol", "Dave"], ["Alice", "Bob", "Carol", "Dave"],  # round 3
    ]  # fmt: skip
    p1 = by(backend.calls[0])
    assert "You are Alice, an honest agent." in p1["Alice"].messages[0]["content"]
    assert "Byzantine (malicious) agents may be hidden among you" in p1["Alice"].messages[0]["content"]
    assert "you are the hidden Byzantine (malicious) player" in p1["Dave"].messages[0]["content"]
    assert p1["Alice"].messages[1]["content"] == (
        "ROUND 1\n\nWHERE YOU STAND\nYour number now: 10\n\n"
        "PAST ROUNDS\n(round 1: nothing came before it)\n\n"
        "YOUR PRIVATE NOTES\n(nothing noted so far)\n\nNOW\n"
        "See which number most agents are gathering on, and propose one that brings the group together."
        '\n\nAnswer with this JSON alone:\n{\n  "internal_strategy": "what you notice, for yourself",\n'
        '  "value": <whole number>,\n  "public_reasoning": "your reasons, for every agent to read"\n}'
    )
    assert "You have proposed no number yet\n(No starting number for you" in p1["Dave"].messages[1]["content"]
    # the initial value stays in the system prompt of every later call while the value moves
    for batch in backend.calls:
        for r in batch:
            who, _, phase = key(r)
            if phase == "propose" and who != "Dave":
                start = {"Alice": 10, "Bob": 20, "Carol": 30}[who]
                assert f"Your starting number: {start}\n" in r.messages[0]["content"]
    carol3 = by(backend.calls[10])["Carol"]
    assert "Your starting number: 30" in carol3.messages[0]["content"]
    assert "Your number now: 10" in carol3.messages[1]["content"]
    assert "Your number now: 10" in by(backend.calls[5])["Bob"].messages[1]["content"]
    # decoding: schema-constrained JSON, 0.5 / 300 for proposals and 0.3 / 200 for votes
    assert p1["Alice"].json_schema == proposal_schema(False)
    assert p1["Dave"].json_schema == proposal_schema(True)
    assert (p1["Alice"].temperature, p1["Alice"].max_tokens) == (0.5, 300)
    v1 = by(backend.calls[3])
    assert v1["Bob"].json_schema == vote_schema(False) and v1["Dave"].json_schema == vote_schema(True)
    assert (v1["Bob"].temperature, v1["Bob"].max_tokens) == (0.3, 200)
    # retries: a second batch and the own loop's first call repeat the prompt; the own loop's
    # later calls carry the retry note
    base = p1["Dave"].messages[1]["content"]
    assert by(backend.calls[1])["Dave"].messages[1]["content"] == base
    assert backend.calls[2][0].messages[1]["content"] == base
    bob2 = by(backend.calls[5])["Bob"].messages[1]["content"]
    assert backend.calls[6][0].messages[1]["content"] == bob2
    assert backend.calls[7][0].messages[1]["content"].startswith(bob2 + "\n\nRETRY 2/3:\n")
    assert backend.calls[8][0].messages[1]["content"].startswith(bob2 + "\n\nRETRY 3/3:\n")

    # Bob's 10.7 is cut to 10; Dave's abstain from his own loop is filed as a failure
    history1 = (
        "Round 1: Alice value: 10 | Reasoning: " + ALICE_WHY[:47] + "...; Bob value: 10 | "
        "Reasoning: Alice's start value is fair.; Carol value: 30 | Reasoning: Thirty is where "
        "I start from.; Dave value: ABSTAINED | Reasoning: (sent no valid proposal this round)"
    )
    assert v1["Bob"].messages[1]["content"] == (
        "VOTE, round 1 of 3\n\nTHIS ROUND'S PROPOSALS (round 1)\n"
        "  Bob (you): 10\n    Reasoning: Alice's start value is fair.\n"
        f"  Alice: 10\n    Reasoning: {ALICE_WHY}\n  Carol: 30\n    Reasoning: Thirty is where I start from.\n\n"
        f"PAST ROUNDS (background)\n{history1}\n\n"
        "YOUR PRIVATE NOTES\nround 1: follow Alice\n\nDECIDE\n"
        "Going by this round's numbers above: do the honest agents agree on a valid starting number?\n"
        'Answer {"decision": "stop"} or {"decision": "continue"}'
    )
    assert "(you): ABSTAINED" in v1["Dave"].messages[1]["content"]
    assert "NOTES" not in v1["Dave"].messages[1]["content"]  # Byzantine vote prompts have none
    p2 = by(backend.calls[5])
    assert f"PAST ROUNDS\n{history1}\n\n" in p2["Alice"].messages[1]["content"]
    assert "round 1: offer my start" in p2["Alice"].messages[1]["content"]
    assert "round 1: stay hidden" in p2["Dave"].messages[1]["content"]  # the own loop's notes are kept
    v2 = by(backend.calls[9])["Alice"].messages[1]["content"]
    assert "  Bob: 10\n    Reasoning: (sent no valid proposal this round)\n  Carol: 10\n" in v2
    assert "  Dave: 45\n    Reasoning: Forty-five" in v2
    assert "PAST ROUNDS (background)\nRound 2: Alice value: 10" in v2 and v2.index("Round 2:") < v2.index("Round 1:")

    broadcasts = [(e.step, e.worker, e.data["value"], e.data["accepted_attempt"])
                  for e in res.events if e.kind == "message"]  # fmt: skip
    assert broadcasts[:8] == [
        (1, "Alice", 10, 1), (1, "Bob", 10, 2), (1, "Carol", 30, 1), (1, "Dave", None, 3),
        (2, "Alice", 10, 1), (2, "Bob", 10, None), (2, "Carol", 10, 1), (2, "Dave", 45, 1),
    ]  # fmt: skip
    dave1 = next(e for e in res.events if e.kind == "message" and e.worker == "Dave")
    assert dave1.recipients == [] and dave1.data["private_notes"] == "stay hidden"
    votes = [(e.step, e.worker, e.data["value"]) for e in res.events if e.kind == "vote"]
    assert votes[:8] == [(1, "Alice", "continue"), (1, "Bob", "stop"), (1, "Carol", "continue"),
                         (1, "Dave", "abstain"), (2, "Alice", "stop"), (2, "Bob", "stop"),
                         (2, "Carol", "continue"), (2, "Dave", "continue")]  # fmt: skip
    # every call says its agent, round, phase and attempt
    dave_steps = [(e.step, e.data["phase"], e.data["attempt"], e.data["loop"])
                  for e in res.events if e.kind == "step" and e.worker == "Dave"]  # fmt: skip
    assert dave_steps[:4] == [(1, "propose", 1, "batch"), (1, "propose", 2, "batch"),
                              (1, "propose", 3, "own"), (1, "vote", 1, "batch")]  # fmt: skip
    prompts = [e for e in res.events if e.kind == "prompt"]
    assert all({"phase", "attempt"} <= set(e.data) for e in prompts)

    # 3 stop votes of 4 agents (Dave counted) end the game in round 3 on Alice's start value
    assert res.info["ended_by_vote"] and res.info["rounds"] == 3 and not res.info["timeout"]
    out = res.outcome
    assert (out.result, out.consensus_value, out.first_agreed_round, out.stability_rounds) == ("valid", 10, 2, 2)
    assert out.trajectory[0] == {"Alice": 10, "Bob": 10, "Carol": 30, "Dave": None}
    assert out.first_half_stop_round == 2 and out.first_half_stop["votes"]["Bob"] == "stop"
    assert out.byzantine_infiltration == 1.0 and out.inclusivity == 1.0
    assert res.agent_answers == {"Alice": "10", "Bob": "10", "Carol": "10"} and res.answer is None
    assert AgreeTask().score_outcome(game(), out) == 1.0


def test_a_byzantine_abstain_vote_fails_the_batch_check_and_counts_as_continue():
    """With more than 30% failing, the retries are batches; three failed batches: continue."""
    three = Instance(task="agree", id="t", prompt="", data={
        "agents": ["Alice", "Bob", "Dave"], "byzantine": ["Dave"], "start_values": {"Alice": 5, "Bob": 5},
        "max_rounds": 1,
    })  # fmt: skip
    replies = {
        ("Alice", 1, "propose"): [P(5)], ("Bob", 1, "propose"): [P(5)], ("Dave", 1, "propose"): [P(7)],
        ("Alice", 1, "vote"): [V("stop")], ("Bob", 1, "vote"): [V("stop")],
        ("Dave", 1, "vote"): [V("abstain")] * 3,
    }  # fmt: skip
    backend, res = replay(three, replies)
    assert [names(b) for b in backend.calls] == [["Alice", "Bob", "Dave"]] * 2 + [["Dave"]] * 2
    errors = [e.text for e in res.events if e.kind == "error"]
    assert errors == [f"vote reply fails the batch check (attempt {k})" for k in (1, 2, 3)]
    assert [e.data["value"] for e in res.events if e.kind == "vote"] == ["stop", "stop", "continue"]
    assert res.info["ended_by_vote"]  # 2 of 3 agents voted stop


def test_a_byzantine_abstain_with_reasoning_passes_the_batch_and_keeps_its_value():
    replies = {
        **{(n, r, "propose"): [P(10 + r)] for n in ("Alice", "Bob", "Carol") for r in (1, 2)},
        ("Dave", 1, "propose"): [P(7, "hide")],
        ("Dave", 2, "propose"): [J(internal_strategy="go quiet", value="abstain", public_reasoning="I need more time to decide.")],
        **{(n, r, "vote"): [V("continue")] for n in ("Alice", "Bob", "Carol", "Dave") for r in (1, 2)},
    }  # fmt: skip
    _, res = replay(game(max_rounds=2), replies)
    dave = [(e.data["value"], e.text) for e in res.events if e.kind == "message" and e.worker == "Dave"]
    assert dave == [(7, "a reasoning long enough"), (7, "I need more time to decide.")]
    assert res.outcome.result == "timeout"


def test_eleven_agents_are_listed_in_the_published_order_with_ids():
    agents = [f"P{i}" for i in range(11)]
    eleven = Instance(task="agree", id="e", prompt="", data={
        "agents": agents, "byzantine": [], "start_values": {a: i for i, a in enumerate(agents)},
        "max_rounds": 1,
    })  # fmt: skip
    ids = [f"agent_{i}" for i in range(11)]
    replies = {(a, 1, "propose"): [P(3)] for a in ids} | {(a, 1, "vote"): [V("stop")] for a in ids}
    backend, res = replay(eleven, replies, names="ids")
    order = sorted(ids)  # as strings: agent_0, agent_1, agent_10, agent_2, ...
    assert order[:4] == ["agent_0", "agent_1", "agent_10", "agent_2"]
    assert names(backend.calls[0]) == order
    vote = by(backend.calls[1])["agent_2"].messages[1]["content"]
    listed = re.findall(r"^  (agent_\d+)(?: \(you\))?:", vote, re.MULTILINE)
    assert listed == ["agent_2"] + [a for a in order if a != "agent_2"]
    history = re.search(r"Round 1: (.*)", vote).group(1)
    assert re.findall(r"(agent_\d+) value", history) == order
    assert by(backend.calls[0])["agent_3"].messages[0]["content"].startswith("You are agent_3,")
    assert "Your starting number: 3" in by(backend.calls[0])["agent_3"].messages[0]["content"]
    assert res.outcome.result == "valid" and set(res.agent_answers) == set(ids)  # 3 is agent_3's start


def test_no_think_for_qwen3_models():
    replies = {(n, 1, "propose"): [P(10)] for n in ("Alice", "Bob", "Carol", "Dave")}
    replies |= {(n, 1, "vote"): [V("stop")] for n in ("Alice", "Bob", "Carol", "Dave")}
    backend, res = replay(game(max_rounds=1), replies, backend_name="local:/models/Qwen3-14B")
    assert all(r.messages[-1]["content"].endswith(" /no_think") for r in backend.requests)
    assert res.info["no_think"]
    plain, _ = replay(game(max_rounds=1), replies, backend_name="openai:gpt-4o")
    assert not any("/no_think" in r.messages[-1]["content"] for r in plain.requests)
    forced, _ = replay(game(max_rounds=1), replies, no_think="always")
    assert all(r.messages[-1]["content"].endswith(" /no_think") for r in forced.requests)
    assert wants_no_think("openai:Qwen/Qwen3-8B") and wants_no_think("local:qwen-3-32b")
    assert not wants_no_think("openai:Qwen/Qwen3-30B-A3B-Instruct-2507") and not wants_no_think("local:qwen2.5")


def replies_for(rounds: int, vote: str = "continue") -> dict:
    out = {}
    for r in range(1, rounds + 1):
        for name, v in (("Alice", 10 + r), ("Bob", 30), ("Carol", 30)):
            out[(name, r, "propose")] = [P(v, f"note {r}", f"my reasoning in round {r}")]
            out[(name, r, "vote")] = [V(vote)]
        out[("Dave", r, "propose")] = [P(7, "hide")]
        out[("Dave", r, "vote")] = [V("continue")]
    return out


def test_memory_window_and_notes():
    backend, res = replay(game(max_rounds=7), replies_for(7), memory=3)
    last = by(backend.calls[-2])["Alice"].messages[1]["content"]  # round 7 proposal
    assert re.findall(r"^Round (\d+):", last, re.MULTILINE) == ["6", "5", "4"]  # newest first
    assert re.findall(r"^round (\d+): note", last, re.MULTILINE) == ["2", "3", "4", "5", "6"]  # last 5, oldest first
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
    assert set(first) == {"Alice", "Bob", "Carol"}  # scripted Byzantine agents make no calls
    assert "none is Byzantine (malicious)" in first["Alice"].messages[0]["content"]
    dave = [e.data["value"] for e in res.events if e.kind == "message" and e.worker == "Dave"]
    assert len(dave) == 2 and all(0 <= v <= 50 for v in dave)


INVALID = "invalid"


@pytest.mark.parametrize(
    ("reply", "byzantine", "own_loop", "value"),
    [
        (P(60, "abc", "too high, clamped to 50"), False, False, 50),
        (P(-3, "abc", "too low, clamped to 0.."), False, False, 0),
        (P(12.9, "abc", "a fraction is cut down"), False, False, 12),
        (P(5, "ab", "notes too short here"), False, False, INVALID),
        (P(5, "abc", "too short"), False, False, INVALID),  # 9 characters of reasoning
        (P(5, "abc", "too short"), False, True, 5),  # the own loop wants it non-empty only
        (P("5", "abc", "a string is no number"), False, False, INVALID),
        (J(internal_strategy="abc", value="abstain"), True, False, INVALID),  # no reasoning
        (J(internal_strategy="abc", value="abstain"), True, True, None),  # a Byzantine abstains
        (J(internal_strategy="abc", value=12), True, True, 12),  # reasoning optional there
        (J(internal_strategy="abc", value=12.5), True, True, INVALID),  # not an integer
        (P(12.5, "abc", "a fraction from a Byzantine"), True, False, None),  # treated as abstain
        (J(internal_strategy="abc", value=4, public_reasoning="ok fine!!", error=1), False, True, INVALID),
    ],
)
def test_proposal_checks(reply, byzantine, own_loop, value):
    got = read_proposal(reply, byzantine, own_loop)
    assert (INVALID if got is None else got.value) == value


def test_vote_checks_and_the_published_json_reader():
    assert read_vote(V("stop"), False) == "stop"
    assert read_vote(V("abstain"), True) is None  # the batch check
    assert read_vote(V("abstain"), True, True) == "abstain" and read_vote(V(" stop "), False, True) == "stop"
    assert read_vote(V("abstain"), False, True) is None
    assert read_vote('{"decision": "STOP"}', False, True) is None and read_vote("stop", False) is None
    assert read_json('x {"a": {"b": 1}} y') == {"a": {"b": 1}}
    assert read_json('x {"a": 1} {"b": 2}') == {"a": 1}
    assert read_json('{"a": "}"} tail') is None  # braces counted naively, as published
    assert read_json("[1]") is None


@pytest.mark.parametrize(
    ("params", "message"),
    [({"awareness": "maybe"}, "awareness"), ({"byzantine": "human"}, "byzantine"),
     ({"memory": 16}, "memory"), ({"attempts": 0}, "attempts"), ({"names": "nicknames"}, "names"),
     ({"no_think": "sometimes"}, "no_think"), ({"batch_retry_share": 2}, "batch_retry_share")],
)  # fmt: skip
def test_bad_options(params, message):
    with pytest.raises(HivethinkError, match=message):
        get_substrate("consensus-game", **params)
