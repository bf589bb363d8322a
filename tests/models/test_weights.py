"""Quantized weights: GGUF blocks read as stored, the kernels' layouts, their error, the plan of
each ``--weights`` mode, and row batch-invariance of the quantized kernels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

from hivethink.errors import HivethinkError
from hivethink.models.weights import (
    GROUP,
    Int4Linear,
    Int8Linear,
    gguf_dequantize,
    gguf_int4_groups,
    int4_scales,
    int4_weight,
    plan_weights,
    requantize_int4,
)

N, K = 48, 256  # out-features (a multiple of 16), in-features (one Q4_K super-block)


def _weights(seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    return (g.standard_normal((N, K)) * 0.05 + g.standard_normal((N, 1)) * 0.01).astype(np.float32)


def _q4k_blocks(seed: int = 0) -> np.ndarray:
    """Random Q4_K rows: random codes and 6-bit scales/mins, fp16 d and dmin of a sane size
    (gguf-py writes no K-quants, so the bytes are drawn directly)."""
    g = np.random.default_rng(seed)
    raw = g.integers(0, 256, size=(N, K // 256, 144), dtype=np.uint8)
    raw[..., 0:2] = (g.uniform(1e-4, 1e-2, (N, K // 256, 1)).astype(np.float16)).view(np.uint8)
    raw[..., 2:4] = (g.uniform(1e-4, 1e-2, (N, K // 256, 1)).astype(np.float16)).view(np.uint8)
    return raw.reshape(N, -1)


def _raw(qtype: str, seed: int = 0) -> np.ndarray:
    if qtype == "Q4_K":
        return _q4k_blocks(seed)
    return quantize(_weights(seed), GGMLQuantizationType[qtype])


@pytest.mark.parametrize("qtype", ["Q4_0", "Q4_1", "Q4_K"])
def test_4bit_gguf_blocks_decode_to_codes_that_dequantize_bit_for_bit(qtype):
    raw = _raw(qtype)
    codes, scale, low = gguf_int4_groups(raw, qtype)
    assert codes.shape == (N, K) and scale.shape == low.shape == (N, K // GROUP)
    assert codes.max() <= 15
    ours = torch.from_numpy(codes).float() * torch.from_numpy(scale).repeat_interleave(GROUP, 1) \
        + torch.from_numpy(low).repeat_interleave(GROUP, 1)
    ref = torch.from_numpy(dequantize(raw, GGMLQuantizationType[qtype]).astype(np.float32))
    assert torch.equal(ours, ref)


@pytest.mark.parametrize("qtype", ["Q4_0", "Q4_1", "Q4_K"])
def test_the_int4_kernel_reads_4bit_blocks_exactly_with_fp32_scales(qtype):
    """The mapping onto the kernel's layout is exact: with fp32 scales and zeros (its scalar
    path) the kernel's weight, read back through the identity, is gguf's dequantized weight
    wherever the zero (low + 8 scale) is exact in fp32."""
    raw = _raw(qtype)
    codes, scale, low = (torch.from_numpy(a) for a in gguf_int4_groups(raw, qtype))
    zero = low + 8 * scale
    exact_zero = (zero.double() == low.double() + 8 * scale.double()).repeat_interleave(GROUP, 1)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes.to(torch.int32), 1)
    sz = torch.stack([scale.t(), zero.t()], dim=-1).contiguous()
    w = torch.ops.aten._weight_int4pack_mm_for_cpu(torch.eye(K), packed, GROUP, sz).t()
    ref = gguf_dequantize(raw, qtype)
    assert exact_zero.float().mean() > 0.9
    assert torch.equal(w[exact_zero], ref[exact_zero])


@pytest.mark.parametrize("qtype", ["Q4_0", "Q4_1", "Q4_K"])
def test_int4_linear_computes_with_its_documented_weight_and_bounded_error(qtype):
    """The vectorized kernel reads bf16 scales: its weight is int4_weight() exactly (seen
    through the identity, rounded to its bf16 output), and its distance from the GGUF's own
    weight is the bf16 rounding of the scale and zero only (docs/performance.md)."""
    raw = _raw(qtype)
    codes, scale, low = (torch.from_numpy(a) for a in gguf_int4_groups(raw, qtype))
    lin = Int4Linear(codes, scale, low)
    eff = int4_weight(codes, scale, low)
    seen = lin(torch.eye(K)).t()
    assert torch.equal(seen, eff.to(torch.bfloat16).float())
    ref = gguf_dequantize(raw, qtype)
    s, _ = int4_scales(scale, low)
    rep = lambda t: t.float().repeat_interleave(GROUP, 1)  # noqa: E731
    bound = 16 * (rep(s) - rep(scale)).abs() + 2.0 ** -8 * (rep(low).abs() + 8 * rep(scale).abs()) + 1e-7
    assert ((eff - ref).abs() <= bound).all()
    assert (eff - ref).abs().max() <= 0.07 * scale.max()  # a few percent of a quantization step


def test_requantized_int4_and_int8_stay_close_to_the_weight():
    w = torch.from_numpy(_weights(3))
    codes, scale, low = requantize_int4(w)
    assert ((int4_weight(codes, scale, low) - w).abs() <= 0.6 * scale.repeat_interleave(GROUP, 1) + 1e-6).all()
    lin8 = Int8Linear(w)
    x = torch.randn(5, K)
    torch.testing.assert_close(lin8(x), x @ w.t(), atol=0.02, rtol=0.02)


@pytest.mark.parametrize("kind", ["int4", "int8"])
def test_a_row_computes_the_same_alone_and_among_4_8_16_rows(kind):
    """The engine promises batch invariance: the quantized kernels tile rows by four but compute
    each row alone, so a row's output is the same bit for bit at any row count and position."""
    w = torch.from_numpy(_weights(1))
    lin = Int4Linear(*requantize_int4(w)) if kind == "int4" else Int8Linear(w)
    x = torch.randn(17, K)
    alone = lin(x[:1])
    for m in (4, 8, 16):
        for at in (0, m - 1):
            rows = torch.cat([x[1 : 1 + at], x[:1], x[1 + at : m]])
            assert torch.equal(lin(rows)[at : at + 1], alone), (m, at)


