"""The consensus game (leorugli/byzantine-consensus-llm-agents @ b3bbf9e): the ``consensus-game`` book.

Every text is an f-string the authors build in code: the agents' system, round, vote and retry
prompts in ``byzantine_consensus_game/bcg_agents.py`` (``HonestBCGAgent``,
``ByzantineBCGAgent``), the shared round summary and the failure note in ``main.py``
(``BCGSimulation._update_round_summaries``, ``_run_batched_decisions``). The builder imports
those files from the checkout with a stand-in for vLLM (the model is never loaded: a stand-in
``LLM`` answers and records every request as ``(system, user)``) and:

- builds each prompt with holes for the agent's name, the round, the deadline and the value
  range; the honest system prompt's initial value and the current value pass through ``int()``,
  so they are built with two numbers and the hole goes where those differ;
- builds the round and vote prompts with a hole in place of the history and the notes, and
  with and without a current value, notes, a reasoning, to cut out the lines hivethink assembles
  (the current-value line, the empty-history and no-notes texts, one proposal line of the vote,
  one reasoning line), and checks that hivethink's assembly gives the authors' listing back;
- runs the agents' own retry loops (``_decide_next_value_json``, ``vote_to_terminate``) on
  replies that never parse, for the retry notes (the attempt is a number, the attempts are the
  loop's ``max_json_retries``);
- runs ``_update_round_summaries`` and ``_run_batched_decisions`` on stand-in agents for the
  history line and the failure note.

Texts the published game never shows are not imported (and have no slot): the vote's text for an
empty history (the vote always sees this round's summary), the honest agent's defaults for a
missing reasoning or value (the checks before refuse such replies) and the agent's own failure
note (``main.py`` overwrites it with its own).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hivethink.prompts.importers import pyread
from hivethink.prompts.importers.child import (
    BuildError,
    BuiltText,
    authors_module,
    built,
    hole,
    line_with,
    number_hole,
    stub_modules,
)
from hivethink.prompts.importers.core import Built, Origin, Same, System, run_child

DIR = "byzantine_consensus_game"
AGENTS, MAIN = f"{DIR}/bcg_agents.py", f"{DIR}/main.py"
A, B = 9137, 9138  # two numbers where the authors' code writes int(...) of a value
CHECK: dict[str, Any] = {"name": "agent_3", "max_rounds": 50, "low": 0, "high": 50, "round": 4}  # the check's values


class _Params:
    """vLLM's ``SamplingParams`` / ``GuidedDecodingParams``: what they were given."""

    def __init__(self, **given: Any) -> None:
        self.__dict__.update(given)


class _LLM:
    """vLLM's ``LLM``: answers each request from :attr:`reply` ``(system, user, schema)`` and
    records it; a prompt is the JSON ``[system, user]`` the stand-in chat format writes."""

    reply: Callable[[str, str, dict[str, Any]], str] = staticmethod(lambda system, user, schema: "not JSON")
    calls: list[tuple[str, str, dict[str, Any]]] = []

    def __init__(self, **_: Any) -> None:
        pass

    def generate(self, prompts: list[str], params: Any) -> list[SimpleNamespace]:
        schema = params.guided_decoding.json
        out = []
        for prompt in prompts:
            system, user = json.loads(prompt)
            _LLM.calls.append((system, user, schema))
            out.append(SimpleNamespace(outputs=[SimpleNamespace(text=_LLM.reply(system, user, schema))]))
        return out


def _modules(root: Path) -> SimpleNamespace:
    """The authors' agents and driver from ``root``, on the stand-in model."""
    stub: dict[str, dict[str, Any]] = {"vllm": {"LLM": _LLM, "SamplingParams": _Params},
            "vllm.sampling_params": {"GuidedDecodingParams": _Params}}
    stub_modules((), **stub)
    vllm_agent = authors_module(root / DIR, "vllm_agent")
    cls = vllm_agent.VLLMAgent

    def load(self: Any) -> None:  # the model "loads" as the stand-in, once
        cls._shared_llm, cls._shared_model_name, cls._shared_model_config = _LLM(), self.model_name, self.model_config

    cls._load_model = load
    # the chat format is hivethink's own code (``conversation`` and the /no_think rule): the
    # stand-in keeps the system prompt and the user turn apart
    cls._format_chat_prompt = lambda self, system, user: json.dumps([system, user])
    return SimpleNamespace(agents=authors_module(root / DIR, "bcg_agents"), main=authors_module(root / DIR, "main"))


