"""One forward pass over the cache: the model, the cache, the RoPE table and an attention backend.

A pass takes rows (:class:`~hivethink.engine.attention.RowSpec`): each appends its tokens to the
last block of its view. The rows' tokens are laid out flat (no padding between rows of different
lengths). ``batch_invariant`` (the default) makes a token's result independent of how many other
tokens share the pass (``tests/engine/test_engine.py::test_a_row_computes_the_same_alone_and_beside_other_jobs``),
so results do not depend on what else runs:

- with oneDNN-packed weights whose kernels pack() found row-count invariant (fp32 on CPU), nothing
  needs doing;
- otherwise (plain MKL GEMM, GPUs) the rows are padded at the end to a multiple of ``GEMM_ROWS``
  (attention.py): those kernels pick their inner loops by the number of rows, and with whole
  tiles a row's numbers stay the same. Passes of fewer than ``GEMM_ROWS`` tokens pay for it (one
  sequence decoding alone computes four rows: docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hivethink.engine.attention import GEMM_ROWS, AttentionBackend, RowSpec, reserve_rows
from hivethink.engine.attention_backends import attention_backend
from hivethink.engine.cache import Block, KVCache
from hivethink.engine.graphs import graphs_for
from hivethink.engine.rope import RopeTable
from hivethink.models.config import rope_frequencies
from hivethink.models.loader import LoadedModel


class Runner:
    """Runs batched forward passes; ``passes`` counts them (the engine's clock)."""

    def __init__(self, model: LoadedModel, *, page_size: int = 64, pages: int = 64,
                 max_pages: int | None = None, attention: str | None = None, prefix_cache: bool = True,
                 batch_invariant: bool = True, graphs: str | None = None, keep_bytes: int | None = None):
        """``attention``: a backend name ("paged", "blocks", "flex"); default by device (see
        :func:`~hivethink.engine.attention_backends.attention_backend`). ``max_pages``: the page budget.
        ``graphs``: auto | on | off, decode steps as CUDA graphs (engine/graphs.py). ``keep_bytes``:
        idle prompts' pages the prefix cache keeps (:class:`~hivethink.engine.cache.KVCache`)."""
        self.model = model
        self.decoder = model.decoder
        dev, dt = self.decoder.device, self.decoder.dtype
        self.backend: AttentionBackend = attention_backend(dev, attention)
        inv, scale = rope_frequencies(model.cfg, model.hf_config)
        self.rope = RopeTable(inv, scale, dt, dev, length=max(4096, model.cfg.max_positions))
        self.cache = KVCache(model.cfg, dtype=dt, device=dev, page_size=page_size, pages=pages,
                             max_pages=max_pages, head_major=self.backend.head_major,
                             prefix_cache=prefix_cache, keep_bytes=keep_bytes)
        self.align = row_tile(model, batch_invariant)
        self.passes = 0
        self.graphs = graphs_for(self, graphs)

    @property
    def attention(self) -> str:
        return self.backend.name

    def forward(self, rows: Sequence[RowSpec], tokens: Sequence[Sequence[int]], *,
                logits_for: Sequence[bool] | None = None) -> list[torch.Tensor | None]:
        """Row r appends ``tokens[r]`` (``rows[r].n_new`` of them) to ``rows[r].view[-1]``, into
        slots already reserved (:func:`~hivethink.engine.attention.reserve_rows`).

        -> per row, the logits [V] (fp32) after its last token, or None where ``logits_for`` says
        they are not wanted (a prompt chunk that is not the last: the LM head is skipped)."""
        if self.graphs is not None and self.graphs.takes(rows, logits_for):
            graphed = self.graphs.step(rows, tokens)
            if graphed is not None:
                self.passes += 1
                return list(graphed)
        cache = self.cache
        flat = [t for ts in tokens for t in ts]
        n = -(-len(flat) // self.align) * self.align
        plan = self.backend.plan(cache, self.rope, rows, n)
        ids = _to_device(flat + [flat[-1]] * (n - len(flat)), cache.device)
        hidden = self.decoder.forward(ids, lambda layer, q, k, v: self.backend.attend(cache, layer, plan, q, k, v))
        self.passes += 1
        ends, at = [], 0
        for r in rows:
            at += r.n_new
            ends.append(at - 1)
        want = [True] * len(rows) if logits_for is None else list(logits_for)
        picked = [e for e, w in zip(ends, want, strict=True) if w]
        out: list[torch.Tensor | None] = [None] * len(rows)
        if picked:
            # the LM head in whole tiles too, for the same reason
            m = -(-len(picked) // self.align) * self.align
            idx = _to_device(picked + [picked[-1]] * (m - len(picked)), cache.device)
            logits = self.decoder.logits(hidden[idx])
            it = iter(range(len(picked)))
            for i, w in enumerate(want):
                if w:
                    out[i] = logits[next(it)]
        return out

    # -- conveniences for one group of rows (tests, benchmarks) ----------------------------
    chunk = 128  # most tokens a row writes in one pass of ``extend``

    def extend(self, views: list[list[Block]], tokens: list[list[int]], *,
               visibility: str = "instant") -> torch.Tensor:
        """Row w appends ``tokens[w]`` to ``views[w][-1]``, all rows as one group, in passes of at
        most ``chunk`` tokens per row -> logits [W, V] after each row's last token.

        A row whose view is its block alone writes self-contained tokens (cacheable)."""
        out: list[torch.Tensor | None] = [None] * len(views)
        done = [0] * len(views)
        while True:
            live = [w for w in range(len(views)) if done[w] < len(tokens[w])]
            if not live:
                break
            piece = [tokens[w][done[w] : done[w] + self.chunk] for w in live]
            rows = [RowSpec(views[w], len(p), 0, visibility) for w, p in zip(live, piece, strict=True)]
            reserve_rows(self.cache, rows)
            logits = self.forward(rows, piece)
            for w, p, lg in zip(live, piece, logits, strict=True):
                self.cache.commit(views[w][-1], p, self_contained=len(views[w]) == 1)
                done[w] += len(p)
                out[w] = lg
        return torch.stack([x for x in out if x is not None])

    def prefill(self, block: Block, tokens: list[int]) -> torch.Tensor:
        """Write ``tokens`` into a block that is its own view -> logits [V] after the last one."""
        return self.extend([[block]], [tokens])[0]


def row_tile(model: LoadedModel, batch_invariant: bool = True) -> int:
    """Rows of a pass are padded to a multiple of this (see the module docstring)."""
    return GEMM_ROWS if batch_invariant and not model.decoder.rows_independent else 1


def _to_device(data: list[int], device: torch.device) -> torch.Tensor:
    """Integers to the device. On CUDA through pinned memory without blocking: a plain copy
    would wait for the GPU to finish the work already queued (the previous pass)."""
    t = torch.tensor(data)
    return t.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else t


__all__ = ["KVCache", "Runner", "row_tile"]
