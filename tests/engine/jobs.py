"""Jobs the engine tests run: plain generations and small greedy hives, and what each gives."""

from __future__ import annotations

from hivethink.engine.hive import HiveConfig, HiveJob
from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import GenJob
from hivethink.engine.text import chat_ids

QUESTIONS = ["What is 2+2?", "Name a colour.", "Say hello in French.", "Why is the sea salty?",
             "Count to five.", "What is the capital of France?", "Name a fruit.", "Spell 'cat'."]


def gen(model, q: str, n: int = 16, **kw) -> GenJob:
    engine_end = {t for t in (*model.cfg.eos_token_ids, model.tokenizer.eos_token_id) if t is not None}
    return GenJob(chat_ids(model.tokenizer, [{"role": "user", "content": q}]), max_tokens=n,
                  sampling=SamplingParams(), end_ids=engine_end, tokenizer=model.tokenizer, **kw)


def hive(model, workers: int, layout: str, problem: str) -> HiveJob:
    return HiveJob(model, HiveConfig(workers=workers, layout=layout, max_steps=10, examples=False,
                                     sampling="greedy", finisher_tokens=4), problem)


def make_jobs(model):
    return [hive(model, 2, "combined", "What is 6 times 7?"), hive(model, 3, "interleaved", "Is 51 prime?"),
            gen(model, QUESTIONS[0]), gen(model, QUESTIONS[1], 12), gen(model, QUESTIONS[2], 20)]


def outcome(job):
    if isinstance(job, HiveJob):
        r = job.result
        return (r.answer, r.finished_by, r.texts, r.tokens)
    return (job.tokens, job.text, job.finish_reason)
