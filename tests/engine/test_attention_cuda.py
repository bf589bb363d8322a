"""The flex (GPU) block attention == block_attention == plain attention at explicit positions.

On CPU flex_attention runs eagerly (unfused, exact): that checks the plan, the masks and the
log-sum-exp merge. The ``cuda`` tests run the compiled kernel in bf16 against the fp32 CPU result.
"""

from __future__ import annotations

import pytest
import torch

from hivethink.engine.attention import block_attention, build_plan, reference_attention, store_kv
from hivethink.engine.attention_cuda import build_flex_plan, flex_block_attention
from hivethink.engine.cache import KVCache
from hivethink.engine.forward import Runner
from hivethink.engine.rope import RopeTable
from hivethink.errors import HivethinkError
from tests.engine.test_attention import cfg, fill

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

LENGTHS = {"common": 37, "h1": 5, "a": 13, "b": 1, "c": 22, "h2": 3, "d": 0}
CASES = {
    # 4 workers, different orders and subsets, unequal blocks, an empty one, GQA ratio 3
    "unequal": dict(views=[["common", "h1", "b", "c", "h2", "a"], ["common", "h1", "a", "c", "h2", "b"],
                           ["common", "c"], ["common", "a", "b", "d"]], heads=(6, 2), n_new=[1, 1, 1, 1]),
    # contiguous: prompt, the others' streams, own stream last (ratio 4)
    "contiguous": dict(views=[["common", "b", "c", "d", "a"], ["common", "a", "c", "d", "b"],
                              ["common", "a", "b", "d", "c"], ["common", "a", "b", "c", "d"]],
                       heads=(8, 2), n_new=[1, 1, 1, 1]),
    # interleaved: history, own step (no GQA)
    "interleaved": dict(views=[["common", "h1", "a"], ["common", "h1", "b"], ["common", "h2", "c"],
                               ["common", "h2", "d"]], heads=(4, 4), n_new=[1, 1, 1, 1]),
    # several new tokens per row, causal within the own block; short rows are padded
    "chunks": dict(views=[["common", "a"], ["common", "h1", "b"], ["common", "c", "d"]], heads=(6, 2),
                   n_new=[3, 9, 1]),
}


