"""The KV cache: paged physical storage, blocks, reference counts and a prefix cache.

A *block* holds the KV of one contiguous token span, for all layers, with keys rotated as if the
block started at position 0. Its tokens live in fixed-size *pages* of one arena per layer, so a
block grows without moving. Page 0 is a scratch page: padding writes there and nothing reads it.

Pages are reference-counted. A block whose tokens were all computed with the block alone as the
view (a prompt, a plain generation, a header) is *self-contained*: the KV of its first k full
pages depends only on their tokens, so those pages are registered under a hash of the token
chain and any later block that starts with the same tokens takes them instead of recomputing
(a conversation that grows by a turn, agents with one system prompt, hives with one
instruction). A page nobody holds any more but that is registered stays in the cache, least
recently used first out, until its room is needed.

The arena may have a fixed number of pages (a *page budget*): allocation then evicts cached
pages, and when none is left raises :class:`PagesExhausted` (the scheduler preempts a job). Without
a budget the arena doubles when it runs out, keeping as many cached idle pages as there are pages
in use, or ``keep_bytes`` worth of them if that is more (beyond that the least recently used are
evicted, so memory stays bounded by the work in flight plus that floor). The floor is for work
that runs one job at a time (``lab run`` at concurrency 1): with few pages in use, a grid's
prompts were evicted before the next sample came back for them (the quick grid prefilled 28k
prompt tokens one sample at a time against 24k eight at a time). When the engine goes idle the
cache is trimmed to that floor and the memory of its free pages goes back to the OS
(:meth:`KVCache.release`): a server between bursts holds what is in use and cached, not the most
a burst ever took.

Arena layout per layer: [pages, Hkv, P, D], one (page, head) a contiguous [P, D] matrix. A
*head-major* cache (the flex path) stores the same tensor with the heads outermost in memory, so
that each KV head's pages read as one [pages * P, D] sequence without a copy.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from hivethink.engine.rope import RopeTable, apply_rotation
from hivethink.memory import drop_pages
from hivethink.models.config import ModelConfig
from hivethink.models.transformer import available_memory

# Without a page budget, cached prompts are kept up to at least this many bytes (see the docstring).
KEEP_BYTES = 1 << 30


class PagesExhausted(RuntimeError):
    """The page budget is spent: no free page and no cached page left to evict."""


@dataclass(eq=False)  # identity semantics: a block is a place, two empty blocks are not equal
class Block:
    id: int
    name: str
    pages: list[int] = field(default_factory=list)
    length: int = 0
    tokens: list[int] = field(default_factory=list)  # token ids held, for views, traces and tests
    # Self-contained (see the module docstring): full pages may be shared by content.
    cacheable: bool = False
    # chain hash after each full page (hashes[i] covers tokens[: (i + 1) * P])
    hashes: list[int] = field(default_factory=list)


def chain_hash(prev: int, tokens: list[int] | tuple[int, ...]) -> int:
    """Hash of a page's tokens after everything before it (the prefix cache's key)."""
    return hash((prev, tuple(tokens)))


class KVCache:
    def __init__(self, cfg: ModelConfig, *, dtype: torch.dtype, device: torch.device | str = "cpu",
                 page_size: int = 64, pages: int = 64, max_pages: int | None = None,
                 head_major: bool = False, prefix_cache: bool = True, keep_bytes: int | None = None):
        """``pages``: arena size at start; ``max_pages``: the page budget (None: grow as needed);
        ``keep_bytes``: without a budget, cached idle pages kept at least (default
        :data:`KEEP_BYTES`, at most an eighth of the memory available now)."""
        if max_pages is not None:
            pages = max_pages
        if pages < 2:
            raise ValueError("a cache needs at least 2 pages (page 0 is scratch)")
        self.cfg, self.dtype, self.device = cfg, dtype, torch.device(device)
        self.page_size, self.head_major = page_size, head_major
        self.max_pages, self.prefix_cache = max_pages, prefix_cache
        if keep_bytes is None:
            keep_bytes = min(KEEP_BYTES, available_memory(self.device) // 8)
        self.keep_pages = keep_bytes // self.page_bytes
        self.k = [self._arena(pages) for _ in range(cfg.n_layers)]
        self.v = [self._arena(pages) for _ in range(cfg.n_layers)]
        self._free = list(range(1, pages))  # page 0 is scratch
        heapq.heapify(self._free)
        self.refs = [0] * pages
        self._clean = [head_major] * pages  # zeroed since the arena was made (see _arena)
        self._dropped: set[int] = set()  # free pages whose memory went back to the OS (see release)
        self._zero(0)
        self._page_hash: dict[int, int] = {}  # page -> its chain hash (registered pages)
        self._by_hash: dict[int, int] = {}  # chain hash -> page
        self._idle: OrderedDict[int, None] = OrderedDict()  # registered pages nobody holds (LRU)
        # pages a prefilling block will register: chain hash -> that block's id (see prefix_pending)
        self._pending: dict[int, int] = {}
        self.blocks: dict[int, Block] = {}
        self._next_id = 0
        self.hits = 0  # prompt tokens taken from the prefix cache (for benchmarks and tests)

    def _arena(self, pages: int) -> torch.Tensor:
        """A [pages, Hkv, P, D] arena (head-major in memory if the cache is).

        Attention reads whole pages and masks the slots past a block's end, so every slot it can
        read must be finite. The blocks backend reads only pages it was handed: its arena is left
        uninitialised and a page is zeroed when first taken (:meth:`_take`), so a CPU process holds
        the pages it has used, not the arena's size (memory never written is not resident; the
        arena doubles when it grows). The head-major arena of flex is zeroed whole: flex's eager
        CPU path reads every page."""
        Hkv, P, D = self.cfg.n_kv_heads, self.page_size, self.cfg.head_dim
        if self.head_major:
            return torch.zeros((Hkv, pages, P, D), dtype=self.dtype, device=self.device).permute(1, 0, 2, 3)
        return torch.empty((pages, Hkv, P, D), dtype=self.dtype, device=self.device)

    def _zero(self, page: int) -> None:
        if not self._clean[page]:
            for t in (*self.k, *self.v):
                t[page].zero_()
            self._clean[page] = True

    @property
    def capacity(self) -> int:
        return self.k[0].shape[0]

    @property
    def page_bytes(self) -> int:
        """Keys and values of one page, every layer."""
        c = self.cfg
        return 2 * c.n_layers * c.n_kv_heads * self.page_size * c.head_dim * self.dtype.itemsize

    def available(self) -> int:
        """Pages that can be handed out now without growing: free plus evictable."""
        return len(self._free) + len(self._idle)

    # -- blocks -----------------------------------------------------------------------------
    def new_block(self, name: str, *, cacheable: bool = False) -> Block:
        b = Block(id=self._next_id, name=name, cacheable=cacheable and self.prefix_cache)
        self._next_id += 1
        self.blocks[b.id] = b
        return b

    def block_with_prefix(self, name: str, tokens: list[int]) -> Block:
        """A new self-contained block already holding the longest cached prefix of ``tokens``
        (whole pages only, and never all of them: the last token is always computed, so that
        its logits exist). The caller writes ``tokens[block.length:]``."""
        b = self.new_block(name, cacheable=True)
        if not b.cacheable:
            return b
        hashes = self._page_hashes(tokens)
        for h in hashes:
            page = self._by_hash.get(h)
            if page is None:
                break
            self._hold(page)
            b.pages.append(page)
            b.hashes.append(h)
        b.length = len(b.pages) * self.page_size
        b.tokens = list(tokens[: b.length])
        self.hits += b.length
        for h in hashes[len(b.pages) :]:  # the pages this block will fill
            self._pending.setdefault(h, b.id)
        return b

    def _page_hashes(self, tokens: list[int]) -> list[int]:
        """The chain hashes of the pages of ``tokens`` a later block may take: whole pages, and
        never the one holding the last token."""
        P, h, out = self.page_size, 0, []
        for i in range((len(tokens) - 1) // P):
            h = chain_hash(h, tokens[i * P : (i + 1) * P])
            out.append(h)
        return out

    def prefix_pending(self, tokens: list[int]) -> bool:
        """Whether a block being prefilled now will register the next pages of ``tokens``' cached
        prefix: a job admitted after that prefill reuses those pages instead of computing them
        again (jobs with one long instruction admitted together, like a grid's hives)."""
        if not self.prefix_cache:
            return False
        for h in self._page_hashes(tokens):
            if h not in self._by_hash:
                return h in self._pending
        return False

    def _drop_pending(self, block: Block) -> None:
        for h in [h for h, owner in self._pending.items() if owner == block.id]:
            del self._pending[h]

    def free_block(self, block: Block) -> None:
        """Drop the block: its pages lose one holder (pages nobody holds are free or idle). Last
        page first, so that eviction (least recently released first) takes a cached prompt's
        tail before its head: a prefix is found only from its first page on."""
        for p in reversed(block.pages):
            self._release(p)
        block.pages = []
        self.blocks.pop(block.id, None)
        self._drop_pending(block)

    def forget_idle(self) -> int:
        """Drop every cached page nobody holds (they become free): later prompts find only what
        running blocks hold. -> the pages dropped. For benchmarks that must start cold without a
        new arena."""
        dropped = len(self._idle)
        while self._idle:
            heapq.heappush(self._free, self._evict_oldest())
        return dropped

    def release(self) -> int:
        """Between bursts of work: cached idle pages beyond the floor (as many as are in use, or
        ``keep_pages``) are dropped, least recently used first, and the memory of every free page
        that was ever written goes back to the OS, so that the process holds the pages in use
        and cached rather than the most that a burst ever took. A dropped page reads as zeros
        (finite, as attention needs) until it is taken again. CPU token-major arenas only: a
        head-major page is not one run of memory. -> bytes handed back."""
        while len(self._idle) > max(self._in_use(), self.keep_pages):
            heapq.heappush(self._free, self._evict_oldest())
        if self.device.type != "cpu" or self.head_major:
            return 0
        pages = [p for p in self._free if self._clean[p] and p not in self._dropped]
        handed = sum(drop_pages(t[p].data_ptr(), t[p].nbytes) for p in pages for t in (*self.k, *self.v))
        self._dropped.update(pages)
        return handed

    # -- pages ------------------------------------------------------------------------------
    def _in_use(self) -> int:
        """Pages some block holds (page 0 is scratch)."""
        return self.capacity - 1 - len(self._free) - len(self._idle)

    def _evict_oldest(self) -> int:
        """The least recently used idle cached page, no longer registered under its hash."""
        page, _ = self._idle.popitem(last=False)
        del self._by_hash[self._page_hash.pop(page)]
        return page

    def _hold(self, page: int) -> None:
        if self.refs[page] == 0:
            self._idle.pop(page, None)
        self.refs[page] += 1

    def _release(self, page: int) -> None:
        self.refs[page] -= 1
        if self.refs[page] == 0:
            if page in self._page_hash:
                self._idle[page] = None  # most recently used last
            else:
                heapq.heappush(self._free, page)

    def _take(self) -> int:
        """One page for writing: a free page; else the least recently used idle cached page; else,
        without a page budget, a page of a grown arena. Without a budget the arena also grows
        rather than evict while cached pages are fewer than the pages in use: a grid's
        conversations come back for their prefixes after other jobs ran, and evicting as soon
        as the arena is full made them prefill again (16 prompts re-run at once: 7 of them
        found nothing cached)."""
        if not self._free:
            if self.max_pages is None and len(self._idle) < max(1, self._in_use(), self.keep_pages):
                self._grow(self.capacity)
            elif not self._idle:
                raise PagesExhausted(f"all {self.max_pages} pages of the KV cache are in use")
        page = heapq.heappop(self._free) if self._free else self._evict_oldest()
        self.refs[page] = 1
        self._zero(page)
        self._dropped.discard(page)
        return page

    def _grow(self, need: int) -> None:
        old = self.capacity
        new = max(2 * old, old + need)
        used = max((p + 1 for p, clean in enumerate(self._clean) if clean), default=0)  # copy no page never taken
        for store in (self.k, self.v):
            for i, t in enumerate(store):
                bigger = self._arena(new)
                bigger[:used] = t[:used]
                store[i] = bigger
        self.refs += [0] * (new - old)
        self._clean += [self.head_major] * (new - old)
        self._dropped.clear()  # the copies wrote them: resident again in the new arena
        for p in range(old, new):
            heapq.heappush(self._free, p)

    def pages_for(self, block: Block, end: int) -> int:
        """New pages the block needs to hold positions [0, end)."""
        return max(0, -(-end // self.page_size) - len(block.pages))

    def reserve(self, block: Block, end: int) -> None:
        """Allocate pages so that the block holds positions [0, end) (host only: no device copy)."""
        for _ in range(self.pages_for(block, end)):
            block.pages.append(self._take())

    def high_water(self) -> int:
        """Pages [0, high_water) hold every live page."""
        return 1 + max((max(b.pages) for b in self.blocks.values() if b.pages), default=0)

    def slots(self, block: Block, start: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(page, offset) [n] for the block-local positions [start, start + n), allocating pages."""
        P = self.page_size
        self.reserve(block, start + n)
        pos = torch.arange(start, start + n)
        pages = torch.tensor(block.pages, dtype=torch.long)[pos // P]
        return pages.to(self.device), (pos % P).to(self.device)

    def commit(self, block: Block, tokens: list[int], *, self_contained: bool = True) -> None:
        """Record that ``tokens`` were written at the block's end (their KV is already stored).

        ``self_contained``: they were computed with this block alone as the view; otherwise the
        block stops being cacheable from here on. Pages a cacheable block fills are registered."""
        block.tokens.extend(tokens)
        block.length += len(tokens)
        if not self_contained and block.cacheable:
            block.cacheable = False
            self._drop_pending(block)
        if not block.cacheable:
            return
        P = self.page_size
        while len(block.hashes) < block.length // P:
            i = len(block.hashes)
            h = chain_hash(block.hashes[-1] if block.hashes else 0, block.tokens[i * P : (i + 1) * P])
            block.hashes.append(h)
            page = block.pages[i]
            self._pending.pop(h, None)
            if h not in self._by_hash and page not in self._page_hash:
                self._by_hash[h], self._page_hash[page] = page, h

    def move(self, src: Block, dst: Block, rope: RopeTable) -> None:
        """Move ``src``'s tokens to the end of ``dst``: one re-rotation of its keys by dst's length.

        Keys at src-local position j become keys at dst-local position dst.length + j; values are
        copied as they are. dst's pages are taken before anything is copied, so a
        :class:`PagesExhausted` leaves both blocks' tokens as they were. ``src`` is left empty under a new
        id (no pages, no tokens), for its owner to write again (a worker's next step); ``dst`` is
        no longer self-contained. Moving an empty block changes nothing."""
        if not src.length:
            return
        dp, do = self.slots(dst, dst.length, src.length)
        sp, so = self.slots(src, 0, src.length)
        cos, sin = rope.lookup(torch.tensor([dst.length], device=self.device), scaled=False)
        for k, v in zip(self.k, self.v, strict=True):
            k[dp, :, do] = apply_rotation(k[sp, :, so], cos, sin)  # [L, Hkv, D]
            v[dp, :, do] = v[sp, :, so]
        self.commit(dst, src.tokens, self_contained=False)
        self.free_block(src)
        src.id, src.length, src.tokens, src.cacheable, src.hashes = self._next_id, 0, [], False, []
        self._next_id += 1
        self.blocks[src.id] = src

    def read(self, block: Block, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's keys and values for one layer, [L, Hkv, D] each (tests and debugging)."""
        p, o = self.slots(block, 0, block.length)
        return self.k[layer][p, :, o], self.v[layer][p, :, o]
