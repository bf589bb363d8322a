"""The LLM judges in a lab run: the MAST judge labels each finished sample's trace (``mast:``
in a grid); the quality judge scores the deliverables of judged tasks (``judge:``; ``mission``).

Both run in the process that writes the results (after a sample is computed, before its line is
written), so local and Ray runs judge alike. The MAST labels say which taxonomy and which texts
(digest, and the authors' repository and commit when they were imported) made them. A MAST call
that fails (an unreachable server, a backend error) is recorded in that sample's ``mast``
field; a quality judge that fails leaves the sample without a score and records
``error = "judge: ..."`` (and the ``judge`` field says why); the run goes on either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hivethink import prompts
from hivethink.backends.base import Backend, GenRequest
from hivethink.lab.config import JudgeSpec, MastSpec
from hivethink.lab.records import ResultRecord
from hivethink.metrics.mast import BOOKS, mast_prompt, parse_mast_reply
from hivethink.tasks.base import Instance
from hivethink.tasks.mission import judge_run
from hivethink.trace import Event


def mast_judge(
    events: Sequence[Event],
    backend: Backend,
    *,
    max_tokens: int = 1024,
    max_chars: int | None = None,
    temperature: float = 1.0,
    parse: str = "published",
    taxonomy: str = "published",
) -> dict[str, Any]:
    """Ask ``backend`` to label the trace (:func:`hivethink.metrics.mast.mast_prompt`):
    :func:`~hivethink.metrics.mast.parse_mast_reply`'s dict plus ``raw`` (the reply) and
    ``error`` (the backend's error, or None). Never raises for a failed call."""
    request = GenRequest(
        messages=[{"role": "user", "content": mast_prompt(events, max_chars, taxonomy)}],
        max_tokens=max_tokens,
        temperature=temperature,
    )
    completion = backend.generate([request])[0]
    return {
        **parse_mast_reply(completion.text, parse),
        "raw": completion.text,
        "error": completion.error,
    }


def judge_sample(
    backend: Backend, spec: MastSpec, record: ResultRecord, events: Sequence[Event]
) -> dict[str, Any] | None:
    """The ``mast`` field of one results line: the judge's labels, or the error that stopped
    it; None for a sample that raised (its trace is only the lab's error event)."""
    if not record.metrics:
        return None
    label = spec.judge.label
    try:
        verdict = mast_judge(
            events, backend, max_tokens=spec.max_tokens, max_chars=spec.max_chars,
            temperature=spec.temperature, parse=spec.parse, taxonomy=spec.taxonomy,
        )  # fmt: skip
    except Exception as err:  # noqa: BLE001 - a broken judge must not stop the run
        return {"judge": label, "error": f"{type(err).__name__}: {err}"}
    if verdict["error"]:
        return {"judge": label, "error": str(verdict["error"])}
    book = BOOKS[spec.taxonomy].name
    return {
        "judge": label,
        "taxonomy": spec.taxonomy,
        "prompts_digest": prompts.digest([book]),
        "published_texts": prompts.published([book]),
        "modes": verdict["modes"],
        "success": verdict["success"],
        "summary": verdict["summary"],
        "parsed": verdict["parsed"],
        "error": None,
    }


def judge_quality(
    backend: Backend, spec: JudgeSpec, instance: Instance, record: ResultRecord
) -> None:
    """Score one judged sample in place: ``record.judge`` gets the judge's verdict (per task
    quality, replies, error), ``score`` and the metrics ``score`` / ``quality`` its mean quality,
    and with a shock (``info["shock"]``) ``quality_before_shock`` / ``quality_after_shock``. The
    deliverables are ``info["outputs"]`` (one per task of a run), else the answer. A sample that
    raised (no metrics) is left alone."""
    metrics = record.metrics
    if not metrics:
        return
    info = record.info
    outputs = info.get("outputs")
    deliverables = outputs if isinstance(outputs, list) else [record.answer]
    try:
        verdict = judge_run(
            backend, instance, deliverables, max_tokens=spec.max_tokens,
            temperature=spec.temperature, constrained=spec.constrained, max_chars=spec.max_chars,
        )  # fmt: skip
    except Exception as err:  # noqa: BLE001 - a broken judge must not stop the run
        verdict = {"qualities": [], "quality": None, "raw": [], "error": f"{type(err).__name__}: {err}"}
    record.judge = {"judge": spec.model.label, **verdict}
    quality = verdict["quality"]
    record.score = metrics["score"] = metrics["quality"] = quality
    shock = info.get("shock")
    if isinstance(shock, dict) and quality is not None:
        at = int(shock.get("at", 0))
        qualities = verdict["qualities"]
        before, after = qualities[:at], qualities[at:]
        metrics["quality_before_shock"] = sum(before) / len(before) if before else None
        metrics["quality_after_shock"] = sum(after) / len(after) if after else None
    if verdict["error"] and record.error is None:
        record.error = f"judge: {verdict['error']}"
