"""``consensus-game``: the game of "Can AI Agents Agree?" (leorugli/byzantine-consensus-llm-agents).

All-to-all broadcast, synchronous rounds (1-based) until the stop vote or the deadline of the
instance (``hivethink.tasks.agree``). Every agent, Byzantine agents included, is an LLM agent
with a system prompt of its role, built once per game: an honest agent is told its *initial*
value there for the whole game (honest agents are told Byzantine agents may exist, or that none
exist: ``awareness``), and gets a fresh user prompt each call:

1. Proposal (schema-constrained JSON, temperature 0.5, at most 300 tokens): private strategy
   notes, a value in [0, 50] (Byzantine: or "abstain") and public reasoning. The prompt shows
   the round, the agent's current value, the last ``memory`` rounds of every agent's value and
   public reasoning (newest first, agents sorted by name as strings, so ``agent_10`` comes
   before ``agent_2``; the reasoning cut to 50 characters, "ABSTAINED" for an agent without a
   value), its own last 5 private notes (oldest first) and the instruction to look at what most
   agents propose.
2. Broadcast: every agent with a value sends (value, reasoning) to all others.
3. Vote (schema-constrained, temperature 0.3, at most 200 tokens): stop / continue (Byzantine:
   or abstain). The prompt shows this round's proposals (the agent first, then the others in
   sorted order, each reasoning cut to 200 characters), the history including this round, the
   agent's notes (honest agents) and the stop rule.
4. The game ends when stop votes >= 2N/3 (N = all agents), else after the deadline.

Replies are read as the published driver reads them (:func:`read_json`). Each phase runs as
published (``main.py`` ``_run_batched_decisions`` / ``_run_batched_votes``): all agents are asked
in one batch, and the replies pass the *batch check*, the same for every agent, Byzantine
included: a proposal needs a value (any JSON value), notes of at least 3 and public reasoning of
at least 10 characters; a vote must be exactly "stop" or "continue" (so a Byzantine "abstain"
vote fails it). The failed agents are asked again with the same prompt, in a batch, up to
``attempts`` (3) batches; but once the failed agents are at most ``batch_retry_share`` (30%) of
all agents and a batch attempt is left, each of them instead runs its own loop (the agent's
``_decide_next_value_json`` / ``vote_to_terminate``): up to ``attempts`` calls, the first with
the same prompt, the later ones with a retry note, checked by the agent's own, looser rules
(non-empty fields; a Byzantine value must be an integer or "abstain"; a vote "stop",
"continue" or, Byzantine, "abstain", surrounding blanks allowed).

What a proposal does (``parse_decision_response``): an accepted value replaces the agent's value
(clamped to [0, 50], a fraction cut to its integer part); the public reasoning (600 characters
at most) is what the others see and the notes (400) are kept. A Byzantine "abstain", or a
Byzantine value that is no integer, keeps the value the agent had. A proposal that failed every
attempt, and a Byzantine abstain that came out of its own loop, keep the value too, with a
failure note as the public reasoning. A vote that failed every attempt counts as continue; an
abstain accepted from a Byzantine agent's own loop counts as no stop.

For Qwen3-family models (the backend's model name holds "qwen3" or "qwen-3", not an
Instruct-2507 model) every user turn ends with " /no_think", as the published chat format does
(``no_think``: ``auto``; ``always`` / ``never`` force it).

Named variants: ``names="ids"`` (agents called ``agent_0``, ``agent_1``, ... by their position in
the instance, as published) instead of the instance's names; ``byzantine="scripted"`` (Byzantine
agents draw a random value and vote at random, no model calls); ``memory`` (1..15 rounds of
history); ``attempts``, ``batch_retry_share``.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hivethink import prompts
from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Recorder, SubstrateBase, conversation
from hivethink.tasks.agree import HIGH, LOW, game_outcome, honest_agents, stop_reached
from hivethink.tasks.base import Instance, Task

AWARENESS = ("may_exist", "none_exist")
BYZANTINE = ("llm", "scripted")
NAMING = ("names", "ids")
NO_THINK = ("auto", "always", "never")
NOTES_SHOWN = 5  # private notes kept and shown (published MAX_HISTORY_ROUNDS)
HISTORY_CUT, VOTE_CUT = 50, 200  # characters of reasoning shown in the history / vote prompt
REASONING_KEPT, NOTE_KEPT = 600, 400  # characters of a proposal's reasoning / notes the game keeps
QWEN3_MARKERS, QWEN3_EXEMPT = ("qwen3", "qwen-3"), ("instruct-2507", "instruct_2507")
NO_THINK_SUFFIX = " /no_think"

BOOK = prompts.book(
    "consensus-game",
    {
        "system_may_exist": ["name", "max_rounds", "low", "high", "start"],
        "system_none_exist": ["name", "max_rounds", "low", "high", "start"],
        "system_byzantine": ["name", "max_rounds", "low", "high"],
        "propose_honest": ["round", "current", "history", "notes"],
        "propose_byzantine": ["round", "current", "history", "notes"],
        "current_value": ["value"],
        "no_value": [],
        "no_history": [],
        "no_notes": [],
        "no_vote_notes": [],
        "history_line": ["round", "entries"],
        "entry": ["name", "value"],
        "entry_reasoning": ["reasoning"],
        "abstained": [],
        "note": ["round", "note"],
        "failed_reasoning": [],
        "vote_system_may_exist": ["name", "max_rounds"],
        "vote_system_none_exist": ["name", "max_rounds"],
        "vote_system_byzantine": ["name", "max_rounds"],
        "vote_honest": ["round", "max_rounds", "proposals", "history", "notes"],
        "vote_byzantine": ["round", "max_rounds", "proposals", "history"],
        "vote_self": ["name", "value"],
        "vote_other": ["name", "value"],
        "vote_reasoning": ["reasoning"],
        "no_reasoning": [],
        "byzantine_fallback_reasoning": [],
        "retry_propose_honest": ["attempt", "attempts"],
        "retry_propose_byzantine": ["attempt", "attempts"],
        "retry_vote_honest": ["attempt", "attempts"],
        "retry_vote_byzantine": ["attempt", "attempts"],
    },
)


def proposal_schema(byzantine: bool) -> dict[str, Any]:
    """The published JSON schema of a proposal (Byzantine: may abstain, reasoning optional)."""
    value: dict[str, Any] = {"type": "integer", "minimum": LOW, "maximum": HIGH}
    if byzantine:
        value = {"anyOf": [value, {"type": "string", "enum": ["abstain"]}]}
    return {
        "type": "object",
        "properties": {
            "internal_strategy": {"type": "string"},
            "value": value,
            "public_reasoning": {"type": "string"},
        },
        "required": ["internal_strategy", "value"] + ([] if byzantine else ["public_reasoning"]),
        "additionalProperties": False,
    }


def vote_schema(byzantine: bool) -> dict[str, Any]:
    decisions = ["stop", "continue"] + (["abstain"] if byzantine else [])
    return {
        "type": "object",
        "properties": {"decision": {"type": "string", "enum": decisions}},
        "required": ["decision"],
        "additionalProperties": False,
    }


def read_json(reply: str) -> dict[str, Any] | None:
    """The reply as the published ``generate_json`` reads it: the stripped text as JSON, else the
    text from its first ``{`` to each ``}`` where the braces (counted naively) balance, the
    first that parses. An object with an ``error`` key counts as a failed reply, as there."""
    text = reply.strip()
    try:
        obj: Any = json.loads(text)
    except (ValueError, RecursionError):
        obj = None
        start = text.find("{")
        depth = 0
        for i in range(max(start, 0), len(text) if start >= 0 else 0):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if text[i] == "}" and depth == 0:
                try:
                    obj = json.loads(text[start : i + 1])
                    break
                except (ValueError, RecursionError):
                    continue
    return obj if isinstance(obj, dict) and "error" not in obj else None


@dataclass
class Proposal:
    """A proposal the game accepted: the new value (None: the agent keeps its value), the public
    reasoning as kept, the private notes (blank: none)."""

    value: int | None
    reasoning: str
    notes: str


def _clamped(value: float) -> int:
    """``int(max(low, min(high, value)))``: clamped, a fraction cut to its integer part."""
    return int(max(LOW, min(HIGH, value)))


def _filled(text: Any) -> bool:
    return isinstance(text, str) and bool(text.strip())


def read_proposal(reply: str, byzantine: bool, own_loop: bool = False) -> Proposal | None:
    """The proposal the published driver accepts from ``reply``, or None when it rejects it.

    The batch check (``own_loop=False``) is the same for every agent: a value present, notes of
    at least 3 and reasoning of at least 10 characters (non-blank). The agent's own loop asks
    for non-empty notes and reasoning and a value (honest), or non-empty notes and an integer
    or "abstain" (Byzantine). A value that is neither a number nor (Byzantine) "abstain" is
    rejected (the published code would crash on it; only an unconstrained backend can send it).
    """
    obj = read_json(reply)
    if obj is None:
        return None
    value, notes, reasoning = obj.get("value"), obj.get("internal_strategy", ""), obj.get("public_reasoning", "")
    if own_loop:
        ok = _filled(notes) and (
            (isinstance(value, int) or value == "abstain") if byzantine
            else value is not None and _filled(reasoning)
        )  # fmt: skip
    else:
        ok = (value is not None and isinstance(notes, str) and len(notes.strip()) >= 3
              and isinstance(reasoning, str) and len(reasoning.strip()) >= 10)  # fmt: skip
    if not ok:
        return None
    notes = notes if isinstance(notes, str) else ""
    reasoning = reasoning if isinstance(reasoning, str) else ""
    if not byzantine:
        if not isinstance(value, (int, float)) or value != value:  # a bool is an int, as in Python
            return None
        return Proposal(_clamped(value), reasoning[:REASONING_KEPT], notes)
    if value == "abstain":
        return Proposal(None, reasoning[:REASONING_KEPT], notes)
    if isinstance(value, int):
        kept = reasoning if "public_reasoning" in obj else BOOK.render("byzantine_fallback_reasoning")
        return Proposal(_clamped(value), kept[:REASONING_KEPT], notes)
    return Proposal(None, "", notes)  # any other value: treated as an abstain, as published


def read_vote(reply: str, byzantine: bool, own_loop: bool = False) -> str | None:
    """"stop", "continue" or (Byzantine, own loop only) "abstain"; None when rejected. The batch
    check wants exactly "stop" or "continue"; the agent's own loop allows blanks around it."""
    obj = read_json(reply)
    decision = obj.get("decision") if obj is not None else None
    if not isinstance(decision, str):
        return None
    if own_loop:
        decision = decision.strip()
        allowed = ("stop", "continue", "abstain") if byzantine else ("stop", "continue")
    else:
        allowed = ("stop", "continue")
    return decision if decision in allowed else None


