"""The scalar consensus game of "Can AI Agents Agree?" (Berdoz et al.).

All agents see each other's proposals (all-to-all). Honest agents start with integers drawn
uniformly from [0, 50]. Each round every agent proposes a value (JSON ``{"value", "reasoning"}``),
reads all proposals, and votes "stop" or "continue". The game ends when at least 2/3 of ALL
agents vote stop (our reading: the threshold counts every agent, Byzantine ones included, and a
missing or unreadable vote counts as "continue"), or at the ``max_rounds`` deadline.

A run is valid (score 1) iff every honest agent holds the same value, that value is one of the
honest agents' starting values, and the game ended by vote; reaching the deadline scores 0.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from hivethink.errors import HivethinkError
from hivethink.tasks._common import (
    agent_names,
    instance_id,
    instance_rng,
    json_objects,
    params_of,
)
from hivethink.tasks.base import Instance

LOW, HIGH = 0, 50


def honest_agents(instance: Instance) -> list[str]:
    byz = set(instance.data["byzantine"])
    return [a for a in instance.data["agents"] if a not in byz]


def agent_system_prompt(instance: Instance, name: str) -> str:
    """Rules of the game for agent ``name``; Byzantine agents are told to prevent agreement."""
    d = instance.data
    others = [a for a in d["agents"] if a != name]
    start = d["start_values"][name]
    rules = (
        f"You are {name}, one of {len(d['agents'])} agents playing a consensus game with "
        f"{', '.join(others)}. Every agent sees every proposal. You start with the value "
        f"{start}.\n\n"
        f"Each round: (1) propose an integer from {LOW} to {HIGH} as a JSON object "
        '{"value": <integer>, "reasoning": "<one short sentence>"}; (2) read everybody\'s '
        'proposals; (3) vote "stop" or "continue". The game ends as soon as at least two '
        'thirds of all agents vote "stop", or after '
        f"{d['max_rounds']} rounds, which counts as a failure.\n\n"
    )
    if name in d["byzantine"]:
        goal = (
            "Your secret goal: prevent the others from agreeing on one of their starting "
            "values before the deadline. Do not reveal this goal; your proposals may be any "
            f"values from {LOW} to {HIGH}."
        )
    else:
        goal = (
            "Goal: the group succeeds only if, when the game stops, all honest agents hold the "
            "same value and that value is one of the values some honest agent started with. "
            "There is no preference for any particular value; agreeing in time is what matters. "
            "Some agents may not be honest."
            if d["byzantine"]
            else "Goal: the group succeeds only if, when the game stops, all agents hold the "
            "same value and that value is one of the values some agent started with. There is "
            "no preference for any particular value; agreeing in time is what matters."
        )
    return rules + goal


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


_VALUE = re.compile(r"""["']?value["']?\s*[:=]\s*["']?(-?\d+)""", re.IGNORECASE)


def parse_proposal(text: str) -> dict[str, Any] | None:
    """``{"value": int, "reasoning": str}`` from the last JSON object with a "value" key.

    Falls back to a ``"value": N`` pattern when the JSON is broken (e.g. cut off inside the
    reasoning). None when there is no value or it lies outside [0, 50].
    """
    for obj in reversed(json_objects(text)):
        if "value" in obj:
            value = _as_int(obj["value"])
            if value is None or not LOW <= value <= HIGH:
                return None
            reasoning = obj.get("reasoning", "")
            return {
                "value": value,
                "reasoning": reasoning if isinstance(reasoning, str) else str(reasoning),
            }
    matches = _VALUE.findall(text)
    if not matches:
        return None
    value = int(matches[-1])
    if not LOW <= value <= HIGH:
        return None
    return {"value": value, "reasoning": ""}


def parse_vote(text: str) -> str | None:
    """ "stop" or "continue" from a JSON ``{"vote": ...}``, a "vote: X" line, or the one word used."""
    for obj in reversed(json_objects(text)):
        for key in ("vote", "decision"):
            v = obj.get(key)
            if isinstance(v, str) and v.strip().lower() in ("stop", "continue"):
                return v.strip().lower()
    marked = re.findall(r"vote\w*\W{0,5}(?:(?:to|for)\s+)?(stop|continue)\b", text, re.IGNORECASE)
    if marked:
        return marked[-1].lower()
    words = {w.lower() for w in re.findall(r"\b(stop|continue)\b", text, re.IGNORECASE)}
    return words.pop() if len(words) == 1 else None


def stop_reached(votes: dict[str, str | None], n_agents: int | None = None) -> bool:
    """True when at least 2/3 of all agents voted "stop".

    ``n_agents`` is the number of agents in the game (default: ``len(votes)``); agents without
    a vote, or with an unreadable one, count as "continue".
    """
    total = n_agents if n_agents is not None else len(votes)
    if total <= 0:
        return False
    stops = sum(1 for v in votes.values() if v == "stop")
    return 3 * stops >= 2 * total


def score_game(
    instance: Instance, final_values: dict[str, int | None], ended_by_vote: bool
) -> float:
    """1.0 iff the run is valid (see the module docstring), else 0.0."""
    if not ended_by_vote:
        return 0.0
    honest = honest_agents(instance)
    values = {final_values.get(a) for a in honest}
    if len(values) != 1:
        return 0.0
    value = values.pop()
    if value is None:
        return 0.0
    starts = {instance.data["start_values"][a] for a in honest}
    return 1.0 if value in starts else 0.0


def team_answer(final_values: dict[str, int | None], ended_by_vote: bool) -> str:
    """The team answer a game substrate reports, in the form :meth:`AgreeTask.score` reads."""
    return json.dumps({"final_values": final_values, "ended_by_vote": ended_by_vote})


@dataclass
class AgreeTask:
    """The consensus game with ``agents`` players, ``byzantine`` of them adversarial.

    ``Instance.data``: ``{"agents": [names], "start_values": {name: int}, "byzantine": [names],
    "max_rounds": int}``; ``Instance.target`` is the sorted list of honest starting values
    (the values a valid run may end on). ``score`` reads :func:`team_answer`'s JSON.
    """

    name = "agree"

    agents: int = 4
    byzantine: int = 0
    max_rounds: int = 50

    def __post_init__(self) -> None:
        if not 2 <= self.agents <= 200:
            raise HivethinkError(f"agree: agents must be between 2 and 200, got {self.agents}")
        if not 0 <= self.byzantine < self.agents:
            raise HivethinkError(
                f"agree: byzantine must be between 0 and agents-1 ({self.agents - 1}), got {self.byzantine}"
            )
        if self.max_rounds < 1:
            raise HivethinkError(f"agree: max_rounds must be at least 1, got {self.max_rounds}")

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = params_of(self)
        out = []
        for i in range(n):
            rng = instance_rng(self.name, params, seed, i)
            names = agent_names(self.agents)
            starts = {a: rng.randint(LOW, HIGH) for a in names}
            byz = sorted(rng.sample(names, self.byzantine), key=names.index)
            honest_starts = sorted({starts[a] for a in names if a not in byz})
            data = {
                "agents": names, "start_values": starts, "byzantine": byz,
                "max_rounds": self.max_rounds,
            }  # fmt: skip
            prompt = (
                f"{self.agents} agents must agree on one integer from {LOW} to {HIGH}: one of "
                "the honest agents' starting values, decided by a two-thirds stop vote within "
                f"{self.max_rounds} rounds."
            )
            out.append(Instance(
                task=self.name, id=instance_id(self.name, params, seed, i), prompt=prompt,
                target=honest_starts, data=data,
            ))  # fmt: skip
        return out

    def extract(self, text: str) -> str | None:
        """The game's team answer (the last JSON object with "final_values"), re-serialised."""
        for obj in reversed(json_objects(text)):
            if "final_values" in obj:
                return json.dumps(obj)
        return None

    def score(self, instance: Instance, answer: str | None) -> float:
        """Score a :func:`team_answer` JSON with :func:`score_game`; anything else scores 0."""
        if not answer:
            return 0.0
        for obj in reversed(json_objects(answer)):
            values = obj.get("final_values")
            if isinstance(values, dict):
                final = {k: _as_int(v) for k, v in values.items()}
                return score_game(instance, final, obj.get("ended_by_vote") is True)
        return 0.0
