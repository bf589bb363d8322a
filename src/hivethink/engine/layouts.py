"""Layouts: the rule that turns the cache's blocks into each worker's view.

- ``combined``: common history, then the others' unfinished steps, then one's own step.
- ``interleaved``: common history (prompt + finished steps), then one's own step.
- ``contiguous``: prompt, then every other worker's whole stream, then one's own stream.
- ``independent``: prompt, then one's own stream (no sharing: the baseline).

In every layout a worker's own block comes last: that is where its new tokens go.
"""

from __future__ import annotations

from dataclasses import dataclass

from hivethink.engine.cache import Block

LAYOUTS = ("combined", "interleaved", "contiguous", "independent")


@dataclass
class Blocks:
    """The blocks a hive keeps: one common block, one current block per worker, two headers."""

    common: Block
    own: list[Block]  # current step (step layouts) or whole stream (stream layouts), per worker
    others_header: Block | None = None
    own_header: Block | None = None


def moves_steps(layout: str) -> bool:
    """Whether a finished step leaves the worker's block for the common history."""
    return layout in ("combined", "interleaved")


def view(layout: str, blocks: Blocks, w: int) -> list[Block]:
    own = blocks.own[w]
    if layout == "combined":
        assert blocks.others_header is not None and blocks.own_header is not None
        others = [b for i, b in enumerate(blocks.own) if i != w]
        if not others:
            return [blocks.common, own]
        return [blocks.common, blocks.others_header, *others, blocks.own_header, own]
    if layout == "interleaved" or layout == "independent":
        return [blocks.common, own]
    if layout == "contiguous":
        return [blocks.common, *(b for i, b in enumerate(blocks.own) if i != w), own]
    raise ValueError(layout)