def cut(text: str, limit: int) -> str:
    """The published summary cut: longer texts keep ``limit - 3`` characters and "..."."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def wants_no_think(model: str) -> bool:
    """The published rule (``vllm_agent._format_chat_prompt``): Qwen3 models other than the
    Instruct-2507 ones get " /no_think" at the end of every user turn."""
    name = model.lower()
    return any(m in name for m in QWEN3_MARKERS) and not any(m in name for m in QWEN3_EXEMPT)


@dataclass(frozen=True)
class Accepted:
    """A reply the published driver accepted: what it read, at which attempt (1-based, per
    agent and phase), and whether the agent's own loop (not a batch) took it."""

    value: Any
    attempt: int
    own_loop: bool


@dataclass
class Agent:
    """What one player knows: its value, its last public reasoning and its private notes."""

    name: str
    byzantine: bool
    start: int | None  # the initial value (honest agents), for the system prompt
    value: int | None
    reasoning: str = ""
    notes: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class ConsensusGame(SubstrateBase):
    """Parameters: ``awareness``, ``memory``, ``attempts``, ``batch_retry_share``, ``byzantine``,
    ``names``, ``no_think``, temperatures and caps (see the module docstring)."""

    name = "consensus-game"
    kind: ClassVar[str] = "game"
    prompt_books: ClassVar[tuple[str, ...]] = ("consensus-game",)
    temperature: float = 0.5  # proposals
    vote_temperature: float = 0.3
    max_tokens: int = 300  # proposals
    vote_max_tokens: int = 200
    awareness: str = "may_exist"
    memory: int = 3
    attempts: int = 3
    batch_retry_share: float = 0.3
    byzantine: str = "llm"
    names: str = "names"
    no_think: str = "auto"

    def __post_init__(self) -> None:
        for option, value, allowed in (("awareness", self.awareness, AWARENESS),
                                       ("byzantine", self.byzantine, BYZANTINE),
                                       ("names", self.names, NAMING),
                                       ("no_think", self.no_think, NO_THINK)):  # fmt: skip
            if value not in allowed:
                raise HivethinkError(
                    f"consensus-game: {option} must be one of {', '.join(allowed)}, not {value!r}"
                )
        if not 1 <= self.memory <= 15:
            raise HivethinkError(f"consensus-game: memory must be 1..15 rounds, got {self.memory}")
        if self.attempts < 1 or self.max_tokens < 1 or self.vote_max_tokens < 1:
            raise HivethinkError("consensus-game: attempts and token caps must be at least 1")
        if not 0.0 <= self.batch_retry_share <= 1.0:
            raise HivethinkError(
                f"consensus-game: batch_retry_share must be in [0, 1], got {self.batch_retry_share}"
            )

    def run(
        self,
        instance: Instance,
        task: Task,
        backend: Backend,
        *,
        workers: int,
        budget: Budget,
        seed: int,
    ) -> SampleResult:
        data = instance.data
        if not all(k in data for k in ("agents", "byzantine", "start_values", "max_rounds")):
            raise HivethinkError(f"consensus-game: instance {instance.id} is not a consensus-game instance")
        if self.names == "ids":
            instance = with_ids(instance)
            data = instance.data
        rec = Recorder(backend, budget, seed=seed, temperature=self.temperature, probe=instance.probe)
        suffix = self.no_think == "always" or (self.no_think == "auto" and wants_no_think(backend.name))
        game = _Game(self, instance, rec, random.Random(f"consensus-game:{seed}:{instance.id}"),
                     NO_THINK_SUFFIX if suffix else "")  # fmt: skip
        ended_by_vote = game.play()
        outcome = game_outcome(instance, game.trajectory, ended_by_vote, game.votes, game.reasoning)
        honest = honest_agents(instance)
        answers = {a: None if game.agents[a].value is None else str(game.agents[a].value) for a in honest}
        rec.answers(answers, step=len(game.trajectory))
        info = {
            "rounds": len(game.trajectory),
            "ended_by_vote": ended_by_vote,
            "timeout": not ended_by_vote,
            "budget_exhausted": game.budget_exhausted,
            "byzantine": list(data["byzantine"]),
            "no_think": bool(suffix),
        }
        result = rec.finish(None, agent_answers=answers, info=info)
        result.outcome = outcome
        return result


