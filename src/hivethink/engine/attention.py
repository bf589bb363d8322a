"""Attention over blocks: the pass's rows, what each row may see, and the kernels (one seam).

A pass is a list of rows. Row r appends ``n_new[r]`` tokens to the last block of its *view* (an
ordered list of blocks) and attends to the whole view under one softmax. Keys are stored at
block-local positions, so instead of re-rotating keys, the query of a row at view position p is
rotated by (p - o) for a block that starts at view position o; RoPE scores depend only on the
difference, so this equals plain attention over keys rotated to their view positions.

**Visibility.** ``instant`` (the published Hogwild! rule): every row's new tokens are stored
before attention, and a row's view counts the other rows' tokens of the same pass in their
blocks (lengths and so positions included): worker A's token of pass t is seen by worker B at
pass t. ``lagged``: other blocks count only their tokens from before the pass (B sees A's token
at t + 1). A row's own new tokens are causal in both.

**Groups.** Rows belong to groups (the scheduler's jobs: a hive's rows, or one plain generation);
rows only ever see blocks of their own group's views. Each group lists the pages its views
touch in a canonical order (the order of first appearance in its rows' views), so that what a
row computes never depends on what else shares the pass: other groups only add padding after the
row's own pages, which contributes exact zeros.

Each backend class owns its cache layout (``head_major``), builds its plan once per pass (tensors,
shared by all layers) and attends: :class:`BlocksAttention` (batched matmuls),
:class:`PagedAttention` (the same plan; groups of few query rows through a compiled loop nest,
``attention_kernel``: the CPU default) and ``attention_cuda.FlexAttention`` (one fused
flex_attention call per layer: the GPU path).
:mod:`~hivethink.engine.attention_backends` lists them and picks one by name, in one place
(it imports the backends; no backend imports it).

Shapes: T flat tokens of the pass, J groups, E page entries per group, B blocks per group,
Q query slots per group (the group's new tokens), P page size, Hq / Hkv query / KV heads,
G = Hq / Hkv, D head dim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F

from hivethink.engine import attention_kernel
from hivethink.engine.cache import Block, KVCache
from hivethink.engine.rope import RopeTable, rotate, signed_sin

VISIBILITY = ("instant", "lagged")

# Masked scores: finite, so that a query with nothing visible (padding) gives no NaN.
MASKED = -1e30
# fp16 cannot hold MASKED; a score plus this stays finite and its exp() is still 0.
MASKED_FP16 = -3e4


@dataclass
class RowSpec:
    """One row of a pass: it appends ``n_new`` tokens to ``view[-1]`` and attends to ``view``."""

    view: list[Block]
    n_new: int
    group: int = 0  # rows of one group may see each other's blocks; groups never mix
    visibility: str = "instant"


@dataclass
class RowGeometry:
    """Where one row's queries sit and what they may see (the host-side part of every plan)."""

    offsets: list[int]  # view offset of each block of the view
    visible: list[int]  # tokens of each block the row sees (own block: before its new tokens)
    qpos: int  # view position of the row's first new token
    start: int  # block-local position of its first new token in its own block


def row_geometry(rows: Sequence[RowSpec]) -> list[RowGeometry]:
    """Offsets and visible lengths of every row's blocks, lengths taken before this pass writes.

    Instant rows count the tokens other rows add to a block this pass; lagged rows do not."""
    extra: dict[int, int] = {}
    for r in rows:
        tail = r.view[-1]
        extra[tail.id] = extra.get(tail.id, 0) + r.n_new
    out = []
    for r in rows:
        if r.visibility not in VISIBILITY:
            raise ValueError(f"unknown visibility {r.visibility!r}")
        offsets, visible, o = [], [], 0
        tail = r.view[-1]
        for b in r.view:
            n = b.length
            if b is not tail and r.visibility == "instant":
                n += extra.get(b.id, 0)
            offsets.append(o)
            visible.append(n)
            o += n
        out.append(RowGeometry(offsets, visible, qpos=o, start=tail.length))
    return out


@dataclass
class Writes:
    """Where the pass writes its new keys/values, per flat token (padding: the scratch page)."""

    k_cos: torch.Tensor  # [T, 1, D] rotation of each new key to its block-local position
    k_sin: torch.Tensor  # sign-folded (rope.signed_sin)
    page: torch.Tensor  # [T]
    off: torch.Tensor  # [T]


