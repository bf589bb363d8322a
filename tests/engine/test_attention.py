"""Every attention backend == plain attention over keys at explicit view positions: instant and
lagged visibility, unequal blocks, GQA, several workers, multi-token rows, several jobs a pass."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from hivethink.engine.attention import split_parts
from hivethink.engine.attention_backends import attention_backend, attention_names
from hivethink.engine.cache import KVCache
from hivethink.engine.rope import RopeTable
from hivethink.errors import HivethinkError
from tests.engine.reference import SCENARIOS, cfg, fill, inv_freq

# fp32 is the exactness check; bf16 and fp16 (fp16 masks with a smaller value) within rounding.
DTYPES = {"fp32": (torch.float32, 1e-4), "bf16": (torch.bfloat16, 3e-2), "fp16": (torch.float16, 5e-3)}


@pytest.mark.parametrize("dense_keys", [None, 1])
@pytest.mark.parametrize("visibility", ["instant", "lagged"])
@pytest.mark.parametrize("case", list(SCENARIOS))
def test_blocks_backend_equals_plain_attention(case, visibility, dense_keys, monkeypatch):
    """``dense_keys`` 1: every one-row group over a one-block view is attended densely."""
    from hivethink.engine import attention

    if dense_keys is not None:
        monkeypatch.setattr(attention, "DENSE_MIN_KEYS", dense_keys)
    sc = SCENARIOS[case]
    got = sc.run("blocks", visibility)
    if case == "decodes":  # short decoding rows go dense only when told to
        assert len(sc.last_plan.dense) == (4 if dense_keys == 1 else 0)
    want = sc.reference(visibility)
    assert (got - want).abs().max().item() < 1e-4


@pytest.mark.parametrize("kernel_rows", [12, 1 << 10], ids=["small-groups", "every-group"])
@pytest.mark.parametrize("page_size", [8, 4])
@pytest.mark.parametrize("visibility", ["instant", "lagged"])
@pytest.mark.parametrize("case", list(SCENARIOS))
def test_paged_backend_equals_plain_attention_and_the_blocks_backend(case, visibility, page_size, kernel_rows,
                                                                     monkeypatch):
    """The loop-nest kernel (online softmax over each group's pages) on the groups it takes, the
    batched matmuls on the rest: the same attention."""
    from hivethink.engine import attention

    monkeypatch.setattr(attention, "KERNEL_ROWS", kernel_rows)
    sc = SCENARIOS[case]
    got = sc.run("paged", visibility, page_size=page_size)
    assert (got - sc.reference(visibility)).abs().max().item() < 1e-4
    assert (got - sc.run("blocks", visibility, page_size=page_size)).abs().max().item() < 1e-4


def test_the_paged_kernel_and_the_matmuls_never_share_a_part():
    """Which kernel computes a group depends on the group alone (its query rows), so a decoding
    hive never changes kernel because a prefill chunk shares its pass: groups of the two kernels
    go in different parts even where the padding rule would merge them."""
    assert split_parts([(1, 7), (2, 7), (40, 7)], slack=1 << 30) == [[0, 1, 2]]
    assert split_parts([(1, 7), (2, 7), (40, 7)], slack=1 << 30, classes=[1, 1, 0]) == [[2], [0, 1]]
    sc = SCENARIOS["prefill-beside-decodes"]
    sc.run("paged", "instant")
    rows = {sc.last_plan.parts[i].q_index.shape[1] for i in range(len(sc.last_plan.parts))}
    assert max(rows) > 4 and min(rows) <= 4  # the 40-token chunk's part apart from the decodes'
    assert {(p.q_index.shape[1] <= 4, p.kernel) for p in sc.last_plan.parts} == {(True, True), (False, False)}


def test_groups_of_very_different_shapes_go_in_separate_parts_and_stay_exact():
    """Parts of similar shape, and prompt chunks attended densely: all equal plain attention."""
    # (query slots, page entries): short decodes together, the two long hives together, and the
    # 1024-token prefill chunk padded onto neither
    sizes = [(1, 7), (3, 40), (1, 5), (2, 12), (1024, 40), (1, 9), (3, 38), (1, 6)]
    parts = split_parts(sizes)
    assert sorted(map(sorted, parts)) == [[0, 2, 3, 5, 7], [1, 6], [4]]
    assert split_parts([(1, 7), (1, 7)], slack=0) == [[0, 1]]  # no padding: always together
    assert split_parts([]) == []
    sc = SCENARIOS["prefill-beside-decodes"]
    want = sc.reference("instant")
    split = sc.run("blocks", "instant", slack=0)
    assert len(sc.last_plan.parts) > 1 and len(sc.last_plan.dense) == 1
    together = sc.run("blocks", "instant", slack=1 << 30)
    assert len(sc.last_plan.parts) == 1
    assert (split - want).abs().max().item() < 1e-4
    assert (together - want).abs().max().item() < 1e-4


@pytest.mark.parametrize("case", list(SCENARIOS))
def test_pages_read_in_place_give_the_same_numbers_as_gathered_pages(case, monkeypatch):
    """Long runs of consecutive pages are read in place, the other pages gathered, padding
    entries left at zero: bit for bit what gathering every page gives."""
    from hivethink.engine import attention

    monkeypatch.setattr(attention, "DENSE_MIN_KEYS", 1)  # the short decoding rows too
    sc = SCENARIOS[case]
    mixed = sc.run("blocks", "instant", page_size=4)  # the 37-token prompt: a run of 10 pages
    runs = [r for part in sc.last_plan.parts for r in part.runs]
    assert runs and all(e1 - e0 >= attention.MIN_RUN for _, e0, e1, _ in runs)
    monkeypatch.setattr(attention, "MIN_RUN", 1)  # every run in place, nothing gathered
    in_place = sc.run("blocks", "instant", page_size=4)
    assert all(part.runs and part.rest is None for part in sc.last_plan.parts)
    dense_in_place = [d.first_page is not None for d in sc.last_plan.dense]
    monkeypatch.setattr(attention, "MIN_RUN", 1 << 30)  # every page gathered
    monkeypatch.setattr(attention, "_run_start", lambda pages: None)  # dense parts too
    gathered = sc.run("blocks", "instant", page_size=4)
    assert not any(part.runs for part in sc.last_plan.parts)
    assert all(d.first_page is None for d in sc.last_plan.dense)
    if case == "decodes":  # blocks that grow onto a new page are gathered, the others sliced
        assert any(dense_in_place) and not all(dense_in_place)
    assert torch.equal(mixed, gathered) and torch.equal(in_place, gathered)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_blocks_backend_in_half_precision(dtype):
    dt, tol = DTYPES[dtype]
    sc = SCENARIOS["hive"]
    assert (sc.run("blocks", "instant", dtype=dt) - sc.reference("instant")).abs().max().item() < tol


def test_instant_and_lagged_differ_only_where_another_row_wrote():
    sc = SCENARIOS["two-jobs"]
    instant, lagged = sc.run("blocks", "instant"), sc.run("blocks", "lagged")
    hive = slice(0, 3)  # the two hive rows' 3 tokens see each other's new tokens only when instant
    assert (instant[hive] - lagged[hive]).abs().max().item() > 1e-3
    # the plain generation's tokens see only their own block: visibility changes nothing
    assert torch.equal(instant[3:], lagged[3:])


def test_moving_a_block_re_rotates_keys_exactly():
    torch.manual_seed(1)
    c = cfg()
    D = c.head_dim
    rope = RopeTable(inv_freq(D), 1.0, torch.float32, torch.device("cpu"))
    cache = KVCache(c, dtype=torch.float32, page_size=8, pages=16)
    common, step = cache.new_block("common"), cache.new_block("step")
    ck, cv = torch.randn(29, 2, D), torch.randn(29, 2, D)
    sk, sv = torch.randn(11, 2, D), torch.randn(11, 2, D)
    fill(cache, rope, common, ck, cv)
    fill(cache, rope, step, sk, sv)
    first = step.id
    cache.move(step, common, rope)
    assert common.length == 40 and step.length == 0 and not step.pages and first not in cache.blocks
    direct = KVCache(c, dtype=torch.float32, page_size=8, pages=16)
    ref = direct.new_block("ref")
    fill(direct, rope, ref, torch.cat([ck, sk]), torch.cat([cv, sv]))
    k1, v1 = cache.read(common, 0)
    k2, v2 = direct.read(ref, 0)
    assert (k1 - k2).abs().max().item() < 1e-5
    assert torch.equal(v1, v2)


def test_backends_are_chosen_by_name_in_one_place(monkeypatch):
    assert attention_names() == ["blocks", "flex", "paged"]
    cpu = torch.device("cpu")
    assert attention_backend(cpu).name == "paged"  # numba is a dependency
    assert attention_backend(cpu, "flex").head_major
    with pytest.raises(HivethinkError, match="attention must be one of blocks, flex, paged"):
        attention_backend(cpu, "fused")
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numba" else find(name, *a))
    assert attention_backend(cpu).name == "blocks"  # without numba
    monkeypatch.setenv("HIVETHINK_ATTENTION", "fused")
    with pytest.raises(HivethinkError, match="HIVETHINK_ATTENTION"):
        attention_backend(cpu)
    monkeypatch.setenv("HIVETHINK_ATTENTION", "flex")
    assert attention_backend(cpu).name == "flex"
    assert attention_backend(cpu, "blocks").name == "blocks"  # the argument wins


def _decode_side_by_side(runner, steps: int) -> list[torch.Tensor]:
    """Two plain generations decoding greedily in the same passes, their pages interleaved;
    -> every pass's logits."""
    from hivethink.engine.attention import RowSpec, reserve_rows

    cache = runner.cache
    a, b = cache.new_block("a"), cache.new_block("b")
    nxt = [int(runner.prefill(a, list(range(3, 104))).argmax()), int(runner.prefill(b, list(range(7, 44))).argmax())]
    out = []
    for _ in range(steps):
        rows = [RowSpec([a], 1, 0), RowSpec([b], 1, 1)]
        reserve_rows(cache, rows)
        logits = runner.forward(rows, [[nxt[0]], [nxt[1]]])
        for blk, t in zip((a, b), nxt, strict=True):
            cache.commit(blk, [t])
        out += logits
        nxt = [int(lg.argmax()) for lg in logits]
    return out


def test_sequence_copies_give_the_numbers_of_the_pages_they_copy(monkeypatch):
    """Decoding blocks kept in contiguous copies, appended pass by pass, regrown when full and
    dropped with their block: bit for bit what gathering their pages every pass gives."""
    from hivethink.engine import attention
    from hivethink.engine.attention import COPY_HEADROOM
    from hivethink.engine.forward import Runner
    from tests.conftest import as_loaded, tiny_hf

    monkeypatch.setattr(attention, "DENSE_MIN_KEYS", 1)  # dense from the first decoded token

    model = as_loaded(tiny_hf("qwen2"))
    kept = Runner(model, page_size=16)
    gathered = Runner(model, page_size=16)
    gathered.backend.copy_bytes = 0  # no memory for copies: every pass gathers
    steps = 2 * COPY_HEADROOM + 40  # block a outgrows its first copy, then its second
    got, want = _decode_side_by_side(kept, steps), _decode_side_by_side(gathered, steps)
    assert not gathered.backend.copies
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
    copies = kept.backend.copies
    assert sorted(copies) == [0, 1]
    assert [c.length for c in copies.values()] == [101 + steps, 37 + steps]
    assert copies[0].k.shape[2] >= 101 + steps
    for block in list(kept.cache.blocks.values()):
        kept.cache.free_block(block)
    c = kept.cache.new_block("c")
    kept.prefill(c, [5, 6, 7])
    assert list(copies) == [c.id]  # the freed blocks' copies are gone


def test_only_blocks_long_enough_to_decode_densely_get_a_sequence_copy():
    """A short prompt is prefilled densely but decoded in the batched matmuls: no copy for it."""
    from hivethink.engine.attention import DENSE_MIN_KEYS
    from hivethink.engine.forward import Runner
    from tests.conftest import as_loaded, tiny_hf

    runner = Runner(as_loaded(tiny_hf("qwen2")), page_size=16)
    short, long = runner.cache.new_block("short"), runner.cache.new_block("long")
    runner.prefill(short, list(range(3, 43)))
    assert not runner.backend.copies
    runner.prefill(long, [t % 500 + 3 for t in range(DENSE_MIN_KEYS + 10)])
    assert list(runner.backend.copies) == [long.id]


def test_the_paged_kernel_gives_the_same_result_from_several_threads_at_once():
    """Engines in several threads (the lab's concurrent samples) call the kernel at once."""
    from concurrent.futures import ThreadPoolExecutor

    from hivethink.engine.attention_kernel import paged_attention

    g = torch.Generator().manual_seed(0)
    k, v = torch.randn(6, 2, 8, 16, generator=g), torch.randn(6, 2, 8, 16, generator=g)
    calls = [(torch.randn(1, 2, 2, 3, 2, 16, generator=g), torch.tensor([[1 + i % 3, 4, 5]]),
              torch.tensor([[0, 1, 1]]), torch.zeros(1, 3, 3, 8)) for i in range(8)]
    alone = [paged_attention(q, k, v, pages, blocks, mask) for q, pages, blocks, mask in calls]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda c: paged_attention(c[0], k, v, c[1], c[2], c[3]), calls))
    assert all(torch.equal(a, b) for a, b in zip(alone, together, strict=True))
