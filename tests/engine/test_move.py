"""Moving a finished step into the common history only re-places the same keys."""

from __future__ import annotations

import torch

from hivethink.engine.forward import Runner
from tests.conftest import as_loaded, tiny_hf


def setup(model, n: int):
    """A prompt in the common block, then n workers decoding in lockstep, each over
    [common, its own step] (the interleaved layout; combined with one worker)."""
    runner = Runner(model, page_size=8)
    cache = runner.cache
    common = cache.new_block("common")
    runner.prefill(common, list(range(3, 40)))
    own = [cache.new_block(f"w{i}") for i in range(n)]
    gen = torch.Generator().manual_seed(0)
    for _ in range(13):  # some decoding in lockstep, different tokens per worker
        toks = torch.randint(10, 500, (n,), generator=gen).tolist()
        runner.extend([[common, o] for o in own], [[t] for t in toks])
    return runner, common, own


def test_moving_a_step_leaves_the_movers_logits_unchanged():
    model = as_loaded(tiny_hf("qwen3", seed=5))
    for n in (3, 1):
        a_runner, a_common, a_own = setup(model, n)
        b_runner, b_common, b_own = setup(model, n)
        before = a_runner.extend([[a_common, a_own[0]]], [[77]])
        # Worker 0's step moves to the end of the common block; it starts an empty step. Its view
        # holds the same tokens in the same order, so the next-token logits must not change.
        b_runner.cache.move(b_own[0], b_common, b_runner.rope)
        after = b_runner.extend([[b_common, b_own[0]]], [[77]])
        assert (before - after).abs().max().item() < 1e-4, n


def test_moving_a_step_leaves_every_worker_unchanged_when_views_keep_their_order():
    """Contiguous-style views where worker 0's step already sits right after the common block:
    after the move every worker's view is the same token sequence, so no logits change."""
    model = as_loaded(tiny_hf("qwen2", seed=6))
    n = 3
    outs = []
    for move in (False, True):
        runner = Runner(model, page_size=8)
        cache = runner.cache
        common = cache.new_block("common")
        runner.prefill(common, list(range(3, 30)))
        own = [cache.new_block(f"w{i}") for i in range(n)]

        def views(own=own, common=common):
            # worker 0 sees [common, own0]; the others [common, own0, other steps..., own]
            return [[common, own[0]]] + [
                [common, own[0], *(b for i, b in enumerate(own) if i not in (0, w)), own[w]]
                for w in range(1, n)]

        gen = torch.Generator().manual_seed(2)
        for _ in range(9):
            runner.extend(views(), [[t] for t in torch.randint(10, 500, (n,), generator=gen).tolist()])
        if move:
            cache.move(own[0], common, runner.rope)
        outs.append(runner.extend(views(), [[77]] * n))
    assert (outs[0] - outs[1]).abs().max().item() < 1e-4
