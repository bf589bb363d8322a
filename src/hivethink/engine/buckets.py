"""Sizes rounded up to buckets: the one rule for every shape a compiled or captured step sees.

A compiled kernel (flex_attention) is specialised to its shapes and a CUDA graph to its shapes and
addresses, so a pass whose sizes change every step would compile or capture every step. Rounding
each size up to a power of two bounds the shapes a run meets to a few dozen, at the price of at
most twice the padding (padding rows and parts contribute exact zeros to the real ones).
"""

from __future__ import annotations


def bucket(n: int, floor: int = 1) -> int:
    """The smallest power of two >= max(n, floor)."""
    m = max(n, floor, 1)
    return 1 << (m - 1).bit_length()
