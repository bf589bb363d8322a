"""Block attention over pages as one compiled loop nest (numba): the CPU decode kernel.

The batched-matmul backend (:class:`~hivethink.engine.attention.BlocksAttention`) spends a
decode step's attention in skinny matrix products (3-24 query rows against 64-key pages, about
6 GB/s on 2 cores) and some 1,400 small tensor operations around them (masks, softmax, copies):
36 ms of a 75 ms step at N=1 over a 2,048-token prompt (docs/performance.md). This kernel
computes the same attention in one pass over each group's pages:

    for each (group, KV head), in parallel:
        for each page entry of the group: for each query slot and query head of the KV head:
            scores of the page's visible keys -> online softmax (running max and sum) -> values

Each key and value page is read once per group and KV head, from the arena in place (no gather),
and every query keeps its own running max, sum and output, so a row's result never depends on
the other rows of its pass (batch invariance, without row padding). Inputs are a part's tensors
as the batched-matmul plan builds them (:class:`~hivethink.engine.attention.BlocksPart`): queries
rotated per block (the score scale folded in), the entries' pages and blocks, the additive mask.
fp32 caches only (numpy has no bf16): :class:`~hivethink.engine.attention.PagedAttention` sends it
groups of at most ``KERNEL_ROWS`` query rows of an fp32 cache, the rest to the matmuls (its dot
products are vectorised but its ``exp`` is scalar, so many rows cost it more than MKL).

Shapes: J groups, B blocks per group, E page entries, Q query slots, Hkv KV heads, G query heads
per KV head, D head dim, P page size, C arena pages.
"""

from __future__ import annotations

import importlib.util
import math
import threading
import time
from typing import Any

import numpy as np
import torch

# numba, imported when the kernel is first compiled (not at start-up: it takes 0.3-0.9 s here)
numba: Any = None

# Masked slots carry attention.MASKED (-1e30) in the additive mask; anything this low is hidden.
HIDDEN = -1e29


def available() -> bool:
    """Whether numba is installed (an optional speed-up: without it the batched matmuls run)."""
    return importlib.util.find_spec("numba") is not None


def _kernel(q: np.ndarray, k: np.ndarray, v: np.ndarray, entry_page: np.ndarray, entry_block: np.ndarray,
            mask: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled by numba
    """q [J, B, Hkv, Q * G, D], k/v [C, Hkv, P, D], entry_page/entry_block [J, E], mask [J, E, Q, P]
    (additive), out [J, Hkv, Q * G, D] (all fp32; out written)."""
    J, _, Hkv, M, D = q.shape
    E, Q = entry_page.shape[1], mask.shape[2]
    G = M // Q
    P = k.shape[2]
    for jh in numba.prange(J * Hkv):
        j, h = jh // Hkv, jh % Hkv
        peak = np.full(M, -np.inf, dtype=np.float32)
        total = np.zeros(M, dtype=np.float32)
        acc = np.zeros((M, D), dtype=np.float32)
        scores = np.empty(P, dtype=np.float32)
        for e in range(E):
            page, b = entry_page[j, e], entry_block[j, e]
            kp, vp = k[page, h], v[page, h]  # [P, D]
            for r in range(M):
                s = r // G
                qr = q[j, b, h, r]
                top = np.float32(-np.inf)
                for p in range(P):
                    m = mask[j, e, s, p]
                    if m <= HIDDEN:
                        scores[p] = -np.inf
                        continue
                    dot = np.float32(0.0)
                    for d in range(D):
                        dot += qr[d] * kp[p, d]
                    x = dot + m
                    scores[p] = x
                    top = max(top, x)
                if top == -np.inf:
                    continue  # nothing of this page is visible to this query
                new_peak = max(peak[r], top)
                scale = np.float32(math.exp(peak[r] - new_peak)) if peak[r] != -np.inf else np.float32(0.0)
                total[r] *= scale
                for d in range(D):
                    acc[r, d] *= scale
                for p in range(P):
                    if scores[p] == -np.inf:
                        continue
                    w = np.float32(math.exp(scores[p] - new_peak))
                    total[r] += w
                    for d in range(D):
                        acc[r, d] += w * vp[p, d]
                peak[r] = new_peak
        for r in range(M):
            inv = np.float32(1.0) / total[r] if total[r] > 0 else np.float32(0.0)
            for d in range(D):
                out[j, h, r, d] = acc[r, d] * inv


_compiled = None
# Engines in several threads of one process (the lab's concurrent samples) may attend at once; numba's
# fallback threading layer (workqueue, where no OpenMP or TBB runtime is found) aborts the process
# on concurrent parallel launches, so launches take turns (each is a fraction of a millisecond).
_one_at_a_time = threading.Lock()
# Seconds the first call took: numba compiling the kernel (several seconds on 2 cores), or loading
# it from its on-disk cache (``cache=True``: next to this module, else NUMBA_CACHE_DIR) on later
# runs. ``bench engine`` reports it.
first_call_s: float | None = None


def _compiled_kernel() -> Any:
    global _compiled, numba
    if _compiled is None:
        import numba
        # reassoc/contract let LLVM vectorize the dot products (a fixed order per row, so a row's
        # result still does not depend on the other rows); no fast-math on infinities or NaN
        _compiled = numba.njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "contract"})(_kernel)
    return _compiled


def paged_attention(q: torch.Tensor, k_arena: torch.Tensor, v_arena: torch.Tensor, entry_page: torch.Tensor,
                    entry_block: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """q [J, B, Hkv, Q, G, D] rotated per block, arenas [C, Hkv, P, D], entries [J, E], additive
    mask [J, E, Q, P] -> [J, Hkv, Q, G, D] fp32 (CPU tensors)."""
    global first_call_s
    J, B, Hkv, Q, G, D = q.shape
    out = torch.empty(J, Hkv, Q, G, D, dtype=torch.float32)
    with _one_at_a_time:
        start = time.perf_counter() if first_call_s is None else None
        _compiled_kernel()(q.contiguous().view(J, B, Hkv, Q * G, D).numpy(), k_arena.numpy(), v_arena.numpy(),
                           entry_page.numpy(), entry_block.numpy(), mask.contiguous().numpy(),
                           out.view(J, Hkv, Q * G, D).numpy())
        if start is not None:
            first_call_s = time.perf_counter() - start
    return out
