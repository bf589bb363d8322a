"""Agents that emit garbage: never a crash, format failures counted, max-token limits held.

Every text-protocol substrate runs on the real tasks with a scripted backend whose agents reply
with prose instead of JSON, JSON naming agents that are not neighbours (or with wrong fields),
nothing at all, 100 KB of rambling, JSON nested far deeper than Python recurses, or terminal and
control characters. The local engine never returns more tokens than ``max_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import torch

from hivethink.backends import get_backend
from hivethink.backends.base import GenRequest
from hivethink.backends.fake import ScriptedBackend
from hivethink.backends.local import LocalBackend
from hivethink.engine.hive import chat_ids
from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import Engine, run_generations
from hivethink.metrics import compute_metrics
from hivethink.substrates import get_substrate
from hivethink.substrates.base import Budget
from hivethink.tasks import get_task

ENDLESS = "lorem ipsum dolor sit amet, consectetur adipiscing elit " * 1800  # ~100 KB
assert len(ENDLESS) > 100_000

GARBAGE = {
    "prose": "I think we should all work hard on this problem together and be nice.",
    "wrong names": json.dumps(
        {"Zed": "hello", "Mallory9": "psst", "kind": "gossip", "text": 5, "value": "many",
         "vote": "maybe"}
    ),
    "empty": "",
    "endless": ENDLESS,
    "nested": '{"value": [' * 1200 + "\n" + "[" * 3000,  # deeper than Python recurses
    "control": "\x00\x1b[31mred\x1b[0m\x1b]0;title\x07\r\x08 \u202e [/] [bold]x{",
}

MATH = get_task("math", steps=1)
CASES = {  # case -> (substrate, params, task, workers)
    "chat": ("chat", {}, MATH, 3),
    "blackboard": ("blackboard", {}, MATH, 3),
    "sequential": ("sequential", {}, MATH, 3),
    "agentsnet": ("agentsnet", {}, get_task("graph", kind="consensus", size=4, rounds=2), 4),
    "consensus-game": ("consensus-game", {"attempts": 2}, get_task("agree", honest=3, max_rounds=3), 3),
    "camel": ("camel", {"max_messages": 6}, MATH, 2),
    "coral": ("coral", {"max_turns": 4}, MATH, 2),
    "coral-probe": ("coral", {"max_turns": 4, "sycophancy": True}, get_task("pair", probe=True, steps=1), 2),
    "debate-du": ("debate-du", {}, MATH, 3),
}
# Substrates whose every agent answers in a format each round: a failure per agent per round.
FORMATTED = ("chat", "blackboard", "sequential", "agentsnet", "consensus-game")
BUDGET = Budget(max_tokens=32, rounds=2)


def _run(case: str, reply: str):
    name, params, task, workers = CASES[case]
    substrate = get_substrate(name, **params)
    instance = task.generate(1, 0)[0]
    backend = ScriptedBackend(lambda request, index: reply)
    result = substrate.run(instance, task, backend, workers=workers, budget=BUDGET, seed=0)
    metrics = compute_metrics(result.events, task=task, instance=instance, result=result)
    return result, metrics, backend


def _format_failures(case: str, result, metrics) -> int:
    """How the substrate counted the unusable replies (trace errors, or its own stop rule)."""
    if case == "camel":  # garbage gives no instruction, or (nested) fills the published context
        return int(result.info["stop_reason"] in ("no_instruction", "token_limit"))
    if case == "coral":
        return int(not result.info["agreed"] and result.info["turns"] == 5)
    return metrics["patho_format_failures"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", GARBAGE)
@pytest.mark.parametrize("case", CASES)
def test_garbage_replies_are_counted_never_a_crash(case: str, kind: str) -> None:
    result, metrics, backend = _run(case, GARBAGE[kind])
    assert backend.requests  # the agents were asked
    assert result.answer is None or isinstance(result.answer, str)
    assert metrics["backend_errors"] == 0
    assert 0.0 <= metrics["score"] <= 1.0
    json.dumps(metrics)  # a results line can hold them
    if case in ("coral-probe", "debate-du"):
        return  # a scripted partner / no reply format: only "never a crash" is checked
    assert _format_failures(case, result, metrics) > 0, (case, kind, result.info)
    if case in FORMATTED:
        # every agent's reply was unusable: one failure per agent per round at least
        assert metrics["patho_format_failures"] >= CASES[case][3], result.info


def test_messages_to_non_neighbours_are_dropped_and_counted() -> None:
    result, metrics, _ = _run("chat", GARBAGE["wrong names"])
    assert result.info["dropped"] == 3 * 2 * 6  # 3 agents x 2 rounds x 6 unknown names
    assert result.info["delivered"] == 0 and result.info["format_errors"] == 36
    assert not [e for e in result.events if e.kind == "message"]


def test_echo_backend_cuts_endless_text_at_max_tokens() -> None:
    backend = get_backend("echo", reply=ENDLESS)
    requests = [GenRequest([{"role": "user", "content": "go"}], max_tokens=n) for n in (0, 1, 7)]
    out = backend.generate(requests)
    assert [c.completion_tokens for c in out] == [0, 1, 7]
    assert [c.finish_reason for c in out] == ["length"] * 3
    assert out[2].text == "lorem ipsum dolor sit amet, consectetur adipiscing"


PROMPTS = [
    "Write a very long story about dragons. Never stop.",
    "\x00\x1b[31m<script>alert(1)</script>\r\n" * 3 + "Repeat this forever:",
    "",
    "{" * 200,
    "Count from one to one thousand in words.",
]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Decode on one thread: a few tokens do not need two, and on a shared 2-core machine two
    threads spinning at barriers cost ten times the CPU time."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.timeout(300)
def test_local_engine_never_exceeds_max_tokens(smol, one_thread) -> None:
    limits = [0, 1, 3, 8, 13]
    prompts = [chat_ids(smol.tokenizer, [{"role": "user", "content": p}]) for p in PROMPTS]
    outs = run_generations(
        Engine(smol),
        prompts,
        max_tokens=limits,
        sampling=[SamplingParams(1.5, 1.0, seed=seed) for seed in range(len(PROMPTS))],
        stop=[[], [], ["\n\n"], [], []],
    )
    for out, limit in zip(outs, limits, strict=True):
        assert len(out.tokens) <= limit
        assert out.finish_reason in ("stop", "length")
        if len(out.tokens) < limit:  # stopped early: only by end of turn or a stop string
            assert out.finish_reason == "stop"
    assert outs[0].tokens == [] and outs[0].text == ""

    backend = LocalBackend(loaded=smol)
    requests = [
        GenRequest([{"role": "user", "content": PROMPTS[i]}], max_tokens=limits[i],
                   temperature=1.5, seed=1)
        for i in (1, 3)
    ]
    for completion, i in zip(backend.generate(requests), (1, 3), strict=True):
        assert completion.completion_tokens <= limits[i] and completion.error is None

    # a whole substrate on the local engine with a tiny per-call budget
    result = get_substrate("independent", temperature=1.5).run(
        MATH.generate(1, 0)[0], MATH, backend, workers=3, budget=Budget(max_tokens=4), seed=0
    )
    steps = [e for e in result.events if e.kind == "step"]
    assert steps and all(e.data["tokens"] <= 4 for e in steps)
