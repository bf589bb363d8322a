"""Rotary position tables. Keys are stored rotated at block-local positions; queries are
rotated per block by (query view position - block start); a block moved elsewhere is re-rotated
once by its shift. All three use this one table."""

from __future__ import annotations

import torch


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """The (-x2, x1) half-swap of the Llama/Qwen RoPE convention."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RopeTable:
    """cos/sin for integer positions, grown on demand. ``scale`` multiplies q/k rotations (YaRN)."""

    def __init__(self, inv_freq: torch.Tensor, scale: float, dtype: torch.dtype, device: torch.device,
                 length: int = 4096):
        self.inv_freq = inv_freq.double()  # [D/2]
        self.scale = scale
        self.dtype, self.device = dtype, device
        self._build(length)

    def _build(self, length: int) -> None:
        pos = torch.arange(length, dtype=torch.float64)
        freqs = torch.outer(pos, self.inv_freq)  # [L, D/2]
        emb = torch.cat((freqs, freqs), dim=-1)  # [L, D]
        self.length = length
        self.cos = emb.cos().to(self.device, self.dtype)
        self.sin = emb.sin().to(self.device, self.dtype)
        # Scaled tables for q/k (score gets scale^2, as in the reference); unscaled for re-rotation.
        self.qk_cos = (emb.cos() * self.scale).to(self.device, self.dtype)
        self.qk_sin = (emb.sin() * self.scale).to(self.device, self.dtype)

    def ensure(self, max_pos: int) -> None:
        if max_pos >= self.length:
            self._build(max(2 * self.length, max_pos + 1))

    def lookup(self, pos: torch.Tensor, *, scaled: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """pos [...] (int64, >= 0) -> cos, sin [..., D]."""
        self.ensure(int(pos.max()) if pos.numel() else 0)
        if scaled:
            return self.qk_cos[pos], self.qk_sin[pos]
        return self.cos[pos], self.sin[pos]


def apply_rotation(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + rotate_half(x) * sin


def signed_sin(sin: torch.Tensor) -> torch.Tensor:
    """sin with its first half negated, for :func:`rotate`: rotate_half(x) * sin equals
    roll(x, D/2) * signed_sin(sin) (the two halves of a RoPE sin row are equal)."""
    half = sin.shape[-1] // 2
    return torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin_signed: torch.Tensor) -> torch.Tensor:
    """:func:`apply_rotation` in three kernels instead of six (the hot decode path)."""
    return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, dims=-1), sin_signed)
