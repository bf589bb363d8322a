"""Engine fixes the server relies on: no request is left hanging at shutdown, and a request that
fails at admission fails alone (the loop goes on)."""

from __future__ import annotations

import pytest

from hivethink.engine.hive import chat_ids
from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import Engine
from hivethink.errors import HivethinkError

pytestmark = pytest.mark.slow


def _prompt(model):
    return chat_ids(model.tokenizer, [{"role": "user", "content": "Hi"}])


def test_close_finishes_waiting_requests_and_refuses_new_ones(smol):
    engine = Engine(smol)  # never started: nothing would ever admit the request
    s = engine.generate(_prompt(smol), max_tokens=4, sampling=SamplingParams(), stream=True)
    engine.close()
    assert s.result() == "" and s.finish_reason == "cancelled"
    with pytest.raises(HivethinkError, match="shutting down"):
        engine.generate(_prompt(smol), max_tokens=4, sampling=SamplingParams())


def test_a_request_failing_at_admission_fails_alone(smol):
    engine = Engine(smol).start()
    try:
        # a schema no grammar can be built from: the request fails inside the engine's thread
        bad = engine.generate(_prompt(smol), max_tokens=4, sampling=SamplingParams(),
                              json_schema={"type": "no-such-type"})
        bad.wait()
        assert bad.finish_reason == "error" and bad.error
        good = engine.generate(_prompt(smol), max_tokens=4, sampling=SamplingParams())
        assert good.result() and good.finish_reason in ("stop", "length")
        assert engine.cache.blocks == {}
    finally:
        engine.close()
