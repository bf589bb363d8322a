"""Matmul weights in the layouts of PyTorch's CPU kernels, and GGUF tensors read as the file stores them.

``--weights`` picks, per matmul weight, one of:

- ``exact``: the dequantized weights in the model's dtype (fp32 on this machine type), oneDNN-packed
  on CPU. The reference: every exactness test runs it, and it equals transformers.
- ``int4``: 4-bit codes in groups of 32 along the input, with a scale and a zero per group, for
  PyTorch's ``_weight_int4pack_mm_for_cpu``. A GGUF's Q4_0, Q4_1 and Q4_K blocks map onto that
  layout code for code (one group per block, or per Q4_K sub-block); the kernel's vectorized
  x86 path (AVX2 and AVX-512) reads its scales and zeros in bf16 and its activations in bf16,
  and writes bf16, so the scales are rounded to bf16 (the codes never change): the weight error
  is at most ``16 * |d - bf16(d)| + |rounding of the zero|`` per group, about 3% of a
  quantization step (``int4_error`` measures it; docs/performance.md). Other tensors (Q5_K, Q6_K,
  Q8_0, F16, F32) are requantized to 4 bits per group of 32 (min-max): lossy.
- ``int8``: int8 per output channel with one scale, for ``_weight_int8pack_mm`` (bf16
  activations): every source is requantized (a GGUF's 32-element block scales do not fit one
  scale per channel). For HF directories in bf16/fp16 on request.
- ``auto``: per tensor, as close to the file's own quantization as a kernel allows: the 4-bit
  GGUF types as ``int4`` (codes as stored); Q5_K, Q6_K and Q8_0 as ``int8`` (no kernel reads
  5/6/8-bit codes with a scale per 16-32 elements, so they are requantized per channel: 8 bits
  a row); float tensors, types no kernel takes, and the LM head (fp32 logits: the kernels write
  bf16) exact. A fused matmul whose parts differ takes the finest kind among them. One line
  says what each tensor got.

The quantized kernels compute each row alone (the tile of four rows only shares the weight
loads), so a row's result does not depend on the rows beside it; the decoder's load-time probe
checks that on the machine (``Decoder.rows_independent``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hivethink.errors import HivethinkError

WEIGHT_MODES = ("exact", "int8", "int4", "auto")
GROUP = 32  # elements per int4 group: one GGUF block (Q4_0/Q4_1) or K-quant sub-block
# GGUF tensor types whose 4-bit codes the int4 kernel reads as stored
AS_STORED_INT4 = ("Q4_0", "Q4_1", "Q4_K")
# GGUF types auto gives the int8 kernel: 5, 6 and 8 bits in small blocks, requantized per output
# channel (8 bits per row: its rounding is at most half of max|w_row|/127)
INT8_FROM = ("Q5_K", "Q6_K", "Q8_0")
# every GGUF type a quantized mode takes (the others exact fallback under auto, exit 2 otherwise)
SUPPORTED_GGUF = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K")
KERNEL_DTYPE = torch.bfloat16  # the int8/int4 CPU kernels' vectorized activations on x86


class Linear:
    """``x @ W.T`` for one weight [out, in]: plain ``F.linear`` (MKL on CPU, cuBLAS on GPU).

    Subclasses hold the weight in a kernel's layout; ``weight`` is the plain tensor while one is
    kept (None once a packed layout replaced it: no second copy)."""

    kind = "dense"

    def __init__(self, weight: torch.Tensor | None, shape: tuple[int, int] | None = None):
        self.weight = weight
        self.shape: tuple[int, int] = shape or (int(weight.shape[0]), int(weight.shape[1]))  # type: ignore[union-attr]

    def __call__(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        assert self.weight is not None
        return F.linear(x, self.weight, bias)

    def add(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """residual + x @ W.T"""
        return residual + self(x)

    @property
    def nbytes(self) -> int:
        """Bytes one matmul reads."""
        assert self.weight is not None
        return self.weight.numel() * self.weight.element_size()


class OneDNNLinear(Linear):
    """fp32/bf16 weights pre-packed for oneDNN: 2-3x MKL's small GEMMs at 1-8 rows here, and the
    residual add fused into the matmul (one rounding)."""

    kind = "exact"

    def __init__(self, weight: torch.Tensor, keep_plain: bool = False):
        super().__init__(weight if keep_plain else None, (int(weight.shape[0]), int(weight.shape[1])))
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, 4)
        self._nbytes = weight.numel() * weight.element_size()

    def __call__(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, bias, "none", [], "")

    def add(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise.binary(x, residual, self.packed, None, "add")

    @property
    def nbytes(self) -> int:
        return self._nbytes


class Int4Linear(Linear):
    """4-bit codes (0..15) in groups of ``GROUP`` along the input with a bf16 scale and zero per
    group: ``w = (code - 8) * scale + zero``, read by ``_weight_int4pack_mm_for_cpu``."""

    kind = "int4"

    def __init__(self, codes: torch.Tensor, scale: torch.Tensor, low: torch.Tensor):
        """``codes`` [N, K] (0..15), ``scale`` and ``low`` [N, K/GROUP] fp32 with
        ``w = codes * scale + low`` (a GGUF block's ``d`` and ``m``)."""
        n, k = codes.shape
        super().__init__(None, (int(n), int(k)))
        s, z = int4_scales(scale, low)
        self.scale_zero = torch.stack([s.t(), z.t()], dim=-1).contiguous()  # [K/GROUP, N, 2]
        self.packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes.to(torch.int32).contiguous(), 1)

    def __call__(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(x.to(KERNEL_DTYPE), self.packed, GROUP,
                                                       self.scale_zero).to(x.dtype)
        return y if bias is None else y + bias

    @property
    def nbytes(self) -> int:
        return self.packed.numel() * self.packed.element_size() + self.scale_zero.numel() * 2


class Int8Linear(Linear):
    """int8 weights with one scale per output channel, read by ``_weight_int8pack_mm``."""

    kind = "int8"

    def __init__(self, weight: torch.Tensor):
        """``weight`` [N, K] float: requantized symmetric per row (max |w| -> 127)."""
        super().__init__(None, (int(weight.shape[0]), int(weight.shape[1])))
        w = weight.float()
        scale = (w.abs().amax(dim=1) / 127).clamp_min(torch.finfo(torch.float32).tiny)
        self.q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
        self.scale = scale.to(KERNEL_DTYPE)

    def __call__(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        y = torch.ops.aten._weight_int8pack_mm(x.to(KERNEL_DTYPE), self.q, self.scale).to(x.dtype)
        return y if bias is None else y + bias

    @property
    def nbytes(self) -> int:
        return self.q.numel() + self.scale.numel() * 2


def int4_scales(scale: torch.Tensor, low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel's bf16 (scale, zero) for ``w = code * scale + low``: zero = low + 8 scale, both
    rounded to bf16 (the only rounding the mapping adds)."""
    s = scale.float().to(KERNEL_DTYPE)
    z = (low.float() + 8 * s.float()).to(KERNEL_DTYPE)
    return s, z


def int4_weight(codes: torch.Tensor, scale: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """The fp32 weight the int4 kernel multiplies by: per element ``fma(code, s, fma(s, -8, z))``
    with the bf16 (s, z) of :func:`int4_scales` (both products are exact in fp32, so plain
    multiply-adds give the fused results)."""
    s, z = (t.float().repeat_interleave(GROUP, dim=1) for t in int4_scales(scale, low))
    return codes.float() * s + (z - 8 * s)


def int4_fits(shape: tuple[int, int]) -> bool:
    """Whether the int4 kernel takes a weight of this [out, in] shape (its column tiles are
    multiples of 16, its groups of 32)."""
    n, k = shape
    return n % 16 == 0 and k % GROUP == 0


def requantize_int4(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Any float weight [N, K] -> (codes, scale, low) in groups of 32, min-max asymmetric."""
    n, k = w.shape
    g = w.float().reshape(n, k // GROUP, GROUP)
    low, high = g.amin(dim=-1), g.amax(dim=-1)
    scale = ((high - low) / 15).clamp_min(torch.finfo(torch.float32).tiny)
    codes = torch.round((g - low[..., None]) / scale[..., None]).clamp_(0, 15).to(torch.uint8)
    return codes.reshape(n, k), scale, low


# -- GGUF blocks ------------------------------------------------------------------------------

def _f16(a: np.ndarray) -> np.ndarray:
    return a.view(np.float16).astype(np.float32)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """[..., 16] bytes -> [..., 32] codes: the low nibbles are elements 0-15, the high 16-31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def gguf_int4_groups(raw: np.ndarray, qtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 4-bit GGUF tensor's rows as stored -> (codes [N, K] uint8, scale [N, K/32] fp32,
    low [N, K/32] fp32) with ``w = codes * scale + low`` equal, in fp32, to gguf's own
    dequantization bit for bit (tests/models/test_weights.py)."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[qtype]]
    n, k = raw.shape[0], raw.shape[1] // size * block
    if qtype in ("Q4_0", "Q4_1"):
        b = raw.reshape(n, k // 32, -1)
        d = _f16(b[..., 0:2].copy())[..., 0]
        if qtype == "Q4_0":  # w = (q - 8) d
            codes, low = _nibbles(b[..., 2:18]), -8 * d
        else:  # w = q d + m
            codes, low = _nibbles(b[..., 4:20]), _f16(b[..., 2:4].copy())[..., 0]
        return codes.reshape(n, k), d, low
    if qtype == "Q4_K":  # 256 per super-block: d, dmin, 12 bytes of 6-bit scales/mins, 128 bytes of codes
        b = raw.reshape(n, k // 256, 144)
        d = _f16(b[..., 0:2].copy())
        dmin = _f16(b[..., 2:4].copy())
        sc_b = b[..., 4:16].astype(np.uint8)
        sc = np.empty(sc_b.shape[:-1] + (8,), np.uint8)
        mn = np.empty_like(sc)
        sc[..., :4], mn[..., :4] = sc_b[..., 0:4] & 63, sc_b[..., 4:8] & 63
        sc[..., 4:] = (sc_b[..., 8:12] & 0x0F) | ((sc_b[..., 0:4] >> 6) << 4)
        mn[..., 4:] = (sc_b[..., 8:12] >> 4) | ((sc_b[..., 4:8] >> 6) << 4)
        qs = b[..., 16:].reshape(n, k // 256, 4, 32)  # 4 pairs of sub-blocks: low nibbles, then high
        codes = np.stack([qs & 0x0F, qs >> 4], axis=3).reshape(n, k)
        scale = (d * sc.astype(np.float32)).reshape(n, k // 32)
        low = -(dmin * mn.astype(np.float32)).reshape(n, k // 32)
        return codes, scale, low
    raise ValueError(qtype)


def gguf_dequantize(raw: np.ndarray, qtype: str) -> torch.Tensor:
    """Rows as stored -> fp32 [N, K] by gguf's own dequantization (what transformers computes)."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    return torch.from_numpy(np.ascontiguousarray(dequantize(raw, GGMLQuantizationType[qtype]), dtype=np.float32))


class GGUFEmbedding:
    """An embedding table kept as the GGUF stores it; a lookup dequantizes only the rows it
    reads, by gguf's own dequantization (so rows equal the exact table's bit for bit)."""

    def __init__(self, raw: np.ndarray, qtype: str, dim: int):
        self.raw, self.qtype, self.dim = raw, qtype, dim

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        rows = self.raw[tokens.cpu().numpy()]
        return gguf_dequantize(rows, self.qtype).reshape(-1, self.dim).to(tokens.device)

    @property
    def nbytes(self) -> int:
        return int(self.raw.nbytes)


# -- what each mode does with each tensor -----------------------------------------------------

@dataclass(frozen=True)
class WeightPlan:
    """Per matmul weight (HF name), the kernel kind it gets: "exact", "int4" or "int8"."""

    mode: str
    kinds: dict[str, str]
    stored: dict[str, str]  # HF name -> the file's type ("Q4_1", "F32", "bfloat16", ...)

    @property
    def summary(self) -> str:
        """e.g. ``int4 (210: Q4_1 as stored), int8 (1: Q8_0 requantized per channel)``."""
        by: dict[str, Counter[str]] = {}
        for name, kind in self.kinds.items():
            by.setdefault(kind, Counter())[self.stored.get(name, "?")] += 1
        how = {"int4": lambda t: "as stored" if t in AS_STORED_INT4 else "requantized to 4 bits",
               "int8": lambda t: "requantized per channel", "exact": lambda t: "dequantized" if t.isupper() else ""}
        parts = []
        for kind in ("int4", "int8", "exact"):
            if kind in by:
                types = ", ".join(f"{t} {how[kind](t)}".strip() for t in sorted(by[kind]))
                parts.append(f"{kind} ({sum(by[kind].values())}: {types})")
        return ", ".join(parts)

    @property
    def label(self) -> str:
        """What a record says: the mode, and the kinds it came to when they differ."""
        kinds = sorted(set(self.kinds.values()))
        return self.mode if kinds == [self.mode] else f"{self.mode}: {'+'.join(kinds)}"


def check_mode(mode: str) -> None:
    if mode not in WEIGHT_MODES:
        raise HivethinkError(f"unknown --weights {mode!r} (choose from {', '.join(WEIGHT_MODES)})")


def plan_weights(mode: str, stored: dict[str, str], shapes: dict[str, tuple[int, int]],
                 groups: list[tuple[str, ...]], source: str, head: str = "lm_head.weight") -> WeightPlan:
    """Decide each matmul weight's kernel; a mode that cannot be honoured: HivethinkError
    (exit 2, before the weights load). ``stored``: HF name -> the file's tensor type (GGUF type
    names, or a torch dtype name for HF checkpoints); ``shapes``: HF name -> [out, in];
    ``groups``: names the decoder fuses into one matmul (q/k/v, gate/up), which share a kind.
    Under auto the LM ``head`` stays exact: both quantized kernels write bf16, and logits with 8
    significant bits tie (greedy picks between equal values) and coarsen every sampled
    distribution; int4/int8 asked for by name quantize it too."""
    check_mode(mode)
    if mode == "exact":
        return WeightPlan(mode, {n: "exact" for n in shapes}, stored)
    bad = sorted({t for t in stored.values() if t.isupper() and t not in SUPPORTED_GGUF})
    if bad and mode != "auto":
        raise HivethinkError(f"--weights {mode}: {source} has {', '.join(bad)} tensors; the quantized "
                             f"kernels take GGUF {', '.join(SUPPORTED_GGUF)} (or use --weights exact)")
    kinds: dict[str, str] = {}
    for name, shape in shapes.items():
        t = stored.get(name, "?")
        if mode == "auto":
            kinds[name] = ("exact" if name == head else "int4" if t in AS_STORED_INT4 and int4_fits(shape)
                           else "int8" if t in INT8_FROM else "exact")
        elif mode == "int4":
            if not int4_fits(shape):
                raise HivethinkError(f"--weights int4: {name} of {source} is {shape[0]}x{shape[1]}; the int4 "
                                     f"kernel takes out-features divisible by 16 and in-features by {GROUP} "
                                     "(use --weights int8 or exact)")
            kinds[name] = "int4"
        else:
            kinds[name] = "int8"
    for group in groups:  # one fused matmul, one kernel: the finest its parts need
        got = {kinds[n] for n in group}
        if len(got) > 1:
            kinds.update(dict.fromkeys(group, "exact" if "exact" in got else "int8"))
    return WeightPlan(mode, kinds, stored)


def check_kernels(mode: str) -> None:
    """The quantized kernels are PyTorch's CPU ones: a torch without them, one line."""
    if mode in ("exact", "auto"):
        return
    op = "_weight_int4pack_mm_for_cpu" if mode == "int4" else "_weight_int8pack_mm"
    if not hasattr(torch.ops.aten, op):
        raise HivethinkError(f"--weights {mode}: this torch ({torch.__version__}) has no {op} kernel")
