"""Every substrate end to end on the embedded model (tiny instances, a few tokens per call):
each produces a trace and metrics. Protocol logic is asserted exactly against the scripted
backend in the other files; this checks the real engine path under every protocol."""

from __future__ import annotations

import pytest

from hivethink.backends.local import LocalBackend
from hivethink.metrics import compute_metrics
from hivethink.names import EXTRACTOR
from hivethink.substrates import SUBSTRATES, get_substrate
from hivethink.substrates.base import Budget
from hivethink.tasks import get_task
from hivethink.tasks.base import Instance

pytestmark = pytest.mark.slow  # loads the embedded model

CASES = {
    "shared-cache": ("math", {}, {}),
    "independent": ("math", {}, {}),
    "single": ("countdown", {"numbers": 3}, {}),
    "chat": ("math", {}, {}),
    "blackboard": ("enumerate", {"k": 3, "kind": "primes"}, {}),
    "sequential": ("math", {}, {}),
    "centralized": ("math", {}, {}),
    "debate-du": ("arithmetic", {}, {"rounds": 1, "max_tokens": 8}),
    "program": ("enumerate", {"k": 3, "kind": "primes"}, {}),
    "camel": ("math", {}, {"max_messages": 2, "max_tokens": 8}),
    "agentsnet": ("graph", {"kind": "consensus", "size": 4, "rounds": 1}, {"max_tokens": 8}),
    "consensus-game": ("agree", {"honest": 2, "byzantine": 1, "max_rounds": 1},
                       {"max_tokens": 8, "vote_max_tokens": 8, "attempts": 1}),
    "coral": ("pair", {"probe": True}, {"max_turns": 2, "max_tokens": 8, "sycophancy": True}),
    "metagpt": ("code", {}, {"max_tokens": 8, "n_round": 3, "feedback": False}),
    "llm-program": ("evidence", {}, {"keep": 2, "max_expansions": 1, "step_tokens": 8}),
    "self-organizing": ("countdown", {"numbers": 3}, {"protocol": "broadcast"}),
    "sas": ("countdown", {"numbers": 3}, {"of": "self-organizing"}),
    "cascade": ("countdown", {"numbers": 3}, {}),
    "router": ("countdown", {"numbers": 3}, {"rate_tokens": 8}),
}


# AgentsNet's prompts are long and every agent keeps its whole conversation: the smallest
# network (two nodes, one round) keeps the real model's calls few.
INSTANCES = {
    "agentsnet": Instance(task="graph", id="two", prompt="", data={
        "kind": "consensus", "nodes": ["Alice", "Bob"], "edges": [["Alice", "Bob"]], "rounds": 1,
        "colors": None}),
}  # fmt: skip


def test_every_substrate_is_covered():
    assert set(CASES) == set(SUBSTRATES)


@pytest.fixture(scope="module")
def backend(smol):
    return LocalBackend(loaded=smol)


# Tokens one backend call may write: budget.max_tokens, except that ``single`` is one worker
# given the whole team's allowance (N x max_tokens).
CALL_CAP = {"single": 2 * 8}


@pytest.mark.parametrize("name", sorted(CASES))
def test_substrate_on_the_embedded_model(name, backend):
    task_name, task_params, params = CASES[name]
    task = get_task(task_name, **task_params)
    inst = INSTANCES.get(name) or task.generate(1, 0)[0]
    res = get_substrate(name, **params).run(inst, task, backend, workers=2,
                                            budget=Budget(max_tokens=8, rounds=1), seed=0)
    events = res.events
    assert res.tokens > 0 and res.sequential_passes > 0
    if any(e.kind == "token" for e in events):  # a hive: N tokens at most per lockstep pass
        assert res.sequential_passes <= 8 and res.tokens <= 2 * res.sequential_passes
    else:  # the trace accounts for every token the result reports, and each call's cap held
        calls = [e for e in events if e.kind == "step"]
        assert sum(e.data["tokens"] for e in calls) == res.tokens, name
        assert all(e.data["tokens"] <= (32 if e.worker == EXTRACTOR else CALL_CAP.get(name, 8))
                   for e in calls), name  # Coral's belief extractor has its published 32
        if not getattr(get_substrate(name, **params), "scores_text", False):  # scoring passes generate nothing
            assert res.sequential_passes <= res.tokens
    # every generation follows a prompt of its agent (what it saw is recorded); a scripted
    # partner (pair) writes without a model
    for i, e in enumerate(events):
        if e.kind == "step" and not e.data.get("scripted"):
            assert any(p.kind == "prompt" and p.worker in (e.worker, "all") for p in events[:i]), name
    # one team answer, the one the result reports
    team = [e for e in events if e.kind == "answer" and e.worker == "team"]
    assert len(team) == 1 and team[0].text == (res.answer or ""), name
    metrics = compute_metrics(events, task=task, instance=inst, result=res)
    assert 0.0 <= metrics["score"] <= 1.0
