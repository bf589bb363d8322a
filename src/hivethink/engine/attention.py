"""Attention over blocks with per-block query rotation.

Every row (worker) of a forward pass attends to the blocks of its own *view*, in the view's
order, under one softmax. Keys are stored at block-local positions, so instead of re-rotating
keys, the query of a row at view position p is rotated by (p - o) for a block that starts at
view position o; RoPE scores depend only on the difference, so this equals plain attention
over keys rotated to their view positions. The query is rotated once per block and laid out per
*page* (every page of a block takes its block's rotation), which lets one batched matmul over
[pages, heads] cover all blocks and all rows at once: no per-step copy or re-rotation of the
cache.

Shapes: W rows, M queries per row, hw scanned pages, P page size, Hkv KV heads, G = Hq / Hkv,
D head dim, R = W * M * G query rows per KV head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from hivethink.engine.cache import Block, KVCache
from hivethink.engine.rope import RopeTable, apply_rotation, rotate, signed_sin

# Masked scores: finite, so that a row with nothing visible (padding) gives no NaN.
MASKED = -1e30
# fp16 cannot hold MASKED; a score plus this stays finite and its exp() is still 0.
MASKED_FP16 = -3e4
# Below this fraction of visible (row, page) pairs, rows scan only their own pages.
GATHER_BELOW = 0.5


@dataclass
class BlockPlan:
    """What one forward pass needs to attend; built once per pass, shared by all layers."""

    n_pages: int  # pages each row scans: hw (shared mode) or maxp (gathered)
    # Shared mode (row_pages is None): every row scans pages [1, 1 + hw) (page 0 is scratch,
    # never visible); rotations are one per block, [nb, 1, W, M, 1, D], page_rot [hw] says
    # which one each page takes, and the mask is [hw * Hkv, W * M * G, P] (the layout of the
    # scores, added by their matmul). Gathered mode: row w scans only its pages row_pages[w]
    # (padded with the scratch page); rotations and mask are [W, maxp, 1, M, 1, D|P].
    # Query rotations carry the 1/sqrt(D) score scale; every sin is sign-folded for rope.rotate.
    q_cos: torch.Tensor
    q_sin: torch.Tensor
    # additive: 0 where visible, MASKED elsewhere; model dtype in shared mode (the scores' matmul
    # adds it), fp32 in gathered mode
    mask: torch.Tensor
    row_pages: torch.Tensor | None  # [W, maxp] or None
    page_rot: torch.Tensor | None  # [hw] (shared mode) or None
    k_cos: torch.Tensor  # [W, M, 1, D] rotation of the new keys to their block-local positions
    k_sin: torch.Tensor
    w_page: torch.Tensor  # [W * M] where the new keys/values go (scratch page for padding)
    w_off: torch.Tensor  # [W * M]


def build_plan(cache: KVCache, rope: RopeTable, views: list[list[Block]], n_new: list[int]) -> BlockPlan:
    """Plan a pass where row w appends ``n_new[w]`` tokens to the last block of ``views[w]``.

    Lengths are taken before the write: a row sees the others' tokens of this pass only at the
    next pass (lockstep), and its own new tokens causally.
    """
    dev, P = cache.device, cache.page_size
    W, M = len(views), max(n_new)
    G = cache.cfg.n_heads // cache.cfg.n_kv_heads
    # Reserve the slots of this pass first: new pages must be inside the scanned prefix.
    writes = [cache.slots(view[-1], view[-1].length, n) for view, n in zip(views, n_new, strict=True)]
    blocks = list(cache.blocks.values())
    index = {b.id: i for i, b in enumerate(blocks)}
    hw = cache.high_water()
    # Which block (dense index) owns each scanned page, and at which block-local position it starts.
    page_block = [-1] * hw
    page_start = [0] * hw
    for b in blocks:
        for j, p in enumerate(b.pages):
            page_block[p], page_start[p] = index[b.id], j * P
    offs = [[-1] * len(blocks) for _ in range(W)]  # view offset of each block, -1 = not in view
    seen = [[0] * len(blocks) for _ in range(W)]  # how many of its tokens the row may see
    own, qpos, own_lim, w_page, w_off, k_pos = [], [], [], [], [], []
    for w, view in enumerate(views):
        o = 0
        for b in view:
            offs[w][index[b.id]] = o
            seen[w][index[b.id]] = b.length
            o += b.length
        tail = view[-1]
        start, n = tail.length, n_new[w]
        own.append(index[tail.id])
        base = o - tail.length  # view offset of the own block
        qpos.append([base + start + m if m < n else 0 for m in range(M)])
        own_lim.append([start + m + 1 if m < n else 0 for m in range(M)])
        pg, of = writes[w]
        w_page += pg.tolist() + [0] * (M - n)
        w_off += of.tolist() + [0] * (M - n)
        k_pos.append([start + m if m < n else 0 for m in range(M)])

    page_bi = torch.tensor(page_block)
    pb = page_bi.clamp(min=0)
    offs_t = torch.tensor(offs)[:, pb]  # [W, hw]
    in_view = (offs_t >= 0) & (page_bi >= 0)[None, :]
    qpos_t = torch.tensor(qpos)  # [W, M]
    lim = torch.tensor(seen)[:, pb][:, None, :].expand(W, M, hw).clone()  # [W, M, hw]
    is_own = pb[None, :] == torch.tensor(own)[:, None]  # [W, hw]
    lim = torch.where(is_own[:, None, :], torch.tensor(own_lim)[:, :, None], lim)
    lim = torch.where(in_view[:, None, :], lim, torch.zeros_like(lim))
    local = torch.tensor(page_start)[:, None] + torch.arange(P)[None, :]  # [hw, P]
    k_cos, k_sin = rope.lookup(torch.tensor(k_pos, device=dev))  # [W, M, D]
    scale = cache.cfg.head_dim**-0.5

    def q_rotation(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = rope.lookup(delta.to(dev))
        return (cos.float() * scale).to(cos.dtype), (signed_sin(sin).float() * scale).to(sin.dtype)

    common = dict(k_cos=k_cos[:, :, None, :], k_sin=signed_sin(k_sin)[:, :, None, :],
                  w_page=torch.tensor(w_page, device=dev), w_off=torch.tensor(w_off, device=dev))
    counts = in_view.sum(1)
    if W > 1 and int(counts.sum()) < GATHER_BELOW * W * hw:
        # Rows see mostly different pages (independent sequences): scan only each row's own
        # pages instead of every page for every row, which would cost rows x pages.
        maxp = int(counts.max())
        rank = in_view.long().cumsum(1) - 1  # position of each visible page in its row's list
        rows, pages = in_view.nonzero(as_tuple=True)
        row_pages = torch.zeros(W, maxp, dtype=torch.long)  # padding: the scratch page
        row_pages[rows, rank[rows, pages]] = pages
        real = torch.arange(maxp)[None, :] < counts[:, None]  # [W, maxp]
        sel = row_pages[:, None, :].expand(W, M, maxp)
        delta = (qpos_t[:, :, None] - offs_t[:, None, :]).clamp(min=0)  # [W, M, hw]
        d = delta.gather(2, sel)  # [W, M, maxp]
        lim_g = torch.where(real[:, None, :], lim.gather(2, sel), torch.zeros_like(sel))
        visible = local[row_pages][:, None] < lim_g[..., None]  # [W, M, maxp, P]
        mask = torch.zeros(visible.shape, dtype=torch.float32).masked_fill_(~visible, MASKED)
        q_cos, q_sin = q_rotation(d)  # [W, M, maxp, D]
        return BlockPlan(q_cos=q_cos.permute(0, 2, 1, 3)[:, :, None, :, None, :],
                         q_sin=q_sin.permute(0, 2, 1, 3)[:, :, None, :, None, :],
                         mask=mask.permute(0, 2, 1, 3)[:, :, None, :, None, :].to(dev),
                         row_pages=row_pages.to(dev), page_rot=None, n_pages=maxp, **common)
    visible = local[None, None] < lim[..., None]  # [W, M, hw, P]
    masked = MASKED_FP16 if cache.dtype == torch.float16 else MASKED
    mask = torch.zeros(visible.shape, dtype=cache.dtype).masked_fill_(~visible, masked)
    # One query rotation per block that owns scanned pages (all its pages share it), not per page:
    # the common history is one rotation however long it is.
    owners = sorted({b for b in page_block if b >= 0}) or [0]
    slot = {b: i for i, b in enumerate(owners)}
    page_rot = torch.tensor([slot.get(b, 0) for b in page_block[1:]], device=dev)  # free pages: masked
    block_offs = torch.tensor(offs)[:, owners]  # [W, nb]
    q_cos, q_sin = q_rotation((qpos_t[:, :, None] - block_offs[:, None, :]).clamp(min=0))  # [W, M, nb, D]
    return BlockPlan(q_cos=q_cos.permute(2, 0, 1, 3).contiguous()[:, None, :, :, None, :],
                     q_sin=q_sin.permute(2, 0, 1, 3).contiguous()[:, None, :, :, None, :],
                     mask=_page_major(mask[:, :, 1:], cache.cfg.n_kv_heads, G).to(dev),
                     row_pages=None, page_rot=page_rot, n_pages=hw - 1, **common)


def _page_major(mask: torch.Tensor, Hkv: int, G: int) -> torch.Tensor:
    """[W, M, hw, P] -> [hw * Hkv, W * M * G, P], the layout of the scores' batched matmul."""
    W, M, hw, P = mask.shape
    return mask.permute(2, 0, 1, 3)[:, None, :, :, None].expand(hw, Hkv, W, M, G, P).reshape(hw * Hkv, W * M * G, P)


