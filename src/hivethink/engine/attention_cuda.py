"""Block attention for GPUs: one fused flex_attention call per layer, merged by log-sum-exp.

Same result as ``attention.BlocksAttention`` (one softmax over every block of a row's view), laid
out for a fused kernel instead of one matmul per page:

- Each block a pass reads is cut into *segments* of at most ``SEGMENT_TOKENS`` tokens; segment s
  is batch element s of the flex call. Its queries are the rows that see the block, each rotated
  once for the block (by view position - block's view offset) and stacked along the query axis.
  A shared prompt is therefore read once per pass for all rows, and a long one is split over
  many batch elements, so the kernel fills the GPU.
- The BlockMask lists each segment's pages (page = one KV block of the kernel); the mask_mod cuts
  partly visible pages: a row sees its own block causally, other blocks up to the length its
  visibility gives (``attention.row_geometry``: instant or lagged, as on the CPU path).
- Each (row, segment) part returns its output and log-sum-exp; the parts of a row are merged
  into one softmax: out = sum_s exp(lse_s - max) out_s / sum_s exp(lse_s - max).

The G query heads of a KV head are folded into the query axis (query [B, Hkv, G * Lq, D]), so
any GQA ratio (QwQ: 5) takes the short-query flex-decoding kernel when G * Lq < 128, and keys and
values are the cache arena itself seen as [1, Hkv, pages * P, D] (no copy when the cache is
head-major, ``KVCache(head_major=True)``). Shapes are padded to powers of two so that the
compiled kernel is reused from step to step.

Shapes: T flat tokens of the pass, B segments (batch), Lq query slots per segment, Hq / Hkv
query / KV heads, G = Hq / Hkv, D head dim, C pages in the arena, P page size, S = C * P.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
from torch.nn.attention.flex_attention import AuxRequest, BlockMask, flex_attention

from hivethink.engine.attention import (
    MASKED,
    RowSpec,
    Writes,
    row_geometry,
    store_kv,
    write_slots,
)
from hivethink.engine.buckets import bucket
from hivethink.engine.cache import Block, KVCache
from hivethink.engine.rope import RopeTable, rotate, signed_sin

# Longest segment: short enough that a 16k prompt makes 16 batch elements x KV heads programs.
SEGMENT_TOKENS = 1024
# Query rows per tile of the BlockMask (flex's default); the decoding kernel needs G * Lq <= this.
Q_TILE = 128


@dataclass
class FlexPlan:
    """What one forward pass needs on the flex path; built once per pass, shared by all layers."""

    writes: Writes  # where the new keys/values go (as on the CPU path)
    batches: int  # B (a power of two; segments past the real ones see nothing)
    q_len: int  # Lq query slots per segment (a power of two)
    src: torch.Tensor  # [B * Lq] which flat query fills each slot (padding: 0)
    q_cos: torch.Tensor  # [B * Lq, 1, D] rotation of the slot's query for its block
    q_sin: torch.Tensor  # sign-folded (rope.rotate)
    block_mask: BlockMask  # over [B, 1, G * Lq, S]
    merge: torch.Tensor  # [T, J] the slots of each flat token; B * Lq = none


@dataclass
class FlexLayout:
    """The host-side half of a plan: its sizes and integer fields, sent to the device in one copy.

    Its ``key`` (the sizes) fixes the shape of every tensor of the plan, so two layouts with one
    key can share static device buffers (the CUDA-graph decode step, engine/graphs.py)."""

    n_tokens: int  # T
    batches: int  # B
    q_len: int  # Lq
    parts: int  # J
    seg_pages: int  # sp
    capacity: int  # C
    fields: dict[str, list[int]]  # in FIELDS order, sizes given by the key

    FIELDS: ClassVar[tuple[str, ...]] = ("pos", "page", "off", "page_seg", "page_local", "kv_num", "kv_idx",
                                         "lim", "src", "delta", "merge")

    @property
    def key(self) -> tuple[int, int, int, int, int, int]:
        return (self.n_tokens, self.batches, self.q_len, self.parts, self.seg_pages, self.capacity)

    def sizes(self) -> dict[str, int]:
        T, B, Lq, J, sp, C = self.key
        return dict(pos=T, page=T, off=T, page_seg=C, page_local=C, kv_num=B, kv_idx=B * sp,
                    lim=B * Lq, src=B * Lq, delta=B * Lq, merge=T * J)

    def flat(self) -> list[int]:
        return [x for name in self.FIELDS for x in self.fields[name]]

    def widen(self, parts: int) -> FlexLayout:
        """The same layout with merge width ``parts`` (>= J): the new columns name no part."""
        J, none = self.parts, self.batches * self.q_len
        if parts <= J:
            return self
        m = self.fields["merge"]
        merge = [x for t in range(self.n_tokens) for x in m[t * J : (t + 1) * J] + [none] * (parts - J)]
        return replace(self, parts=parts, fields=self.fields | {"merge": merge})


class FlexAttention:
    """flex_attention over segments of blocks, merged per token by log-sum-exp (the GPU path)."""

    name: ClassVar[str] = "flex"
    head_major: ClassVar[bool] = True

    def plan(self, cache: KVCache, rope: RopeTable, rows: Sequence[RowSpec], n_tokens: int, *,
             segment_pages: int | None = None) -> FlexPlan:
        """Everything is computed on the host and sent in one copy, without reading anything back
        from the device: the GPU can still be running the previous pass meanwhile."""
        lay = self.layout(cache, rope, rows, n_tokens, segment_pages=segment_pages)
        flat_t = torch.tensor(lay.flat(), dtype=torch.long)
        if cache.device.type == "cuda":
            flat_t = flat_t.pin_memory().to(cache.device, non_blocking=True)
        return self.materialize(cache, rope, lay, flat_t)

    def layout(self, cache: KVCache, rope: RopeTable, rows: Sequence[RowSpec], n_tokens: int, *,
               segment_pages: int | None = None) -> FlexLayout:
        """The host-side half of :meth:`plan`."""
        P = cache.page_size
        sp = segment_pages or max(1, SEGMENT_TOKENS // P)
        geo = row_geometry(rows)
        pos, page, off = write_slots(cache, rows, geo, n_tokens)
        C = cache.capacity  # read after reserve_rows, which may have grown the arena

        # Who sees each block, at which view offset, and how many of its tokens per new token.
        seen: dict[int, list[tuple[int, int, list[int]]]] = {}  # block id -> [(row, offset, lim)]
        blocks: dict[int, Block] = {}
        first = [0] * len(rows)  # flat index of each row's first token
        t = 0
        for i, (r, g) in enumerate(zip(rows, geo, strict=True)):
            first[i], t = t, t + r.n_new
            for k, b in enumerate(r.view):
                own = k == len(r.view) - 1
                lim = [g.start + m + 1 if own else g.visible[k] for m in range(r.n_new)]
                seen.setdefault(b.id, []).append((i, g.offsets[k], lim))
                blocks[b.id] = b

        # Segments: runs of at most sp pages of one block, up to the furthest token anyone sees.
        segs: list[tuple[int, int, list[int]]] = []  # (block id, index of its first page, pages)
        for bid, vs in seen.items():
            top = max((max(lim) for _, _, lim in vs if lim), default=0)
            bpages = blocks[bid].pages[: (top + P - 1) // P]
            segs += [(bid, j, bpages[j : j + sp]) for j in range(0, len(bpages), sp)]
        B = bucket(max(1, len(segs)))
        Lq = bucket(max([sum(rows[i].n_new for i, _, _ in seen[bid]) for bid, _, _ in segs] or [1]))

        page_seg = [-1] * C  # segment of each arena page (-1: read by nobody)
        page_local = [0] * C  # block-local position of the page's first slot
        kv_num = [0] * B
        kv_idx = [0] * (B * sp)  # [B, sp]
        lim_t = [0] * (B * Lq)  # [B, Lq]
        src, delta = [0] * (B * Lq), [0] * (B * Lq)
        slots: list[list[int]] = [[] for _ in range(n_tokens)]
        for s, (bid, first_page, spages) in enumerate(segs):
            for j, p in enumerate(spages):
                page_seg[p], page_local[p] = s, (first_page + j) * P
            kv_num[s] = len(spages)
            kv_idx[s * sp : s * sp + len(spages)] = spages
            slot = s * Lq
            for i, o, lim in seen[bid]:
                for m in range(rows[i].n_new):
                    flat = first[i] + m
                    lim_t[slot], src[slot], delta[slot] = lim[m], flat, geo[i].qpos + m - o
                    slots[flat].append(slot)
                    slot += 1
        J = max(1, max(len(p) for p in slots))
        merge = [x for p in slots for x in p + [B * Lq] * (J - len(p))]  # [T, J]
        # The tables grow here, on the host: lookups on the device then never read a position back.
        rope.ensure(max(max(delta), max(pos, default=0)))
        return FlexLayout(n_tokens=n_tokens, batches=B, q_len=Lq, parts=J, seg_pages=sp, capacity=C,
                          fields=dict(pos=pos, page=page, off=off, page_seg=page_seg, page_local=page_local,
                                      kv_num=kv_num, kv_idx=kv_idx, lim=lim_t, src=src, delta=delta,
                                      merge=merge))

    def materialize(self, cache: KVCache, rope: RopeTable, lay: FlexLayout, flat: torch.Tensor) -> FlexPlan:
        """The device half of :meth:`plan`: the plan's tensors from ``flat`` (``lay.flat()`` on the
        device), by device operations alone (no host values but the sizes): a CUDA graph can
        capture it and replay it over new contents of the same buffer."""
        T, B, Lq, J, sp, C = lay.key
        P = cache.page_size
        G = cache.cfg.n_heads // cache.cfg.n_kv_heads
        tt: dict[str, torch.Tensor] = {}
        at = 0
        for name, n in lay.sizes().items():
            tt[name], at = flat[at : at + n], at + n
        page_seg_t, page_local_t = tt["page_seg"].int(), tt["page_local"].int()
        lim_dev = tt["lim"].int().view(B, Lq)

        def mask_mod(b: torch.Tensor, h: torch.Tensor, q_idx: torch.Tensor, kv_idx: torch.Tensor) -> torch.Tensor:
            # q_idx = g * Lq + slot (heads folded in); kv_idx = page * P + offset in the page
            page = kv_idx // P
            visible = page_local_t[page] + kv_idx % P < lim_dev[b, q_idx % Lq]
            return (page_seg_t[page] == b) & visible

        n_tiles = (G * Lq + Q_TILE - 1) // Q_TILE  # one kv list per query tile, the same for all
        block_mask = BlockMask.from_kv_blocks(
            tt["kv_num"].int().view(B, 1, 1).expand(B, 1, n_tiles).contiguous(),
            tt["kv_idx"].int().view(B, 1, 1, sp).expand(B, 1, n_tiles, sp).contiguous(),
            BLOCK_SIZE=(Q_TILE, P), mask_mod=mask_mod, seq_lengths=(G * Lq, C * P), compute_q_blocks=False)
        k_cos, k_sin = rope.qk_cos[tt["pos"]], rope.qk_sin[tt["pos"]]  # [T, D] (as rope.lookup)
        writes = Writes(k_cos[:, None], signed_sin(k_sin)[:, None], tt["page"], tt["off"])
        q_cos, q_sin = rope.qk_cos[tt["delta"]], rope.qk_sin[tt["delta"]]  # [B * Lq, D]
        return FlexPlan(writes=writes, batches=B, q_len=Lq, src=tt["src"], q_cos=q_cos[:, None],
                        q_sin=signed_sin(q_sin)[:, None], block_mask=block_mask,
                        merge=tt["merge"].view(T, J))

    def attend(self, cache: KVCache, layer: int, plan: FlexPlan, q: torch.Tensor, k: torch.Tensor,
               v: torch.Tensor) -> torch.Tensor:
        """q [T, Hq, D], k/v [T, Hkv, D] -> [T, Hq * D]."""
        store_kv(cache, layer, plan.writes, k, v)
        return flex_block_attention(q, cache.k[layer], cache.v[layer], plan)


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
    """q [T, Hq, D] against the blocks of each token's view -> [T, Hq * D]."""
    T, Hq, D = q.shape
    Hkv = k_arena.shape[1]
    G, B, Lq = Hq // Hkv, plan.batches, plan.q_len
    qs = rotate(q[plan.src], plan.q_cos, plan.q_sin)  # [B * Lq, Hq, D]
    qf = qs.view(B, Lq, Hkv, G, D).permute(0, 2, 3, 1, 4).reshape(B, Hkv, G * Lq, D)
    out, aux = _flex(q.device)(qf, seq_view(k_arena), seq_view(v_arena), block_mask=plan.block_mask,
                               scale=D**-0.5, return_aux=AuxRequest(lse=True))
    # out [B, Hkv, G * Lq, D], lse [B, Hkv, G * Lq] (natural log; -inf where nothing is visible)
    o = out.float().view(B, Hkv, G, Lq, D).permute(0, 3, 1, 2, 4).reshape(B * Lq, Hkv, G, D)
    lse = aux.lse.view(B, Hkv, G, Lq).permute(0, 3, 1, 2).reshape(B * Lq, Hkv, G)
    o = torch.cat([o, o.new_zeros(1, Hkv, G, D)])  # slot B * Lq: "no part"
    lse = torch.cat([lse, lse.new_full((1, Hkv, G), float("-inf"))])
    parts, part_lse = o[plan.merge], lse[plan.merge]  # [T, J, Hkv, G, D], [T, J, Hkv, G]
    peak = part_lse.amax(1, keepdim=True).clamp(min=MASKED)  # finite even for padding tokens
    wgt = torch.exp(part_lse - peak)
    # the largest part weighs exactly 1, so the sum is >= 1 unless the token sees nothing (then 0)
    merged = (wgt[..., None] * parts).sum(1) / wgt.sum(1).clamp(min=1.0)[..., None]
    return merged.to(q.dtype).reshape(T, Hq * D)
