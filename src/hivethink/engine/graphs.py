"""The decode step as a CUDA graph: captured once per bucket of sizes, replayed every step.

At 8B an eager decode pass launches over a thousand kernels (about thirty per layer, and flex's);
with one or a few sequences the GPU would wait on launches rather than on reading the weights.
A CUDA graph replays them all in one launch. A graph fixes its tensors' shapes and addresses, so:

- the pass's sizes are rounded up to buckets (:func:`~hivethink.engine.buckets.bucket`): rows to a
  power of two (at least the row tile), the merge width J to a power of two; the segments B and
  query slots Lq already are (attention_cuda), and the arena's pages C are part of the key;
- one static buffer per bucket holds the token ids and the plan's integer fields
  (:meth:`FlexLayout.flat`): a step copies the new ones in and replays the graph, which builds
  the plan's tensors on the device (:meth:`FlexAttention.materialize`), runs the model, writes
  the new keys and values into the cache and the logits into a static tensor;
- when the arena or the RoPE table grows (new tensors), every graph is dropped: they point at the
  old ones.

Which passes: decode passes (every row one new token, logits for every row) on the flex backend,
up to :data:`MAX_ROWS` rows; any other pass, and every pass after a capture failed, runs eagerly
(``Runner.forward``). The switch: ``graphs`` = auto (on with CUDA and flex) | on | off, and
``HIVETHINK_GRAPHS`` for every command. On a CPU, "on" runs the same bucketed step over the same
static buffers without capture (CPUs have no graphs): the tests check there that bucketing changes
nothing for the real rows.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from hivethink.engine.attention import AttentionBackend, RowSpec
from hivethink.engine.attention_cuda import FlexAttention, FlexLayout
from hivethink.engine.buckets import bucket
from hivethink.engine.cache import KVCache
from hivethink.engine.rope import RopeTable
from hivethink.errors import HivethinkError
from hivethink.models.transformer import Decoder


class Runner(Protocol):
    """What the graphs use of ``engine.forward.Runner`` (named here, not imported: forward
    imports this module)."""

    backend: AttentionBackend
    cache: KVCache
    decoder: Decoder
    rope: RopeTable
    align: int

GRAPH_MODES = ("auto", "on", "off")
MAX_ROWS = 256  # the largest row bucket captured; bigger decode passes run eagerly
WARMUP = 2  # eager runs before a capture: compile flex for the shape, set up cuBLAS workspaces


def graph_mode(name: str | None = None) -> str:
    """``name``, else ``HIVETHINK_GRAPHS``, else auto; a bad value is a config error."""
    choice = name or os.environ.get("HIVETHINK_GRAPHS") or "auto"
    if choice not in GRAPH_MODES:
        raise HivethinkError(f"graphs must be one of {', '.join(GRAPH_MODES)}, got {choice!r}"
                             + ("" if name else " (from HIVETHINK_GRAPHS)"))
    return choice


def graphs_for(runner: Runner, name: str | None = None) -> DecodeGraphs | None:
    """The runner's decode graphs, or None (eager) by the switch: auto captures on CUDA with the
    flex backend; on asks for them anywhere (on a CPU: the uncaptured rehearsal)."""
    mode = graph_mode(name)
    flex = isinstance(runner.backend, FlexAttention)
    if mode == "off" or (mode == "auto" and not (flex and runner.cache.device.type == "cuda")):
        return None
    if not flex:
        raise HivethinkError(f"graphs=on needs the flex attention backend, not {runner.backend.name!r} "
                             "(--attention flex, or HIVETHINK_ATTENTION=flex)")
    return DecodeGraphs(runner)


@dataclass
class _Bucket:
    lay: FlexLayout  # the sizes (its fields: those of the step that captured it)
    flat: torch.Tensor  # static input: T token ids, then the layout's fields
    logits: torch.Tensor  # static output [T, V]
    graph: Any = None  # torch.cuda.CUDAGraph; None on a CPU


class DecodeGraphs:
    """Decode passes of one Runner through bucketed, captured steps (see the module docstring)."""

    def __init__(self, runner: Runner):
        self.runner = runner
        self.buckets: dict[tuple[int, ...], _Bucket] = {}
        self.epoch: tuple[int, int] | None = None
        self.failed: str | None = None  # why a capture failed: every pass is eager from then on
        self.captures = 0
        self.replays = 0
        self.cuda = runner.cache.device.type == "cuda"
        self.pool = torch.cuda.graph_pool_handle() if self.cuda else None  # one pool for all buckets

    def takes(self, rows: Sequence[RowSpec], logits_for: Sequence[bool] | None) -> bool:
        """Whether this pass is a decode step the graphs run."""
        return (self.failed is None and 0 < len(rows) <= MAX_ROWS and all(r.n_new == 1 for r in rows)
                and (logits_for is None or all(logits_for)))

    def step(self, rows: Sequence[RowSpec], tokens: Sequence[Sequence[int]]) -> list[torch.Tensor] | None:
        """The logits [V] of each row, or None when the capture failed (the caller runs it eagerly)."""
        r = self.runner
        cache, backend = r.cache, r.backend
        assert isinstance(backend, FlexAttention)
        T = bucket(len(rows), r.align)
        lay = backend.layout(cache, r.rope, rows, T)
        lay = lay.widen(bucket(lay.parts))
        epoch = (cache.k[0].data_ptr(), r.rope.qk_cos.data_ptr())
        if epoch != self.epoch:
            self.buckets.clear()
            self.epoch = epoch
        ids = [t[0] for t in tokens]
        host = torch.tensor(ids + [ids[-1]] * (T - len(ids)) + lay.flat(), dtype=torch.long)
        b = self.buckets.get(lay.key)
        if b is None:
            b = self._capture(lay, host)
            if b is None:
                return None
            self.buckets[lay.key] = b
        else:
            if self.cuda:
                b.flat.copy_(host.pin_memory(), non_blocking=True)
                b.graph.replay()
            else:
                b.flat.copy_(host)
                b.logits = self._body(b.lay, b.flat)
            self.replays += 1
        # the static output is overwritten by the next replay: the caller gets its own copy
        return list(b.logits[: len(rows)].clone().unbind(0))

    def _body(self, lay: FlexLayout, flat: torch.Tensor) -> torch.Tensor:
        """What the graph holds: plan, model, cache writes, LM head -> logits [T, V]."""
        r = self.runner
        cache, backend = r.cache, r.backend
        assert isinstance(backend, FlexAttention)
        T = lay.n_tokens
        plan = backend.materialize(cache, r.rope, lay, flat[T:])
        hidden = r.decoder.forward(flat[:T], lambda layer, q, k, v: backend.attend(cache, layer, plan, q, k, v))
        return r.decoder.logits(hidden)

    def _capture(self, lay: FlexLayout, host: torch.Tensor) -> _Bucket | None:
        """A new bucket; its first step's logits are in it. The warm-up runs write the same keys
        and values to the same slots as the captured step, so running them changes nothing."""
        flat = host.to(self.runner.cache.device)
        if not self.cuda:
            self.captures += 1
            return _Bucket(lay, flat, self._body(lay, flat))
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP):
                    self._body(lay, flat)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                logits = self._body(lay, flat)
            graph.replay()
        except Exception as e:  # any failure to capture: the eager pass is always there
            self.failed = f"{type(e).__name__}: {e}"
            self.buckets.clear()
            warnings.warn(f"CUDA graph capture failed, decoding eagerly from now on ({self.failed})",
                          RuntimeWarning, stacklevel=3)
            return None
        self.captures += 1
        return _Bucket(lay, flat, logits, graph)
