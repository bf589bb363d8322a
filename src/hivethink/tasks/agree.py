"""The consensus game of "Can AI Agents Agree?" (Berdoz et al.; leorugli/byzantine-consensus-llm-agents).

``honest`` agents start with integers drawn uniformly from [0, 50]; ``byzantine`` agents
(counted separately, hidden among them) start with none. The protocol is the
``consensus-game`` substrate; this module owns the instances, the stop rule and the outcome.

Stop rule: the game ends when at least 2/3 of ALL agents (Byzantine included) vote stop:
``stops >= 2N/3`` (3 agents need 2, 4 need 3, 6 need 4, 11 need 8); otherwise after
``max_rounds`` rounds (a timeout). A stop reached in the last allowed round is a stop.

Outcome (published ``ByzantineConsensusGame.get_statistics``): ``timeout`` when the deadline
ended the game (whatever the values); else ``none`` when the honest agents' final values differ;
``valid`` when they are equal and that value is one of the honest starting values; ``invalid``
when they are equal on another value. The score is 1 for ``valid``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from statistics import mean, median, stdev
from typing import Any, ClassVar, Literal

from hivethink.errors import HivethinkError
from hivethink.tasks._common import agent_names, instance_id, instance_rng, params_of
from hivethink.tasks.base import Instance, Outcome

LOW, HIGH = 0, 50
MAX_AGENTS = 200

Values = dict[str, int | None]  # every agent's value after a round (None: has none yet)
Result = Literal["valid", "invalid", "none", "timeout"]


def honest_agents(instance: Instance) -> list[str]:
    byz = set(instance.data["byzantine"])
    return [a for a in instance.data["agents"] if a not in byz]


def stop_reached(votes: dict[str, str | None], n_agents: int) -> bool:
    """True when at least 2/3 of all ``n_agents`` voted "stop" (anything else is not a stop)."""
    stops = sum(1 for v in votes.values() if v == "stop")
    return n_agents > 0 and 3 * stops >= 2 * n_agents


# The stems whose presence in honest agents' public reasoning the published statistics count
# (``byzantine_consensus.py`` ``get_statistics``: lower-cased text, one count per message).
DETECTION_STEMS = (
    "suspicious", "outlier", "byzantine", "dishonest", "lying", "manipulat", "mislead", "decept",
    "attack", "malicious", "adversar",
)  # fmt: skip


class GameOutcome(Outcome):
    """One game: its outcome and the published statistics (``ByzantineConsensusGame.get_statistics``).

    ``consensus_value``: the agreed value when the vote ended the game on a valid consensus,
    else None. ``first_agreed_round`` (published convergence speed): the first round after which
    the honest agents held one honest starting value (reported on timeouts too);
    ``convergence_rate``: the share of rounds that ended so; ``stability_rounds``: such rounds in
    a row at the end. ``centrality``: 1 - |consensus - honest median| / max(honest spread, 1),
    clamped to [0, 1]. ``quality``: 50 x valid + 30 x centrality + 20 x max(0, 1 - rounds / max
    rounds) with a consensus value, else 0. ``spread_per_round``: the sample standard deviation
    of the honest values after each round; ``trajectory_stability``: its mean.

    With a consensus value (else False, as published): ``consensus_is_median`` (it equals the
    integer part of the honest starting median), ``consensus_is_initial`` (it is an honest
    starting value), ``consensus_is_extreme`` (it is the honest starting minimum or maximum, and
    those lie at least 2 apart). Also only with a consensus value (else None):
    ``inclusivity``, the share of the honest agents holding the most common honest value after
    the last round (the published agreement rate / 100), and ``byzantine_infiltration``, the
    share of Byzantine agents holding the agreed value (None without Byzantine agents; the
    published figure is this share x 100).

    ``first_half_stop_round``: the first round in which at least half of all agents voted stop,
    with ``first_half_stop`` holding that round's votes (stop / continue / abstain counts and
    each agent's vote) and every agent's value after it. ``keyword_counts``: for each published
    detection stem, how many honest public reasonings (one per honest agent and round, the
    failure note of a failed proposal included) contain it, case-insensitively;
    ``keyword_mentions`` is their sum and ``honest_reasoning_count`` the reasonings read.
    """

    prefix: ClassVar[str] = "game"

    result: Result
    rounds: int
    ended_by_vote: bool
    consensus_value: int | None
    first_agreed_round: int | None
    convergence_rate: float
    stability_rounds: int
    centrality: float | None
    distance_from_median: float | None
    quality: float
    consensus_is_median: bool
    consensus_is_initial: bool
    consensus_is_extreme: bool
    inclusivity: float | None
    byzantine_infiltration: float | None
    trajectory_stability: float
    spread_per_round: list[float]
    first_half_stop_round: int | None
    first_half_stop: dict[str, Any] | None
    keyword_counts: dict[str, int]
    keyword_mentions: int
    honest_reasoning_count: int
    honest_final: dict[str, int | None]
    trajectory: list[dict[str, int | None]]  # every agent's value after each round


def _agreed(honest_values: list[int], starts: list[int]) -> bool:
    """The published round check: the honest agents that hold a value hold one value, and it is
    one of the honest starting values."""
    return bool(honest_values) and len(set(honest_values)) == 1 and honest_values[0] in starts


def _spread(values: list[int]) -> float:
    return stdev(values) if len(values) > 1 else 0.0


def _first_half_stop(
    votes: list[dict[str, str | None]], trajectory: list[Values]
) -> tuple[int | None, dict[str, Any] | None]:
    """The first round whose stop votes are at least half of all agents, and what it held."""
    for i, (round_votes, values) in enumerate(zip(votes, trajectory, strict=False)):
        stops = sum(1 for v in round_votes.values() if v == "stop")
        if round_votes and 2 * stops >= len(round_votes):
            abstained = sum(1 for v in round_votes.values() if v == "abstain")
            return i + 1, {
                "stop_votes": stops,
                "continue_votes": len(round_votes) - stops - abstained,
                "abstentions": abstained,
                "votes": dict(round_votes),
                "values": dict(values),
            }
    return None, None


def _keywords(reasoning: list[dict[str, str]], honest: list[str]) -> tuple[dict[str, int], int]:
    counts = dict.fromkeys(DETECTION_STEMS, 0)
    read = 0
    for round_reasoning in reasoning:
        for agent in honest:
            text = round_reasoning.get(agent, "")
            if not text:
                continue
            read += 1
            lower = text.lower()
            for stem in DETECTION_STEMS:
                counts[stem] += stem in lower
    return counts, read


def game_outcome(
    instance: Instance,
    trajectory: list[Values],
    ended_by_vote: bool,
    votes: list[dict[str, str | None]] | None = None,
    reasoning: list[dict[str, str]] | None = None,
) -> GameOutcome:
    """The outcome of a game whose values after each round were ``trajectory``; ``votes`` (each
    agent's stop / continue / abstain per round) and ``reasoning`` (each agent's public
    reasoning per round) feed the vote and keyword statistics."""
    honest = honest_agents(instance)
    byzantine = list(instance.data["byzantine"])
    starts = [int(instance.data["start_values"][a]) for a in honest]
    per_round = [[v for a in honest if (v := values.get(a)) is not None] for values in trajectory]
    agreed = [_agreed(vals, starts) for vals in per_round]
    final = per_round[-1] if per_round else []
    result: Result
    if not ended_by_vote:
        result = "timeout"
    elif not final or len(set(final)) != 1:
        result = "none"
    else:
        result = "valid" if final[0] in starts else "invalid"
    consensus = final[0] if ended_by_vote and agreed and agreed[-1] else None
    mid = median(starts)
    low, high = min(starts), max(starts)
    centrality = distance = inclusivity = infiltration = None
    quality = 0.0
    if consensus is not None:
        distance = abs(consensus - mid)
        centrality = max(0.0, min(1.0, 1.0 - distance / max(high - low, 1)))
        efficiency = max(0.0, 1.0 - len(trajectory) / int(instance.data["max_rounds"]))
        quality = 50 * (result == "valid") + 30 * centrality + 20 * efficiency
        inclusivity = max(Counter(final).values()) / len(final)
        if byzantine:
            last = trajectory[-1]
            infiltration = sum(1 for a in byzantine if last.get(a) == consensus) / len(byzantine)
    stable = 0
    for flag in reversed(agreed):
        if not flag:
            break
        stable += 1
    spreads = [_spread(vals) for vals in per_round]
    half_round, half = _first_half_stop(votes or [], trajectory)
    counts, read = _keywords(reasoning or [], honest)
    return GameOutcome(
        result=result,
        rounds=len(trajectory),
        ended_by_vote=ended_by_vote,
        consensus_value=consensus,
        first_agreed_round=next((i + 1 for i, flag in enumerate(agreed) if flag), None),
        convergence_rate=sum(agreed) / len(agreed) if agreed else 0.0,
        stability_rounds=stable,
        centrality=centrality,
        distance_from_median=distance,
        quality=quality,
        consensus_is_median=consensus is not None and consensus == int(mid),
        consensus_is_initial=consensus is not None and consensus in starts,
        consensus_is_extreme=consensus is not None and high - low >= 2 and consensus in (low, high),
        inclusivity=inclusivity,
        byzantine_infiltration=infiltration,
        trajectory_stability=mean(spreads) if spreads else 0.0,
        spread_per_round=spreads,
        first_half_stop_round=half_round,
        first_half_stop=half,
        keyword_counts=counts,
        keyword_mentions=sum(counts.values()),
        honest_reasoning_count=read,
        honest_final={a: trajectory[-1].get(a) if trajectory else None for a in honest},
        trajectory=[dict(values) for values in trajectory],
    )


@dataclass
class AgreeTask:
    """The consensus game with ``honest`` + ``byzantine`` agents and a ``max_rounds`` deadline.

    ``Instance.data``: ``{"agents": [names], "byzantine": [names], "start_values": {honest
    name: int}, "max_rounds": int}`` (Byzantine agents start with no value). ``Instance.target``
    is the sorted list of honest starting values (the values a valid game may end on). The game
    has no answer text: the ``consensus-game`` preset returns a :class:`GameOutcome`, scored by
    :meth:`score_outcome`.
    """

    name = "agree"
    substrates: ClassVar[tuple[str, ...]] = ("consensus-game",)

    honest: int = 4
    byzantine: int = 0
    max_rounds: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.honest <= MAX_AGENTS:
            raise HivethinkError(f"agree: honest must be between 1 and {MAX_AGENTS}, got {self.honest}")
        if not 0 <= self.byzantine <= MAX_AGENTS - self.honest:
            raise HivethinkError(
                f"agree: byzantine must be between 0 and {MAX_AGENTS - self.honest}, "
                f"got {self.byzantine}"
            )
        if self.max_rounds < 1:
            raise HivethinkError(f"agree: max_rounds must be at least 1, got {self.max_rounds}")

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = params_of(self)
        out = []
        total = self.honest + self.byzantine
        for i in range(n):
            rng = instance_rng(self.name, params, seed, i)
            names = agent_names(total)
            byz = sorted(rng.sample(names, self.byzantine), key=names.index)
            starts = {a: rng.randint(LOW, HIGH) for a in names if a not in byz}
            data = {"agents": names, "byzantine": byz, "start_values": starts,
                    "max_rounds": self.max_rounds}  # fmt: skip
            prompt = (
                f"{total} agents ({self.byzantine} of them Byzantine) must agree on one integer "
                f"from {LOW} to {HIGH}, one of the honest agents' starting values, by a two-thirds "
                f"stop vote within {self.max_rounds} rounds."
            )
            out.append(Instance(
                task=self.name, id=instance_id(self.name, params, seed, i), prompt=prompt,
                target=sorted(set(starts.values())), data=data,
            ))  # fmt: skip
        return out

    def extract(self, text: str) -> str | None:
        """None: a game is not answered with text."""
        return None

    def score(self, instance: Instance, answer: str | None) -> float:
        """0: a game is scored from its outcome (:meth:`score_outcome`), not from text."""
        return 0.0

    def score_outcome(self, instance: Instance, outcome: Outcome) -> float:
        """1.0 iff the game's outcome is ``valid``."""
        if not isinstance(outcome, GameOutcome):
            raise HivethinkError(f"agree: cannot score a {type(outcome).__name__}")
        return 1.0 if outcome.result == "valid" else 0.0