def scenario(case: str, *, device: str = "cpu", dtype: torch.dtype = torch.float32, segment_pages=None,
             seed: int = 0) -> dict[str, torch.Tensor]:
    """-> flex, blocks (block_attention on a second, identical cache; CPU only) and reference
    outputs of every real new token, [T, Hq * D] each."""
    spec = CASES[case]
    Hq, Hkv = spec["heads"]
    c = cfg(n_heads=Hq, n_kv=Hkv, d=16)
    D = c.head_dim
    gen = torch.Generator().manual_seed(seed)
    raw = {n: (torch.randn(L, Hkv, D, generator=gen), torch.randn(L, Hkv, D, generator=gen))
           for n, L in LENGTHS.items()}
    n_new, W = spec["n_new"], len(spec["views"])
    M = max(n_new)
    q = torch.randn(W, M, Hq, D, generator=gen)
    k_new, v_new = torch.randn(W, M, Hkv, D, generator=gen), torch.randn(W, M, Hkv, D, generator=gen)
    inv = 1.0 / (10000.0 ** (torch.arange(0, D, 2).double() / D))

    def make(head_major: bool, dev: str, dt: torch.dtype):
        rope = RopeTable(inv, 1.0, dt, torch.device(dev))
        cache = KVCache(c, dtype=dt, device=dev, page_size=16 if dev == "cuda" else 8, pages=4,
                        head_major=head_major)
        blocks = {}
        for name in LENGTHS:  # same order in both caches: same pages
            blocks[name] = cache.new_block(name)
            if LENGTHS[name]:
                fill(cache, rope, blocks[name], raw[name][0].to(dev, dt), raw[name][1].to(dev, dt))
        return cache, rope, [[blocks[n] for n in v] for v in spec["views"]]

    real = [(w, m) for w in range(W) for m in range(n_new[w])]
    idx = torch.tensor([w * M + m for w, m in real])
    out: dict[str, torch.Tensor] = {}
    cache, rope, views = make(True, device, dtype)
    plan = build_flex_plan(cache, rope, views, n_new, segment_pages=segment_pages)
    store_kv(cache, 0, plan, k_new.to(device, dtype), v_new.to(device, dtype))
    got = flex_block_attention(q.to(device, dtype), cache.k[0], cache.v[0], plan)
    out["flex"] = got.reshape(W * M, -1)[idx.to(device)].float().cpu()
    if device == "cpu":
        cache, rope, views = make(False, "cpu", torch.float32)
        bplan = build_plan(cache, rope, views, n_new)
        store_kv(cache, 0, bplan, k_new, v_new)
        out["blocks"] = block_attention(q, cache.k[0], cache.v[0], bplan).reshape(W * M, -1)[idx]

    # Reference: each (row, token) over its view's keys at explicit positions plus its own new ones.
    T = max(sum(LENGTHS[n] for n in v) for v in spec["views"]) + M
    keys, vals = torch.zeros(len(real), T, Hkv, D), torch.zeros(len(real), T, Hkv, D)
    k_pos = torch.full((len(real), T), -1)
    q_pos = torch.zeros(len(real), dtype=torch.long)
    for r, (w, m) in enumerate(real):
        names = spec["views"][w]
        kk = torch.cat([raw[n][0] for n in names] + [k_new[w, : m + 1]])
        vv = torch.cat([raw[n][1] for n in names] + [v_new[w, : m + 1]])
        n = kk.shape[0]
        keys[r, :n], vals[r, :n], k_pos[r, :n] = kk, vv, torch.arange(n)
        q_pos[r] = n - 1
    qs = q[torch.tensor([w for w, _ in real]), torch.tensor([m for _, m in real])]
    rope32 = RopeTable(inv, 1.0, torch.float32, torch.device("cpu"))
    out["reference"] = reference_attention(qs, q_pos, keys, vals, k_pos, rope32)
    return out


@pytest.mark.parametrize("segment_pages", [None, 2], ids=["whole-blocks", "2-page-segments"])
@pytest.mark.parametrize("case", list(CASES))
def test_flex_equals_block_attention_and_reference(case, segment_pages):
    out = scenario(case, segment_pages=segment_pages)
    assert (out["flex"] - out["reference"]).abs().max().item() < 1e-4
    assert (out["flex"] - out["blocks"]).abs().max().item() < 1e-4


def test_flex_plan_pads_to_powers_of_two():
    """Shapes are bucketed so the compiled kernel is reused; pages a row cannot see are not listed."""
    c = cfg(n_heads=8, n_kv=2, d=16)
    D = c.head_dim
    rope = RopeTable(1.0 / (10000.0 ** (torch.arange(0, D, 2).double() / D)), 1.0, torch.float32,
                     torch.device("cpu"))
    cache = KVCache(c, dtype=torch.float32, page_size=8, pages=64, head_major=True)
    common = cache.new_block("common")
    fill(cache, rope, common, torch.randn(70, 2, D), torch.randn(70, 2, D))  # 9 pages
    own = [cache.new_block(f"w{i}") for i in range(3)]
    plan = build_flex_plan(cache, rope, [[common, o] for o in own], [1, 1, 1], segment_pages=4)
    # common: 3 segments (4 + 4 + 1 pages) + 3 own blocks = 6 -> 8; 3 viewers x 1 token -> 4
    assert (plan.batches, plan.q_len) == (8, 4)
    assert plan.block_mask.kv_num_blocks[:, 0, 0].tolist() == [4, 4, 1, 1, 1, 1, 0, 0]
    assert plan.merge.shape == (3, 1, 4)  # 3 common segments + the own block


def _tiny(seed: int):
    from tests.conftest import as_loaded, tiny_hf

    return as_loaded(tiny_hf("qwen3", seed=seed))