def block_attention(q: torch.Tensor, k_arena: torch.Tensor, v_arena: torch.Tensor,
                    plan: BlockPlan) -> torch.Tensor:
    """q [W, M, Hq, D] against the pages of each row's view -> [W, M, Hq * D].

    Scores of all pages share one softmax (max and sum over pages and slots together).
    """
    if plan.row_pages is not None:
        return _gathered_attention(q, k_arena, v_arena, plan)
    W, M, Hq, D = q.shape
    hw, Hkv, P = plan.n_pages, k_arena.shape[1], k_arena.shape[2]
    G, R = Hq // Hkv, W * M * (Hq // Hkv)
    q6 = q.view(W, M, Hkv, G, D).permute(2, 0, 1, 3, 4)[None]  # [1, Hkv, W, M, G, D]
    assert plan.page_rot is not None
    qr = rotate(q6, plan.q_cos, plan.q_sin)  # [nb, Hkv, W, M, G, D]: one rotated query per block
    qr = qr.index_select(0, plan.page_rot).view(hw, Hkv, R, D)  # ... laid out per page
    # scores + mask in one batched matmul over [pages x heads] -> [hw * Hkv, R, P]
    keys = k_arena[1 : 1 + hw].view(hw * Hkv, P, D).transpose(-1, -2)
    s = torch.baddbmm(plan.mask, qr.view(hw * Hkv, R, D), keys)
    # One softmax over all pages and slots of a row: lay the pages out along the row (one
    # transposing copy), then the fused softmax (fp32 inside, model dtype out).
    rows = torch.empty((Hkv * R, hw, P), dtype=s.dtype, device=s.device)
    rows.copy_(s.view(hw, Hkv * R, P).transpose(0, 1))
    p = torch.softmax(rows.view(Hkv, R, hw * P), dim=-1)
    p = p.view(Hkv, R, hw, P).permute(2, 0, 1, 3).contiguous()  # the layout the values' matmul wants
    out = torch.matmul(p, v_arena[1 : 1 + hw]).sum(0, dtype=torch.float32)  # [Hkv, R, D]
    res = torch.empty((W, M, Hkv, G, D), dtype=q.dtype, device=q.device)
    res.copy_(out.view(Hkv, W, M, G, D).permute(1, 2, 0, 3, 4))  # cast and reorder in one pass
    return res.view(W, M, Hq * D)


