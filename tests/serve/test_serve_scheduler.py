"""Scheduler fixes the server relies on: no request is left hanging at shutdown, and a request
that fails at admission fails alone (the loop goes on)."""

from __future__ import annotations

import pytest

from hivethink.engine.hive import chat_ids
from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import Scheduler
from hivethink.errors import HivethinkError

pytestmark = pytest.mark.slow


def _prompt(model):
    return chat_ids(model.tokenizer, [{"role": "user", "content": "Hi"}])


def test_close_finishes_waiting_requests_and_refuses_new_ones(smol16):
    sched = Scheduler(smol16)  # never started: nothing would ever admit the request
    s = sched.submit(_prompt(smol16), max_tokens=4, sampling=SamplingParams())
    sched.close()
    assert s.result() == "" and s.finish_reason == "cancelled"
    with pytest.raises(HivethinkError, match="shutting down"):
        sched.submit(_prompt(smol16), max_tokens=4, sampling=SamplingParams())


def test_a_request_failing_at_admission_fails_alone(smol16):
    sched = Scheduler(smol16).start()
    try:
        # top_p = 0 keeps no token: sampling the first token raises inside the scheduler thread
        bad = sched.submit(_prompt(smol16), max_tokens=4, sampling=SamplingParams(temperature=1.0, top_p=0.0))
        bad.result()
        assert bad.finish_reason == "error" and bad.error
        good = sched.submit(_prompt(smol16), max_tokens=4, sampling=SamplingParams())
        assert good.result() and good.finish_reason in ("stop", "length")
        assert sched.runner.cache.blocks == {}
    finally:
        sched.close()