def _decode(runner: Runner, steps: int, feed: list[list[int]] | None = None):
    """Shared prompt, 3 workers (contiguous views), a multi-token chunk with unequal rows, then
    greedy decoding. ``feed``: force these tokens instead (teacher forcing). -> (tokens, logits)."""
    cache = runner.cache
    common = cache.new_block("common")
    runner.prefill(common, list(range(5, 45)))
    own = [cache.new_block(f"w{i}") for i in range(3)]
    views = [[common, *(b for b in own if b is not mine), mine] for mine in own]
    logits = [runner.extend(views, [[9] * 3, [11] * 12, [13]])]
    toks: list[list[int]] = []
    for s in range(steps):
        nxt = feed[s] if feed is not None else logits[-1].argmax(-1).tolist()
        toks.append(nxt)
        logits.append(runner.extend(views, [[t] for t in nxt]))
    return toks, torch.stack(logits).float().cpu()


def test_runner_flex_path_decodes_like_the_cpu_path():
    model = _tiny(3)
    want_toks, want = _decode(Runner(model, page_size=8), 6)
    runner = Runner(model, page_size=8, attention="flex")
    assert runner.cache.head_major
    toks, got = _decode(runner, 6)
    assert toks == want_toks
    assert (got - want).abs().max().item() < 1e-4


def test_runner_rejects_an_unknown_attention(monkeypatch):
    with pytest.raises(HivethinkError, match="attention"):
        Runner(_tiny(0), attention="paged")
    monkeypatch.setenv("HIVETHINK_ATTENTION", "paged")
    with pytest.raises(HivethinkError, match="HIVETHINK_ATTENTION"):
        Runner(_tiny(0))


def test_hivethink_attention_switches_every_runner(monkeypatch):
    monkeypatch.setenv("HIVETHINK_ATTENTION", "flex")
    assert Runner(_tiny(0)).attention == "flex" and Runner(_tiny(0)).cache.head_major
    assert Runner(_tiny(0), attention="blocks").attention == "blocks"  # the argument wins


def test_cli_reports_a_bad_hivethink_attention_in_one_line(monkeypatch, capsys):
    from hivethink.cli.main import main

    monkeypatch.setenv("HIVETHINK_ATTENTION", "paged")
    rc = main(["bench", "engine", "--shape", "tiny", "--device", "cpu", "--contexts", "32", "--workers", "1",
               "--steps", "1", "--no-baseline"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "HIVETHINK_ATTENTION" in err and len(err.splitlines()) == 1


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("case", list(CASES))
def test_flex_on_cuda_bf16_matches_cpu_fp32(case):
    want = scenario(case)["reference"]
    got = scenario(case, device="cuda", dtype=torch.bfloat16)["flex"]
    assert (got - want).abs().max().item() < 5e-2  # bf16 inputs: ~1% per score


@pytest.mark.cuda
@cuda
def test_runner_on_cuda_uses_flex_and_matches_cpu():
    toks, want = _decode(Runner(_tiny(4), page_size=16), 4)
    model = _tiny(4)
    model.decoder.to(device="cuda", dtype=torch.bfloat16)
    runner = Runner(model, page_size=16)
    assert runner.attention == "flex"
    _, got = _decode(runner, 4, feed=toks)  # the CPU run's tokens: compare logits step by step
    assert torch.isfinite(got).all()
    assert (got - want).abs().max().item() < 0.05 * want.abs().max().item()


def test_head_major_arena_reads_as_one_sequence_per_head_without_copy():
    from hivethink.engine.attention_cuda import seq_view

    c = cfg(n_heads=4, n_kv=2, d=16)
    cache = KVCache(c, dtype=torch.float32, page_size=8, pages=2, head_major=True)
    b = cache.new_block("b")
    cache.slots(b, 0, 40)  # grows the arena: the layout must survive
    k = cache.k[0]
    assert k.shape == (cache.capacity, 2, 8, 16)
    k[3, 1, 5] = 7.0
    seq = seq_view(k)
    assert seq.data_ptr() == k.data_ptr() and seq[0, 1, 3 * 8 + 5].eq(7.0).all()