SHAPES = {"a.q.weight": (64, 64), "a.k.weight": (32, 64), "a.v.weight": (32, 64), "a.o.weight": (64, 64),
          "lm_head.weight": (512, 64)}
GROUPS = [("a.q.weight", "a.k.weight", "a.v.weight"), ("a.o.weight",)]


def test_auto_reads_4bit_types_as_stored_and_keeps_the_head_exact():
    stored = {"a.q.weight": "Q4_1", "a.k.weight": "Q4_1", "a.v.weight": "Q4_1", "a.o.weight": "Q8_0",
              "lm_head.weight": "Q8_0"}
    plan = plan_weights("auto", stored, SHAPES, GROUPS, "m.gguf")
    assert plan.kinds == {"a.q.weight": "int4", "a.k.weight": "int4", "a.v.weight": "int4", "a.o.weight": "int8",
                          "lm_head.weight": "exact"}
    assert plan.label == "auto: exact+int4+int8" and "int8 (1: Q8_0 requantized per channel)" in plan.summary
    assert "exact (1: Q8_0 dequantized)" in plan.summary
    assert plan_weights("int8", stored, SHAPES, GROUPS, "m.gguf").kinds["lm_head.weight"] == "int8"
    mixed = plan_weights("auto", {**stored, "a.v.weight": "Q6_K"}, SHAPES, GROUPS, "m.gguf")
    assert {mixed.kinds[n] for n in GROUPS[0]} == {"int8"}  # one fused matmul, the finest kernel
    floats = plan_weights("auto", {**stored, "a.v.weight": "F16"}, SHAPES, GROUPS, "m.gguf")
    assert {floats.kinds[n] for n in GROUPS[0]} == {"exact"}
    assert plan_weights("int4", stored, SHAPES, GROUPS, "m.gguf").label == "int4"
    assert plan_weights("exact", stored, SHAPES, GROUPS, "m.gguf").label == "exact"
    unknown = plan_weights("auto", {**stored, "a.q.weight": "IQ2_XXS"}, SHAPES, GROUPS, "m.gguf")
    assert unknown.kinds["a.q.weight"] == "exact"


@pytest.mark.parametrize("mode,stored,shapes,msg", [
    ("int4", {"a.q.weight": "IQ2_XXS"}, SHAPES, "take GGUF F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K"),
    ("int8", {"a.q.weight": "Q2_K"}, SHAPES, "Q2_K"),
    ("int4", {}, {**SHAPES, "a.q.weight": (64, 40)}, "in-features by 32"),
    ("fp4", {}, SHAPES, "choose from exact, int8, int4, auto"),
])
def test_a_mode_the_tensors_do_not_allow_is_one_line(mode, stored, shapes, msg):
    with pytest.raises(HivethinkError) as err:
        plan_weights(mode, stored, shapes, GROUPS, "m.gguf")
    assert msg in str(err.value) and "\n" not in str(err.value)
