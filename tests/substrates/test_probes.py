"""The common-ground and error-propagation probes on text substrates: what is shown to whom and
when (by the Recorder), and the probe metrics read from the trace."""

from __future__ import annotations

import pytest

from hivethink.backends.fake import ScriptedBackend
from hivethink.metrics import compute_metrics
from hivethink.substrates import Budget, get_substrate
from hivethink.tasks.probes import PROBE_SUBSTRATES, CommonGroundTask, ErrorPropagationTask


def test_a_revision_reaches_every_agent_from_the_start_round_on():
    task = CommonGroundTask(start=1)
    inst = task.generate(1, 0)[0]
    backend = ScriptedBackend(lambda r, i: f"The answer is {inst.target}." if i >= 2 else "It is 0.")
    res = get_substrate("debate-du", setup="arithmetic").run(inst, task, backend, workers=2, budget=Budget(), seed=0)
    shown = [[inst.probe.text in r.messages[-1]["content"] for r in batch] for batch in backend.calls]
    assert shown == [[False, False], [True, True], [True, True]]
    assert backend.calls[1][0].messages[-1]["content"].endswith("\n\n" + inst.probe.text)
    probed = [(e.step, e.worker) for e in res.events if e.kind == "prompt" and e.data.get("probe") == "revision"]
    assert probed == [(1, "Alice"), (1, "Bob"), (2, "Alice"), (2, "Bob")]
    m = compute_metrics(res.events, task=task, instance=inst, result=res)
    assert (m["probe_shown"], m["probe_follows_revision"], m["probe_first_frame"]) == (1.0, 1.0, 0.0)
    assert m["score"] == 1.0


def test_a_team_that_keeps_the_first_frame():
    task = CommonGroundTask(start=2)
    inst = task.generate(1, 1)[0]
    backend = ScriptedBackend(lambda r, i: f"I stick with {inst.probe.misled}")
    res = get_substrate("debate-du", setup="arithmetic").run(inst, task, backend, workers=2, budget=Budget(), seed=0)
    m = compute_metrics(res.events, task=task, instance=inst, result=res)
    assert (m["probe_follows_revision"], m["probe_first_frame"]) == (0.0, 1.0)
    assert [any(e.data.get("probe") for e in res.events if e.kind == "prompt" and e.step == s) for s in range(3)] == [
        False, False, True,
    ]


def test_a_wrong_claim_seeded_into_one_agent_and_its_spread():
    task = ErrorPropagationTask()
    inst = task.generate(1, 0)[0]
    wrong = inst.probe.marker

    def script(request, index):
        text = request.messages[-1]["content"]
        if inst.probe.text in text:  # the seeded agent uses the claim
            return f"Using the product {wrong}, the answer is {inst.probe.misled}."
        if index >= 3 and index % 3 == 1:  # Bob picks the number up in round 1
            return f"Alice says {wrong}, so {inst.probe.misled}."
        return f"I compute {inst.target}."

    backend = ScriptedBackend(script)
    res = get_substrate("debate-du", setup="arithmetic").run(inst, task, backend, workers=3, budget=Budget(), seed=0)
    seeded = [[inst.probe.text in r.messages[-1]["content"] for r in batch] for batch in backend.calls]
    assert seeded == [[True, False, False]] * 3  # the first agent called, in every call
    m = compute_metrics(res.events, task=task, instance=inst, result=res)
    assert (m["probe_repeaters"], m["probe_repeat_share"], m["probe_rounds_to_repeat"]) == (1, 0.5, 1)
    assert m["probe_team_misled"] == 1.0 and m["score"] == 0.0  # 2 of 3 end on the misled answer


def test_helper_calls_are_never_probed():
    task = ErrorPropagationTask()
    inst = task.generate(1, 2)[0]
    backend = ScriptedBackend(lambda r, i: "not sure yet")
    get_substrate("coral", max_turns=2).run(inst, task, backend, workers=2, budget=Budget(), seed=0)
    extractor = [r for r in backend.requests if "The reply to extract" in r.messages[-1]["content"]]
    talkers = [r for r in backend.requests if r not in extractor]
    assert extractor and not any(inst.probe.text in str(r.messages) for r in extractor)
    assert inst.probe.text in talkers[0].messages[-1]["content"]  # the responder is called first
    assert inst.probe.text not in talkers[1].messages[-1]["content"]


@pytest.mark.parametrize("name", PROBE_SUBSTRATES)
def test_every_probe_substrate_shows_the_probe(name):
    task = CommonGroundTask(start=1)
    inst = task.generate(1, 0)[0]
    params = {"camel": {"max_messages": 3, "specify": False}, "coral": {"max_turns": 3}}.get(name, {})
    backend = ScriptedBackend(lambda r, i: "Instruction: go\nInput: None" if "RULES OF THE USER" in r.messages[0]["content"] else "ok")
    res = get_substrate(name, **params).run(inst, task, backend, workers=2, budget=Budget(rounds=2), seed=0)
    assert any(e.data.get("probe") == "revision" for e in res.events if e.kind == "prompt"), name