def with_ids(instance: Instance) -> Instance:
    """``instance`` with its agents renamed ``agent_0``, ``agent_1``, ... by position (the
    published names); the Byzantine agents and start values follow their agents."""
    data = instance.data
    ids = {a: f"agent_{i}" for i, a in enumerate(data["agents"])}
    renamed = dict(data) | {
        "agents": [ids[a] for a in data["agents"]],
        "byzantine": [ids[a] for a in data["byzantine"]],
        "start_values": {ids[a]: v for a, v in data["start_values"].items()},
    }
    return dataclasses.replace(instance, data=renamed)


class _Game:
    """One game in progress: the players, the shared round summaries, the trajectory, and what
    the published statistics read (every round's votes and public reasoning)."""

    def __init__(
        self, preset: ConsensusGame, instance: Instance, rec: Recorder, rng: random.Random, suffix: str
    ) -> None:
        self.preset, self.rec, self.rng, self.suffix = preset, rec, rng, suffix
        data = instance.data
        byzantine = set(data["byzantine"])
        self.max_rounds = int(data["max_rounds"])
        # the published driver keeps its agents sorted by id as strings: batches, history lines
        # and the vote prompt's listing all follow that order
        self.agents = {
            a: Agent(a, a in byzantine, start, start)
            for a in sorted(data["agents"])
            for start in [None if a in byzantine else int(data["start_values"][a])]
        }
        self.summaries: list[str] = []  # one line per round, the same for every agent
        self.trajectory: list[dict[str, int | None]] = []
        self.votes: list[dict[str, str | None]] = []
        self.reasoning: list[dict[str, str]] = []
        self.budget_exhausted = False

    def play(self) -> bool:
        """Rounds until the stop vote (True) or the deadline (False)."""
        n = len(self.agents)
        for r in range(1, self.max_rounds + 1):
            if self.rec.exhausted:
                self.budget_exhausted = True
                return False
            self._propose(r)
            self.summaries.append(self._summary(r))
            self.reasoning.append({a.name: a.reasoning for a in self.agents.values() if a.reasoning})
            votes = self._vote(r)
            self.trajectory.append({a.name: a.value for a in self.agents.values()})
            self.votes.append(votes)
            if stop_reached(votes, n):
                return True
        return False

    def _llm_agents(self) -> list[Agent]:
        scripted = self.preset.byzantine == "scripted"
        return [a for a in self.agents.values() if not (a.byzantine and scripted)]

    def _system(self, a: Agent, vote: bool) -> str:
        role = "byzantine" if a.byzantine else self.preset.awareness
        fmt: dict[str, object] = {"name": a.name, "max_rounds": self.max_rounds}
        if vote:
            return BOOK.render(f"vote_system_{role}", **fmt)
        fmt |= {"low": LOW, "high": HIGH}
        if not a.byzantine:
            fmt["start"] = a.start  # built once per game: the initial value, never the current one
        return BOOK.render(f"system_{role}", **fmt)

    def _history(self) -> str:
        shown = self.summaries[-self.preset.memory :][::-1]
        return "\n".join(shown) if shown else BOOK.render("no_history")

    def _notes(self, a: Agent, empty: str) -> str:
        lines = [BOOK.render("note", round=r, note=n) for r, n in a.notes]
        return "\n".join(lines) if lines else BOOK.render(empty)

    def _call(self, a: Agent, phase: str, user: str, schema: Callable[[bool], dict[str, Any]]) -> Call:
        return Call(a.name, conversation(self._system(a, phase == "vote"), user + self.suffix),
                    seen=[b for b in self.agents if b != a.name], json_schema=schema(a.byzantine))  # fmt: skip

    def _ask(
        self, r: int, phase: str, prompt_of: dict[str, str],
        read: Callable[[str, bool, bool], Any], schema: Callable[[bool], dict[str, Any]],
        temperature: float, max_tokens: int,
    ) -> dict[str, Accepted]:
        """One phase as the published driver runs it (see the module docstring): what each agent
        had accepted; agents that failed every attempt are absent."""
        p = self.preset
        everyone = [a for a in self._llm_agents() if a.name in prompt_of]
        results: dict[str, Accepted] = {}
        pending = list(everyone)
        for attempt in range(1, p.attempts + 1):
            if not pending:
                break
            calls = [self._call(a, phase, prompt_of[a.name], schema) for a in pending]
            texts = self.rec.round(calls, step=r, max_tokens=max_tokens, temperature=temperature,
                                   phase=phase, attempt=attempt, data={"loop": "batch"})  # fmt: skip
            still = []
            for a, text in zip(pending, texts, strict=True):
                parsed = read(text, a.byzantine, False)
                if parsed is None:
                    still.append(a)
                    self.rec.error(a.name, f"{phase} reply fails the batch check (attempt {attempt})", step=r)
                else:
                    results[a.name] = Accepted(parsed, attempt, own_loop=False)
            pending = still
            if pending and attempt < p.attempts and len(pending) / len(everyone) <= p.batch_retry_share:
                for a in pending:
                    got = self._own_loop(r, a, phase, prompt_of[a.name], read, schema,
                                         temperature, max_tokens, first=attempt + 1)  # fmt: skip
                    if got is not None:
                        results[a.name] = got
                break
        return results

    def _own_loop(
        self, r: int, a: Agent, phase: str, prompt: str, read: Callable[[str, bool, bool], Any],
        schema: Callable[[bool], dict[str, Any]], temperature: float, max_tokens: int, first: int,
    ) -> Accepted | None:
        """The agent's own retry loop: the same prompt, then the prompt with a retry note."""
        role = "byzantine" if a.byzantine else "honest"
        for k in range(1, self.preset.attempts + 1):
            user = prompt if k == 1 else prompt + BOOK.render(
                f"retry_{phase}_{role}", attempt=k, attempts=self.preset.attempts
            )
            [text] = self.rec.round([self._call(a, phase, user, schema)], step=r, max_tokens=max_tokens,
                                    temperature=temperature, phase=phase, attempt=first + k - 1,
                                    data={"loop": "own"})  # fmt: skip
            parsed = read(text, a.byzantine, True)
            if parsed is not None:
                return Accepted(parsed, first + k - 1, own_loop=True)
            self.rec.error(a.name, f"{phase} reply fails the agent's own check (attempt {first + k - 1})", step=r)
        return None

    def _propose(self, r: int) -> None:
        p = self.preset
        prompt_of = {}
        for a in self._llm_agents():
            current = BOOK.render("current_value", value=a.value) if a.value is not None else BOOK.render("no_value")
            prompt_of[a.name] = BOOK.render(
                "propose_byzantine" if a.byzantine else "propose_honest", round=r,
                current=current, history=self._history(), notes=self._notes(a, "no_notes"),
            )  # fmt: skip
        got = self._ask(r, "propose", prompt_of, read_proposal, proposal_schema, p.temperature, p.max_tokens)
        for a in self.agents.values():
            accepted = got.get(a.name)
            proposal: Proposal | None = accepted.value if accepted is not None else None
            if a.byzantine and p.byzantine == "scripted":
                a.value, a.reasoning = self.rng.randint(LOW, HIGH), ""
            elif proposal is None or (proposal.value is None and accepted is not None and accepted.own_loop):
                # failed, or an abstain from the agent's own loop, which the published driver
                # files as a failure: the value stays and the others see a failure note
                a.reasoning = BOOK.render("failed_reasoning")
            else:
                a.reasoning = proposal.reasoning
                if proposal.value is not None:  # a Byzantine abstain keeps the value it had
                    a.value = proposal.value
            if proposal is not None and proposal.notes.strip():
                a.notes = (a.notes + [(r, proposal.notes.strip()[:NOTE_KEPT])])[-NOTES_SHOWN:]
            self.rec.event(
                "message", a.name, a.reasoning, step=r,
                recipients=[b for b in self.agents if b != a.name] if a.value is not None else [],
                data={"value": a.value, "byzantine": a.byzantine,
                      "accepted_attempt": accepted.attempt if accepted is not None else None,
                      "private_notes": proposal.notes if proposal is not None else None},
            )  # fmt: skip

    def _summary(self, r: int) -> str:
        entries = []
        for a in self.agents.values():
            value = str(a.value) if a.value is not None else BOOK.render("abstained")
            entry = BOOK.render("entry", name=a.name, value=value)
            if a.reasoning:
                entry += BOOK.render("entry_reasoning", reasoning=cut(a.reasoning, HISTORY_CUT))
            entries.append(entry)
        return BOOK.render("history_line", round=r, entries="; ".join(entries))

    def _proposals_for(self, me: Agent) -> str:
        lines = []
        if me.value is not None:
            lines.append(BOOK.render("vote_self", name=me.name, value=me.value))
            reasoning = me.reasoning[:VOTE_CUT] if me.reasoning else BOOK.render("no_reasoning")
            lines.append(BOOK.render("vote_reasoning", reasoning=reasoning))
        else:
            lines.append(BOOK.render("vote_self", name=me.name, value=BOOK.render("abstained")))
        for a in self.agents.values():
            if a is me or a.value is None:
                continue
            lines.append(BOOK.render("vote_other", name=a.name, value=a.value))
            if a.reasoning:
                lines.append(BOOK.render("vote_reasoning", reasoning=a.reasoning[:VOTE_CUT]))
        return "\n".join(lines)

    def _vote(self, r: int) -> dict[str, str | None]:
        p = self.preset
        prompt_of = {}
        for a in self._llm_agents():
            fmt: dict[str, object] = {"round": r, "max_rounds": self.max_rounds,
                                      "proposals": self._proposals_for(a), "history": self._history()}  # fmt: skip
            if a.byzantine:
                prompt_of[a.name] = BOOK.render("vote_byzantine", **fmt)
            else:
                prompt_of[a.name] = BOOK.render("vote_honest", notes=self._notes(a, "no_vote_notes"), **fmt)
        got = self._ask(r, "vote", prompt_of, read_vote, vote_schema, p.vote_temperature, p.vote_max_tokens)
        votes: dict[str, str | None] = {}
        for a in self.agents.values():
            accepted = got.get(a.name)
            if a.byzantine and p.byzantine == "scripted":
                vote: str | None = self.rng.choice(("stop", "continue"))
            else:  # a vote that failed every attempt counts as continue
                vote = accepted.value if accepted is not None else "continue"
            self.rec.event("vote", a.name, vote or "", step=r, data={
                "value": vote, "accepted_attempt": accepted.attempt if accepted is not None else None,
            })  # fmt: skip
            votes[a.name] = vote
        return votes
