"""The shared-cache substrate on the embedded model, and its refusal of text-only backends."""

from __future__ import annotations

import pytest

from hivethink.backends.fake import ScriptedBackend
from hivethink.backends.local import LocalBackend
from hivethink.errors import HivethinkError
from hivethink.substrates import get_substrate
from hivethink.substrates.base import Budget
from hivethink.tasks import get_task


def test_shared_cache_substrate_end_to_end(smol):
    task = get_task("math")
    inst = task.generate(1, 0)[0]
    res = get_substrate("shared-cache", layout="combined").run(
        inst, task, LocalBackend(loaded=smol), workers=2, budget=Budget(max_tokens=24, rounds=1), seed=0)
    assert res.sequential_passes <= 24 and res.tokens > 0
    assert {e.worker for e in res.events if e.kind == "token"} == {"Alice", "Bob"}
    assert res.info["finished_by"] in ("answer", "finisher")


def test_shared_cache_needs_the_local_backend():
    task = get_task("math")
    inst = task.generate(1, 0)[0]
    with pytest.raises(HivethinkError):
        get_substrate("shared-cache").run(inst, task, ScriptedBackend(script=["x"]), workers=2,
                                          budget=Budget(), seed=0)
