"""Block attention for GPUs: one fused flex_attention call per layer, merged by log-sum-exp.

Same result as ``attention.block_attention`` (one softmax over every block of a row's view), laid
out for a fused kernel instead of one matmul per page:

- Each block a pass reads is cut into *segments* of at most ``SEGMENT_TOKENS`` tokens; segment s
  is batch element s of the flex call. Its queries are the rows that see the block, each rotated
  once for the block (by view position - block's view offset) and stacked along the query axis.
  A shared prompt is therefore read once per pass for all rows, and a long one is split over
  many batch elements, so the kernel fills the GPU.
- The BlockMask lists each segment's pages (page = one KV block of the kernel); the mask_mod cuts
  partly visible pages: a row sees its own block causally, other blocks up to their length before
  this pass's write (lockstep, as in ``build_plan``).
- Each (row, segment) part returns its output and log-sum-exp; the parts of a row are merged
  into one softmax: out = sum_s exp(lse_s - max) out_s / sum_s exp(lse_s - max).

The G query heads of a KV head are folded into the query axis (query [B, Hkv, G * Lq, D]), so
any GQA ratio (QwQ: 5) takes the short-query flex-decoding kernel when G * Lq < 128, and keys and
values are the cache arena itself seen as [1, Hkv, pages * P, D] (no copy when the cache is
head-major, ``KVCache(head_major=True)``). Shapes are padded to powers of two so that the
compiled kernel is reused from step to step.

Shapes: W rows, M new tokens per row, B segments (batch), Lq query slots per segment, Hq / Hkv
query / KV heads, G = Hq / Hkv, D head dim, C pages in the arena, P page size, S = C * P.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.attention.flex_attention import AuxRequest, BlockMask, flex_attention

from hivethink.engine.attention import MASKED
from hivethink.engine.cache import Block, KVCache
from hivethink.engine.rope import RopeTable, rotate, signed_sin

# Longest segment: short enough that a 16k prompt makes 16 batch elements x KV heads programs.
SEGMENT_TOKENS = 1024
# Query rows per tile of the BlockMask (flex's default); the decoding kernel needs G * Lq <= this.
Q_TILE = 128


@dataclass
class FlexPlan:
    """What one forward pass needs on the flex path; built once per pass, shared by all layers."""

    batches: int  # B (a power of two; segments past the real ones see nothing)
    q_len: int  # Lq query slots per segment (a power of two)
    src: torch.Tensor  # [B * Lq] which query (w * M + m) fills each slot (padding: 0)
    q_cos: torch.Tensor  # [B * Lq, 1, D] rotation of the slot's query for its block
    q_sin: torch.Tensor  # sign-folded (rope.rotate)
    block_mask: BlockMask  # over [B, 1, G * Lq, S]
    merge: torch.Tensor  # [W, M, J] the slots of each (row, token); B * Lq = none
    # New keys/values, as in BlockPlan (``store_kv`` takes either plan)
    k_cos: torch.Tensor  # [W, M, 1, D]
    k_sin: torch.Tensor  # sign-folded
    w_page: torch.Tensor  # [W * M]
    w_off: torch.Tensor  # [W * M]


def _pow2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def build_flex_plan(cache: KVCache, rope: RopeTable, views: list[list[Block]], n_new: list[int], *,
                    segment_pages: int | None = None) -> FlexPlan:
    """Plan a pass where row w appends ``n_new[w]`` tokens to the last block of ``views[w]``
    (the same contract as ``build_plan``: lengths are taken before the write).

    Everything is computed on the host and sent in one copy, without reading anything back from
    the device: the GPU can still be running the previous pass meanwhile.
    """
    P = cache.page_size
    W, M = len(views), max(n_new)
    G = cache.cfg.n_heads // cache.cfg.n_kv_heads
    sp = segment_pages or max(1, SEGMENT_TOKENS // P)
    # Reserve the slots of this pass first (may grow the arena: C is read after).
    for view, n in zip(views, n_new, strict=True):
        cache.reserve(view[-1], view[-1].length + n)
    C = cache.capacity

    # Who sees each block, at which view offset, and how many of its tokens per new token.
    seen: dict[int, list[tuple[int, int, list[int]]]] = {}  # block id -> [(w, offset, lim [M])]
    blocks: dict[int, Block] = {}
    qpos: list[int] = []  # view position of each row's first new token
    for w, view in enumerate(views):
        o, n, tail = 0, n_new[w], view[-1]
        for b in view:
            lim = [b.length if m < n else 0 for m in range(M)]
            if b is tail:
                lim = [b.length + m + 1 if m < n else 0 for m in range(M)]  # own tokens: causal
            seen.setdefault(b.id, []).append((w, o, lim))
            blocks[b.id] = b
            o += b.length
        qpos.append(o)

    # Segments: runs of at most sp pages of one block, up to the furthest token anyone sees.
    segs: list[tuple[int, int, list[int]]] = []  # (block id, index of its first page, pages)
    for bid, vs in seen.items():
        top = max(max(lim) for _, _, lim in vs)
        pages = blocks[bid].pages[: (top + P - 1) // P]
        segs += [(bid, j, pages[j : j + sp]) for j in range(0, len(pages), sp)]
    B = _pow2(len(segs))
    Lq = _pow2(max(len(seen[bid]) for bid, _, _ in segs) * M)

    page_seg = [-1] * C  # segment of each arena page (-1: read by nobody)
    page_local = [0] * C  # block-local position of the page's first slot
    kv_num = [0] * B
    kv_idx = [0] * (B * sp)  # [B, sp]
    lim_t = [0] * (B * Lq)  # [B, Lq]
    src, delta = [0] * (B * Lq), [0] * (B * Lq)
    parts: list[list[list[int]]] = [[[] for _ in range(M)] for _ in range(W)]
    for s, (bid, first, pages) in enumerate(segs):
        for j, p in enumerate(pages):
            page_seg[p], page_local[p] = s, (first + j) * P
        kv_num[s] = len(pages)
        kv_idx[s * sp : s * sp + len(pages)] = pages
        for i, (w, o, lim) in enumerate(seen[bid]):
            for m in range(n_new[w]):
                slot = s * Lq + i * M + m
                lim_t[slot], src[slot], delta[slot] = lim[m], w * M + m, qpos[w] + m - o
                parts[w][m].append(slot)
    J = max(len(p) for row in parts for p in row)
    merge = [x for row in parts for p in row for x in p + [B * Lq] * (J - len(p))]  # [W, M, J]
    # New keys: block-local positions and slots; padding tokens write to the scratch page.
    k_pos, w_page, w_off = [], [], []
    for view, n in zip(views, n_new, strict=True):
        tail = view[-1]
        for m in range(M):
            pos = tail.length + m
            k_pos.append(pos if m < n else 0)
            w_page.append(tail.pages[pos // P] if m < n else 0)
            w_off.append(pos % P if m < n else 0)

    # One host-to-device copy for all of it (pinned + non_blocking on CUDA: no wait).
    fields = dict(page_seg=page_seg, page_local=page_local, kv_num=kv_num, kv_idx=kv_idx, lim=lim_t,
                  src=src, delta=delta, merge=merge, k_pos=k_pos, w_page=w_page, w_off=w_off)
    flat = torch.tensor([x for f in fields.values() for x in f], dtype=torch.long)
    if cache.device.type == "cuda":
        flat = flat.pin_memory().to(cache.device, non_blocking=True)
    t: dict[str, torch.Tensor] = {}
    at = 0
    for name, f in fields.items():
        t[name], at = flat[at : at + len(f)], at + len(f)
    page_seg_t, page_local_t = t["page_seg"].int(), t["page_local"].int()
    lim_dev = t["lim"].int().view(B, Lq)

    def mask_mod(b: torch.Tensor, h: torch.Tensor, q_idx: torch.Tensor, kv_idx: torch.Tensor) -> torch.Tensor:
        # q_idx = g * Lq + slot (heads folded in); kv_idx = page * P + offset in the page
        page = kv_idx // P
        visible = page_local_t[page] + kv_idx % P < lim_dev[b, q_idx % Lq]
        return (page_seg_t[page] == b) & visible

    n_tiles = (G * Lq + Q_TILE - 1) // Q_TILE  # one kv list per query tile, the same for all
    block_mask = BlockMask.from_kv_blocks(
        t["kv_num"].int().view(B, 1, 1).expand(B, 1, n_tiles).contiguous(),
        t["kv_idx"].int().view(B, 1, 1, sp).expand(B, 1, n_tiles, sp).contiguous(),
        BLOCK_SIZE=(Q_TILE, P), mask_mod=mask_mod, seq_lengths=(G * Lq, C * P), compute_q_blocks=False)
    # rope.lookup would read the largest position back from the device: grow the table here.
    rope.ensure(max(delta + k_pos))
    q_cos, q_sin = rope.qk_cos[t["delta"]], rope.qk_sin[t["delta"]]  # [B * Lq, D]
    k_cos, k_sin = rope.qk_cos[t["k_pos"]], rope.qk_sin[t["k_pos"]]  # [W * M, D]
    D = q_cos.shape[-1]
    return FlexPlan(batches=B, q_len=Lq, src=t["src"], q_cos=q_cos[:, None], q_sin=signed_sin(q_sin)[:, None],
                    block_mask=block_mask, merge=t["merge"].view(W, M, J),
                    k_cos=k_cos.view(W, M, 1, D), k_sin=signed_sin(k_sin).view(W, M, 1, D),
                    w_page=t["w_page"], w_off=t["w_off"])


def seq_view(arena: torch.Tensor) -> torch.Tensor:
    """Arena [C, Hkv, P, D] -> [1, Hkv, C * P, D]: a view when the arena is head-major, else a copy."""
    C, Hkv, P, D = arena.shape
    return arena.permute(1, 0, 2, 3).reshape(1, Hkv, C * P, D)


_compiled: Callable[..., Any] | None = None


def _flex(device: torch.device) -> Callable[..., Any]:
    """Compiled flex_attention on CUDA; eager on CPU (slow, unfused, exact: how tests check it)."""
    global _compiled
    if device.type != "cuda":
        return _eager_flex
    if _compiled is None:
        # Every new (B, Lq, S) bucket compiles once; a run meets a few dozen, more than the default 8.
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        _compiled = torch.compile(flex_attention, dynamic=False, fullgraph=True)
    return _compiled


def _eager_flex(*args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        return flex_attention(*args, **kwargs)


def flex_block_attention(q: torch.Tensor, k_arena: torch.Tensor, v_arena: torch.Tensor,
                         plan: FlexPlan) -> torch.Tensor:
    """q [W, M, Hq, D] against the blocks of each row's view -> [W, M, Hq * D]."""
    W, M, Hq, D = q.shape
    Hkv = k_arena.shape[1]
    G, B, Lq = Hq // Hkv, plan.batches, plan.q_len
    qs = rotate(q.reshape(W * M, Hq, D)[plan.src], plan.q_cos, plan.q_sin)  # [B * Lq, Hq, D]
    qf = qs.view(B, Lq, Hkv, G, D).permute(0, 2, 3, 1, 4).reshape(B, Hkv, G * Lq, D)
    out, aux = _flex(q.device)(qf, seq_view(k_arena), seq_view(v_arena), block_mask=plan.block_mask,
                               scale=D**-0.5, return_aux=AuxRequest(lse=True))
    # out [B, Hkv, G * Lq, D], lse [B, Hkv, G * Lq] (natural log; -inf where nothing is visible)
    o = out.float().view(B, Hkv, G, Lq, D).permute(0, 3, 1, 2, 4).reshape(B * Lq, Hkv, G, D)
    lse = aux.lse.view(B, Hkv, G, Lq).permute(0, 3, 1, 2).reshape(B * Lq, Hkv, G)
    o = torch.cat([o, o.new_zeros(1, Hkv, G, D)])  # slot B * Lq: "no part"
    lse = torch.cat([lse, lse.new_full((1, Hkv, G), float("-inf"))])
    parts, part_lse = o[plan.merge], lse[plan.merge]  # [W, M, J, Hkv, G, D], [W, M, J, Hkv, G]
    peak = part_lse.amax(2, keepdim=True).clamp(min=MASKED)  # finite even for padding tokens
    wgt = torch.exp(part_lse - peak)
    # the largest part weighs exactly 1, so the sum is >= 1 unless the token sees nothing (then 0)
    merged = (wgt[..., None] * parts).sum(2) / wgt.sum(2).clamp(min=1.0)[..., None]
    return merged.to(q.dtype).reshape(W, M, Hq * D)
