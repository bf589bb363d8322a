"""One decoder for the Llama, Qwen2 and Qwen3 families, written out plainly (gpt-fast style).

The model knows nothing about caches or workers: each layer hands its fresh q, k, v to an
``attend`` callback supplied by the engine, which stores k/v wherever its cache lives and
returns the attention output. That callback is the seam between model and engine.

Shapes: T = the pass's tokens, flat (every row's new tokens one after the other: rows of
different lengths need no padding), H = hidden size, Hq / Hkv = query / key-value heads,
D = head dim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hivethink.errors import HivethinkError
from hivethink.models.config import ModelConfig
from hivethink.models.weights import GGUFEmbedding, Linear, OneDNNLinear

# attend(layer, q [T, Hq, D], k [T, Hkv, D], v [T, Hkv, D]) -> out [T, Hq*D]
Attend = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class LayerWeights:
    attn_norm: torch.Tensor  # [H]
    wqkv: Linear  # [(Hq + 2 Hkv) D, H]  q, k, v fused: one matmul instead of three
    bqkv: torch.Tensor | None  # [(Hq + 2 Hkv) D]  qwen2 only
    q_norm: torch.Tensor | None  # [D]  qwen3 only
    k_norm: torch.Tensor | None  # [D]
    wo: Linear  # [H, Hq D]
    mlp_norm: torch.Tensor  # [H]
    w_gate_up: Linear  # [2 I, H]  gate and up fused
    w_down: Linear  # [H, I]

    LINEARS = ("wqkv", "wo", "w_gate_up", "w_down")


# HF names of the matmul weights of layer i, as the decoder fuses them
FUSED = {"wqkv": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), "wo": ("self_attn.o_proj",),
         "w_gate_up": ("mlp.gate_proj", "mlp.up_proj"), "w_down": ("mlp.down_proj",)}


def fused_names(n_layers: int) -> list[tuple[str, ...]]:
    """The HF weight names of every fused matmul of the model (the LM head is its own)."""
    return [tuple(f"model.layers.{i}.{p}.weight" for p in parts) for i in range(n_layers) for parts in FUSED.values()]


def available_memory(device: torch.device | None = None) -> int:
    """Bytes of memory available now: on a CUDA ``device`` its free memory, else the machine's
    (Linux: MemAvailable; elsewhere free physical pages)."""
    import os

    if device is not None and device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]

    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


# Row counts (and first rows) at which pack() checks that a packed matmul computes each row the
# same whatever the rows beside it: every small-batch count, and counts past the kernels' tiles.
PROBE_ROWS = (1, 2, 3, 4, 5, 8, 9, 17)
PROBE_STARTS = (0, 1)


class Decoder:
    # Pre-packed oneDNN weights run the small decode matmuls faster than F.linear on CPU: about
    # 1.7x in bf16, and in fp32 2-3x at 4-8 rows where MKL's small GEMMs are slow
    # (docs/performance.md). Set HIVETHINK_PACK=0 to use plain F.linear.
    PACK_DTYPES = (torch.bfloat16, torch.float16, torch.float32)

    def __init__(self, cfg: ModelConfig, weights: dict[str, torch.Tensor]):
        """``weights`` uses Hugging Face parameter names (``model.layers.0.self_attn.q_proj.weight``...)."""
        w = weights
        layers = []
        for i in range(cfg.n_layers):
            p = f"model.layers.{i}."
            a = p + "self_attn."
            bias = None
            if cfg.attention_bias and a + "q_proj.bias" in w:
                bias = torch.cat([w[a + "q_proj.bias"], w[a + "k_proj.bias"], w[a + "v_proj.bias"]])
            fused = {name: Linear(torch.cat([w[f"{p}{part}.weight"] for part in parts])
                                  if len(parts) > 1 else w[f"{p}{parts[0]}.weight"])
                     for name, parts in FUSED.items()}
            layers.append(LayerWeights(attn_norm=w[p + "input_layernorm.weight"], bqkv=bias,
                                       q_norm=w.get(a + "q_norm.weight") if cfg.qk_norm else None,
                                       k_norm=w.get(a + "k_norm.weight") if cfg.qk_norm else None,
                                       mlp_norm=w[p + "post_attention_layernorm.weight"], **fused))
        embed = w["model.embed_tokens.weight"]  # [V, H]
        tied = cfg.tie_embeddings or "lm_head.weight" not in w
        self._init(cfg, embed, w["model.norm.weight"], Linear(embed if tied else w["lm_head.weight"]), layers)

    def _init(self, cfg: ModelConfig, embed: torch.Tensor | GGUFEmbedding, norm: torch.Tensor, lm_head: Linear,
              layers: list[LayerWeights]) -> None:
        self.cfg, self.embed, self.norm, self.lm_head, self.layers = cfg, embed, norm, lm_head, layers
        # True when every matmul computes a row bit for bit alike at any row count (see pack())
        self.rows_independent = False

    @classmethod
    def from_parts(cls, cfg: ModelConfig, embed: torch.Tensor | GGUFEmbedding, norm: torch.Tensor,
                   lm_head: Linear | torch.Tensor, layers: list[LayerWeights]) -> Decoder:
        """A decoder over weights already in the fused layout (no concatenation, so no second copy:
        how the bench builds 32B-sized random models on one GPU, and how quantized weights load)."""
        d = cls.__new__(cls)
        d._init(cfg, embed, norm, lm_head if isinstance(lm_head, Linear) else Linear(lm_head), layers)
        return d

    @property
    def dtype(self) -> torch.dtype:
        """The activations' dtype (and the KV cache's)."""
        return self.norm.dtype

    @property
    def device(self) -> torch.device:
        return self.norm.device

    def linears(self) -> list[Linear]:
        return [self.lm_head] + [getattr(lw, n) for lw in self.layers for n in LayerWeights.LINEARS]

    @property
    def plain(self) -> bool:
        """Whether every matmul weight is still held as a plain tensor (what transformers needs)."""
        return all(lin.weight is not None for lin in self.linears())

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Decoder:
        """Move/cast every weight in place (norm weights included: the math upcasts itself).
        Packed weights go back to plain ones (packing is redone after a move)."""
        def cast(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype)

        if not self.plain or not isinstance(self.embed, torch.Tensor):
            raise HivethinkError("these weights were packed or quantized without a plain copy: load the model "
                                 "again on the device and dtype wanted")
        embed = self.embed
        tied = self.lm_head.weight is embed
        self.rows_independent = False
        self.embed, self.norm = cast(embed), cast(self.norm)
        self.lm_head = Linear(self.embed if tied else cast(self.lm_head.weight))  # type: ignore[arg-type]
        for lw in self.layers:
            for name in lw.__dataclass_fields__:
                t = getattr(lw, name)
                if isinstance(t, Linear):
                    setattr(lw, name, Linear(cast(t.weight)))  # type: ignore[arg-type]
                elif t is not None:  # optional weights (biases, norms) stay None
                    setattr(lw, name, cast(t))
        return self

    def pack(self, keep_plain: bool = True) -> bool:
        """Pre-pack the plain matmul weights for oneDNN when that helps (CPU); True if any are packed.

        Then probes whether every matmul (packed, plain or quantized) computes each row
        independently of the row count (oneDNN's fp32 kernels and PyTorch's int4/int8 ones do
        on the machines measured; MKL's plain GEMM does not below 4 rows). When they do,
        ``rows_independent`` is set and the engine needs no row padding for batch invariance
        (engine/forward.py). ``keep_plain`` keeps the plain weights beside the packed copies
        (the bench rebuilds a transformers model from them), which doubles the weights' memory:
        then packing is skipped when the copies would take more than half of the memory
        available now. Without it each plain weight is dropped as soon as it is packed."""
        import os

        dense = [lin for lin in {id(lin): lin for lin in self.linears()}.values() if type(lin) is Linear]
        packable = (os.environ.get("HIVETHINK_PACK", "1") != "0" and self.device.type == "cpu"
                    and self.dtype in self.PACK_DTYPES and torch.backends.mkldnn.is_available())
        if keep_plain and sum(lin.nbytes for lin in dense) > available_memory() / 2:
            packable = False
        packed = False
        if packable and dense:
            try:
                swap = {id(lin): OneDNNLinear(lin.weight, keep_plain) for lin in dense}  # type: ignore[arg-type]
            except (RuntimeError, AttributeError):  # a torch build without these oneDNN ops
                swap = {}
            packed = bool(swap)
            self.lm_head = swap.get(id(self.lm_head), self.lm_head)
            for lw in self.layers:
                for name in LayerWeights.LINEARS:
                    lin = getattr(lw, name)
                    setattr(lw, name, swap.get(id(lin), lin))
        kernels = {(type(lin), lin.shape): lin for lin in self.linears()}
        self.rows_independent = (self.device.type == "cpu" and any(type(lin) is not Linear for lin in kernels.values())
                                 and all(self._row_count_invariant(lin) for lin in kernels.values()))
        return packed

    def own(self) -> None:
        """Copy the plain tensors still held (embedding, norms, biases) into memory of their own.
        Tensors read from a memory-mapped safetensors file keep the file's mapping, and every
        page of it that packing read stays resident: 0.4 GB of the embedded model's RSS."""
        if isinstance(self.embed, torch.Tensor):
            tied = self.lm_head.weight is self.embed
            self.embed = self.embed.clone()
            if tied:
                self.lm_head.weight = self.embed
        self.norm = self.norm.clone()
        for lw in self.layers:
            for name in lw.__dataclass_fields__:
                t = getattr(lw, name)
                if isinstance(t, torch.Tensor):
                    setattr(lw, name, t.clone())

    def _row_count_invariant(self, lin: Linear) -> bool:
        """Each row of x @ w.T (and of residual + x @ w.T) equals, bit for bit, the same row
        computed within a larger batch, at every probed row count and start."""
        g = torch.Generator().manual_seed(0)
        n = max(PROBE_ROWS) + max(PROBE_STARTS)
        x = torch.randn(n, lin.shape[1], generator=g).to(self.dtype)
        r = torch.randn(n, lin.shape[0], generator=g).to(self.dtype)
        full, full_add = lin(x), lin.add(x, r)
        return all(torch.equal(lin(x[a : a + m]), full[a : a + m])
                   and torch.equal(lin.add(x[a : a + m], r[a : a + m]), full_add[a : a + m])
                   for m in PROBE_ROWS for a in PROBE_STARTS)

    def _rms(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # Normalises in fp32 like the reference implementations (one call; on CPU it is still a few kernels).
        return F.rms_norm(x, (x.shape[-1],), weight, self.cfg.rms_eps)

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, attend: Attend) -> torch.Tensor:
        """tokens [T] -> final hidden states [T, H] (before the LM head)."""
        cfg = self.cfg
        T = tokens.shape[0]
        nq, nkv, D = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim, cfg.head_dim
        embed = self.embed
        x = F.embedding(tokens, embed) if isinstance(embed, torch.Tensor) else embed(tokens)  # [T, H]
        for i, lw in enumerate(self.layers):
            h = self._rms(x, lw.attn_norm)
            qkv = lw.wqkv(h, lw.bqkv)  # [T, (Hq + 2 Hkv) D]
            q = qkv[:, :nq].view(T, cfg.n_heads, D)
            k = qkv[:, nq : nq + nkv].view(T, cfg.n_kv_heads, D)
            v = qkv[:, nq + nkv :].view(T, cfg.n_kv_heads, D)
            if lw.q_norm is not None and lw.k_norm is not None:
                q, k = self._rms(q, lw.q_norm), self._rms(k, lw.k_norm)
            x = lw.wo.add(attend(i, q, k, v), x)
            h = self._rms(x, lw.mlp_norm)
            gate, up = lw.w_gate_up(h).chunk(2, dim=-1)
            x = lw.w_down.add(F.silu(gate) * up, x)
        return self._rms(x, self.norm)

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [..., H] -> logits [..., V] in fp32 (sampling wants full precision)."""
        return self.lm_head(hidden).float()
