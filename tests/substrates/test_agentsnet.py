"""The agentsnet preset replayed against fixed replies: every prompt, delivery, retry, final
answer and the score (protocols.md section 2); the published parsers and their quirks."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from hivethink import prompts
from hivethink.backends.fake import ScriptedBackend
from hivethink.errors import HivethinkError
from hivethink.substrates import Budget, get_substrate
from hivethink.substrates.agentsnet import parse_answer, parse_messages, parse_messages_lenient
from hivethink.tasks.base import Instance
from hivethink.tasks.graph import GraphTask

# A path Alice - Bob - Carol; colouring with max degree 2 + 1 = 3 groups; 3 rounds.
INSTANCE = Instance(
    task="graph", id="path", prompt="",
    data={"kind": "coloring", "graph": None, "nodes": ["Alice", "Bob", "Carol"],
          "edges": [["Alice", "Bob"], ["Bob", "Carol"]], "rounds": 3, "colors": 3},
)  # fmt: skip

# Each agent's replies, in the order it is called.
REPLIES = {
    "Alice": [
        'Thinking first. {"Bob": "Alice here"}',  # step 0
        "{}",  # step 1: sends nothing, no retry
        '{"Bob": "final from Alice"}',  # step 2
        "### Final Answer ### Group 1",  # step 3
    ],
    "Bob": [
        'I will write {"Alice": "hi", "Carol": "hi Carol"',  # step 0: no closing brace
        '{"Alice": "hi Alice", "Carol": "hi Carol", "Dave": "psst"}',  # retry: Dave is no neighbour
        'Plan:\\n{"Alice": "b1", "Carol": "c1"}',  # step 1: literal \n outside JSON is fine
        '{"Alice": "final b", "Carol": "final c"}',  # step 2
        "My answer: Group 2",  # step 3: no marker
        "### Final Answer ###Group 2",  # retry
    ],
    "Carol": [
        '{"Bob": "x", "Zed": "?"}',  # step 0: Zed is no known agent name
        "still nothing",  # retry: fails again, sends nothing
        '{"Bob": "line1\\nline2"}',  # step 1: literal \n inside the JSON string breaks it
        '{"Bob": "c to b"}',  # retry
        '{"Bob": "final from Carol"}',  # step 2
        "### Final Answer ### group 3",  # step 3: options are case-sensitive
        "### Final Answer ### Group 1",  # retry
    ],
}


def me(request) -> str:
    return re.search(r"Your name is (\w+)", request.messages[0]["content"]).group(1)


def replay():
    seen: Counter[str] = Counter()

    def script(request, index):
        who = me(request)
        seen[who] += 1
        return REPLIES[who][seen[who] - 1]

    backend = ScriptedBackend(script)
    task = GraphTask(kind="coloring")
    result = get_substrate("agentsnet").run(INSTANCE, task, backend, workers=1, budget=Budget(), seed=0)
    return backend, result, task


COT = "First lay out your chain of thought step by step, then write the messages for your neighbours."
REQUEST = (
    "{cot} Write your messages in the JSON format described above. {left} rounds of communication "
    "are left before you have to decide. Your neighbours are: {nbrs} "
)


def test_the_whole_transcript():
    backend, res, task = replay()
    calls = [[me(r) for r in batch] for batch in backend.calls]
    assert calls == [
        ["Alice", "Bob", "Carol"], ["Bob", "Carol"],  # step 0 and its retries
        ["Alice", "Bob", "Carol"], ["Carol"],  # step 1
        ["Alice", "Bob", "Carol"],  # step 2
        ["Alice", "Bob", "Carol"], ["Bob", "Carol"],  # step 3: final answers
    ]
    first = {me(r): r for r in backend.calls[0]}
    system = first["Alice"].messages[0]["content"]
    assert "There are 3 agents in total" in system and "Your name is Alice." in system
    assert "direct neighbours (Bob)" in system and "repeats for 3 rounds" in system
    assert "There are exactly 3 groups: Group 1, ..., Group 3." in system
    assert "Carol" not in system  # an agent knows only its neighbours' names
    assert first["Alice"].messages[1]["content"] == (
        f"What are the first messages you want to send to your neighbours? {COT} "
        "Write your messages in the JSON format described above."
    )
    assert {r.max_tokens for r in backend.requests} == {4096}
    assert {r.temperature for r in backend.requests} == {None}  # the provider's default, as published
    # the JSON example keeps the published trailing comma after its last entry
    assert '"Ben": "The message Ben will receive.",\n}' in system

    # the retry is appended to the agent's own conversation, after its failed reply
    bob_retry = backend.calls[1][0].messages
    assert [m["role"] for m in bob_retry] == ["system", "user", "assistant", "user"]
    assert bob_retry[2]["content"] == REPLIES["Bob"][0]
    assert bob_retry[3]["content"] == "Your messages could not be read as JSON. Please check your reply and try again."

    step1 = {me(r): r.messages[-1]["content"] for r in backend.calls[2]}
    assert step1["Bob"] == (
        "Here are the messages from your neighbours:\n\nMessage from Alice:\n\nAlice here\n\n"
        "These neighbours sent you no message in this round: Carol\n\n"
        + REQUEST.format(cot=COT, left=2, nbrs="Alice, Carol")
    )
    assert step1["Alice"].startswith("Here are the messages from your neighbours:\n\nMessage from Bob:\n\nhi Alice\n\n")
    assert "psst" not in "".join(step1.values())  # the message to Dave went nowhere

    step2 = {me(r): r.messages[-1]["content"] for r in backend.calls[4]}
    assert step2["Alice"] == (
        "Here are the messages from your neighbours:\n\nMessage from Bob:\n\nb1\n\n"
        + REQUEST.format(cot=COT, left=1, nbrs="Bob")
        + "These are the last messages your neighbours will receive from you."
    )
    assert "No message" not in step2["Bob"] and "Message from Carol:\n\nc to b\n\n" in step2["Bob"]
    assert "sent you no message in this round: Alice" in step2["Bob"]  # Alice sent {}

    final = {me(r): r for r in backend.calls[5]}
    assert final["Carol"].messages[-1]["content"] == (
        "Message passing is over. Here are the last messages your neighbours sent you:\n\n"
        "Message from Bob:\n\nfinal c\n\n\n\nFirst lay out your chain of thought step by step, then "
        "answer the following: Which group do you put yourself in? Write your answer like this: "
        "'### Final Answer ###', followed by your final answer. For the final answer use nothing "
        "but one of these valid options: Group 1, Group 2, Group 3"
    )
    assert len(final["Alice"].messages) == 8  # every call carries the whole conversation
    assert backend.calls[6][0].messages[-1]["content"] == (
        "Your answer could not be read. Please check your answer and try again."
    )

    delivered = [(e.step, e.worker, e.recipients[0], e.text) for e in res.events if e.kind == "message" and e.recipients]
    assert delivered == [
        (0, "Alice", "Bob", "Alice here"), (0, "Bob", "Alice", "hi Alice"), (0, "Bob", "Carol", "hi Carol"),
        (1, "Bob", "Alice", "b1"), (1, "Bob", "Carol", "c1"), (1, "Carol", "Bob", "c to b"),
        (2, "Alice", "Bob", "final from Alice"), (2, "Bob", "Alice", "final b"),
        (2, "Bob", "Carol", "final c"), (2, "Carol", "Bob", "final from Carol"),
    ]  # fmt: skip
    undelivered = [(e.step, e.worker, e.data, e.text) for e in res.events if e.kind == "message" and not e.recipients]
    assert undelivered == [(0, "Bob", {"to": "Dave", "delivered": False}, "psst")]
    retried = [(e.step, e.worker, e.data["phase"]) for e in res.events if e.kind == "step" and e.data["attempt"] == 2]
    assert retried == [(0, "Bob", "messages"), (0, "Carol", "messages"), (1, "Carol", "messages"),
                       (3, "Bob", "answer"), (3, "Carol", "answer")]  # fmt: skip
    assert all(e.data["attempt"] in (1, 2) and e.data["phase"] for e in res.events if e.kind == "prompt")

    assert res.agent_answers == {"Alice": "Group 1", "Bob": "Group 2", "Carol": "Group 1"}
    assert res.answer is None  # the result travels as the typed outcome
    out = res.outcome
    assert out.answers == res.agent_answers
    assert (out.unparsed_messages, out.unparsed_after_retry, out.answer_retries, out.answers_missing,
            out.fallbacks, out.foreign_keys) == (3, 1, 2, 0, 5, 1)  # fmt: skip
    assert task.score_outcome(INSTANCE, out) == 1.0
    assert res.info == {"rounds": 4, "budget_exhausted": False}


def test_without_chain_of_thought_the_reminders_are_gone():
    backend = ScriptedBackend(lambda r, i: "{}" if "Final Answer" not in r.messages[-1]["content"] else "no")
    res = get_substrate("agentsnet", cot=False).run(INSTANCE, GraphTask(), backend, workers=1, budget=Budget(), seed=0)
    texts = [r.messages[-1]["content"] for r in backend.requests]
    assert not any("chain of thought" in t for t in texts)
    assert texts[0].startswith("What are the first messages you want to send to your neighbours?  Write")
    assert res.outcome.answers_missing == 3 and res.agent_answers == dict.fromkeys(INSTANCE.data["nodes"])


def test_prompts_come_from_a_replaceable_book(tmp_path):
    user = tmp_path / "texts"
    prompts.export(user, ["agentsnet"])
    (user / "agentsnet" / "retry_answer.txt").write_text("Again, please: {{marker}} then an option.\n")
    with pytest.raises(HivethinkError, match=r"unknown placeholder\(s\) \{\{marker\}\}"):
        prompts.use_directory(user)
    (user / "agentsnet" / "retry_answer.txt").write_text("Again, please.\n")
    prompts.use_directory(user)
    try:
        backend, _, _ = replay()
        assert backend.calls[6][0].messages[-1]["content"] == "Again, please."
    finally:
        prompts.use_directory(None)


# --- the published parsers -----------------------------------------------------------------------

KNOWN = frozenset({"Alice", "Bob", "Carol", "Dave"})


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"Alice": "a"}', {"Alice": "a"}),
        ('text {"Alice": "a"} more text', {"Alice": "a"}),
        ('{"Alice": "a"} and {"Bob": "b"}', {"Bob": "b"}),  # the first candidate runs to the last }
        ("{}", {}),  # accepted: sends nothing, no retry
        ('{"Dave": "psst"}', {"Dave": "psst"}),  # any known name passes (delivery filters)
        ('{"alice": "a"}', None),  # names are case-sensitive
        ('{"Alice": 1}', None),  # values must be strings
        ('{"Alice": "x\\ny"}', None),  # a literal \n becomes a newline first: invalid JSON string
        ('{"note": {"Alice": "hi"}}', None),  # no candidate reads as such an object
        ("no json at all", None),
        ('{"Alice": "a",}', None),  # strict JSON
    ],
)
def test_published_message_parser(reply, expected):
    assert parse_messages(reply, KNOWN) == expected


def test_lenient_message_parser_variant():
    assert parse_messages_lenient('x {"Alice": "a", "Zed": "z", "Bob": 3} y', ["Alice", "Bob"]) == {"Alice": "a"}
    assert parse_messages_lenient('{"Zed": "z"}', ["Alice"]) is None
    assert parse_messages_lenient("{}", ["Alice"]) == {}


GROUPS = [f"Group {k}" for k in range(1, 13)]


@pytest.mark.parametrize(
    ("reply", "options", "published", "bounded", "lenient"),
    [
        ("### Final Answer ### Yes", ["Yes", "No"], "Yes", "Yes", "Yes"),
        ("### Final Answer ###\n\nNo.", ["Yes", "No"], "No", "No", "No"),
        ("### Final Answer ### yes", ["Yes", "No"], None, None, "Yes"),  # case-sensitive
        ("Final Answer: Yes", ["Yes", "No"], None, None, None),  # the marker is required
        ("### Final Answer ### 10", ["0", "1"], "1", None, None),  # published quirk: no boundary
        ("### Final Answer ### Group 12", GROUPS, "Group 1", "Group 12", "Group 12"),
        ("### Final Answer ### Anna", ["Ann", "Anna", "None"], "Ann", "Anna", "Anna"),
        ("### Final Answer ### hmm\n### Final Answer ### No", ["Yes", "No"], "No", "No", "No"),
    ],
)
def test_final_answer_parsers(reply, options, published, bounded, lenient):
    assert parse_answer(reply, options) == published
    assert parse_answer(reply, options, "bounded") == bounded
    assert parse_answer(reply, options, "lenient") == lenient


@pytest.mark.parametrize(
    ("params", "message"),
    [({"messages": "strict"}, "messages must be one of"), ({"answer": "fuzzy"}, "answer must be one of"),
     ({"max_tokens": 0}, "max_tokens"), ({"colour": 1}, "no parameter colour"),
     ({"temperature": 0.7}, "provider_temperature: false")],
)  # fmt: skip
def test_bad_options_are_one_line_errors(params, message):
    with pytest.raises(HivethinkError, match=message) as err:
        get_substrate("agentsnet", **params)
    assert "\n" not in str(err.value)


def test_a_set_temperature_when_asked_for():
    backend = ScriptedBackend(lambda r, i: "{}" if "Final Answer" not in r.messages[-1]["content"] else "no")
    get_substrate("agentsnet", provider_temperature=False, temperature=0.7).run(
        INSTANCE, GraphTask(), backend, workers=1, budget=Budget(), seed=0)
    assert {r.temperature for r in backend.requests} == {0.7}


def test_a_non_graph_instance_is_refused():
    with pytest.raises(HivethinkError, match="not an AgentsNet graph instance"):
        get_substrate("agentsnet").run(
            Instance(task="math", id="m", prompt="2+2?"), GraphTask(), ScriptedBackend([]),
            workers=2, budget=Budget(), seed=0,
        )  # fmt: skip
