"""The engine as the one owner of KV pages: prompts shared by content (the prefix cache), a page
budget that evicts cached pages and preempts the youngest job without changing any result, a
job that can never fit failing alone, and what is kept without a budget."""

from __future__ import annotations

import random

import pytest
import torch

from hivethink.engine.cache import KVCache
from hivethink.engine.forward import Runner
from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import Engine, GenJob
from hivethink.engine.text import chat_ids
from hivethink.errors import HivethinkError
from tests.engine.jobs import QUESTIONS, gen, hive, outcome


def test_a_conversation_extended_by_a_turn_prefills_only_the_new_turn(smol32):
    tok = smol32.tokenizer
    first = [{"role": "user", "content": "Tell me a short fact about the moon."}]
    runner = Runner(smol32, page_size=16)
    p1 = chat_ids(tok, first)
    a = runner.cache.block_with_prefix("turn1", p1)
    nxt = int(runner.extend([[a]], [p1[a.length:]])[0].argmax())
    for _ in range(24):  # the reply, greedy, written into the same block
        nxt = int(runner.extend([[a]], [[nxt]])[0].argmax())
    text = tok.decode(a.tokens[len(p1):], skip_special_tokens=True)
    second = first + [{"role": "assistant", "content": text}, {"role": "user", "content": "And the sun?"}]
    p2 = chat_ids(tok, second)
    before = runner.cache.hits
    b = runner.cache.block_with_prefix("turn2", p2)
    hit = b.length
    fed = p2[hit:]
    cached = runner.extend([[b]], [fed])[0]
    assert runner.cache.hits - before == hit > 0
    shared = next((i for i, (x, y) in enumerate(zip(a.tokens, p2, strict=False)) if x != y), len(a.tokens))
    assert len(fed) < len(p2) - shared + 16  # the new turn, plus at most one page of the old one
    fresh = Runner(smol32, page_size=16, prefix_cache=False)
    full = fresh.prefill(fresh.cache.new_block("all"), p2)
    assert (cached - full).abs().max().item() < 1e-4


def test_agents_with_one_system_prompt_share_its_pages(smol32):
    engine = Engine(smol32, page_size=16)
    system = "You are a careful assistant. Always answer in one short sentence, and never add a greeting."
    jobs = [GenJob(chat_ids(smol32.tokenizer, [{"role": "system", "content": system},
                                               {"role": "user", "content": q}]),
                   max_tokens=2, sampling=SamplingParams(), end_ids=engine.end_ids, tokenizer=smol32.tokenizer)
            for q in QUESTIONS[:3]]
    engine.run_jobs(jobs[:1])
    engine.run_jobs(jobs[1:])
    assert jobs[0].cached_tokens == 0 and all(j.cached_tokens >= 16 for j in jobs[1:])