def _agent(m: SimpleNamespace, byzantine: bool, awareness: str = "may_exist", name: str = hole("name"),
           value_range: tuple[Any, Any] = (hole("low"), hole("high"))) -> Any:
    return m.agents.create_agent(agent_id=name, is_byzantine=byzantine, value_range=value_range,
                                 byzantine_awareness=awareness)


def _between(whole: str, before: str, after: str, what: str) -> str:
    """What ``whole`` holds between ``before`` and ``after``."""
    if not (whole.startswith(before) and whole.endswith(after) and len(whole) >= len(before) + len(after)):
        raise BuildError(f"the authors' {what} is not where hivethink puts it")
    return whole[len(before):len(whole) - len(after)]


def _state(agent: Any, history: str | None, notes: str | None) -> Any:
    """``agent`` with a history (one summary) and private notes (hivethink's holes), or none."""
    agent.state.last_k_rounds = [history] if history is not None else []
    if notes is not None:
        agent.state.last_k_internal_strategies = [(1, "a note")]
        agent._format_strategy_history = lambda history=None: notes
    return agent


GAME = {"round": hole("round"), "max_rounds": hole("max_rounds")}


def _propose(m: SimpleNamespace, byzantine: bool) -> dict[str, str]:
    """The round prompt with holes, and the current-value line and the empty texts cut out."""
    def prompt(value: int | None, notes: bool = True, history: bool = True) -> str:
        agent = _state(_agent(m, byzantine), hole("history") if history else None, hole("notes") if notes else None)
        agent.my_value = value
        text: str = agent.build_round_prompt(GAME)
        return text

    before, line_a, after = line_with(prompt(A), str(A))
    _, line_b, _ = line_with(prompt(B), str(B))
    with_holes = prompt(None)
    empty_notes, empty_history = prompt(None, notes=False), prompt(None, history=False)
    template = before + hole("current") + after
    head, _, tail = with_holes.partition(hole("notes"))
    h_head, _, h_tail = with_holes.partition(hole("history"))
    return {
        "propose": template,
        "current_value": number_hole({A: line_a, B: line_b}, "value"),
        "no_value": _between(with_holes, before, after, "text for no current value"),
        "no_notes": _between(empty_notes, head, tail, "text for no notes"),
        "no_history": _between(empty_history, h_head, h_tail, "text for no history"),
    }


def _vote(m: SimpleNamespace, byzantine: bool) -> dict[str, str]:
    """The vote prompt with holes for the listing, the history and the notes, and the listing's
    lines (the agent's own, another's, a reasoning) cut out."""
    def prompt(name: str, value: int | None, reasoning: str, others: list[tuple[str, int, str]],
               notes: bool = True) -> str:
        agent = _state(_agent(m, byzantine, name=name), hole("history"), hole("notes") if notes else None)
        agent.my_value, agent.last_reasoning, agent.received_proposals = value, reasoning, others
        text: str = agent.build_vote_round_prompt(GAME)
        return text

    with_holes = prompt(hole("proposals"), None, "", [])
    before, _, after = line_with(with_holes, hole("proposals"))
    out = {"vote": before + hole("proposals") + after}
    if not byzantine:
        head, _, tail = with_holes.partition(hole("notes"))
        out["no_vote_notes"] = _between(prompt(hole("proposals"), None, "", [], notes=False), head, tail,
                                        "text for no notes in the vote")

    def listing(value: int | None, reasoning: str, others: list[tuple[str, int, str]]) -> list[str]:
        return _between(prompt(hole("name"), value, reasoning, others), before, after, "listing").split("\n")

    own_a, reason = listing(A, hole("reasoning"), [])
    own_b, _ = listing(B, hole("reasoning"), [])
    [_, no_reasoning] = listing(A, "", [])
    [abstained, other_a, other_reason] = listing(None, "", [(hole("name"), A, hole("reasoning"))])
    [_, other_b, _] = listing(None, "", [(hole("name"), B, hole("reasoning"))])
    [_, _, silent] = listing(None, "", [(hole("name"), A, "")] * 2)
    if other_reason != reason or silent != other_a:
        raise BuildError("the vote's listing is not hivethink's (one line per proposal, a reasoning line under it "
                         "only where there is one)")
    out |= {"vote_self": number_hole({A: own_a, B: own_b}, "value"), "vote_other": number_hole({A: other_a, B: other_b},
                                                                                                "value"),
            "vote_reasoning": reason, "no_reasoning": _filled(reason, "reasoning", no_reasoning),
            "vote_abstained": _filled(number_hole({A: own_a, B: own_b}, "value"), "value", abstained)}
    return out


