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

from hivethink.models.config import ModelConfig

# attend(layer, q [T, Hq, D], k [T, Hkv, D], v [T, Hkv, D]) -> out [T, Hq*D]
Attend = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class LayerWeights:
    attn_norm: torch.Tensor  # [H]
    wqkv: torch.Tensor  # [(Hq + 2 Hkv) D, H]  q, k, v fused: one matmul instead of three
    bqkv: torch.Tensor | None  # [(Hq + 2 Hkv) D]  qwen2 only
    q_norm: torch.Tensor | None  # [D]  qwen3 only
    k_norm: torch.Tensor | None  # [D]
    wo: torch.Tensor  # [H, Hq D]
    mlp_norm: torch.Tensor  # [H]
    w_gate_up: torch.Tensor  # [2 I, H]  gate and up fused
    w_down: torch.Tensor  # [H, I]


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
        self.cfg = cfg
        w = weights
        self.embed = w["model.embed_tokens.weight"]  # [V, H]
        self.norm = w["model.norm.weight"]
        self.lm_head = self.embed if cfg.tie_embeddings or "lm_head.weight" not in w else w["lm_head.weight"]
        self._packed: dict[int, torch.Tensor] = {}  # id(weight) -> packed copy
        # True when every matmul computes a row bit for bit alike at any row count (see pack())
        self.rows_independent = False
        self.layers: list[LayerWeights] = []
        for i in range(cfg.n_layers):
            p = f"model.layers.{i}."
            a = p + "self_attn."
            bias = None
            if cfg.attention_bias and a + "q_proj.bias" in w:
                bias = torch.cat([w[a + "q_proj.bias"], w[a + "k_proj.bias"], w[a + "v_proj.bias"]])
            self.layers.append(
                LayerWeights(
                    attn_norm=w[p + "input_layernorm.weight"],
                    wqkv=torch.cat([w[a + "q_proj.weight"], w[a + "k_proj.weight"], w[a + "v_proj.weight"]]),
                    bqkv=bias,
                    q_norm=w.get(a + "q_norm.weight") if cfg.qk_norm else None,
                    k_norm=w.get(a + "k_norm.weight") if cfg.qk_norm else None,
                    wo=w[a + "o_proj.weight"],
                    mlp_norm=w[p + "post_attention_layernorm.weight"],
                    w_gate_up=torch.cat([w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"]]),
                    w_down=w[p + "mlp.down_proj.weight"],
                )
            )

    @classmethod
    def from_parts(cls, cfg: ModelConfig, embed: torch.Tensor, norm: torch.Tensor, lm_head: torch.Tensor,
                   layers: list[LayerWeights]) -> Decoder:
        """A decoder over weights already in the fused layout (no concatenation, so no second copy:
        how the bench builds 32B-sized random models on one GPU)."""
        d = cls.__new__(cls)
        d.cfg, d.embed, d.norm, d.lm_head, d.layers = cfg, embed, norm, lm_head, layers
        d._packed, d.rows_independent = {}, False
        return d

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.dtype

    @property
    def device(self) -> torch.device:
        return self.embed.device

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Decoder:
        """Move/cast every weight in place (norm weights included: the math upcasts itself)."""
        def cast(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype)

        tied = self.lm_head is self.embed
        self._packed, self.rows_independent = {}, False
        self.embed, self.norm = cast(self.embed), cast(self.norm)
        self.lm_head = self.embed if tied else cast(self.lm_head)
        for lw in self.layers:
            for name in lw.__dataclass_fields__:
                if (t := getattr(lw, name)) is not None:  # optional weights (biases, norms) stay None
                    setattr(lw, name, cast(t))
        return self

    def pack(self) -> bool:
        """Pre-pack the matmul weights for oneDNN when that helps (CPU); True if packed.

        Then probes whether the packed kernels compute each row independently of the row count
        (oneDNN's fp32 kernels do on the machines measured; MKL's plain GEMM does not below 4
        rows). When they do, ``rows_independent`` is set and the engine needs no row padding for
        batch invariance (engine/forward.py). The plain weights stay (the bench rebuilds a
        transformers model from them), so packing doubles the weights' memory: it is skipped when
        the copies would take more than half of the memory available now."""
        import os

        if (os.environ.get("HIVETHINK_PACK", "1") == "0" or self.device.type != "cpu"
                or self.dtype not in self.PACK_DTYPES or not torch.backends.mkldnn.is_available()):
            return False
        weights = [self.lm_head] + [w for lw in self.layers for w in (lw.wqkv, lw.wo, lw.w_gate_up, lw.w_down)]
        if sum(w.numel() * w.element_size() for w in {id(w): w for w in weights}.values()) > available_memory() / 2:
            return False
        try:
            self._packed = {id(w): torch.ops.mkldnn._reorder_linear_weight(w, 4) for w in weights}
        except (RuntimeError, AttributeError):  # a torch build without these oneDNN ops
            self._packed = {}
        self.rows_independent = bool(self._packed) and all(
            self._row_count_invariant(w) for w in {tuple(w.shape): w for w in weights}.values())
        return bool(self._packed)

    def _row_count_invariant(self, w: torch.Tensor) -> bool:
        """Each row of x @ w.T (and of residual + x @ w.T) equals, bit for bit, the same row
        computed within a larger batch, at every probed row count and start."""
        g = torch.Generator().manual_seed(0)
        n = max(PROBE_ROWS) + max(PROBE_STARTS)
        x = torch.randn(n, w.shape[1], generator=g).to(self.dtype)
        r = torch.randn(n, w.shape[0], generator=g).to(self.dtype)
        full, full_add = self._linear(x, w), self._linear_add(x, w, r)
        return all(torch.equal(self._linear(x[a : a + m], w), full[a : a + m])
                   and torch.equal(self._linear_add(x[a : a + m], w, r[a : a + m]), full_add[a : a + m])
                   for m in PROBE_ROWS for a in PROBE_STARTS)

    def _linear(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        packed = self._packed.get(id(w))
        if packed is None:
            return F.linear(x, w, b)
        return torch.ops.mkldnn._linear_pointwise(x, packed, b, "none", [], "")

    def _linear_add(self, x: torch.Tensor, w: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """residual + x @ w.T; with packed weights the add is fused into the matmul (one rounding)."""
        packed = self._packed.get(id(w))
        if packed is None:
            return residual + F.linear(x, w)
        return torch.ops.mkldnn._linear_pointwise.binary(x, residual, packed, None, "add")

    def _rms(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # Normalises in fp32 like the reference implementations (one call; on CPU it is still a few kernels).
        return F.rms_norm(x, (x.shape[-1],), weight, self.cfg.rms_eps)

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, attend: Attend) -> torch.Tensor:
        """tokens [T] -> final hidden states [T, H] (before the LM head)."""
        cfg = self.cfg
        T = tokens.shape[0]
        nq, nkv, D = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim, cfg.head_dim
        x = F.embedding(tokens, self.embed)  # [T, H]
        for i, lw in enumerate(self.layers):
            h = self._rms(x, lw.attn_norm)
            qkv = self._linear(h, lw.wqkv, lw.bqkv)  # [T, (Hq + 2 Hkv) D]
            q = qkv[:, :nq].view(T, cfg.n_heads, D)
            k = qkv[:, nq : nq + nkv].view(T, cfg.n_kv_heads, D)
            v = qkv[:, nq + nkv :].view(T, cfg.n_kv_heads, D)
            if lw.q_norm is not None and lw.k_norm is not None:
                q, k = self._rms(q, lw.q_norm), self._rms(k, lw.k_norm)
            x = self._linear_add(attend(i, q, k, v), lw.wo, x)
            h = self._rms(x, lw.mlp_norm)
            gate, up = self._linear(h, lw.w_gate_up).chunk(2, dim=-1)
            x = self._linear_add(F.silu(gate) * up, lw.w_down, x)
        return self._rms(x, self.norm)

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [..., H] -> logits [..., V] in fp32 (sampling wants full precision)."""
        return self._linear(hidden, self.lm_head).float()
