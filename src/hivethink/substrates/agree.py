"""``agree``: the consensus game of "Can AI Agents Agree?" with all-to-all broadcast.

Each round has two batched calls: every honest agent proposes ``{"value": int, "reasoning":
str}``; then, shown every proposal of the round, every honest agent votes stop or continue. The
game ends when at least 2/3 of ALL agents vote stop (``hivethink.tasks.agree.stop_reached``) or
after ``data["max_rounds"]`` rounds (``info["timeout"] = True``). Prompts are stateless: each
shows the agent's current value and the previous round's proposals (bounded context over 50
rounds). An unreadable proposal keeps the agent's value (``error`` event); an unreadable vote
counts as continue. Byzantine agents are scripted: a uniform random value in [0, 50] and a
random vote each round, from a generator seeded by ``seed`` and the instance id; they never
call the backend. A spent ``budget.tokens`` or ``budget.passes`` also ends the game (as a timeout).
The team answer is ``tasks.agree.team_answer`` of the honest agents' values.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from types import ModuleType

from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Recorder, SubstrateBase, conversation
from hivethink.tasks.base import Instance, Task

PROPOSE = (
    "Round {round} of {rounds}. Your current value: {value}.\nProposals of the previous round:"
    "\n{proposals}\n\nPropose your value for this round as one JSON object "
    '{{"value": <integer>, "reasoning": "<one short sentence>"}}.'
)
VOTE = (
    "Round {round} of {rounds}. All proposals of this round:\n{proposals}\n\nShould the game "
    'stop now? Reply with one JSON object: {{"vote": "stop"}} or {{"vote": "continue"}}.'
)


def show(proposals: dict[str, int]) -> str:
    return "\n".join(f"- {name}: {value}" for name, value in proposals.items()) or "(none yet)"


@dataclass
class Game:
    """The state of one consensus game: who plays, who is scripted, current values."""

    agents: list[str]
    byzantine: set[str]
    system: dict[str, str]  # honest agents' system prompts
    values: dict[str, int]
    rng: random.Random

    @property
    def honest(self) -> list[str]:
        return [a for a in self.agents if a not in self.byzantine]


@dataclass
class Agree(SubstrateBase):
    """No parameters beyond ``temperature``; agents and deadline come from the instance."""

    name = "agree"

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
        from hivethink.tasks import agree as rules

        if instance.task != "agree":
            raise HivethinkError(f"agree: needs an agree-task instance, got {instance.task!r}")
        rec = Recorder(backend, budget, seed=seed, temperature=self.temperature)
        data = instance.data
        agents = list(data["agents"])
        byzantine = set(data["byzantine"])
        game = Game(
            agents=agents,
            byzantine=byzantine,
            system={
                a: rules.agent_system_prompt(instance, a) for a in agents if a not in byzantine
            },
            values={a: int(data["start_values"][a]) for a in agents},
            rng=random.Random(f"agree:{seed}:{instance.id}"),
        )
        max_rounds = int(data["max_rounds"])
        previous: dict[str, int] = {}
        ended_by_vote = budget_exhausted = False
        rounds_done = 0
        for r in range(max_rounds):
            if rec.exhausted:
                budget_exhausted = True
                break
            fmt = {"round": r + 1, "rounds": max_rounds}
            proposals = self._propose(rec, game, rules, previous, r, fmt)
            votes = self._vote(rec, game, rules, proposals, r, fmt)
            previous = proposals
            rounds_done = r + 1
            if rules.stop_reached(votes, len(agents)):
                ended_by_vote = True
                break

        final_values: dict[str, int | None] = {a: game.values[a] for a in game.honest}
        answers: dict[str, str | None] = {a: str(v) for a, v in final_values.items()}
        rec.answers(answers, step=rounds_done - 1)
        info = {
            "rounds": rounds_done,
            "timeout": not ended_by_vote,
            "ended_by_vote": ended_by_vote,
            "score": rules.score_game(instance, final_values, ended_by_vote),
            "byzantine": [a for a in agents if a in byzantine],
            "budget_exhausted": budget_exhausted,
        }
        return rec.finish(
            rules.team_answer(final_values, ended_by_vote), agent_answers=answers, info=info
        )

    @staticmethod
    def _propose(
        rec: Recorder,
        game: Game,
        rules: ModuleType,
        previous: dict[str, int],
        r: int,
        fmt: dict[str, int],
    ) -> dict[str, int]:
        """Everyone proposes (honest agents in one batch); proposals are broadcast to all."""
        honest = game.honest
        calls = [
            Call(
                a,
                conversation(
                    game.system[a],
                    PROPOSE.format(value=game.values[a], proposals=show(previous), **fmt),
                ),
                seen=list(previous),
            )
            for a in honest
        ]
        texts = rec.round(calls, step=r, data={"phase": "propose"})
        for a, text in zip(honest, texts, strict=True):
            proposal = rules.parse_proposal(text)
            if proposal is None:
                rec.error(a, "unreadable proposal; keeps its value", step=r)
            else:
                game.values[a] = proposal["value"]
        for a in game.agents:
            if a in game.byzantine:
                game.values[a] = game.rng.randint(0, 50)
            rec.event(
                "message",
                a,
                str(game.values[a]),
                step=r,
                recipients=[b for b in game.agents if b != a],
                data={"value": game.values[a], "scripted": a in game.byzantine},
            )
        return dict(game.values)

    @staticmethod
    def _vote(
        rec: Recorder,
        game: Game,
        rules: ModuleType,
        proposals: dict[str, int],
        r: int,
        fmt: dict[str, int],
    ) -> dict[str, str | None]:
        """Everyone votes stop/continue after seeing all proposals; unreadable votes are None."""
        honest = game.honest
        calls = [
            Call(
                a,
                conversation(game.system[a], VOTE.format(proposals=show(proposals), **fmt)),
                seen=list(game.agents),
            )
            for a in honest
        ]
        texts = rec.round(calls, step=r, data={"phase": "vote"})
        parsed = dict(zip(honest, map(rules.parse_vote, texts), strict=True))
        votes: dict[str, str | None] = {}
        for a in game.agents:
            vote = game.rng.choice(("stop", "continue")) if a in game.byzantine else parsed[a]
            if vote is None:
                rec.error(a, "unreadable vote; counts as continue", step=r)
            rec.event("vote", a, vote or "", step=r, data={"value": vote})
            votes[a] = vote
        return votes
