"""The attention backends by name, and the choice of one: the only module that knows them all.

A backend is a class with a ``name``, a ``head_major`` cache layout, ``plan`` and ``attend``
(:class:`~hivethink.engine.attention.AttentionBackend`). To add one, write it in its own module
and list it in :data:`BACKENDS`: the table imports the backends, never the other way round.
"""

from __future__ import annotations

import os

import torch

from hivethink.engine import attention_kernel
from hivethink.engine.attention import AttentionBackend, BlocksAttention, PagedAttention
from hivethink.engine.attention_cuda import FlexAttention
from hivethink.errors import HivethinkError

BACKENDS: dict[str, type[AttentionBackend]] = {cls.name: cls for cls in (BlocksAttention, FlexAttention, PagedAttention)}


def attention_names() -> list[str]:
    return sorted(BACKENDS)


def default_attention(device: torch.device) -> str:
    if device.type == "cuda":
        return "flex"
    return "paged" if attention_kernel.available() else "blocks"


def attention_backend(device: torch.device, name: str | None = None) -> AttentionBackend:
    """The backend ``name``, else ``HIVETHINK_ATTENTION`` (one switch for every command, e.g. to
    fall back to "blocks" on a GPU), else flex on CUDA, paged on a CPU with numba (its decode
    kernel), blocks elsewhere."""
    choice = name or os.environ.get("HIVETHINK_ATTENTION") or default_attention(device)
    if choice not in BACKENDS:
        raise HivethinkError(f"attention must be one of {', '.join(attention_names())}, got {choice!r}"
                             + ("" if name else " (from HIVETHINK_ATTENTION)"))
    return BACKENDS[choice]()