def _gathered_attention(q: torch.Tensor, k_arena: torch.Tensor, v_arena: torch.Tensor,
                        plan: BlockPlan) -> torch.Tensor:
    """Each row against only its own pages (copied out per row: cheap when rows share little)."""
    assert plan.row_pages is not None
    W, M, Hq, D = q.shape
    Hkv = k_arena.shape[1]
    G, maxp = Hq // Hkv, plan.row_pages.shape[1]
    q6 = q.view(W, M, Hkv, G, D).permute(0, 2, 1, 3, 4)[:, None]  # [W, 1, Hkv, M, G, D]
    qr = rotate(q6, plan.q_cos, plan.q_sin).reshape(W, maxp, Hkv, M * G, D)
    keys, values = k_arena[plan.row_pages], v_arena[plan.row_pages]  # [W, maxp, Hkv, P, D]
    s = torch.matmul(qr, keys.transpose(-1, -2)).float()  # [W, maxp, Hkv, MG, P]
    s = (s.view(W, maxp, Hkv, M, G, -1) + plan.mask).view(W, maxp, Hkv, M * G, -1)
    e, denom = _softmax_parts(s, dims=(1, 4))  # denom [W, Hkv, MG]
    out = torch.matmul(e.to(values.dtype), values).sum(1, dtype=torch.float32)  # [W, Hkv, MG, D]
    out = (out / denom[..., None]).to(q.dtype)
    return out.view(W, Hkv, M, G, D).permute(0, 2, 1, 3, 4).reshape(W, M, Hq * D)


