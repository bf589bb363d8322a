"""Likelihood calls inside a substrate: one batched ``Backend.score`` with its trace event.

A batch is a ``prompt`` event of the helper ``scorer`` (metrics leave helpers out) holding every
scored text (``<label>: <prompt>|<continuation>``), then a ``step`` event whose ``data`` holds the
phase and, per request, its label and result. It costs
one sequential call; its critical path is the longest continuation (the local engine feeds a
continuation one token per pass). Prompt tokens count as prompt tokens; nothing is generated.
A backend that cannot score, or a request it failed, is a backend ``error`` event: the caller
gets None and ends the sample without an answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from hivethink.backends.base import Backend, Score, Scorer, ScoreRequest
from hivethink.names import SCORER
from hivethink.substrates.common import Recorder


def score_batch(
    rec: Recorder, backend: Backend, requests: Sequence[ScoreRequest], *, step: int, phase: str,
    labels: Sequence[str],
) -> list[Score] | None:
    """Score ``requests`` as one batch; None (with an ``error`` event) when any failed."""
    if not requests:
        return []
    if not isinstance(backend, Scorer):
        reason = f"backend {backend.name!r} cannot score text (it has no log-likelihoods)"
        rec.event("error", SCORER, reason, step=step, data={"reason": reason, "backend": True})
        return None
    shown = "\n\n".join(f"[{label}]\n{r.prompt}|{r.continuation}" for label, r in zip(labels, requests, strict=True))
    rec.event("prompt", SCORER, shown, step=step, data={"phase": phase})
    scores = backend.score(list(requests))
    rec.sequential_calls += 1
    rec.sequential_passes += max((s.tokens for s in scores), default=0)
    rec.prompt_tokens += sum(s.prompt_tokens + s.tokens for s in scores)
    rec.event(
        "step", SCORER, f"{phase}: {len(scores)} likelihoods", step=step,
        data={"phase": phase, "tokens": 0, "scores": [
            {"label": label, "logprob": s.logprob, "tokens": s.tokens, "error": s.error}
            for label, s in zip(labels, scores, strict=True)
        ]},
    )  # fmt: skip
    failed = [s.error for s in scores if s.error]
    if failed:
        reason = f"{len(failed)} of {len(scores)} scores failed; first: {failed[0]}"
        rec.event("error", SCORER, reason, step=step, data={"reason": reason, "backend": True})
        return None
    return scores
