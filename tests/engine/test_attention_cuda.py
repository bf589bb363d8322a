"""The flex (GPU) block attention == block_attention == plain attention at explicit positions.

On CPU flex_attention runs eagerly (unfused, exact): that checks the plan, the masks and the
log-sum-exp merge. The ``cuda`` tests run the compiled kernel in bf16 against the fp32 CPU result.
"""

from __future__ import annotations

import pytest
import torch

from hivethink.engine.attention import RowSpec, reserve_rows
from hivethink.engine.attention_cuda import FlexAttention
from hivethink.engine.cache import KVCache
from hivethink.engine.forward import Runner
from hivethink.engine.rope import RopeTable
from tests.engine.reference import SCENARIOS, cfg, fill, inv_freq

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

@pytest.mark.parametrize("segment_pages", [None, 2], ids=["whole-blocks", "2-page-segments"])
@pytest.mark.parametrize("visibility", ["instant", "lagged"])
@pytest.mark.parametrize("case", list(SCENARIOS))
def test_flex_equals_plain_attention_and_the_blocks_backend(case, visibility, segment_pages):
    sc = SCENARIOS[case]
    got = sc.run("flex", visibility, segment_pages=segment_pages)
    assert (got - sc.reference(visibility)).abs().max().item() < 1e-4
    assert (got - sc.run("blocks", visibility)).abs().max().item() < 1e-4


def test_flex_plan_pads_to_powers_of_two():
    """Shapes are bucketed so the compiled kernel is reused; pages a row cannot see are not listed."""
    c = cfg(n_heads=8, n_kv=2, d=16)
    D = c.head_dim
    rope = RopeTable(inv_freq(D), 1.0, torch.float32, torch.device("cpu"))
    cache = KVCache(c, dtype=torch.float32, page_size=8, pages=64, head_major=True)
    common = cache.new_block("common")
    fill(cache, rope, common, torch.randn(70, 2, D), torch.randn(70, 2, D))  # 9 pages
    own = [cache.new_block(f"w{i}") for i in range(3)]
    rows = [RowSpec([common, o], 1, 0, "instant") for o in own]
    reserve_rows(cache, rows)
    plan = FlexAttention().plan(cache, rope, rows, 4, segment_pages=4)  # 3 tokens + 1 of padding
    # common: 3 segments (4 + 4 + 1 pages) + 3 own blocks = 6 -> 8; 3 viewers x 1 token -> 4
    assert (plan.batches, plan.q_len) == (8, 4)
    assert plan.block_mask.kv_num_blocks[:, 0, 0].tolist() == [4, 4, 1, 1, 1, 1, 0, 0]
    assert plan.merge.shape == (4, 4)  # 3 common segments + the own block; a padding token


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


def test_cli_reports_a_bad_hivethink_attention_in_one_line(monkeypatch, capsys):
    from hivethink.cli.main import main

    monkeypatch.setenv("HIVETHINK_ATTENTION", "fused")
    rc = main(["bench", "engine", "--shape", "tiny", "--device", "cpu", "--contexts", "32", "--workers", "1",
               "--steps", "1", "--no-baseline"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "HIVETHINK_ATTENTION" in err and len(err.splitlines()) == 1


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("case", list(SCENARIOS))
def test_flex_on_cuda_bf16_matches_cpu_fp32(case):
    sc = SCENARIOS[case]
    got = sc.run("flex", "instant", device="cuda", dtype=torch.bfloat16, page_size=16)
    assert (got - sc.reference("instant")).abs().max().item() < 5e-2  # bf16 inputs: ~1% per score


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