def reserve_rows(cache: KVCache, rows: Sequence[RowSpec]) -> None:
    """Take the pages the rows' new tokens will be written to (may raise ``PagesExhausted``).
    The scheduler calls it before a pass (``Runner.extend`` for the low-level API): planning
    and attention only read the pages a block already holds."""
    for r in rows:
        tail = r.view[-1]
        cache.reserve(tail, tail.length + r.n_new)


def write_slots(cache: KVCache, rows: Sequence[RowSpec], geo: Sequence[RowGeometry],
                n_tokens: int) -> tuple[list[int], list[int], list[int]]:
    """Block-local position, page and offset of each flat token's new key/value, on the host
    (padding tokens: position 0 of the scratch page)."""
    P = cache.page_size
    pos, page, off = [], [], []
    for r, g in zip(rows, geo, strict=True):
        tail = r.view[-1]
        assert len(tail.pages) * P >= g.start + r.n_new, f"block {tail.name!r}: its slots were not reserved"
        for m in range(r.n_new):
            p = g.start + m
            pos.append(p)
            page.append(tail.pages[p // P])
            off.append(p % P)
    pad = n_tokens - len(pos)
    return pos + [0] * pad, page + [0] * pad, off + [0] * pad


def plan_writes(cache: KVCache, rope: RopeTable, rows: Sequence[RowSpec], geo: Sequence[RowGeometry],
                n_tokens: int) -> Writes:
    """Lay out the pass's writes into the slots :func:`reserve_rows` took."""
    pos, page, off = write_slots(cache, rows, geo, n_tokens)
    dev = cache.device
    cos, sin = rope.lookup(torch.tensor(pos, device=dev))  # [T, D]
    return Writes(cos[:, None], signed_sin(sin)[:, None], torch.tensor(page, device=dev),
                  torch.tensor(off, device=dev))


def store_kv(cache: KVCache, layer: int, w: Writes, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate the new keys [T, Hkv, D] to their block-local positions and write k, v; -> the
    rotated keys, as stored."""
    rotated = rotate(k, w.k_cos, w.k_sin)
    cache.k[layer][w.page, :, w.off] = rotated
    cache.v[layer][w.page, :, w.off] = v
    return rotated


@dataclass
class BlocksPart:
    """Some groups of a pass, padded to a common shape: J groups, E entries, Q query slots."""

    q_index: torch.Tensor  # [J, Q] flat token of each query slot (padding: 0, fully masked)
    q_cos: torch.Tensor  # [J, B, 1, Q, 1, D] one rotation per (block, query); carries 1/sqrt(D)
    q_sin: torch.Tensor  # sign-folded
    entry_page: torch.Tensor  # [J, E] pages each group reads (padding: the scratch page)
    entry_block: torch.Tensor  # [J, E] which of the group's blocks each entry belongs to
    mask: torch.Tensor  # [J, E, 1, Q, 1, P] additive: 0 visible, MASKED hidden
    tokens: torch.Tensor  # [n] the flat tokens this part answers, ascending
    out_group: torch.Tensor  # [n] the group (within the part) of each
    out_slot: torch.Tensor  # [n] its query slot
    # Runs of at least MIN_RUN entries that are consecutive arena pages: (group, first entry,
    # end entry, first page), read in place. When there are any, the other real entries are
    # gathered (``rest``) and padding entries contribute exact zeros; when there are none,
    # every entry is gathered through ``entry_page``. Both give the same numbers.
    runs: list[tuple[int, int, int, int]] = field(default_factory=list)
    rest: torch.Tensor | None = None  # [R, 3]: (group, entry, page) of each entry outside the runs
    # computed by the loop-nest kernel (PagedAttention) instead of the batched matmuls; every group
    # of a part is (see BlocksAttention._kernel)
    kernel: bool = False

    def queries(self, q: torch.Tensor, kv_heads: int) -> torch.Tensor:
        """The part's queries from the pass's q [T, Hq, D], rotated once per block of their
        group: [J, B, Hkv, Q, G, D]."""
        J, Q = self.q_index.shape
        _, Hq, D = q.shape
        qg = q[self.q_index].view(J, 1, Q, kv_heads, Hq // kv_heads, D).permute(0, 1, 3, 2, 4, 5)
        return rotate(qg, self.q_cos, self.q_sin)


@dataclass
class DensePart:
    """A one-row group over a one-block view (a plain generation: a prompt chunk or a decoded
    token): plain causal attention over the block's first L keys, computed by
    ``scaled_dot_product_attention`` (a fused kernel, no padded score tensors). The keys come
    from the block's :class:`SequenceCopy`, or are copied out of the arena (sliced when its pages
    are consecutive, else gathered): the same tensor either way, so the same numbers."""

    at: int  # its Q tokens are [at, at + Q) of the plan's dense tokens
    length: int  # L: the keys the chunk sees (the block up to and including its last token)
    first_page: int | None  # the first of the block's pages when they are consecutive, else None
    pages: torch.Tensor  # [E] the block's pages up to the chunk's last token
    mask: torch.Tensor | None  # [Q, L] bool: key visible (causal from the chunk's start); None if Q = 1
    start: int  # the block's tokens before this pass (its Q new ones are [start, L))
    copy: SequenceCopy | None = None  # the block's keys and values kept contiguous across passes
    fill: bool = True  # the copy is new (or was stale): filled from the arena, [0, L); else appended


@dataclass
class SequenceCopy:
    """A decoding block's keys and values, contiguous per head, kept from pass to pass: each pass
    appends its new tokens instead of gathering the block's pages again (on 2 CPU cores that
    gather cost as much as the attention itself). It holds exactly what the arena holds."""

    k: torch.Tensor  # [layers, Hkv, capacity, D]
    v: torch.Tensor
    length: int = 0  # tokens held once the pass that last wrote it has run

    @property
    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes


@dataclass
class BlocksPlan:
    """The batched-matmul plan: the pass's groups in parts of similar shape (see
    :func:`split_parts`), each part padded to its own largest group; prefill chunks of one-block
    views as dense parts."""

    writes: Writes
    parts: list[BlocksPart]
    dense: list[DensePart]
    n_tokens: int
    # The dense parts' tokens together (rotated, and their new keys read, once a layer for all):
    dense_tokens: torch.Tensor | None = None  # [Td] flat tokens, part after part
    dense_cos: torch.Tensor | None = None  # [Td, 1, D] query rotations; carry 1/sqrt(D)
    dense_sin: torch.Tensor | None = None  # sign-folded
    dense_only: bool = False  # the dense tokens are every token of the pass, in order


# CPU GEMM kernels compute a row differently depending on how many rows its matrix has: MKL's GEMM
# (linear layers without oneDNN-packed weights) alike only across multiples of 4 rows, the batched
# matmuls of attention alike for every count from 4 up (measured: 1, 2 and 3 rows each differ).
# So where a row's numbers must not depend on what shares its pass, the linear layers get a
# multiple of GEMM_ROWS rows (forward.py) and the attention's per-entry matmuls at least GEMM_ROWS.
GEMM_ROWS = 4

# A one-row group over a one-block view is attended densely (by SDPA, over a copy of its keys)
# when it writes at least DENSE_MIN_TOKENS tokens (a prompt chunk) or sees at least
# DENSE_MIN_KEYS keys. Below that, a decoding row costs more as an SDPA call of its own than as a
# few pages in the batched matmuls (measured crossover: 250-500 keys at 8 jobs, 400-700 at 32):
# 50 short streams served 8% slower when every one was dense.
DENSE_MIN_TOKENS = 16
DENSE_MIN_KEYS = 512

# A sequence copy's capacity is a multiple of this many tokens, with at least this many free
# after the pass that makes it: a decoding block is copied again only every COPY_HEADROOM tokens.
COPY_HEADROOM = 256

# Consecutive arena pages of a group are read in place when at least this many follow each other
# (a shared prompt); shorter runs are gathered (one copy of a page costs less than the two extra
# matmul launches per layer that reading it in place would).
MIN_RUN = 4



class AttentionBackend(Protocol):
    name: ClassVar[str]
    head_major: ClassVar[bool]

    def plan(self, cache: KVCache, rope: RopeTable, rows: Sequence[RowSpec], n_tokens: int) -> Any: ...

    def attend(self, cache: KVCache, layer: int, plan: Any, q: torch.Tensor, k: torch.Tensor,
               v: torch.Tensor) -> torch.Tensor: ...


def split_parts(sizes: Sequence[tuple[int, int]], waste: float = 2.0, slack: int = 256,
                classes: Sequence[int] | None = None) -> list[list[int]]:
    """Groups (their (query slots, page entries)) into parts of similar shape; groups of different
    ``classes`` (the kernel that will compute them) never share a part.

    A part is computed padded to its largest query count and entry count, so one group
    prefilling a 1024-token chunk beside seven decoding ones would make all eight compute
    1024 query slots. Groups are taken in order of (slots, entries) and a group joins the current
    part while the padded size stays within ``waste`` times the useful size (or within ``slack``
    slot-entries of it: a slot-entry is about 2 x heads x page x head-dim multiply-adds a layer,
    so a few hundred cost less than the dozen kernel launches of another part)."""
    cls = list(classes) if classes is not None else [0] * len(sizes)
    order = sorted(range(len(sizes)), key=lambda g: (cls[g], sizes[g]))
    parts: list[list[int]] = []
    q_max = e_max = useful = 0
    for g in order:
        q, e = sizes[g]
        if parts and cls[parts[-1][0]] == cls[g]:
            qq, ee = max(q_max, q), max(e_max, e)
            padded, used = (len(parts[-1]) + 1) * qq * ee, useful + q * e
            if padded <= waste * used or padded - used <= slack:
                parts[-1].append(g)
                q_max, e_max, useful = qq, ee, used
                continue
        parts.append([g])
        q_max, e_max, useful = q, e, q * e
    return parts


class BlocksAttention:
    """Batched matmuls over [groups x page entries x KV heads]: each group's pages (long runs of
    consecutive pages read in place, the others gathered), scores plus mask, one softmax over every
    entry and slot of a row, values. Groups of very different shapes (a prefill chunk beside
    decoding rows) go in separate parts.

    A one-row group over a one-block view (a plain generation) is attended densely instead, by
    ``scaled_dot_product_attention`` over its block's keys; while it decodes, those keys are kept
    in a :class:`SequenceCopy` that each pass appends to. (A head-major arena would let SDPA read
    consecutive pages in place, but it split the batched matmuls of hives per head: 20-25% slower
    at N=4.)"""

    name: ClassVar[str] = "blocks"
    head_major: ClassVar[bool] = False

    def __init__(self, copy_bytes: int | None = None) -> None:
        """``copy_bytes``: memory for :class:`SequenceCopy` (default: an eighth of the memory
        available now, at most 2 GiB); a block that does not fit is gathered every pass."""
        from hivethink.models.transformer import available_memory

        self.copy_bytes = min(2 << 30, available_memory() // 8) if copy_bytes is None else copy_bytes
        self.copies: dict[int, SequenceCopy] = {}  # block id -> its copy

    def plan(self, cache: KVCache, rope: RopeTable, rows: Sequence[RowSpec], n_tokens: int,
             slack: int = 256) -> BlocksPlan:
        """``slack``: see :func:`split_parts` (0 splits whenever padding would double a part)."""
        P = cache.page_size
        geo = row_geometry(rows)
        writes = plan_writes(cache, rope, rows, geo, n_tokens)
        order: dict[int, list[int]] = {}  # group -> its rows, in pass order
        for i, r in enumerate(rows):
            order.setdefault(r.group, []).append(i)
        groups = list(order.values())
        first_token = [0] * len(rows)
        t = 0
        for i, r in enumerate(rows):
            first_token[i], t = t, t + r.n_new
        # Per group: its blocks and page entries in canonical order, its query slots.
        g_blocks: list[list[Block]] = []
        g_entries: list[list[tuple[int, int, int]]] = []  # (page, block slot, block-local start)
        g_slots: list[list[tuple[int, int]]] = []  # (row, m)
        for members in groups:
            blocks: list[Block] = []
            slot_of: dict[int, int] = {}
            reach: dict[int, int] = {}  # block id -> the furthest token any row of the group sees
            for i in members:
                g, r = geo[i], rows[i]
                for j, b in enumerate(r.view):
                    if b.id not in slot_of:
                        slot_of[b.id] = len(blocks)
                        blocks.append(b)
                    top = g.visible[j] + (r.n_new if b is r.view[-1] else 0)
                    reach[b.id] = max(reach.get(b.id, 0), top)
            entries = [(b.pages[k], slot_of[b.id], k * P) for b in blocks
                       for k in range(-(-reach[b.id] // P))]
            g_blocks.append(blocks)
            g_entries.append(entries)
            g_slots.append([(i, m) for i in members for m in range(rows[i].n_new)])
        # A one-row group over a one-block view is attended densely when it has a prompt chunk to
        # write or enough keys to read. The choice depends on the group alone, so a row's numerics
        # never depend on what shares its pass.
        dense = [j for j, members in enumerate(groups) if len(members) == 1 and len(rows[members[0]].view) == 1
                 and (rows[members[0]].n_new >= DENSE_MIN_TOKENS
                      or geo[members[0]].start + rows[members[0]].n_new >= DENSE_MIN_KEYS)]
        rest = [j for j in range(len(groups)) if j not in dense]
        sizes = [(len(g_slots[j]), max(1, len(g_entries[j]))) for j in rest]
        G = cache.cfg.n_heads // cache.cfg.n_kv_heads
        kernel = [self._kernel(cache, q * G) for q, _ in sizes]
        parts = []
        for part in split_parts(sizes, slack=slack, classes=[int(k) for k in kernel]):
            parts.append(self._part(cache, rope, rows, geo, first_token, [g_blocks[rest[j]] for j in part],
                                    [g_entries[rest[j]] for j in part], [g_slots[rest[j]] for j in part]))
            parts[-1].kernel = kernel[part[0]]
        plan = BlocksPlan(writes=writes, parts=parts, dense=[], n_tokens=n_tokens)
        if dense:
            self._dense(cache, rope, plan, [rows[groups[j][0]] for j in dense], [geo[groups[j][0]] for j in dense],
                        [first_token[groups[j][0]] for j in dense], [[p for p, _, _ in g_entries[j]] for j in dense])
            self._copies(cache, [rows[groups[j][0]].view[0] for j in dense], plan.dense)
        return plan

    def _kernel(self, cache: KVCache, query_rows: int) -> bool:
        """Whether the loop-nest kernel computes a group of ``query_rows`` rows (query slots x
        query heads per KV head); never here. Groups of the two kinds go in different parts, so a
        group's kernel depends on the group alone."""
        return False

    def _copies(self, cache: KVCache, blocks: list[Block], dense: list[DensePart]) -> None:
        """Give each dense part that sees at least DENSE_MIN_KEYS keys its block's copy: kept when
        it holds the block as it stood before the pass, else (new, stale or too small) made anew
        and filled from the arena; dropped for blocks that are gone; none where the memory for
        copies is used up."""
        for bid in [b for b in self.copies if b not in cache.blocks]:
            del self.copies[bid]
        used = sum(c.nbytes for c in self.copies.values())
        L, Hkv, D = cache.cfg.n_layers, cache.cfg.n_kv_heads, cache.cfg.head_dim
        for b, d in zip(blocks, dense, strict=True):
            if d.length < DENSE_MIN_KEYS:
                continue  # a short prompt chunk: its decoding will not be dense, a copy would idle
            c = self.copies.get(b.id)
            if c is not None and c.length == b.length and c.k.shape[2] >= d.length:
                d.copy, d.fill = c, False
                c.length = d.length
                continue
            if c is not None:
                used -= c.nbytes
                del self.copies[b.id]
            capacity = -(-(d.length + COPY_HEADROOM) // COPY_HEADROOM) * COPY_HEADROOM
            need = 2 * L * Hkv * capacity * D * cache.dtype.itemsize
            if used + need > self.copy_bytes:
                continue  # gathered from the arena this pass
            new = SequenceCopy(torch.empty(L, Hkv, capacity, D, dtype=cache.dtype, device=cache.device),
                               torch.empty(L, Hkv, capacity, D, dtype=cache.dtype, device=cache.device),
                               length=d.length)
            self.copies[b.id], d.copy, d.fill = new, new, True
            used += need

    @staticmethod
    def _dense(cache: KVCache, rope: RopeTable, plan: BlocksPlan, rows: list[RowSpec], geo: list[RowGeometry],
               first: list[int], pages: list[list[int]]) -> None:
        """The dense parts of ``rows`` (one-row groups over one-block views) into ``plan``."""
        dev, at = cache.device, 0
        tokens: list[int] = []
        positions: list[int] = []  # the view is the block: view position = block-local position
        for row, g, f, pg in zip(rows, geo, first, pages, strict=True):
            n, length = row.n_new, g.start + row.n_new
            mask = None
            if n > 1:  # causal from the chunk's start (one new token sees every key)
                mask = (torch.arange(length)[None, :] <= torch.arange(g.start, length)[:, None]).to(dev)
            plan.dense.append(DensePart(at=at, length=length, first_page=_run_start(pg), pages=_to_dev(pg, dev),
                                        mask=mask, start=g.start))
            tokens += range(f, f + n)
            positions += range(g.start, length)
            at += n
        cos, sin = rope.lookup(_to_dev(positions, dev))  # [Td, D]
        scale = cache.cfg.head_dim**-0.5
        plan.dense_tokens = _to_dev(tokens, dev)
        plan.dense_cos = (cos.float() * scale).to(cos.dtype)[:, None]
        plan.dense_sin = (signed_sin(sin).float() * scale).to(sin.dtype)[:, None]
        plan.dense_only = not plan.parts and tokens == list(range(plan.n_tokens))

    @staticmethod
    def _part(cache: KVCache, rope: RopeTable, rows: Sequence[RowSpec], geo: list[RowGeometry],
              first_token: list[int], g_blocks: list[list[Block]], g_entries: list[list[tuple[int, int, int]]],
              g_slots: list[list[tuple[int, int]]]) -> BlocksPart:
        P, dev = cache.page_size, cache.device
        J = len(g_blocks)
        B = max(len(b) for b in g_blocks)
        E = max(1, max(len(e) for e in g_entries))
        Q = max(len(s) for s in g_slots)
        q_index = torch.zeros(J, Q, dtype=torch.long)
        delta = torch.zeros(J, B, Q, dtype=torch.long)
        sees = torch.zeros(J, B, Q, dtype=torch.bool)
        lim = torch.zeros(J, B, Q, dtype=torch.long)  # tokens of the block the query sees
        entry_page = torch.zeros(J, E, dtype=torch.long)
        entry_block = torch.zeros(J, E, dtype=torch.long)
        entry_start = torch.full((J, E), 1 << 40, dtype=torch.long)  # padding: never visible
        answers: list[tuple[int, int, int]] = []  # (flat token, group, slot)
        for j in range(J):
            slot_of = {b.id: s for s, b in enumerate(g_blocks[j])}
            for s, (i, m) in enumerate(g_slots[j]):
                r, g = rows[i], geo[i]
                flat = first_token[i] + m
                q_index[j, s] = flat
                answers.append((flat, j, s))
                for k, b in enumerate(r.view):
                    bs = slot_of[b.id]
                    own = k == len(r.view) - 1
                    delta[j, bs, s] = g.qpos + m - g.offsets[k]
                    sees[j, bs, s] = True
                    lim[j, bs, s] = g.start + m + 1 if own else g.visible[k]
            for e, (page, bs, start) in enumerate(g_entries[j]):
                entry_page[j, e], entry_block[j, e], entry_start[j, e] = page, bs, start
        # mask [J, E, Q, P]: the entry's block is in the query's view and the slot is under its limit
        eb = entry_block[:, :, None].expand(J, E, Q)
        lim_e = torch.where(sees.gather(1, eb), lim.gather(1, eb), torch.zeros_like(eb))
        local = entry_start[:, :, None, None] + torch.arange(P)  # [J, E, 1, P]
        visible = local < lim_e[..., None]
        masked = MASKED_FP16 if cache.dtype == torch.float16 else MASKED
        mask = torch.zeros(visible.shape, dtype=cache.dtype).masked_fill_(~visible, masked)
        scale = cache.cfg.head_dim**-0.5
        cos, sin = rope.lookup(delta.clamp(min=0).to(dev))  # [J, B, Q, D]
        q_cos = (cos.float() * scale).to(cos.dtype)
        q_sin = (signed_sin(sin).float() * scale).to(sin.dtype)
        runs, rest = [], []  # rest: (group, entry, page)
        for j, entries in enumerate(g_entries):
            for e0, e1 in _consecutive([page for page, _, _ in entries]):
                if e1 - e0 >= MIN_RUN:
                    runs.append((j, e0, e1, entries[e0][0]))
                else:
                    rest += [(j, e, entries[e][0]) for e in range(e0, e1)]
        # in flat order: a part that answers every token of the pass needs no scatter
        tokens, out_group, out_slot = (list(x) for x in zip(*sorted(answers), strict=True))
        return BlocksPart(
            runs=runs, rest=torch.tensor(rest, dtype=torch.long).to(dev) if runs and rest else None,
            q_index=q_index.to(dev),
            q_cos=q_cos[:, :, None, :, None, :], q_sin=q_sin[:, :, None, :, None, :],
            entry_page=entry_page.to(dev), entry_block=entry_block.to(dev),
            mask=mask[:, :, None, :, None, :].to(dev),
            tokens=_to_dev(tokens, dev), out_group=_to_dev(out_group, dev), out_slot=_to_dev(out_slot, dev))

    def attend(self, cache: KVCache, layer: int, plan: BlocksPlan, q: torch.Tensor, k: torch.Tensor,
               v: torch.Tensor) -> torch.Tensor:
        """q [T, Hq, D], k/v [T, Hkv, D] of the pass's tokens -> [T, Hq * D]."""
        k = store_kv(cache, layer, plan.writes, k, v)
        T, Hq, D = q.shape
        if not plan.dense and len(plan.parts) == 1 and plan.parts[0].tokens.numel() == T:
            return self._attend_part(cache, layer, plan.parts[0], q).reshape(T, Hq * D)
        dense = None
        if plan.dense:
            assert plan.dense_tokens is not None and plan.dense_cos is not None and plan.dense_sin is not None
            idx = plan.dense_tokens
            # (a pass of dense parts alone has them in flat order: no gather needed)
            qd = rotate(q if plan.dense_only else q[idx], plan.dense_cos, plan.dense_sin)  # [Td, Hq, D]
            kd, vd = (k, v) if plan.dense_only else (k[idx], v[idx])
            outs = [self._attend_dense(cache, layer, d, *(x[d.at : d.at + d.length - d.start] for x in (qd, kd, vd)))
                    for d in plan.dense]
            dense = torch.cat(outs) if len(outs) > 1 else outs[0]
            if plan.dense_only:
                return dense
        out = q.new_zeros(T, Hq * D)  # padding tokens (answered by no part) keep zeros
        for part in plan.parts:
            out[part.tokens] = self._attend_part(cache, layer, part, q).reshape(-1, Hq * D)
        if dense is not None:
            out[plan.dense_tokens] = dense
        return out

    @staticmethod
    def _attend_dense(cache: KVCache, layer: int, d: DensePart, q: torch.Tensor, k: torch.Tensor,
                      v: torch.Tensor) -> torch.Tensor:
        """A dense part's rotated queries [Q, Hq, D], new keys (rotated, as stored) and values
        [Q, Hkv, D] -> [Q, Hq * D]."""
        _, Hq, D = q.shape
        c = d.copy
        if c is None:
            keys, values = (_sequence(a, d) for a in (cache.k[layer], cache.v[layer]))  # [1, Hkv, L, D]
        else:
            if d.fill:
                c.k[layer, :, : d.length] = _sequence(cache.k[layer], d)[0]
                c.v[layer, :, : d.length] = _sequence(cache.v[layer], d)[0]
            else:
                c.k[layer, :, d.start : d.length] = k.transpose(0, 1)
                c.v[layer, :, d.start : d.length] = v.transpose(0, 1)
            keys, values = c.k[layer, None, :, : d.length], c.v[layer, None, :, : d.length]
        Hkv = keys.shape[1]
        o = F.scaled_dot_product_attention(q.transpose(0, 1)[None], keys, values, attn_mask=d.mask, scale=1.0,
                                           enable_gqa=Hq != Hkv)  # [1, Hq, Q, D]
        return o[0].transpose(0, 1).reshape(-1, Hq * D)

    def _attend_part(self, cache: KVCache, layer: int, part: BlocksPart, q: torch.Tensor) -> torch.Tensor:
        """The part's queries -> their outputs [n, Hkv, G, D] in the order of ``part.tokens``."""
        _, Hq, D = q.shape
        k_arena, v_arena = cache.k[layer], cache.v[layer]
        Hkv, P = k_arena.shape[1], k_arena.shape[2]
        J, Q = part.q_index.shape
        E = part.entry_page.shape[1]
        G = Hq // Hkv
        M = Q * G  # rows of each per-entry matmul
        qr = part.queries(q, Hkv)  # [J, B, Hkv, Q, G, D]
        qe = qr[torch.arange(J, device=q.device)[:, None], part.entry_block]  # [J, E, Hkv, Q, G, D]
        s = _per_entry(_rows_padded(qe.reshape(J, E, Hkv, M, D)), k_arena, part, keys=True)  # [J, E, Hkv, M', P]
        s = s[..., :M, :].reshape(J, E, Hkv, Q, G, P) + part.mask
        # One softmax over every entry and slot of a query (fp32 inside, model dtype out).
        rows = s.permute(0, 2, 3, 4, 1, 5).reshape(J, Hkv, Q, G, E * P)
        p = torch.softmax(rows, dim=-1).view(J, Hkv, Q, G, E, P).permute(0, 4, 1, 2, 3, 5)
        pv = _per_entry(_rows_padded(p.reshape(J, E, Hkv, M, P)), v_arena, part, keys=False)  # [J, E, Hkv, M', D]
        o = pv[..., :M, :].sum(1, dtype=torch.float32)  # [J, Hkv, M, D]
        return o.view(J, Hkv, Q, G, D)[part.out_group, :, part.out_slot].to(q.dtype)  # [n, Hkv, G, D]


# The loop-nest kernel computes a group's attention when the group has at most this many query
# rows (query slots x query heads per KV head): a hive of up to 4 decoding workers of a 3:1 GQA
# model. Above it the batched matmuls are faster on 2 cores (the kernel's exp and dot products
# are scalar-ish; MKL's are not): docs/performance.md.
KERNEL_ROWS = 12


class PagedAttention(BlocksAttention):
    """BlocksAttention's plan, with the parts of small groups computed by one compiled loop nest
    over the pages (:mod:`~hivethink.engine.attention_kernel`, numba): each page read once per
    group and KV head, in place, an online softmax per query. The CPU default where numba is
    installed; fp32 caches only (numpy has no bf16), other dtypes use the matmuls throughout."""

    name: ClassVar[str] = "paged"
    head_major: ClassVar[bool] = False

    def __init__(self, copy_bytes: int | None = None, kernel_rows: int | None = None) -> None:
        """``kernel_rows``: the most query rows of a group the kernel takes (default KERNEL_ROWS)."""
        super().__init__(copy_bytes)
        self.kernel_rows = KERNEL_ROWS if kernel_rows is None else kernel_rows

    def _kernel(self, cache: KVCache, query_rows: int) -> bool:
        return cache.device.type == "cpu" and cache.dtype == torch.float32 and query_rows <= self.kernel_rows

    def _attend_part(self, cache: KVCache, layer: int, part: BlocksPart, q: torch.Tensor) -> torch.Tensor:
        if not part.kernel:
            return super()._attend_part(cache, layer, part, q)
        k_arena, v_arena = cache.k[layer], cache.v[layer]
        o = attention_kernel.paged_attention(part.queries(q, k_arena.shape[1]), k_arena, v_arena, part.entry_page,
                                             part.entry_block, part.mask[:, :, 0, :, 0, :])  # [J, Hkv, Q, G, D]
        return o[part.out_group, :, part.out_slot].to(q.dtype)  # [n, Hkv, G, D]


def _rows_padded(x: torch.Tensor) -> torch.Tensor:
    """x [..., M, X] with zero rows appended up to GEMM_ROWS: a decoding row (Q = 1) then computes
    the same whether or not a multi-token row pads its part to a larger Q."""
    return F.pad(x, (0, 0, 0, GEMM_ROWS - x.shape[-2])) if x.shape[-2] < GEMM_ROWS else x


def _sequence(arena: torch.Tensor, d: DensePart) -> torch.Tensor:
    """A dense part's keys or values from the arena: [1, Hkv, L, D] (a copy: the arena is
    token-major)."""
    _, Hkv, _, D = arena.shape
    if d.first_page is not None:  # consecutive pages: a slice instead of a gather
        pages = arena[d.first_page : d.first_page + d.pages.numel()]
    else:
        pages = _gather(arena, d.pages)
    return pages.transpose(0, 1).reshape(1, Hkv, -1, D)[:, :, : d.length]


def _gather(arena: torch.Tensor, pages: torch.Tensor) -> torch.Tensor:
    """arena[pages] for pages of any shape, through index_select (3-4x faster than [] on CPU)."""
    return arena.index_select(0, pages.reshape(-1)).view(*pages.shape, *arena.shape[1:])


def _per_entry(x: torch.Tensor, arena: torch.Tensor, part: BlocksPart, *, keys: bool) -> torch.Tensor:
    """x [J, E, Hkv, M, X] times each entry's page of ``arena`` ([pages, Hkv, P, D]; transposed when
    ``keys``) -> [J, E, Hkv, M, P or D]. Pages are gathered, or read in place along ``part.runs``
    with the other entries gathered and padding entries left at zero: the same numbers."""
    def page(t: torch.Tensor) -> torch.Tensor:
        return t.transpose(-1, -2) if keys else t

    if not part.runs:
        return torch.matmul(x, page(_gather(arena, part.entry_page)))
    J, E, Hkv, M, _ = x.shape
    out = x.new_zeros(J, E, Hkv, M, arena.shape[2] if keys else arena.shape[3])
    for j, e0, e1, first in part.runs:
        out[j, e0:e1] = torch.matmul(x[j, e0:e1], page(arena[first : first + e1 - e0]))
    if part.rest is not None:
        group, entry, pages = part.rest.unbind(1)
        out[group, entry] = torch.matmul(x[group, entry], page(_gather(arena, pages)))
    return out


def _consecutive(pages: list[int]) -> list[tuple[int, int]]:
    """[start, end) index ranges of the maximal runs of consecutive page numbers."""
    out, e0 = [], 0
    for e in range(1, len(pages) + 1):
        if e == len(pages) or pages[e] != pages[e - 1] + 1:
            out.append((e0, e))
            e0 = e
    return out


def _run_start(pages: list[int]) -> int | None:
    """The first page when ``pages`` are consecutive arena pages (then sliced, not gathered), else None."""
    return pages[0] if pages == list(range(pages[0], pages[0] + len(pages))) else None


def _to_dev(xs: list[int], dev: torch.device) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.long).to(dev)
