"""Outcome and cost metrics: score, sequential passes, tokens, wall time, protocol facts.

These read the substrate's result object (anything with :class:`ResultLike`'s attributes) so the
metrics package needs no import of the substrates package.
"""

from __future__ import annotations

from typing import Any, Protocol

from hivethink.tasks.base import Instance, Outcome, OutcomeTask, Task, is_judged

Metrics = dict[str, float | int | str | None]


class ResultLike(Protocol):
    """The fields of ``hivethink.substrates.base.SampleResult`` that metrics read."""

    answer: str | None
    sequential_passes: int
    sequential_calls: int
    tokens: int
    prompt_tokens: int
    cached_tokens: int
    wall_s: float
    info: dict[str, Any]
    outcome: Outcome | None


def outcome_metrics(
    task: Task, instance: Instance, answer: str | None, outcome: Outcome | None = None
) -> Metrics:
    """``score`` in [0, 1] and ``correct`` (1 when the score is 1). The task scores the
    protocol's typed outcome when it defines ``score_outcome`` and there is one (graph and game
    tasks), else the team answer; the outcome's own metrics (``Outcome.metrics``) follow. Both
    are None when the task leaves the outcome unscored (out of means, as published), and for a
    judged task (``mission``): the lab's judge fills its score in (``lab.judge``). A task with
    ``answer_metrics`` (the code task: how the test run ended) adds its own."""
    if is_judged(task):
        return {"score": None, "correct": None}
    if outcome is not None and isinstance(task, OutcomeTask):
        scored = task.score_outcome(instance, outcome)
        if scored is None:
            return {"score": None, "correct": None}
        score = float(scored)
    else:
        score = float(task.score(instance, answer))
    metrics: Metrics = {"score": score, "correct": 1.0 if score >= 1.0 else 0.0}
    extra = getattr(task, "answer_metrics", None)
    if extra is not None:
        metrics |= extra(instance, answer)
    return metrics


def cost_metrics(result: ResultLike) -> Metrics:
    """Latency and cost: sequential forward passes and calls, tokens, wall seconds."""
    return {
        "sequential_passes": int(result.sequential_passes),
        "sequential_calls": int(result.sequential_calls),
        "tokens": int(result.tokens),
        "prompt_tokens": int(result.prompt_tokens),
        "cached_tokens": int(result.cached_tokens),
        "wall_s": float(result.wall_s),
    }


def _flag(value: Any) -> float | None:
    return None if value is None else (1.0 if bool(value) else 0.0)


def protocol_metrics(info: dict[str, Any]) -> Metrics:
    """Protocol facts a substrate reports in ``SampleResult.info`` (missing keys give None).

    ``rounds``: rounds used (``info["rounds_used"]``, else ``"rounds"``, else ``"turns"``).
    ``timeout``: 1 when the protocol hit its deadline instead of ending by vote or agreement.
    ``consensus``: 1 when the group ended the protocol by agreement (``info["consensus"]``, else
    ``"valid"``, ``"agreed"`` or ``"ended_by_vote"``); whether the agreed value is valid is the
    task's score. ``rounds_to_consensus``: ``rounds`` when consensus is 1, else None.
    ``flipped``: 1 when an agent abandoned its answer for a partner's asserted wrong one.
    """
    rounds = next((info[k] for k in ("rounds_used", "rounds", "turns") if k in info), None)
    rounds = (
        int(rounds) if isinstance(rounds, (int, float)) and not isinstance(rounds, bool) else None
    )
    consensus = _flag(
        next(
            (info[k] for k in ("consensus", "valid", "agreed", "ended_by_vote") if k in info), None
        )
    )
    return {
        "rounds": rounds,
        "timeout": _flag(info.get("timeout")),
        "consensus": consensus,
        "rounds_to_consensus": rounds if consensus == 1.0 else None,
        "flipped": _flag(info.get("flipped")),
    }
