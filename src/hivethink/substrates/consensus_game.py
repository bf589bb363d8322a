"""``consensus-game``: the game of "Can AI Agents Agree?" (leorugli/byzantine-consensus-llm-agents).

All-to-all broadcast, synchronous rounds (1-based) until the stop vote or the deadline of the
instance (``hivethink.tasks.agree``). Every agent, Byzantine agents included, is an LLM agent
with a system prompt of its role (honest agents are told Byzantine agents may exist, or that
none exist: ``awareness``) and a fresh prompt each call:

1. Proposal (schema-constrained JSON, temperature 0.5, at most 300 tokens): private strategy
   notes, a value in [0, 50] (Byzantine: or "abstain") and public reasoning. The prompt shows
   the round, the agent's current value, the last ``memory`` rounds of every agent's value and
   public reasoning (newest first, the reasoning cut to about 50 characters, "ABSTAINED" for
   an agent without a value), its own last 5 private notes (oldest first) and the instruction
   to look at what most agents propose.
2. Broadcast: every agent with a value sends (value, reasoning) to all others.
3. Vote (schema-constrained, temperature 0.3, at most 200 tokens): stop / continue (Byzantine:
   or abstain). The prompt shows this round's proposals (the agent first, then the others, each
   reasoning cut to 200 characters), the history including this round, the agent's notes
   (honest agents) and the stop rule.
4. The game ends when stop votes >= 2N/3 (N = all agents), else after the deadline.

Replies are read as JSON (the whole reply, else its first JSON object). A proposal is valid
with an integer value (clamped to [0, 50]), notes of at least 3 characters and, for honest
agents, public reasoning of at least 10 characters; a vote is valid with a known decision.
An invalid reply is retried up to ``retries`` times (the published runs: once with the same
prompt, then with a note that the reply was invalid). A failed proposal keeps the agent's value
(its reasoning says it failed); a failed vote counts as continue. A Byzantine "abstain" also
keeps the value it had (the published game state keeps its last proposal), so only a Byzantine
agent without a value yet stays silent.

Named variants: ``byzantine="scripted"`` (Byzantine agents draw a random value and vote at
random, no model calls); ``memory`` (1..15 rounds of history).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hivethink import prompts
from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Recorder, SubstrateBase, conversation, find_json
from hivethink.tasks.agree import HIGH, LOW, game_outcome, honest_agents, stop_reached
from hivethink.tasks.base import Instance, Task

AWARENESS = ("may_exist", "none_exist")
BYZANTINE = ("llm", "scripted")
NOTES_SHOWN = 5  # private notes kept and shown (published MAX_HISTORY_ROUNDS)
HISTORY_CUT, VOTE_CUT, NOTE_CUT = 50, 200, 400  # characters of reasoning / notes shown or kept

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
    """The reply as a JSON object: the whole text, else its first JSON object."""
    try:
        obj = json.loads(reply)
    except (ValueError, RecursionError):
        obj = find_json(reply, dict)
    return obj if isinstance(obj, dict) else None


@dataclass
class Proposal:
    value: int | None  # None: a Byzantine "abstain"
    notes: str
    reasoning: str


def read_proposal(reply: str, byzantine: bool) -> Proposal | None:
    """A valid proposal (see the module docstring), or None."""
    obj = read_json(reply)
    if obj is None:
        return None
    value, notes, reasoning = obj.get("value"), obj.get("internal_strategy"), obj.get("public_reasoning", "")
    if not isinstance(notes, str) or len(notes.strip()) < 3 or not isinstance(reasoning, str):
        return None
    if not byzantine and len(reasoning.strip()) < 10:
        return None
    if byzantine and value == "abstain":
        return Proposal(None, notes, reasoning)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return Proposal(int(max(LOW, min(HIGH, round(value)))), notes, reasoning)


def read_vote(reply: str, byzantine: bool) -> str | None:
    """"stop", "continue" (or, for a Byzantine agent, "abstain"), or None when invalid."""
    obj = read_json(reply)
    decision = obj.get("decision") if obj is not None else None
    allowed = ("stop", "continue", "abstain") if byzantine else ("stop", "continue")
    return decision if decision in allowed else None


def cut(text: str, limit: int) -> str:
    """The published summary cut: longer texts keep ``limit - 3`` characters and "..."."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Agent:
    """What one player knows: its value, its last public reasoning and its private notes."""

    name: str
    byzantine: bool
    value: int | None
    reasoning: str = ""
    notes: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class ConsensusGame(SubstrateBase):
    """Parameters: ``awareness``, ``memory``, ``retries``, ``byzantine``, temperatures and caps."""

    name = "consensus-game"
    kind: ClassVar[str] = "game"
    prompt_books: ClassVar[tuple[str, ...]] = ("consensus-game",)
    temperature: float = 0.5  # proposals
    vote_temperature: float = 0.3
    max_tokens: int = 300  # proposals
    vote_max_tokens: int = 200
    awareness: str = "may_exist"
    memory: int = 3
    retries: int = 3
    byzantine: str = "llm"

    def __post_init__(self) -> None:
        if self.awareness not in AWARENESS:
            raise HivethinkError(
                f"consensus-game: awareness must be one of {', '.join(AWARENESS)}, not {self.awareness!r}"
            )
        if self.byzantine not in BYZANTINE:
            raise HivethinkError(
                f"consensus-game: byzantine must be one of {', '.join(BYZANTINE)}, not {self.byzantine!r}"
            )
        if not 1 <= self.memory <= 15:
            raise HivethinkError(f"consensus-game: memory must be 1..15 rounds, got {self.memory}")
        if self.retries < 0 or self.max_tokens < 1 or self.vote_max_tokens < 1:
            raise HivethinkError("consensus-game: retries must be >= 0 and token caps >= 1")

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
        rec = Recorder(backend, budget, seed=seed, temperature=self.temperature, probe=instance.probe)
        game = _Game(self, instance, rec, random.Random(f"consensus-game:{seed}:{instance.id}"))
        ended_by_vote = game.play()
        outcome = game_outcome(instance, game.trajectory, ended_by_vote)
        honest = honest_agents(instance)
        answers = {a: None if game.agents[a].value is None else str(game.agents[a].value) for a in honest}
        rec.answers(answers, step=len(game.trajectory))
        info = {
            "rounds": len(game.trajectory),
            "ended_by_vote": ended_by_vote,
            "timeout": not ended_by_vote,
            "budget_exhausted": game.budget_exhausted,
            "byzantine": list(data["byzantine"]),
        }
        result = rec.finish(None, agent_answers=answers, info=info)
        result.outcome = outcome
        return result