def _filled(template: str, name: str, whole: str) -> str:
    """The value ``whole`` gives ``template``'s one hole ``name``."""
    before, _, after = template.partition(hole(name))
    return _between(whole, before, after, f"text in place of {name}")


def _retry(m: SimpleNamespace, root: Path, byzantine: bool, phase: str) -> str:
    """The retry note the agent's own loop appends, from a loop on replies that never parse."""
    agent = _state(_agent(m, byzantine, value_range=(0, 50)), hole("history"), hole("notes"))
    if not byzantine:
        agent.set_initial_value(A)  # the system prompt needs one
    _LLM.reply, _LLM.calls = staticmethod(lambda system, user, schema: "not JSON"), []
    loop = "_decide_next_value_json" if phase == "propose" else "vote_to_terminate"
    getattr(agent, loop)({"round": 1, "max_rounds": 50})
    users = [user for _, user, _ in _LLM.calls]
    cls = "ByzantineBCGAgent" if byzantine else "HonestBCGAgent"
    attempts = pyread.constant(root / AGENTS, f"{cls}.{loop}.max_json_retries")
    if len(users) != attempts or attempts < 3:
        raise BuildError(f"{cls}.{loop} made {len(users)} calls; hivethink expects max_json_retries ({attempts}, "
                         "at least 3)")
    notes = {k: _between(users[k - 1], users[0], "", "retry note") for k in (2, 3)}
    note = number_hole(notes, "attempt")
    written = f"{hole('attempt')}/{attempts}"
    if note.count(written) != 1:
        raise BuildError(f"{cls}.{loop}'s retry note does not say the attempt as 'attempt/{attempts}' once")
    return note.replace(written, f"{hole('attempt')}/{hole('attempts')}")


def _summaries(m: SimpleNamespace) -> dict[str, str]:
    """The round summary of ``_update_round_summaries``, cut into hivethink's line and entries."""
    def summary(agents: list[tuple[str, int | None, str]]) -> str:
        kept: list[str] = []
        fake = SimpleNamespace(agents={
            name: SimpleNamespace(my_value=value, last_reasoning=reasoning,
                                  state=SimpleNamespace(add_round_summary=lambda s, max_history=0: kept.append(s)))
            for name, value, reasoning in agents})
        m.main.BCGSimulation._update_round_summaries(fake, hole("round"))
        return kept[0]

    bare_a, bare_b = summary([(hole("name"), A, "")]), summary([(hole("name"), B, "")])
    start = bare_a.find(hole("name"))
    if start < 0:
        raise BuildError("the round summary does not name the agent")
    line = bare_a[:start] + hole("entries")
    entry = number_hole({A: bare_a[start:], B: bare_b[start:]}, "value")
    reasoning = _between(summary([(hole("name"), A, hole("reasoning"))]), bare_a, "", "summary's reasoning")
    abstained = _filled(entry, "value", summary([(hole("name"), None, "")])[start:])
    two = [("agent_1", 7, "Because."), ("agent_2", None, "")]
    ours = line.replace(hole("entries"), "; ".join(
        entry.replace(hole("name"), n).replace(hole("value"), str(v) if v is not None else abstained)
        + (reasoning.replace(hole("reasoning"), r) if r else "") for n, v, r in two)).replace(hole("round"), "2")
    theirs = summary(two).replace(hole("round"), "2")
    if ours != theirs:
        raise BuildError("the round summary of two agents is not hivethink's (entries joined with '; ')")
    return {"history_line": line, "entry": entry, "entry_reasoning": reasoning, "abstained": abstained}


def _failure_note(m: SimpleNamespace) -> str:
    """The public reasoning ``_run_batched_decisions`` gives an agent whose every attempt failed."""
    agent = SimpleNamespace(last_reasoning="", my_value=None, build_decision_prompt=lambda state: ("s", "u", {}),
                            batch_generate_json=lambda prompts, **_: [{"error": "x"} for _ in prompts],
                            decide_next_value=lambda state: None)
    fake = SimpleNamespace(agents={"agent_0": agent}, log=lambda *a, **k: None,
                           game=SimpleNamespace(update_agent_proposal=lambda *a: None))
    fake._is_valid_decision_response = lambda result: m.main.BCGSimulation._is_valid_decision_response(fake, result)
    m.main.BCGSimulation._run_batched_decisions(fake, 1, {"round": 1, "max_rounds": 50})
    note: str = agent.last_reasoning
    return note