def test_jobs_submitted_together_compute_a_shared_prefix_once(smol32):
    """Hives of a grid share one long instruction: a job whose prefix another job is prefilling
    waits for those pages instead of computing them again, and gives what it gives alone."""
    system = " ".join(["Work step by step, check each result, and give the answer in a box."] * 6)
    def jobs(engine):
        return [GenJob(chat_ids(smol32.tokenizer, [{"role": "system", "content": system},
                                                   {"role": "user", "content": q}]),
                       max_tokens=3, sampling=SamplingParams(), end_ids=engine.end_ids,
                       tokenizer=smol32.tokenizer) for q in QUESTIONS[:3]]
    alone = []
    for j in jobs(Engine(smol32, page_size=16, prefix_cache=False)):
        e = Engine(smol32, page_size=16, prefix_cache=False)
        e.run_jobs([j])
        alone.append(j.tokens)
    engine = Engine(smol32, page_size=16)
    together = jobs(engine)
    engine.run_jobs(together)  # submitted at once
    assert [j.tokens for j in together] == alone
    assert together[0].cached_tokens == 0
    assert all(j.cached_tokens >= len(system) // 8 for j in together[1:])  # most of the instruction
    assert engine.cache._pending == {} and engine.cache.blocks == {}


@pytest.mark.slow
def test_eviction_and_preemption_under_a_small_page_budget_never_corrupt_a_job(smol32):
    """Random joins, cancellations and a page budget that fits about three jobs: every job that
    finishes has exactly the tokens it has alone."""
    rng = random.Random(5)
    want = {}
    for i, q in enumerate(QUESTIONS):
        job = gen(smol32, q, 12 + i)
        Engine(smol32, page_size=16).run_jobs([job])
        want[q] = job.tokens
    engine = Engine(smol32, page_size=16, max_pages=14)
    pending = list(QUESTIONS) * 2
    submitted: list[tuple[str, GenJob]] = []
    cancelled = set()
    while pending or not all(j.done for _, j in submitted):
        if pending and rng.random() < 0.4:
            q = pending.pop(0)
            job = gen(smol32, q, 12 + QUESTIONS.index(q))
            engine.submit(job)
            submitted.append((q, job))
        live = [j for _, j in submitted if not j.done]
        if live and rng.random() < 0.05:
            victim = rng.choice(live)
            victim.cancel()
            cancelled.add(id(victim))
        engine.step()
    assert engine.stats.preemptions > 0  # the budget was tight enough to matter
    for q, job in submitted:
        if id(job) in cancelled and job.finish_reason == "cancelled":
            continue
        assert job.finish_reason in ("stop", "length") and job.tokens == want[q], q
    assert engine.cache.blocks == {}


def test_a_pass_short_of_pages_preempts_the_youngest_job_and_changes_no_result(tiny_smol):
    """The engine takes each pass's pages itself (moves first, then the rows' slots): when the
    budget runs short it preempts the youngest job and goes on, never failing the pass. Two hives
    (about 66 pages of 16 tokens each alone, their instruction shared) and two generations under
    a budget of 72 pages: every job gives exactly what it gives alone."""
    def jobs():
        return [hive(tiny_smol, 2, "combined", "What is 6 times 7?"), hive(tiny_smol, 3, "interleaved", "Is 51 prime?"),
                gen(tiny_smol, QUESTIONS[1]), gen(tiny_smol, QUESTIONS[0], 30)]

    alone = []
    for job in jobs():
        Engine(tiny_smol, page_size=16).run_jobs([job])
        alone.append(outcome(job))
    engine = Engine(tiny_smol, page_size=16, max_pages=72)
    together = jobs()
    engine.run_jobs(together)
    assert engine.stats.preemptions > 0
    assert [outcome(j) for j in together] == alone
    assert engine.cache.blocks == {}


def test_a_job_that_can_never_fit_fails_alone(tiny_smol):
    engine = Engine(tiny_smol, page_size=16, max_pages=6)
    big = GenJob(list(range(10, 200)), max_tokens=4, sampling=SamplingParams(), tokenizer=tiny_smol.tokenizer)
    small = GenJob(list(range(10, 30)), max_tokens=4, sampling=SamplingParams(), tokenizer=tiny_smol.tokenizer)
    engine.run_jobs([big, small])
    assert big.finish_reason == "error" and "page budget" in (big.error or "")
    assert small.finish_reason == "length" and len(small.tokens) == 4
    with pytest.raises(HivethinkError, match="page budget"):
        Engine(tiny_smol, max_pages=1)


def test_without_a_budget_cached_pages_are_kept_up_to_the_pages_in_use():
    """No page budget: a full arena grows rather than evict cached prompts while they are fewer
    than the pages in use (a grid's conversations come back for their prefixes after other jobs
    ran), and evicts the least recently used beyond that, so memory stays bounded."""
    from hivethink.engine.cache import KVCache
    from tests.engine.reference import cfg

    cache = KVCache(cfg(), dtype=torch.float32, page_size=4, pages=8, keep_bytes=0)

    def prompt(seed: int, pages: int) -> list[int]:
        return [seed * 1000 + i for i in range(4 * pages + 1)]  # + 1: the last page is never shared

    def run(tokens: list[int]):
        b = cache.block_with_prefix("p", tokens)
        cache.reserve(b, len(tokens))
        cache.commit(b, tokens[b.length:])
        return b

    done = [run(prompt(s, 3)) for s in range(2)]  # 8 pages held: the arena is full
    for b in done:
        cache.free_block(b)  # 6 registered pages go idle, 2 free
    held = [run(prompt(s, 3)) for s in range(10, 14)]  # 16 pages in use: grows, keeps the idle 6
    assert cache.capacity > 8 and len(cache._idle) == 6
    again = cache.block_with_prefix("again", prompt(0, 3))
    assert again.length == 12  # the first prompt's pages survived
    cache.free_block(again)
    for b in held:
        cache.free_block(b)  # now 18 idle, nothing in use
    cap = cache.capacity
    big = run(prompt(99, cap))  # as many pages as the arena: evicts LRU idle pages, grows only at the end
    assert len(cache._idle) <= len(big.pages)


def test_without_a_budget_cached_pages_are_kept_up_to_keep_bytes_when_few_are_in_use():
    """One job at a time (a lab run at concurrency 1) holds few pages: cached prompts are still
    kept up to ``keep_bytes``, so the first of three prompts run one after another is found whole;
    with no floor it was evicted to make room for the later ones."""
    from hivethink.engine.cache import KVCache
    from tests.engine.reference import cfg

    def found_again(keep_pages: int) -> int:
        probe = KVCache(cfg(), dtype=torch.float32, page_size=4, pages=8, keep_bytes=0)
        cache = KVCache(cfg(), dtype=torch.float32, page_size=4, pages=8,
                        keep_bytes=keep_pages * probe.page_bytes)
        assert cache.keep_pages == keep_pages
        for seed in range(3):  # 3 full pages each (+ 1 token: the last page is never shared)
            tokens = [seed * 1000 + i for i in range(13)]
            b = cache.block_with_prefix("p", tokens)
            cache.reserve(b, len(tokens))
            cache.commit(b, tokens[b.length:])
            cache.free_block(b)
        again = cache.block_with_prefix("again", list(range(13)))
        return again.length

    assert found_again(9) == 12
    assert found_again(0) < 12


def test_forgetting_idle_pages_drops_ended_prompts_and_keeps_running_ones():
    from hivethink.engine.cache import KVCache
    from tests.engine.reference import cfg

    cache = KVCache(cfg(), dtype=torch.float32, page_size=4, pages=8)
    tokens = [list(range(s * 100, s * 100 + 13)) for s in range(2)]  # 3 full pages each, + 1 token
    blocks = []
    for t in tokens:
        b = cache.block_with_prefix("p", t)
        cache.reserve(b, len(t))
        cache.commit(b, t)
        blocks.append(b)
    cache.free_block(blocks[0])  # ended: its 3 full pages go idle; blocks[1] still runs
    free = len(cache._free)
    assert cache.forget_idle() == 3 and len(cache._free) == free + 3
    assert cache.block_with_prefix("again", tokens[0]).length == 0  # forgotten
    assert cache.block_with_prefix("shared", tokens[1]).length == 12  # held by a running block


def test_a_page_is_zeroed_when_first_taken_so_attention_never_reads_uninitialised_memory():
    """The blocks backend's arena is left uninitialised (only pages in use become resident) and a
    page is zeroed when first taken: masked slots past a block's end must still be finite."""
    from tests.engine.reference import cfg

    cache = KVCache(cfg(), dtype=torch.float32, pages=4)
    for t in (*cache.k, *cache.v):
        t[1:].fill_(float("nan"))  # what uninitialised memory may hold
    block = cache.new_block("a")
    cache.reserve(block, 3)  # takes one page, of which 3 slots will be written
    for t in (*cache.k, *cache.v):
        assert torch.equal(t[block.pages[0]], torch.zeros_like(t[0]))
        assert torch.equal(t[0], torch.zeros_like(t[0]))  # the scratch page, read by padding
    cache.reserve(block, 3 * cache.page_size + 1)  # more pages than the arena held: it grows
    for t in (*cache.k, *cache.v):
        assert not t[block.pages].isnan().any()


def test_the_prefix_cache_allowance_reaches_the_cache():
    """``keep_bytes`` (serve's --prefix-cache-mb) sets how many idle prompt pages the cache keeps."""
    from hivethink.engine.scheduler import Engine
    from tests.conftest import as_loaded, tiny_hf

    model = as_loaded(tiny_hf("qwen3", seed=0))
    engine = Engine(model, keep_bytes=40 * (1 << 20))
    assert engine.cache.keep_pages == 40 * (1 << 20) // engine.cache.page_bytes > 0
    assert Engine(model, keep_bytes=0).cache.keep_pages == 0


def _rss_mib() -> float:
    import os

    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc and glibc's madvise")
def test_release_hands_free_pages_back_and_keeps_the_cached_floor():
    """Between bursts (the engine's loop going idle) the free pages' memory goes back to the OS,
    they read as zeros until taken again, and idle cached pages beyond the floor are dropped."""
    from tests.engine.reference import cfg

    c = cfg(n_heads=4, n_kv=2, d=64)
    cache = KVCache(c, dtype=torch.float32, page_size=512, pages=256, keep_bytes=2 * 2**19)  # 512 KiB a page
    burst = cache.new_block("burst")
    cache.reserve(burst, 200 * 512)  # 200 pages taken (zeroed: resident)
    for t in (*cache.k, *cache.v):
        t[burst.pages] = 1.0
    prompt = cache.new_block("prompt", cacheable=True)
    tokens = list(range(3 * 512))
    cache.reserve(prompt, len(tokens))
    cache.commit(prompt, tokens)  # 3 full pages registered
    cache.free_block(burst)
    cache.free_block(prompt)  # its 3 pages go idle (cached)
    assert len(cache._idle) == 3
    held = _rss_mib()
    handed = cache.release()
    assert cache.keep_pages == 2 and len(cache._idle) == 2  # nothing in use: the floor is keep_pages
    assert cache.block_with_prefix("p", tokens).length == 2 * 512  # the two most recent kept, still found
    assert handed >= 201 * 504 * 1024  # the burst's pages and the evicted one, but for partial memory pages
    assert _rss_mib() < held - 80
    again = cache.new_block("again")
    cache.reserve(again, 5 * 512)
    for t in (*cache.k, *cache.v):
        page = t[again.pages]
        # zeros, but for the partial memory pages at each end of a KV page (at most 2 x 4 KiB of 256)
        assert torch.isfinite(page).all() and (page == 0).float().mean() >= 1 - 2 * 4096 / t[0].nbytes
    assert cache.release() == 0  # nothing freed since: no page is handed back twice
    cache.free_block(again)
    assert 5 * 504 * 1024 <= cache.release() <= 5 * 512 * 1024  # only the 5 pages taken since
