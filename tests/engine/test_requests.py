"""The engine serving requests from other threads (the server's and the local backend's use):
streams whose pieces add up, stop strings that cut the text, cancellation that frees, a hive in
the same loop as plain requests, shutdown that leaves no request hanging, and a request failing
at admission alone."""

from __future__ import annotations

import pytest

from hivethink.engine.hive import HiveConfig, HiveJob
from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import Engine, run_generations
from hivethink.engine.text import chat_ids
from hivethink.errors import HivethinkError


def prompts(model, questions):
    return [chat_ids(model.tokenizer, [{"role": "user", "content": q}]) for q in questions]


def test_streaming_pieces_add_up_cancel_frees_and_a_hive_shares_the_loop(smol):
    engine = Engine(smol, max_rows=8).start()
    try:
        p = prompts(smol, ["Count from one to twenty in words."])[0]
        s = engine.generate(p, max_tokens=20, sampling=SamplingParams(), stop=["never-appears"], stream=True)
        assert "".join(s) == s.text and s.text
        c = engine.generate(p, max_tokens=400, sampling=SamplingParams(), stream=True)
        for i, _ in enumerate(c):
            if i == 2:
                c.cancel()  # as a client that hangs up after three pieces
        c.wait()
        assert c.finish_reason == "cancelled" and len(c.tokens) < 400
        hive = HiveJob(smol, HiveConfig(workers=2, max_steps=4, finisher_tokens=2, examples=False), "What is 1+1?")
        engine.run_jobs([hive])
        assert hive.result is not None and set(hive.result.tokens) == {"Alice", "Bob"}
    finally:
        engine.close()
    assert engine.cache.blocks == {}


def test_close_finishes_waiting_requests_and_refuses_new_ones(smol):
    engine = Engine(smol)  # never started: nothing would ever admit the request
    s = engine.generate(prompts(smol, ["Hi"])[0], max_tokens=4, sampling=SamplingParams(), stream=True)
    engine.close()
    assert s.result() == "" and s.finish_reason == "cancelled"
    with pytest.raises(HivethinkError, match="shutting down"):
        engine.generate(prompts(smol, ["Hi"])[0], max_tokens=4, sampling=SamplingParams())


def test_a_request_failing_at_admission_fails_alone(smol):
    engine = Engine(smol).start()
    try:
        # a schema no grammar can be built from: the request fails inside the engine's thread
        bad = engine.generate(prompts(smol, ["Hi"])[0], max_tokens=4, sampling=SamplingParams(),
                              json_schema={"type": "no-such-type"})
        bad.wait()
        assert bad.finish_reason == "error" and bad.error
        good = engine.generate(prompts(smol, ["Hi"])[0], max_tokens=4, sampling=SamplingParams())
        assert good.result() and good.finish_reason in ("stop", "length")
        assert engine.cache.blocks == {}
    finally:
        engine.close()


def test_stop_strings_cut_the_text(smol32):
    [p] = prompts(smol32, ["Count: 1, 2, 3, 4, 5, 6"])
    [out] = run_generations(Engine(smol32), [p], max_tokens=[30], sampling=[SamplingParams()], stop=[[","]])
    assert "," not in out.text and out.finish_reason == "stop" and out.text


def test_the_loop_hands_back_the_heap_once_per_burst_of_work(tiny_smol, monkeypatch):
    import threading

    import hivethink.engine.scheduler as scheduler

    engine = Engine(tiny_smol, max_rows=4)
    trims: list[tuple[int, int]] = []  # (running, waiting) when each trim ran
    trimmed = threading.Event()

    def trim() -> bool:
        trims.append(engine.load)
        trimmed.set()
        return True

    monkeypatch.setattr(scheduler, "return_freed_memory", trim)
    engine.start()
    try:
        assert not trimmed.wait(0.8)  # idle from the start: nothing to hand back
        for burst in (1, 2):
            trimmed.clear()
            jobs = [engine.generate([1, 2, 3 + i], max_tokens=5, sampling=SamplingParams()) for i in range(3)]
            for job in jobs:
                job.wait()
            assert trimmed.wait(5)
            trimmed.clear()
            assert not trimmed.wait(1.2)  # once per burst, not on each of the idle loop's wakes
            assert len(trims) == burst and trims[-1] == (0, 0) and engine.stats.heap_trims == burst
    finally:
        engine.close()
