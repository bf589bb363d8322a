"""``llm-program``: paragraph ranking and best-first search on a scripted scorer whose
likelihoods are chosen, so the kept paragraphs, the expansions and the answering chain are
known; the hand-written countdown and math programs; the bad inputs."""

from __future__ import annotations

import json

import pytest

from hivethink.backends.base import Score, ScoreRequest
from hivethink.backends.fake import EchoBackend, ScriptedBackend
from hivethink.errors import HivethinkError
from hivethink.lab.config import parse_config
from hivethink.lab.grid import default_factories, expand_grid
from hivethink.substrates import get_substrate
from hivethink.substrates.base import Budget
from hivethink.substrates.llm_program import BOOK, detect_answer
from hivethink.tasks import get_task
from hivethink.tasks.base import Instance

Q = "Can a penguin fly?"
PARAS = {"P1": "Penguins swim.", "P2": "Copper conducts.", "P3": "Penguins are flightless birds.",
         "P4": "Tokyo is big."}


def evidence_instance() -> Instance:
    return Instance(task="evidence", id="ev", prompt=Q, target="no",
                    data={"question": Q, "paragraphs": [{"title": t, "text": x} for t, x in PARAS.items()]})


def scored(nll: float, tokens: int = 2) -> Score:
    return Score(logprob=-nll * tokens, tokens=tokens, prompt_tokens=5)


class World:
    """The scripted model: which step each (paragraph, chain) call writes, and every nll."""

    # the question's nll given each paragraph: P3 best, then P1, P4, P2
    RANK = {"P1": 2.0, "P2": 4.0, "P3": 1.0, "P4": 3.0}
    # (paragraph, chain so far) -> the step written
    STEPS = {
        ("P3", ""): "Penguins are birds that cannot fly.",
        ("P1", ""): "Penguins swim well.",
        ("P3", "Penguins are birds that cannot fly."): "So the answer is no.",
        ("P1", "Penguins are birds that cannot fly."): "Swimming is not flying.",
        ("P3", "Penguins swim well."): "Fish swim too.",
        ("P1", "Penguins swim well."): "So the answer is yes.",
        ("P3", "Penguins are birds that cannot fly. Swimming is not flying."): "So the answer is no.",
        ("P1", "Penguins are birds that cannot fly. Swimming is not flying."): "Birds fly. So the answer is yes.",
    }
    # nll of each step given (Q, P), (Q), (P): dP + dQ = 2 qp - q - p
    NLL = {
        "Penguins are birds that cannot fly.": (1.0, 2.0, 2.0),  # -2: best first step
        "Penguins swim well.": (2.0, 2.0, 2.0),  # 0
        "So the answer is no.": (1.0, 1.5, 1.5),  # -1
        "Swimming is not flying.": (1.0, 2.0, 1.0),  # -1
        "Fish swim too.": (3.0, 1.0, 1.0),  # +4
        "So the answer is yes.": (2.0, 1.0, 1.0),  # +2
        "Birds fly. So the answer is yes.": (2.0, 2.0, 1.0),  # +1
    }

    def __init__(self) -> None:
        self.shown: list[str] = []

    def para_of(self, text: str) -> str:
        return next(t for t, x in PARAS.items() if x in text)

    def generate(self, request, index):
        user = request.messages[-1]["content"]
        self.shown.append(user)
        chain = user.split("Reasoning so far:\n", 1)[1].split("\n\nWrite only", 1)[0]
        chain = "" if chain == "(none yet)" else " ".join(chain.split("\n"))
        return self.STEPS[(self.para_of(user), chain)] + "\nextra line past the delimiter"

    def score(self, request: ScoreRequest, index):
        p, c = request.prompt, request.continuation
        if c == Q:
            return scored(self.RANK[self.para_of(p)])
        if c in (" yes", " no"):
            return scored(0.5 if c == " no" else 0.9, 1)
        step = c.strip()
        qp, q, pp = self.NLL[step]
        if p.startswith("Paragraph:") and "Question:" in p:
            return scored(qp)
        if p.startswith("Question:"):
            return scored(q)
        return scored(pp)


def run(sub, world: World, instance: Instance | None = None, task=None):
    backend = ScriptedBackend(world.generate, scores=world.score)
    result = sub.run(instance or evidence_instance(), task, backend, workers=1, budget=Budget(), seed=0)
    return result, backend


def test_ranking_keeps_the_best_paragraphs_and_search_finds_the_expected_chain():
    world = World()
    sub = get_substrate("llm-program", keep=2, chains=1)
    result, backend = run(sub, world)
    assert result.info["kept"] == ["P3", "P1"]  # by the question's nll given each paragraph
    # first expansion: the empty chain; its best child (dP+dQ = -2) is expanded next and gives
    # one complete chain ("no", -1.5 mean) and one open one; the second complete chain comes from
    # expanding "cannot fly / swimming is not flying" (mean -1.5): more than 1 complete -> stop
    assert result.info["expansions"] == 3 and result.info["stop_reason"] == "chains"
    assert result.info["chain"] == ["Penguins are birds that cannot fly.", "So the answer is no."]
    assert result.answer == "no" and result.info["forced"] is False
    # each generation call saw one paragraph, the question and its chain: nothing else
    first = world.shown[0]
    assert PARAS["P3"] in first and PARAS["P1"] not in first and PARAS["P2"] not in first
    assert all(sum(x in s for x in PARAS.values()) == 1 for s in world.shown)
    # the step stops at the delimiter (the scripted backend ignores stop strings: cut anyway)
    assert all("extra line" not in r.continuation for r in backend.score_requests)
    ranks = [r for r in backend.score_requests if r.continuation == Q]
    assert [r.prompt for r in ranks] == [BOOK.render("rank_prompt", paragraph=x) for x in PARAS.values()]