def _real(m: SimpleNamespace, byzantine: bool, awareness: str, what: str) -> str:
    """A text built with the check's values (``CHECK``, start value 17)."""
    agent = _agent(m, byzantine, awareness, name=CHECK["name"], value_range=(CHECK["low"], CHECK["high"]))
    if not byzantine:
        agent.set_initial_value(17)
    text: str = getattr(agent, what)({"round": CHECK["round"], "max_rounds": CHECK["max_rounds"]})
    return text


def build(root: Path) -> dict[str, BuiltText]:
    m = _modules(root)
    out: dict[str, BuiltText] = {}
    for role, byzantine, awareness in (("may_exist", False, "may_exist"), ("none_exist", False, "none_exist"),
                                       ("byzantine", True, "may_exist")):
        if byzantine:
            system = _agent(m, True).build_system_prompt(GAME)
            values: dict[str, Any] = {k: CHECK[k] for k in ("name", "max_rounds", "low", "high")}
        else:
            versions = {}
            for start in (A, B):
                agent = _agent(m, False, awareness)
                agent.set_initial_value(start)
                versions[start] = agent.build_system_prompt(GAME)
            system = number_hole(versions, "start")
            values = {k: CHECK[k] for k in ("name", "max_rounds", "low", "high")} | {"start": 17}
        out[f"consensus-game/system_{role}"] = built(system, (_real(m, byzantine, awareness, "build_system_prompt"),
                                                              values))
        vote_system = _agent(m, byzantine, awareness).build_vote_system_prompt(GAME)
        out[f"consensus-game/vote_system_{role}"] = built(vote_system, (
            _real(m, byzantine, awareness, "build_vote_system_prompt"), {k: CHECK[k] for k in ("name", "max_rounds")}))

    shared: dict[str, str] = {}
    for role, byzantine in (("honest", False), ("byzantine", True)):
        parts = _propose(m, byzantine) | _vote(m, byzantine)
        out[f"consensus-game/propose_{role}"] = built(parts.pop("propose"))
        out[f"consensus-game/vote_{role}"] = built(parts.pop("vote"))
        for key in ("propose", "vote"):
            out[f"consensus-game/retry_{key}_{role}"] = built(_retry(m, root, byzantine, key))
        for key, text in parts.items():
            if shared.setdefault(key, text) != text:
                raise BuildError(f"the honest and the Byzantine agents' {key.replace('_', ' ')} texts differ; "
                                 "hivethink has one")
    summaries = _summaries(m)
    if shared.pop("vote_abstained") != summaries["abstained"]:
        raise BuildError("the vote's and the round summary's word for an abstained agent differ; hivethink has one")
    out |= {f"consensus-game/{k}": built(v) for k, v in (shared | summaries).items()}
    out["consensus-game/note"] = built(_agent(m, False)._format_strategy_history([(hole("round"), hole("note"))]))
    out["consensus-game/failed_reasoning"] = built(_failure_note(m))
    byzantine = _agent(m, True, value_range=(0, 50))
    byzantine.parse_decision_response({"internal_strategy": "a note", "value": 7}, {"round": 1})
    out["consensus-game/byzantine_fallback_reasoning"] = built(byzantine.last_reasoning)
    return out


