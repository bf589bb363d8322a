"""Block attention with per-page query rotation == plain attention over keys rotated to
explicit view positions (random tensors, unequal blocks, GQA, several workers)."""

from __future__ import annotations

import pytest
import torch

from hivethink.engine import attention
from hivethink.engine.attention import block_attention, build_plan, reference_attention, store_kv
from hivethink.engine.cache import KVCache
from hivethink.engine.rope import RopeTable
from hivethink.models.config import ModelConfig


def cfg(n_heads: int = 6, n_kv: int = 2, d: int = 16) -> ModelConfig:
    return ModelConfig(family="llama", vocab_size=10, hidden_size=n_heads * d, n_layers=1, n_heads=n_heads,
                       n_kv_heads=n_kv, head_dim=d, intermediate_size=8, rms_eps=1e-6, tie_embeddings=True,
                       attention_bias=False, qk_norm=False, rope_type="default", rope_theta=10000.0,
                       rope_scaling=None, max_positions=4096)


def fill(cache: KVCache, rope: RopeTable, block, raw_k, raw_v) -> None:
    """Write raw (unrotated) keys into a block, rotated to block-local positions."""
    from hivethink.engine.rope import apply_rotation

    n = raw_k.shape[0]
    page, off = cache.slots(block, block.length, n)
    cos, sin = rope.lookup(torch.arange(block.length, block.length + n))
    cache.k[0][page, :, off] = apply_rotation(raw_k, cos[:, None], sin[:, None])
    cache.v[0][page, :, off] = raw_v
    cache.commit(block, [0] * n)


# fp32 is the exactness check; bf16 and fp16 (fp16 masks with a smaller value) within rounding.
DTYPES = {"fp32": (torch.float32, 1e-4), "bf16": (torch.bfloat16, 2e-2), "fp16": (torch.float16, 5e-3)}


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("gather", [0.0, 1.01], ids=["shared-scan", "per-row-pages"])
def test_block_attention_equals_plain_attention(gather, dtype, monkeypatch):
    """Both scans: every row over all pages, and each row over only its own pages."""
    monkeypatch.setattr(attention, "GATHER_BELOW", gather)
    torch.manual_seed(0)
    dt, tol = DTYPES[dtype]
    c = cfg()
    Hq, Hkv, D = c.n_heads, c.n_kv_heads, c.head_dim
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, D, 2).double() / D))
    rope = RopeTable(inv_freq, 1.0, dt, torch.device("cpu"))
    cache = KVCache(c, dtype=dt, page_size=8, pages=4)  # grows while filling
    lengths = {"common": 37, "h1": 5, "a": 13, "b": 1, "c": 22, "h2": 3, "d": 0}
    raw = {}
    blocks = {}
    for name, n in lengths.items():
        blocks[name] = cache.new_block(name)
        raw[name] = (torch.randn(n, Hkv, D).to(dt), torch.randn(n, Hkv, D).to(dt))
        if n:
            fill(cache, rope, blocks[name], *raw[name])
    b = blocks
    # Four workers, different orders and subsets; the last block of each view is where it writes.
    views = [[b["common"], b["h1"], b["b"], b["c"], b["h2"], b["a"]],
             [b["common"], b["h1"], b["a"], b["c"], b["h2"], b["b"]],
             [b["common"], b["c"]],
             [b["common"], b["a"], b["b"], b["d"]]]
    W = len(views)
    q = torch.randn(W, 1, Hq, D).to(dt)
    k_new, v_new = torch.randn(W, 1, Hkv, D).to(dt), torch.randn(W, 1, Hkv, D).to(dt)
    plan = build_plan(cache, rope, views, [1] * W)
    assert (plan.row_pages is not None) == (gather > 1)
    store_kv(cache, 0, plan, k_new, v_new)
    got = block_attention(q, cache.k[0], cache.v[0], plan)[:, 0]

    # Reference: each worker's keys placed at explicit view positions, plus its own new key.
    T = max(sum(blk.length for blk in v) for v in views) + 1
    keys, vals = torch.zeros(W, T, Hkv, D), torch.zeros(W, T, Hkv, D)
    k_pos = torch.full((W, T), -1)
    q_pos = torch.zeros(W, dtype=torch.long)
    for w, view in enumerate(views):
        ks = [raw[blk.name][0] for blk in view] + [k_new[w]]
        vs = [raw[blk.name][1] for blk in view] + [v_new[w]]
        kk, vv = torch.cat(ks), torch.cat(vs)
        n = kk.shape[0]
        keys[w, :n], vals[w, :n], k_pos[w, :n] = kk, vv, torch.arange(n)
        q_pos[w] = n - 1
    ref_rope = RopeTable(inv_freq, 1.0, torch.float32, torch.device("cpu"))
    want = reference_attention(q[:, 0].float(), q_pos, keys, vals, k_pos, ref_rope)
    assert got.dtype == dt and (got.float() - want).abs().max().item() < tol


def test_append_block_re_rotates_keys_exactly():
    torch.manual_seed(1)
    c = cfg()
    D = c.head_dim
    rope = RopeTable(1.0 / (10000.0 ** (torch.arange(0, D, 2).double() / D)), 1.0, torch.float32,
                     torch.device("cpu"))
    cache = KVCache(c, dtype=torch.float32, page_size=8, pages=16)
    common, step = cache.new_block("common"), cache.new_block("step")
    ck, cv = torch.randn(29, 2, D), torch.randn(29, 2, D)
    sk, sv = torch.randn(11, 2, D), torch.randn(11, 2, D)
    fill(cache, rope, common, ck, cv)
    fill(cache, rope, step, sk, sv)
    cache.append_block(common, step, rope)
    assert common.length == 40 and step.id not in cache.blocks
    direct = KVCache(c, dtype=torch.float32, page_size=8, pages=16)
    ref = direct.new_block("ref")
    fill(direct, rope, ref, torch.cat([ck, sk]), torch.cat([cv, sv]))
    k1, v1 = cache.read(common, 0)
    k2, v2 = direct.read(ref, 0)
    assert (k1 - k2).abs().max().item() < 1e-5
    assert torch.equal(v1, v2)


def test_both_scans_agree_on_multi_token_rows_of_unequal_length(monkeypatch):
    """Prompts written into separate views in one pass (padding rows, causal own tokens)."""
    from hivethink.engine.forward import Runner
    from tests.conftest import as_loaded, tiny_hf

    model = as_loaded(tiny_hf("qwen2", seed=9))
    outs = []
    for gather in (0.0, 1.01):
        monkeypatch.setattr(attention, "GATHER_BELOW", gather)
        runner = Runner(model, page_size=8)
        views = []
        for i in range(3):
            p = runner.cache.new_block(f"p{i}")
            runner.prefill(p, list(range(5 + i, 30 + 7 * i)))
            views.append([p, runner.cache.new_block(f"g{i}")])
        first = runner.extend(views, [[9] * 3, [11] * 20, [13]])  # unequal: padded rows
        outs.append(torch.cat([first, runner.extend(views, [[4], [5], [6]])]))
    assert (outs[0] - outs[1]).abs().max().item() < 1e-4