def test_nll_ranking_and_voting_change_the_answer():
    world = World()
    result, _ = run(get_substrate("llm-program", keep=2, ranking="nll", chains=1, answer_from="vote"), world)
    # by nll(S|Q,P) alone "cannot fly" (1.0) still leads; its children "no" (1.0) and
    # "swimming is not flying" (1.0) tie; the vote over the complete chains is "no"
    assert result.answer == "no"
    assert all(a in ("yes", "no") for a in result.info["chain_answers"])


def test_a_chain_at_the_step_cap_gets_its_answer_forced_by_likelihood():
    world = World()
    result, backend = run(get_substrate("llm-program", keep=2, max_steps=1, chains=0), world)
    forced = [r for r in backend.score_requests if r.continuation in (" yes", " no")]
    assert forced and all(r.prompt.endswith("So the answer is") for r in forced)
    # " no" (nll 0.5) is likelier than " yes" (0.9) for every chain
    assert result.answer == "no" and result.info["forced"] is True


def test_a_backend_that_cannot_score_is_a_recorded_error_and_the_grid_refuses_echo(tmp_path):
    result = get_substrate("llm-program").run(evidence_instance(), None, EchoBackend(reply="x"),
                                               workers=1, budget=Budget(), seed=0)
    assert result.answer is None
    assert any(e.kind == "error" and e.data.get("backend") and "cannot score" in e.text for e in result.events)
    unscored = ScriptedBackend(lambda r, i: "x")  # a fake without scores: per-request errors
    result = get_substrate("llm-program").run(evidence_instance(), None, unscored, workers=1,
                                               budget=Budget(), seed=0)
    assert result.answer is None and result.info["stop_reason"] == "scoring_failed"
    source = tmp_path / "ev.jsonl"
    source.write_text(json.dumps({"question": Q, "answer": "no", "paragraphs": ["a", "b"]}) + "\n")
    config = parse_config({
        "models": [{"kind": "echo"}], "substrates": ["llm-program"],
        "tasks": [{"name": "evidence", "params": {"source": str(source)}}],
    })  # fmt: skip
    with pytest.raises(HivethinkError, match="cannot do"):
        expand_grid(config, default_factories())


def test_an_evidence_file_without_paragraphs_is_one_line(tmp_path):
    source = tmp_path / "ev.jsonl"
    source.write_text(json.dumps({"question": Q, "answer": True}) + "\n")
    with pytest.raises(HivethinkError, match=r"line 1: no field 'paragraphs'"):
        get_task("evidence", source=str(source))
    source.write_text(json.dumps({"question": Q, "answer": "maybe", "paragraphs": ["x"]}) + "\n")
    with pytest.raises(HivethinkError, match="yes/no"):
        get_task("evidence", source=str(source))


def test_a_program_runs_only_on_its_own_task():
    sub = get_substrate("llm-program", program="countdown")
    assert sub.accepts(get_task("countdown")) and not sub.accepts(get_task("math"))
    with pytest.raises(HivethinkError, match="program must be one of"):
        get_substrate("llm-program", program="chess")


def test_detectors():
    assert detect_answer("Thus the answer is: **Yes**.", "answer-is") == "yes"
    assert detect_answer("It cannot. No", "answer-is") is None
    assert detect_answer("It cannot. No.", "final-word") == "no"


def test_countdown_program_backtracks_from_a_dead_end():
    task = get_task("countdown", numbers=3)
    instance = Instance(task="countdown", id="c", prompt="", target=24,
                        data={"numbers": [2, 3, 4], "target": 24, "solution": "2 * 3 * 4"})
    replies = {
        "2, 3, 4": "2 + 3 = 5\n3 * 4 = 12\n9 * 9 = 81",  # 9 * 9: operands not available, skipped
        "4, 5": "4 + 5 = 9",  # dead end: 9 is not 24 -> back to the first state
        "2, 12": "2 * 12 = 25\n2 * 12 = 24",  # a wrong stated result is rejected
    }
    seen: list[str] = []

    def model(request, index):
        shown = request.messages[-1]["content"].split("\n")[0].removeprefix("Numbers: ")
        seen.append(shown)
        return replies[shown]

    result = get_substrate("llm-program", program="countdown").run(
        instance, task, ScriptedBackend(model), workers=1, budget=Budget(), seed=0)
    assert seen == ["2, 3, 4", "4, 5", "2, 12"]
    assert result.answer == "2 * (3 * 4)" and task.score(instance, result.answer) == 1.0
    assert "in the spirit of" in result.info["variant"] and result.info["solved"] is True


def test_math_program_retries_until_the_computation_agrees():
    task = get_task("math")
    instance = Instance(task="math", id="m", prompt="", target="12", data={"question": "What is 3 * 4?"})
    replies = ["Compute: 3 * 4\n\\boxed{13}", "Compute: 3 * 4\n\\boxed{12}"]
    backend = ScriptedBackend(replies)
    result = get_substrate("llm-program", program="math").run(instance, task, backend, workers=1,
                                                              budget=Budget(), seed=0)
    assert result.answer == "12" and result.info == {
        "program": "math", "variant": result.info["variant"], "attempts": 2, "verified": True}
    retry = backend.requests[1].messages[-1]["content"]
    assert "equals 12, not the answer it gave (13)" in retry