def _where(key: str) -> Built:
    honest, byz = "HonestBCGAgent", "ByzantineBCGAgent"
    functions = {
        "system_may_exist": f"{honest}.build_system_prompt (byzantine_awareness='may_exist')",
        "system_none_exist": f"{honest}.build_system_prompt (byzantine_awareness='none_exist')",
        "system_byzantine": f"{byz}.build_system_prompt",
        "vote_system_may_exist": f"{honest}.build_vote_system_prompt (byzantine_awareness='may_exist')",
        "vote_system_none_exist": f"{honest}.build_vote_system_prompt (byzantine_awareness='none_exist')",
        "vote_system_byzantine": f"{byz}.build_vote_system_prompt",
        "propose_honest": f"{honest}.build_round_prompt", "propose_byzantine": f"{byz}.build_round_prompt",
        "current_value": "build_round_prompt: the current-value line",
        "no_value": "build_round_prompt: the line without a current value",
        "no_history": "BCGAgent._format_history_with_agent_details with no history",
        "no_notes": "build_round_prompt: the text without notes",
        "no_vote_notes": f"{honest}.build_vote_round_prompt: the text without notes",
        "note": "BCGAgent._format_strategy_history",
        "vote_honest": f"{honest}.build_vote_round_prompt", "vote_byzantine": f"{byz}.build_vote_round_prompt",
        "vote_self": "build_vote_round_prompt: the agent's own proposal",
        "vote_other": "build_vote_round_prompt: another agent's proposal",
        "vote_reasoning": "build_vote_round_prompt: a proposal's reasoning",
        "no_reasoning": "build_vote_round_prompt: the agent's own missing reasoning",
        "byzantine_fallback_reasoning": f"{byz}.parse_decision_response: the reasoning when none is given",
        "retry_propose_honest": f"{honest}._decide_next_value_json: the retry note",
        "retry_propose_byzantine": f"{byz}._decide_next_value_json: the retry note",
        "retry_vote_honest": f"{honest}.vote_to_terminate: the retry note",
        "retry_vote_byzantine": f"{byz}.vote_to_terminate: the retry note",
    }
    if key in functions:
        return Built(AGENTS, functions[key])
    return Built(MAIN, {
        "history_line": "BCGSimulation._update_round_summaries: the round's line",
        "entry": "BCGSimulation._update_round_summaries: one agent's entry",
        "entry_reasoning": "BCGSimulation._update_round_summaries: an entry's reasoning",
        "abstained": "BCGSimulation._update_round_summaries: the value of an abstained agent",
        "failed_reasoning": "BCGSimulation._run_batched_decisions: the reasoning of an agent that failed every attempt",
    }[key])


TEMPLATES = ("system_may_exist", "system_none_exist", "system_byzantine", "propose_honest", "propose_byzantine",
             "current_value", "no_value", "no_history", "no_notes", "no_vote_notes", "history_line", "entry",
             "entry_reasoning", "abstained", "note", "failed_reasoning", "vote_system_may_exist",
             "vote_system_none_exist", "vote_system_byzantine", "vote_honest", "vote_byzantine", "vote_self",
             "vote_other", "vote_reasoning", "no_reasoning", "byzantine_fallback_reasoning", "retry_propose_honest",
             "retry_propose_byzantine", "retry_vote_honest", "retry_vote_byzantine")

ORIGIN = Origin(
    repository="leorugli/byzantine-consensus-llm-agents",
    kind="git",
    pinned="b3bbf9e4042ffe1c90a56cfc664f3f8754445e11",
    marks=(AGENTS, MAIN, f"{DIR}/vllm_agent.py"),
    texts={f"consensus-game/{t}": _where(t) for t in TEMPLATES},
    builder=f"{__name__}:build",
    checks=(Same(AGENTS, "MAX_HISTORY_ROUNDS", "hivethink.substrates.consensus_game:NOTES_SHOWN"),),
)

SYSTEM = System(name="consensus-game", books=("consensus-game",), declares="hivethink.substrates.consensus_game",
                origins=(ORIGIN,))


# -- the fidelity check: hivethink against the published driver, on the same replies ------------

GAMES: tuple[dict[str, Any], ...] = ({"awareness": "may_exist", "honest": 3, "byzantine": 1, "rounds": 3, "seed": 5},
         {"awareness": "none_exist", "honest": 3, "byzantine": 0, "rounds": 3, "seed": 6})


def reply(agent: str, byzantine: bool, vote: bool, k: int) -> str:
    """The ``k``-th reply (from 0) of ``agent`` in a phase: proposals that fail the batch check
    and the agent's own check, a proposal that fails every attempt, a Byzantine abstain and a
    Byzantine value without reasoning; votes that fail the batch check, then stop votes."""
    i = int(agent.rsplit("_", 1)[-1])
    if vote:
        if (i == 1 and k == 0) or (byzantine and k == 0):
            return '{"decision": "maybe"}' if not byzantine else '{"decision": "abstain"}'
        return '{"decision": "%s"}' % ("stop" if k >= 3 else "continue")
    if byzantine:
        if k % 3 == 0:
            return json.dumps({"internal_strategy": f"hide {k}", "value": "abstain",
                               "public_reasoning": "I will wait and see this round."})
        return json.dumps({"internal_strategy": f"pull {k}", "value": 44 + k})
    if i == 1 and k in (0, 1):
        return "I pick twenty." if k == 0 else '{"value": 20}'
    if i == 2 and k in (2, 3, 4, 5):
        return "{}"
    why = f"Round reply {k} of {agent}: most agents seem to sit near twenty, so I move toward them. " * (1 + k % 3)
    return json.dumps({"internal_strategy": f"note {k} of {agent}", "value": 18 + k + i, "public_reasoning": why})


