"""One forward pass over the shared cache: the model, the cache and the RoPE table bound together."""

from __future__ import annotations

import os

import torch

from hivethink.engine.attention import (
    block_attention,
    build_plan,
    causal_prefill,
    store_kv,
)
from hivethink.engine.attention_cuda import build_flex_plan, flex_block_attention
from hivethink.engine.cache import Block, KVCache
from hivethink.engine.rope import RopeTable, apply_rotation
from hivethink.errors import HivethinkError
from hivethink.models.config import rope_frequencies
from hivethink.models.loader import LoadedModel


class Runner:
    """Runs batched forward passes where each row extends the last block of its view."""

    # Multi-token extensions (headers, prompts written into a view) go in chunks of this many
    # tokens, so the per-page rotated queries stay small.
    chunk = 64

    ATTENTION = ("blocks", "flex")

    def __init__(self, model: LoadedModel, *, page_size: int = 64, pages: int = 64,
                 attention: str | None = None):
        """``attention``: "blocks" (``block_attention``, batched matmuls: the CPU path) or "flex"
        (``attention_cuda``, one fused kernel per layer: the GPU path); default by device."""
        self.model = model
        self.decoder = model.decoder
        dev, dt = self.decoder.device, self.decoder.dtype
        self.attention = self.pick_attention(dev, attention)
        inv, scale = rope_frequencies(model.cfg, model.hf_config)
        self.rope = RopeTable(inv, scale, dt, dev, length=max(4096, model.cfg.max_positions))
        self.cache = KVCache(model.cfg, dtype=dt, device=dev, page_size=page_size, pages=pages,
                             head_major=self.attention == "flex")
        self.passes = 0  # forward passes run (the engine's clock)

    @classmethod
    def pick_attention(cls, device: torch.device, attention: str | None = None) -> str:
        """The argument, else ``HIVETHINK_ATTENTION`` (a switch for every command, e.g. to fall back
        to "blocks" on a GPU), else flex on CUDA and blocks elsewhere."""
        choice = attention or os.environ.get("HIVETHINK_ATTENTION") or ("flex" if device.type == "cuda" else "blocks")
        if choice not in cls.ATTENTION:
            raise HivethinkError(f"attention must be one of {', '.join(cls.ATTENTION)}, got {choice!r}"
                                 + ("" if attention else " (from HIVETHINK_ATTENTION)"))
        return choice

    def prefill(self, block: Block, tokens: list[int]) -> torch.Tensor:
        """Write ``tokens`` into an empty block that begins its view(s) -> last logits [V].

        Uses the fused causal kernel: positions are simply 0..M-1.
        """
        assert block.length == 0, "prefill starts a block"
        M = len(tokens)
        page, off = self.cache.slots(block, 0, M)
        cos, sin = self.rope.lookup(torch.arange(M, device=self.cache.device))  # [M, D]
        cos, sin = cos[None, :, None, :], sin[None, :, None, :]
        cache = self.cache

        def attend(layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            q, k = apply_rotation(q, cos, sin), apply_rotation(k, cos, sin)
            cache.k[layer][page, :, off] = k[0]
            cache.v[layer][page, :, off] = v[0]
            return causal_prefill(q, k, v)

        ids = torch.tensor([tokens], device=self.cache.device)
        hidden = self.decoder.forward(ids, attend)
        self.passes += 1
        cache.commit(block, tokens)
        return self.decoder.logits(hidden[0, -1])

    def extend(self, views: list[list[Block]], tokens: list[list[int]]) -> torch.Tensor:
        """Row w appends ``tokens[w]`` (at least one) to ``views[w][-1]``; every row attends to its
        whole view. One batched pass per chunk. -> logits of each row's last token [W, V]."""
        assert all(tokens), "every row needs at least one token"
        out: list[torch.Tensor | None] = [None] * len(views)
        done = [0] * len(views)
        while True:
            rows = [w for w in range(len(views)) if done[w] < len(tokens[w])]
            if not rows:
                break
            piece = [tokens[w][done[w] : done[w] + self.chunk] for w in rows]
            logits = self._pass([views[w] for w in rows], piece)
            for i, w in enumerate(rows):
                done[w] += len(piece[i])
                if done[w] == len(tokens[w]):
                    out[w] = logits[i]
        return torch.stack([o for o in out if o is not None])

    def _pass(self, views: list[list[Block]], tokens: list[list[int]]) -> torch.Tensor:
        n_new = [len(t) for t in tokens]
        M = max(n_new)
        cache = self.cache
        if self.attention == "flex":
            fplan = build_flex_plan(cache, self.rope, views, n_new)

            def attend(layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
                store_kv(cache, layer, fplan, k, v)
                return flex_block_attention(q, cache.k[layer], cache.v[layer], fplan)
        else:
            plan = build_plan(cache, self.rope, views, n_new)

            def attend(layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
                store_kv(cache, layer, plan, k, v)
                return block_attention(q, cache.k[layer], cache.v[layer], plan)

        ids = _to_device([t + [t[-1]] * (M - len(t)) for t in tokens], cache.device)
        hidden = self.decoder.forward(ids, attend)  # [W, M, H]
        self.passes += 1
        for view, t in zip(views, tokens, strict=True):
            cache.commit(view[-1], t)
        last = _to_device([w * M + n - 1 for w, n in enumerate(n_new)], cache.device)
        return self.decoder.logits(hidden.reshape(-1, hidden.shape[-1])[last])


def _to_device(data: list[int] | list[list[int]], device: torch.device) -> torch.Tensor:
    """Integers to the device. On CUDA through pinned memory without blocking: a plain copy
    would wait for the GPU to finish the work already queued (the previous pass)."""
    t = torch.tensor(data)
    return t.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else t
