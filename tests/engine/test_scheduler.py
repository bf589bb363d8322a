"""Continuous batching: requests that join mid-flight give the same text as alone."""

from __future__ import annotations

from hivethink.engine.generate import generate_batch
from hivethink.engine.hive import HiveConfig, chat_ids
from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import Scheduler


def prompts(model, questions):
    return [chat_ids(model.tokenizer, [{"role": "user", "content": q}]) for q in questions]


def test_staggered_requests_match_solo_generation(smol32):
    qs = ["What is 2+2?", "Name a colour.", "Say hello in French.", "Why is the sea salty?"]
    ps = prompts(smol32, qs)
    greedy = SamplingParams()
    want = [generate_batch(smol32, [p], max_tokens=[12], sampling=[greedy])[0].text for p in ps]
    sched = Scheduler(smol32, max_batch=3).start()
    try:
        streams = []
        for p in ps:  # each joins while the earlier ones are decoding
            streams.append(sched.submit(p, max_tokens=12, sampling=greedy))
            next(iter(streams[-1]), None)
        got = [s.result() for s in streams]
    finally:
        sched.close()
    assert got == want
    assert all(s.finish_reason in ("stop", "length") and len(s.tokens) <= 12 for s in streams)
    assert sched.runner.cache.blocks == {}  # every request's blocks were freed


def test_streaming_pieces_add_up_and_cancel_frees(smol16):
    sched = Scheduler(smol16, max_batch=4).start()
    try:
        p = prompts(smol16, ["Count from one to twenty in words."])[0]
        s = sched.submit(p, max_tokens=20, sampling=SamplingParams(), stop=["never-appears"])
        assert "".join(s) == s.text and s.text
        c = sched.submit(p, max_tokens=400, sampling=SamplingParams())
        for i, _ in enumerate(c):
            if i == 2:
                c.cancel()  # as a client that hangs up after three pieces
        assert c.finish_reason == "cancelled" and len(c.tokens) < 400
        hive = sched.run_hive("What is 1+1?", HiveConfig(workers=2, max_steps=4, finisher_tokens=2))
        assert set(hive.tokens) == {"Alice", "Bob"}
    finally:
        sched.close()