def replay(root: Path, given: dict[str, Any]) -> dict[str, Any]:
    """In the child: the published driver (``main.BCGSimulation``: the game, the agents,
    ``run_round`` until the game is over) with every model call answered by :func:`reply`; ->
    the game's agents and start values, and every request in order as (agent, system, user)."""
    m = _modules(root)
    random.seed(given["seed"])
    config = {"max_rounds": given["rounds"], "byzantine_awareness": given["awareness"], "verbose": False}
    sim = m.main.BCGSimulation(num_honest=given["honest"], num_byzantine=given["byzantine"], config=config)
    state = sim.game.get_game_state()
    owner = {}
    for name, agent in sim.agents.items():
        owner[agent.build_system_prompt(state)] = name
        owner[agent.build_vote_system_prompt(state)] = name
    byzantine = {name for name, agent in sim.agents.items() if agent.is_byzantine}
    counts: dict[tuple[str, bool], int] = {}

    def answer(system: str, user: str, schema: dict[str, Any]) -> str:
        name = owner[system]
        vote = "decision" in schema["properties"]
        k = counts[name, vote] = counts.get((name, vote), -1) + 1
        return reply(name, name in byzantine, vote, k)

    _LLM.reply, _LLM.calls = staticmethod(answer), []
    while not sim.game.game_over:
        sim.run_round()
    return {"agents": sorted(sim.agents), "byzantine": sorted(byzantine), "owner": owner,
            "start_values": {n: a.initial_value for n, a in sim.game.agents.items() if a.initial_value is not None},
            "requests": [[owner.get(system, "?"), system, user] for system, user, _ in _LLM.calls]}


def fidelity(root: Path) -> list[tuple[str, Any, Any]]:
    """Every request hivethink's ``consensus-game`` preset sends (with the prompts directory in use),
    in order, against the published driver's on the same replies: (what, hivethink's, the
    authors'). Two games: Byzantine agents may exist (one plays), and none exist."""
    from hivethink.backends.fake import ScriptedBackend
    from hivethink.substrates import Budget, get_substrate
    from hivethink.tasks.agree import AgreeTask
    from hivethink.tasks.base import Instance

    out: list[tuple[str, Any, Any]] = []
    for given in GAMES:
        theirs = run_child(f"{__name__}:replay", root, given, what="game driver")
        owner, byzantine = theirs["owner"], set(theirs["byzantine"])
        counts: dict[tuple[str, bool], int] = {}

        def answer(request: Any, _i: int, owner: dict[str, str] = owner, byzantine: set[str] = byzantine,
                   counts: dict[tuple[str, bool], int] = counts) -> str:
            name = owner.get(request.messages[0]["content"], "agent_0")
            vote = "decision" in request.json_schema["properties"]
            k = counts[name, vote] = counts.get((name, vote), -1) + 1
            return reply(name, name in byzantine, vote, k)

        data = {"agents": theirs["agents"], "byzantine": theirs["byzantine"],
                "start_values": theirs["start_values"], "max_rounds": given["rounds"]}
        task = AgreeTask(honest=given["honest"], byzantine=given["byzantine"], max_rounds=given["rounds"])
        backend = ScriptedBackend(answer)
        get_substrate("consensus-game", awareness=given["awareness"]).run(
            Instance(task="agree", id="fidelity", prompt="", data=data), task, backend,
            workers=len(data["agents"]), budget=Budget(), seed=0)
        ours = [[owner.get(r.messages[0]["content"], "?"), r.messages[0]["content"], r.messages[1]["content"]]
                for r in backend.requests]
        label = given["awareness"]
        out.append((f"{label}: the number of requests", len(ours), len(theirs["requests"])))
        out += [(f"{label}: request {k + 1} ({t[0]})", o, t) for k, (o, t) in
                enumerate(zip(ours, theirs["requests"], strict=False))]
    return out

