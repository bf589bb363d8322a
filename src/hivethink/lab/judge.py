"""The MAST judge in a lab run: label each finished sample's trace (``mast:`` in a grid).

The judge runs in the process that writes the results (after a sample is computed, before its
line is written), so local and Ray runs label alike. Its labels say which taxonomy and which
texts (digest, and the authors' repository and commit when they were imported) made them. A judge call that fails (an unreachable
server, a backend error) is recorded in that sample's ``mast`` field; the run goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hivethink import prompts
from hivethink.backends.base import Backend
from hivethink.lab.config import MastSpec
from hivethink.metrics.mast import BOOKS, mast_judge
from hivethink.trace import Event


def judge_sample(
    backend: Backend, spec: MastSpec, record: dict[str, Any], events: Sequence[Event]
) -> dict[str, Any] | None:
    """The ``mast`` field of one results line: the judge's labels, or the error that stopped
    it; None for a sample that raised (its trace is only the lab's error event)."""
    if not record.get("metrics"):
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