class _Game:
    """One game in progress: the players, the shared round summaries, the trajectory."""

    def __init__(self, preset: ConsensusGame, instance: Instance, rec: Recorder, rng: random.Random) -> None:
        self.preset, self.rec, self.rng = preset, rec, rng
        data = instance.data
        byzantine = set(data["byzantine"])
        self.max_rounds = int(data["max_rounds"])
        self.agents = {
            a: Agent(a, a in byzantine, None if a in byzantine else int(data["start_values"][a]))
            for a in data["agents"]
        }
        self.summaries: list[str] = []  # one line per round, the same for every agent
        self.trajectory: list[dict[str, int | None]] = []
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
            votes = self._vote(r)
            self.trajectory.append({a.name: a.value for a in self.agents.values()})
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
            fmt["start"] = a.value
        return BOOK.render(f"system_{role}", **fmt)

    def _history(self) -> str:
        shown = self.summaries[-self.preset.memory :][::-1]
        return "\n".join(shown) if shown else BOOK.render("no_history")

    def _notes(self, a: Agent, empty: str) -> str:
        lines = [BOOK.render("note", round=r, note=n) for r, n in a.notes]
        return "\n".join(lines) if lines else BOOK.render(empty)

    def _ask(
        self, r: int, phase: str, prompt_of: dict[str, str],
        read: Callable[[str, bool], Any], schema: Callable[[bool], dict[str, Any]],
        temperature: float, max_tokens: int,
    ) -> dict[str, Any]:
        """One phase: every LLM agent is asked (one batch), the invalid ones again up to
        ``retries`` times; the last retries carry a note that the reply was invalid."""
        results: dict[str, Any] = {}
        pending = [a for a in self._llm_agents() if a.name in prompt_of]
        attempts = self.preset.retries
        for attempt in range(attempts + 1):
            if not pending:
                break
            calls = []
            for a in pending:
                user = prompt_of[a.name]
                if attempt >= 2:  # the agent's own retry loop: attempt 2 of 3 on carries a note
                    role = "byzantine" if a.byzantine else "honest"
                    user += BOOK.render(f"retry_{phase}_{role}", attempt=attempt, attempts=attempts)
                calls.append(Call(a.name, conversation(self._system(a, phase == "vote"), user),
                                  seen=[b for b in self.agents if b != a.name],
                                  json_schema=schema(a.byzantine)))  # fmt: skip
            texts = self.rec.round(
                calls, step=r, max_tokens=max_tokens, temperature=temperature,
                data={"phase": phase, "attempt": attempt + 1},
            )  # fmt: skip
            still = []
            for a, text in zip(pending, texts, strict=True):
                parsed = read(text, a.byzantine)
                if parsed is None:
                    still.append(a)
                    self.rec.error(a.name, f"invalid {phase} reply (attempt {attempt + 1})", step=r)
                else:
                    results[a.name] = parsed
            pending = still
        return results

    def _propose(self, r: int) -> None:
        p = self.preset
        prompt_of = {}
        for a in self._llm_agents():
            current = BOOK.render("current_value", value=a.value) if a.value is not None else BOOK.render("no_value")
            prompt_of[a.name] = BOOK.render(
                "propose_byzantine" if a.byzantine else "propose_honest", round=r,
                current=current, history=self._history(), notes=self._notes(a, "no_notes"),
            )  # fmt: skip
        got = self._ask(r, "propose", prompt_of, read_proposal, proposal_schema,
                        p.temperature, p.max_tokens)  # fmt: skip
        for a in self.agents.values():
            if a.byzantine and p.byzantine == "scripted":
                a.value, a.reasoning = self.rng.randint(LOW, HIGH), ""
                continue
            proposal: Proposal | None = got.get(a.name)
            if proposal is None:  # no valid reply after the retries: the value stays
                a.reasoning = BOOK.render("failed_reasoning")
                continue
            if proposal.notes.strip():
                a.notes = (a.notes + [(r, proposal.notes.strip()[:NOTE_CUT])])[-NOTES_SHOWN:]
            a.reasoning = proposal.reasoning[:600]
            if proposal.value is not None:  # a Byzantine "abstain" keeps the value it had
                a.value = proposal.value
        for a in self.agents.values():
            if a.value is not None:
                self.rec.event(
                    "message", a.name, a.reasoning, step=r,
                    recipients=[b for b in self.agents if b != a.name],
                    data={"value": a.value, "byzantine": a.byzantine},
                )  # fmt: skip

    def _summary(self, r: int) -> str:
        entries = []
        for a in sorted(self.agents.values(), key=lambda a: a.name):
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
            if a.byzantine and p.byzantine == "scripted":
                vote: str | None = self.rng.choice(("stop", "continue"))
            else:
                vote = got.get(a.name, "continue")  # a failed vote counts as continue
            self.rec.event("vote", a.name, vote or "", step=r, data={"value": vote})
            votes[a.name] = vote
        return votes
