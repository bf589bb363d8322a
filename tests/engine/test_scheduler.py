"""The engine's one loop: requests that join mid-flight give the same text as alone; streams,
cancellation, a hive in the same passes as plain requests."""

from __future__ import annotations

from hivethink.engine.hive import HiveConfig, HiveJob, chat_ids
from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import Engine, run_generations


def prompts(model, questions):
    return [chat_ids(model.tokenizer, [{"role": "user", "content": q}]) for q in questions]


def test_staggered_requests_match_solo_generation(smol32):
    qs = ["What is 2+2?", "Name a colour.", "Say hello in French.", "Why is the sea salty?"]
    ps = prompts(smol32, qs)
    greedy = SamplingParams()
    want = [run_generations(Engine(smol32), [p], max_tokens=[12], sampling=[greedy])[0].text for p in ps]
    engine = Engine(smol32, max_rows=3).start()
    try:
        jobs = []
        for p in ps:  # each joins while the earlier ones are decoding
            jobs.append(engine.generate(p, max_tokens=12, sampling=greedy, stream=True))
            next(iter(jobs[-1]), None)
        got = [j.result() for j in jobs]
    finally:
        engine.close()
    assert got == want
    assert all(j.finish_reason in ("stop", "length") and len(j.tokens) <= 12 for j in jobs)
    assert engine.cache.blocks == {}  # every request's blocks were freed


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
