"""The shared KV cache: paged physical storage plus blocks.

A *block* holds the KV of one contiguous token span, for all layers, with keys rotated as if the
block started at position 0. Its tokens live in fixed-size *pages* of one arena per layer, so a
block can grow without moving and a worker's attention can rotate its query once per page.
Page 0 is a scratch page: padded rows of a batch write there and nothing ever reads it.

Arena layout per layer: [pages, Hkv, P, D] so that one (page, head) is a contiguous [P, D] matrix.
A *head-major* cache (the GPU path) stores the same [pages, Hkv, P, D] tensor with the heads
outermost in memory, so that each KV head's pages read as one [pages * P, D] sequence, no copy.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import torch

from hivethink.engine.rope import RopeTable, apply_rotation
from hivethink.models.config import ModelConfig


@dataclass
class Block:
    id: int
    name: str
    pages: list[int] = field(default_factory=list)
    length: int = 0
    tokens: list[int] = field(default_factory=list)  # token ids held, for views, traces and tests


class KVCache:
    def __init__(self, cfg: ModelConfig, *, dtype: torch.dtype, device: torch.device | str = "cpu",
                 page_size: int = 64, pages: int = 64, head_major: bool = False):
        self.cfg, self.dtype, self.device = cfg, dtype, torch.device(device)
        self.page_size, self.head_major = page_size, head_major
        self.k = [self._arena(pages) for _ in range(cfg.n_layers)]
        self.v = [self._arena(pages) for _ in range(cfg.n_layers)]
        self._free = list(range(1, pages))  # page 0 is scratch
        heapq.heapify(self._free)
        self.blocks: dict[int, Block] = {}
        self._next_id = 0

    def _arena(self, pages: int) -> torch.Tensor:
        """A zeroed [pages, Hkv, P, D] arena (head-major in memory if the cache is)."""
        Hkv, P, D = self.cfg.n_kv_heads, self.page_size, self.cfg.head_dim
        if self.head_major:
            return torch.zeros((Hkv, pages, P, D), dtype=self.dtype, device=self.device).permute(1, 0, 2, 3)
        return torch.zeros((pages, Hkv, P, D), dtype=self.dtype, device=self.device)

    @property
    def capacity(self) -> int:
        return self.k[0].shape[0]

    def new_block(self, name: str) -> Block:
        b = Block(id=self._next_id, name=name)
        self._next_id += 1
        self.blocks[b.id] = b
        return b

    def free_block(self, block: Block) -> None:
        for p in block.pages:
            heapq.heappush(self._free, p)
        del self.blocks[block.id]

    def high_water(self) -> int:
        """Pages [0, high_water) hold every live page; attention scans exactly this prefix."""
        return 1 + max((max(b.pages) for b in self.blocks.values() if b.pages), default=0)

    def _grow(self, need: int) -> None:
        old = self.capacity
        new = max(2 * old, old + need)
        for store in (self.k, self.v):
            for i, t in enumerate(store):
                bigger = self._arena(new)
                bigger[:old] = t
                store[i] = bigger
        for p in range(old, new):
            heapq.heappush(self._free, p)

    def reserve(self, block: Block, end: int) -> None:
        """Allocate pages so that the block holds positions [0, end) (host only: no device copy)."""
        need = (end + self.page_size - 1) // self.page_size - len(block.pages)
        if need > len(self._free):
            self._grow(need - len(self._free))
        for _ in range(max(need, 0)):
            block.pages.append(heapq.heappop(self._free))

    def slots(self, block: Block, start: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(page, offset) [n] for the block-local positions [start, start + n), allocating pages.

        Lowest free pages first, which keeps the scanned prefix (high water) short.
        """
        P = self.page_size
        self.reserve(block, start + n)
        pos = torch.arange(start, start + n)
        pages = torch.tensor(block.pages, dtype=torch.long)[pos // P]
        return pages.to(self.device), (pos % P).to(self.device)

    def commit(self, block: Block, tokens: list[int]) -> None:
        """Record that ``tokens`` were written at the block's end (their KV is already stored)."""
        block.tokens.extend(tokens)
        block.length += len(tokens)

    def append_block(self, dst: Block, src: Block, rope: RopeTable) -> None:
        """Move ``src``'s tokens to the end of ``dst``: one re-rotation of its keys by dst's length.

        Keys at src-local position j become keys at dst-local position dst.length + j; values are
        copied as they are. ``src`` is freed.
        """
        if src.length:
            sp, so = self.slots(src, 0, src.length)
            dp, do = self.slots(dst, dst.length, src.length)
            cos, sin = rope.lookup(torch.tensor([dst.length], device=self.device), scaled=False)
            for k, v in zip(self.k, self.v, strict=True):
                k[dp, :, do] = apply_rotation(k[sp, :, so], cos, sin)  # [L, Hkv, D]
                v[dp, :, do] = v[sp, :, so]
            self.commit(dst, src.tokens)
        self.free_block(src)

    def read(self, block: Block, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's keys and values for one layer, [L, Hkv, D] each (tests and debugging)."""
        p, o = self.slots(block, 0, block.length)
        return self.k[layer][p, :, o], self.v[layer][p, :, o]