def _softmax_parts(s: torch.Tensor, dims: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """exp(s - max) and its sum over ``dims``. Exponents are clamped at -80: exp() of a value
    that underflows takes a slow path on CPU (10x), and e^-80 is as good as zero here."""
    peak = s.amax(dim=dims, keepdim=True)
    e = torch.exp((s - peak).clamp_(min=-80.0))
    return e, e.sum(dim=dims)


class KVWrites(Protocol):
    """Where a pass writes its new keys/values (BlockPlan and attention_cuda.FlexPlan)."""

    k_cos: torch.Tensor  # [W, M, 1, D]
    k_sin: torch.Tensor  # sign-folded (rope.signed_sin)
    w_page: torch.Tensor  # [W * M]
    w_off: torch.Tensor  # [W * M]


def store_kv(cache: KVCache, layer: int, plan: KVWrites, k: torch.Tensor, v: torch.Tensor) -> None:
    """Rotate the new keys to their block-local positions and write k, v [W, M, Hkv, D]."""
    Hkv, D = k.shape[-2:]
    k = rotate(k, plan.k_cos, plan.k_sin)
    cache.k[layer][plan.w_page, :, plan.w_off] = k.reshape(-1, Hkv, D)
    cache.v[layer][plan.w_page, :, plan.w_off] = v.reshape(-1, Hkv, D)


def causal_prefill(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Standard fused causal attention for a block that starts a view: q [1, M, Hq, D],
    k/v [1, M, Hkv, D] already rotated to positions 0..M-1 -> [1, M, Hq * D]."""
    _, M, Hq, D = q.shape
    Hkv = k.shape[2]
    kk = k.transpose(1, 2).repeat_interleave(Hq // Hkv, dim=1)
    vv = v.transpose(1, 2).repeat_interleave(Hq // Hkv, dim=1)
    out = F.scaled_dot_product_attention(q.transpose(1, 2), kk, vv, is_causal=True)
    return out.transpose(1, 2).reshape(1, M, Hq * D)


def reference_attention(q: torch.Tensor, q_pos: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                        k_pos: torch.Tensor, rope: RopeTable) -> torch.Tensor:
    """Plain attention of one query per row: q [W, Hq, D] at view positions q_pos [W] over
    unrotated keys/values [W, T, Hkv, D] placed at explicit view positions k_pos [W, T]
    (padding: k_pos = -1) -> [W, Hq * D]. Used by tests as the ground truth."""
    W, Hq, D = q.shape
    Hkv = keys.shape[2]
    qc, qs = rope.lookup(q_pos)
    qr = apply_rotation(q, qc[:, None], qs[:, None])  # [W, Hq, D]
    kc, ks = rope.lookup(k_pos.clamp(min=0))
    kr = apply_rotation(keys, kc[:, :, None], ks[:, :, None])  # [W, T, Hkv, D]
    kr = kr.repeat_interleave(Hq // Hkv, dim=2)
    vv = values.repeat_interleave(Hq // Hkv, dim=2)
    s = torch.einsum("whd,wthd->wht", qr.float(), kr.float()) * D**-0.5
    s = s.masked_fill((k_pos < 0)[:, None, :], float("-inf"))
    p = s.softmax(-1)
    return torch.einsum("wht,wthd->whd", p, vv.float()).reshape(W, Hq * D)
