"""Single or multi on the scripted backend: the SAS's one growing context, the cascade's
escalation exactly when its checker fails, the router's threshold, and token counts that add up
to what the backend reported."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from substrate_helpers import ToyTask, last_user, speaker

from hivethink.backends.base import Completion, GenRequest
from hivethink.backends.fake import ScriptedBackend
from hivethink.errors import HivethinkError
from hivethink.substrates import get_substrate
from hivethink.substrates.base import Budget
from hivethink.tasks import get_task
from hivethink.tasks.mission import MissionTask

MAS = {"name": "self-organizing", "params": {"protocol": "sequential"}}


class Counting:
    """Wraps a backend and adds up the tokens it reported."""

    def __init__(self, inner: ScriptedBackend) -> None:
        self.inner, self.name = inner, "counting"
        self.prompt = self.generated = 0

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        out = self.inner.generate(requests)
        self.prompt += sum(c.prompt_tokens for c in out)
        self.generated += sum(c.completion_tokens for c in out)
        return out


def member(request: GenRequest) -> str:
    """The team member a request speaks for (its own system prompt, or the SAS turn's)."""
    found = re.findall(r"You are (\w+), one of", request.messages[0]["content"] + last_user(request))
    return found[-1] if found else "?"


def script(answers: dict[str, str], rating: str = "3", check: str = "YES"):
    def reply(request: GenRequest, _: int) -> str:
        text = last_user(request)
        if "How difficult" in text:
            return rating
        if "Check the proposed answer" in text:
            return check
        return f"ROLE: part of {member(request)}\nmy step for the team as {member(request)}, done with care: {answers.get(member(request), '')}"

    return reply


def run(name, reply, task=None, workers=3, **params):
    task = task or ToyTask()
    instance = task.generate(1, 0)[0]
    backend = Counting(ScriptedBackend(reply))
    substrate = get_substrate(name, **params)
    result = substrate.run(instance, task, backend, workers=workers, budget=Budget(max_tokens=32), seed=0)
    return result, backend, instance


def test_sas_plays_every_member_in_one_growing_context():
    result, backend, _ = run("sas", script({"Carol": "ANSWER: 4"}), of="self-organizing")
    requests = backend.inner.requests
    assert [len(c) for c in backend.inner.calls] == [1, 1, 1]
    assert [member(r) for r in requests] == ["Alice", "Bob", "Carol"]
    third = requests[2].messages
    assert [m["role"] for m in third] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert third[2]["content"].startswith("ROLE: part of Alice")
    # the member's prompt quotes the earlier replies; the one agent already has them above
    assert "my step for the team" not in third[-1]["content"]
    assert "(your reply in turn 1, above)" in third[-1]["content"]
    assert "(your reply in turn 2, above)" in third[-1]["content"]
    assert third[-1]["content"].startswith("Turn 3.")
    assert result.answer == "4" and result.agent_answers == {"solo": "4"}
    workers = {e.worker for e in result.events if e.kind in ("prompt", "step", "role")}
    assert workers == {"solo"}
    assert [e.data["as"] for e in result.events if e.kind == "step"] == ["Alice", "Bob", "Carol"]
    prompts = [e.text for e in result.events if e.kind == "prompt"]
    assert prompts == [m["content"] for m in third if m["role"] == "user"]  # what was sent
    steps = [e.data["tokens"] for e in result.events if e.kind == "step"]
    assert result.sequential_passes == sum(steps) and result.sequential_calls == 3  # all in a row
    assert (result.prompt_tokens, result.tokens) == (backend.prompt, backend.generated)


def countdown_answers(instance, good: bool) -> dict[str, str]:
    expression = instance.data["solution"] if good else "1 + 1"
    return {"Carol": f"\\boxed{{{expression}}}"}


@pytest.mark.parametrize("good", [True, False])
def test_cascade_escalates_exactly_when_the_verifier_fails(good):
    task = get_task("countdown", numbers=3)
    instance = task.generate(1, 0)[0]
    reply = script(countdown_answers(instance, good))
    backend = Counting(ScriptedBackend(reply))
    result = get_substrate("cascade", mas=MAS).run(instance, task, backend, workers=3, budget=Budget(), seed=0)
    requests = backend.inner.requests
    sas_calls = [r for r in requests if r.messages[0]["content"].startswith("You are one agent")]
    mas_calls = [r for r in requests if r not in sas_calls]
    assert len(sas_calls) == 3
    assert len(mas_calls) == (0 if good else 3)
    assert result.info["escalated"] is (not good) and result.info["passed"] is good
    assert result.info["stage"] == ("sas" if good else "mas")
    check = next(e for e in result.events if e.worker == "checker")
    assert check.data == {"checker": "verifier", "passed": good}
    assert (result.prompt_tokens, result.tokens) == (backend.prompt, backend.generated)
    team = [e for e in result.events if e.kind == "answer" and e.worker == "team"]
    assert len(team) == 1 and team[0] is result.events[-1]
    assert team[0].seen == (["solo"] if good else ["Carol"])


@pytest.mark.parametrize("good", [True, False])
def test_cascade_on_the_code_task_escalates_exactly_when_its_tests_fail(good):
    """The code task's verifier (its tests, run in the sandbox) is the cascade's checker too."""
    task = get_task("code")
    instance = task.generate(1, 0)[0]
    body = "a + b" if good else "a - b"
    code = f"```python\ndef add(a: int, b: int) -> int:\n    return {body}\n```"
    backend = Counting(ScriptedBackend(script({"Carol": code})))
    result = get_substrate("cascade", mas=MAS).run(instance, task, backend, workers=3, budget=Budget(), seed=0)
    assert instance.data["entry_point"] == "add"
    assert result.info["escalated"] is (not good) and result.info["passed"] is good
    check = next(e for e in result.events if e.worker == "checker")
    assert check.data == {"checker": "verifier", "passed": good}


@pytest.mark.parametrize(("verdict", "escalated"), [("YES, it is right.", False), ("NO: wrong sum", True),
                                                     ("I cannot tell", True)])  # fmt: skip
def test_cascade_self_check_is_a_named_variant(verdict, escalated):
    result, backend, _ = run("cascade", script({"Carol": "ANSWER: 4"}, check=verdict), mas=MAS, checker="self")
    checks = [r for r in backend.inner.requests if "Check the proposed answer" in last_user(r)]
    assert len(checks) == 1 and "ANSWER" not in last_user(checks[0]).split("Proposed answer:")[0]
    assert "4" in last_user(checks[0]).split("Proposed answer:")[1]
    assert result.info["escalated"] is escalated
    assert len(backend.inner.requests) == 3 + 1 + (3 if escalated else 0)
    assert (result.prompt_tokens, result.tokens) == (backend.prompt, backend.generated)


def test_cascade_fails_an_empty_answer_without_a_check():
    result, backend, _ = run("cascade", script({}), mas=MAS, checker="self")
    assert result.info["escalated"] is True and result.info["sas_answer"] is None
    assert not any("Check the proposed answer" in last_user(r) for r in backend.inner.requests)


@pytest.mark.parametrize(("rating", "threshold", "route"), [
    ('{"difficulty": 3}', 3, "sas"), ('{"difficulty": 3}', 2, "mas"), ("Difficulty: 7 of 10", 7, "sas"),
    ("8", 7, "mas"), ("very hard", 5, "mas"), ("0", 5, "mas"), ('{"difficulty": 11} 4', 10, "mas"),
])  # fmt: skip
def test_router_routes_by_threshold(rating, threshold, route):
    result, backend, _ = run("router", script({"Carol": "ANSWER: 4"}, rating=rating), mas=MAS, threshold=threshold)
    assert result.info["route"] == route
    solo = [r for r in backend.inner.requests if r.messages[0]["content"].startswith("You are one agent")]
    assert len(solo) == (3 if route == "sas" else 0)
    assert len(backend.inner.requests) == 1 + 3
    assert backend.inner.requests[0].json_schema["properties"]["difficulty"]["maximum"] == 10
    note = next(e for e in result.events if e.kind == "message" and e.worker == "router")
    assert note.data["route"] == route
    assert (result.prompt_tokens, result.tokens) == (backend.prompt, backend.generated)


def test_router_sends_an_unreadable_rating_where_unreadable_says():
    result, _, _ = run("router", script({}, rating="no idea"), mas=MAS, unreadable="sas")
    assert result.info == {**result.info, "route": "sas", "difficulty": None}


@pytest.mark.parametrize(("name", "params", "message"), [
    ("cascade", {"checker": "oracle"}, "unknown checker 'oracle'"),
    ("cascade", {"mas": "router"}, "'router' is not a multi-agent preset"),
    ("cascade", {"mas": {"name": "chat", "parms": {}}}, "mas must be a substrate name"),
    ("cascade", {"mas": "agentsnet"}, "needs structured instances"),
    ("cascade", {"sas": {"of": "chat", "extra": 1}}, "sas must be"),
    ("router", {"threshold": 11}, "threshold must be between 0 and scale"),
    ("router", {"unreadable": "coin"}, "unreadable must be sas or mas"),
    ("sas", {"of": "cascade"}, "'cascade' is not a multi-agent preset"),
    ("sas", {"of": "self-organizing", "params": {"protocol": "x"}}, "unknown protocol"),
])  # fmt: skip
def test_bad_hybrid_options_are_one_line_errors(name, params, message):
    with pytest.raises(HivethinkError, match=message):
        get_substrate(name, **params)


def test_a_cascade_on_a_task_without_a_verifier_is_a_config_error(tmp_path):
    cascade = get_substrate("cascade", mas=MAS)
    with pytest.raises(HivethinkError, match="task 'mission' has no verifier"):
        cascade.check_task(MissionTask())
    cascade.check_task(get_task("countdown"))  # countdown has one
    get_substrate("cascade", mas=MAS, checker="self").check_task(MissionTask())  # self needs none


def test_hybrids_record_the_prompt_books_of_their_stages():
    assert set(get_substrate("cascade", mas=MAS).prompt_books) == {"hybrid", "sas", "self-organizing"}
    assert get_substrate("sas", of="debate-du").prompt_books == ("sas", "debate-du")


def test_sas_of_a_parallel_preset_runs_its_calls_one_after_another():
    def reply(request, _):
        return "ROLE: x\nANSWER: 4" if "Announce" not in last_user(request) else "ROLE: x\nI will."

    result, backend, _ = run("sas", reply, of="self-organizing", params={"protocol": "broadcast"})
    assert all(len(c) == 1 for c in backend.inner.calls)
    assert len(backend.inner.requests) == 3 + 3 + 1  # intentions, work, compile
    assert speaker(backend.inner.requests[0]) == "one"  # "You are one agent ..."
