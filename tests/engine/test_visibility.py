"""Instant visibility (the published Hogwild! rule): worker B's logits at pass t depend on worker
A's token of pass t and equal the model over explicitly placed tokens that include it; with
``lagged`` they do not depend on it (B sees it one pass later)."""

from __future__ import annotations

import pytest
import torch

from hivethink.engine.forward import Runner
from tests.conftest import as_loaded, tiny_hf
from tests.engine.reference import explicit_logits

PROMPT = list(range(20, 57))


@pytest.fixture(scope="module")
def model():
    return as_loaded(tiny_hf("qwen3", seed=11))


def lockstep(model, visibility: str, feeds: list[tuple[list[int], list[int]]], check: bool = False) -> torch.Tensor:
    """Workers A and B over [common, other, own] views; pass t feeds A and B ``feeds[t]``.
    -> logits [passes, 2, V] (A then B). ``check``: after each pass, recompute each row's last
    token plainly over the keys its visibility allows (tests/engine/reference.py) and compare."""
    runner = Runner(model, page_size=8)
    cache = runner.cache
    common = cache.new_block("common")
    runner.prefill(common, PROMPT)
    a, b = cache.new_block("A"), cache.new_block("B")
    views = [[common, b, a], [common, a, b]]
    out = []
    for fa, fb in feeds:
        before = {x.name: x.length for x in (a, b)}
        logits = runner.extend(views, [fa, fb], visibility=visibility)
        out.append(logits)
        if check:
            for row, (view, fed) in enumerate(zip(views, (fa, fb), strict=True)):
                other = view[1]
                seen = other.length if visibility == "instant" else before[other.name]
                want = explicit_logits(runner, view, [common.length, seen, view[2].length - 1], fed[-1])
                assert (logits[row] - want).abs().max().item() < 1e-4, (visibility, row, len(out))
    return torch.stack(out)


FEEDS = [([101], [201]), ([102], [202]), ([103, 104, 105], [203]), ([106], [204]), ([107], [205])]


@pytest.mark.parametrize("visibility", ["instant", "lagged"])
def test_every_row_equals_plain_attention_over_the_keys_it_may_see(model, visibility):
    """Each layer: the row's query over the cached keys re-placed at explicit view positions,
    the other worker's keys of this very pass included (instant) or not (lagged)."""
    lockstep(model, visibility, FEEDS, check=True)


def test_b_sees_a_changed_token_in_the_same_pass_only_when_instant(model):
    changed = list(FEEDS)
    changed[3] = ([333], FEEDS[3][1])  # A writes another token at pass 3
    for visibility, same_pass_differs in (("instant", True), ("lagged", False)):
        base, alt = lockstep(model, visibility, FEEDS), lockstep(model, visibility, changed)
        assert torch.equal(base[:3], alt[:3])  # nothing before pass 3 changes
        diff = (base[3, 1] - alt[3, 1]).abs().max().item()
        assert (diff > 1e-3) == same_pass_differs, visibility
        assert (base[4, 1] - alt[4, 1]).abs().max().item() > 1e-3  # one pass later B sees it either way
