"""Batch invariance, the property every result rests on: what a row computes does not depend on
what shares its pass. Checked where it is made (a pass's rows: prompt chunks and decoding rows,
packed weights or rows padded to tiles) and where it is used (whole jobs, hives and plain
generations, in the same passes give what they give alone). Higher levels (the server, the
lab's concurrency) inherit it from these."""

from __future__ import annotations

import pytest
import torch

from hivethink.engine.forward import Runner
from hivethink.engine.scheduler import Engine
from tests.engine.jobs import make_jobs, outcome


@pytest.mark.slow
def test_two_hives_and_three_generations_in_the_same_passes_give_what_they_give_alone(smol32):
    alone = []
    for job in make_jobs(smol32):
        Engine(smol32).run_jobs([job])
        alone.append(outcome(job))
    engine = Engine(smol32)
    groups_per_pass: list[set[int]] = []
    real = engine.runner.forward

    def spy(rows, tokens, **kw):
        blocks: dict[int, int] = {}
        for r in rows:
            for b in r.view:  # a block is in the views of one job only
                assert blocks.setdefault(b.id, r.group) == r.group
        groups_per_pass.append({r.group for r in rows})
        return real(rows, tokens, **kw)

    engine.runner.forward = spy  # type: ignore[method-assign]
    jobs = make_jobs(smol32)
    engine.run_jobs(jobs)
    assert [outcome(j) for j in jobs] == alone
    assert max(len(g) for g in groups_per_pass) == 5  # all five decoded in the same passes
    assert engine.cache.blocks == {}


def test_a_row_computes_the_same_alone_and_beside_other_jobs(tiny_smol):
    """The batch-invariance the results rest on: a job's logits are bitwise those it gets alone,
    where this machine's matrix kernels are invariant to the row count once aligned (checked
    first; elsewhere the engine is still exact to rounding and the test says why it skips)."""
    from torch.nn import functional as F

    x, w = torch.randn(40, 64), torch.randn(96, 64)
    if not all(torch.equal(F.linear(x[: 4 * k], w)[:4], F.linear(x[:4], w)) for k in range(1, 10)):
        pytest.skip("this machine's matmul kernels depend on the row count even when aligned")
    prompt = list(range(100, 140))

    def logits_of(extra: int) -> torch.Tensor:
        runner = Runner(tiny_smol, page_size=16)
        mine = runner.cache.new_block("mine")
        others = [runner.cache.new_block(f"o{i}") for i in range(extra)]
        from hivethink.engine.attention import RowSpec, reserve_rows

        rows = [RowSpec([mine], len(prompt), 0)] + [RowSpec([o], 7 + i, 1 + i) for i, o in enumerate(others)]
        feeds = [prompt] + [list(range(300, 307 + i)) for i in range(extra)]
        reserve_rows(runner.cache, rows)
        return runner.forward(rows, feeds)[0]

    base = logits_of(0)
    for extra in (1, 3, 6):
        assert torch.equal(logits_of(extra), base), extra


@pytest.mark.parametrize("packed", [False, True])
def test_a_decoding_row_computes_the_same_alone_and_beside_multi_token_rows(tiny_smol, packed):
    """A decode row (one token: a one-row matmul when alone) computes bitwise the same alone and
    beside jobs writing several tokens, which pad its attention part to more query slots. Plain
    weights: rows padded to tiles of 4. Packed weights whose kernels pack() found row-count
    invariant: no padding at all."""
    from hivethink.engine.attention import RowSpec, reserve_rows
    from tests.conftest import tiny_with_tokenizer

    model = tiny_with_tokenizer(tiny_smol.tokenizer)
    if packed:
        if not model.decoder.pack():
            pytest.skip("no oneDNN packing in this torch build")
        if not model.decoder.rows_independent:
            pytest.skip("this machine's packed kernels depend on the row count")
    assert Runner(model).align == (1 if packed else 4)

    def logits_of(extra: int) -> list[torch.Tensor]:
        runner = Runner(model, page_size=16)
        mine = runner.cache.new_block("mine")
        first = runner.prefill(mine, list(range(100, 140)))
        others = [runner.cache.new_block(f"o{i}") for i in range(extra)]
        rows = [RowSpec([mine], 1, 0)] + [RowSpec([o], 1 + 2 * i, 1 + i) for i, o in enumerate(others)]
        feeds = [[7]] + [list(range(300, 301 + 2 * i)) for i in range(extra)]
        reserve_rows(runner.cache, rows)
        out = runner.forward(rows, feeds)[0]
        assert out is not None
        return [first, out]

    base = logits_of(0)
    for extra in (1, 2, 5):
        got = logits_of(extra)
        assert torch.equal(got[0], base[0]) and torch.equal(got[1], base[1]), extra


def test_weights_are_not_packed_when_the_copies_would_not_fit(tiny_smol, monkeypatch):
    """Packing keeps a second copy of the weights: skipped when it would take more than half of
    the available memory, and the engine then pads rows to tiles (still batch-invariant)."""
    from hivethink.models import transformer
    from tests.conftest import tiny_with_tokenizer

    model = tiny_with_tokenizer(tiny_smol.tokenizer)
    monkeypatch.setattr(transformer, "available_memory", lambda: 1024)
    assert not model.decoder.pack() and not model.decoder.rows_independent
    assert Runner(model).align == 4
    monkeypatch.setattr(transformer, "available_memory", lambda: 1 << 40)
    if torch.backends.mkldnn.is_available():
        assert model.decoder.pack()
