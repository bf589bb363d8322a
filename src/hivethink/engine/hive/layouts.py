"""The layouts of the shared cache: what each worker sees, and where the team's answer is read.

Every worker writes into its own block; the common block holds the prompt (and, in the stepped
layouts, every finished step in the order they finished). A *view* is the ordered list of blocks
a worker attends to:

- ``combined`` (the published layout): ``[common, others-header, the others' unfinished steps in
  worker order each followed by a marker, own-header (marker included), own unfinished step]``;
  each header its own block, prefilled from position 0.
- ``interleaved``: ``[common, own step]``: the others are seen only once their steps finished.
- ``contiguous``: ``[common, every other worker's whole stream, own stream]``: no steps move.
- ``independent``: ``[common, own stream]``: no sharing at all; each worker stops at its own
  answer and the team's answer is their vote (the baseline).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from hivethink.engine.cache import Block
from hivethink.engine.hive.config import LayoutName
from hivethink.engine.hive.prompt import HOGWILD, HiveText
from hivethink.engine.text import STEP_SEPARATOR


@dataclass
class HiveBlocks:
    """A hive's blocks, as the engine created them."""

    common: Block
    own: list[Block]  # each worker's block (its current step, or its whole stream)
    headers: dict[str, Block] = field(default_factory=dict)  # the layout's header blocks by name


class Layout(ABC):
    name: ClassVar[LayoutName]
    # Finished steps move to the end of the common block; a worker's next step starts with a
    # numbered step header (else each worker writes one stream under one header).
    stepped: ClassVar[bool] = False
    # Each worker answers alone and stops at its answer; the team's answer is the vote.
    votes: ClassVar[bool] = False

    def header_texts(self, workers: int) -> dict[str, str]:
        """The header blocks of the views, by name (each prefilled as its own block)."""
        return {}

    @abstractmethod
    def view(self, blocks: HiveBlocks, w: int) -> list[Block]:
        """Worker ``w``'s view."""

    def first_text(self, name: str, lead: bool) -> str:
        """What a worker is given to start from (its header; stepped: the seeded first step)."""
        if not self.stepped:
            return HOGWILD.render("stream_header", name=name)
        key = "first_step_lead" if lead else "first_step_other"
        return HOGWILD.render("step_header", name=name, index=1) + HOGWILD.render(key, name=name)

    def transcripts(self, text: HiveText, history: list[int], steps: Sequence[list[int]],
                    streams: Sequence[list[int]]) -> list[tuple[int | None, list[int]]]:
        """(worker, transcript after the prompt) to find answers in: one for the team (worker
        None), or one per worker where workers answer alone.

        The team's transcript is the reference's compiled response: the finished steps, the
        others' section title, then every worker's unfinished step followed by a marker."""
        body = list(history) + text.encode(text.others_section())
        for s in steps:
            body += s + text.marker()
        return [(None, body)]


class Combined(Layout):
    name = "combined"
    stepped = True

    def header_texts(self, workers: int) -> dict[str, str]:
        if workers < 2:
            return {}
        t = HiveText.titles()
        out = {"others_header": STEP_SEPARATOR + t["others_title"] + STEP_SEPARATOR,
               "own_header": t["marker"] + STEP_SEPARATOR + t["own_title"] + STEP_SEPARATOR}
        for i in range(workers - 2):
            out[f"marker{i}"] = t["marker"] + STEP_SEPARATOR
        return out

    def view(self, blocks: HiveBlocks, w: int) -> list[Block]:
        others = [b for i, b in enumerate(blocks.own) if i != w]
        if not others:
            return [blocks.common, blocks.own[w]]
        v = [blocks.common, blocks.headers["others_header"]]
        for i, b in enumerate(others):
            v.append(b)
            if i < len(others) - 1:
                v.append(blocks.headers[f"marker{i}"])
        return v + [blocks.headers["own_header"], blocks.own[w]]


class Interleaved(Layout):
    name = "interleaved"
    stepped = True

    def view(self, blocks: HiveBlocks, w: int) -> list[Block]:
        return [blocks.common, blocks.own[w]]


class Contiguous(Layout):
    name = "contiguous"

    def view(self, blocks: HiveBlocks, w: int) -> list[Block]:
        return [blocks.common, *(b for i, b in enumerate(blocks.own) if i != w), blocks.own[w]]

    def transcripts(self, text: HiveText, history: list[int], steps: Sequence[list[int]],
                    streams: Sequence[list[int]]) -> list[tuple[int | None, list[int]]]:
        """Every worker's whole stream, each followed by a marker."""
        return [(None, [tid for stream in streams for tid in stream + text.marker()])]


class Independent(Layout):
    name = "independent"
    votes = True

    def view(self, blocks: HiveBlocks, w: int) -> list[Block]:
        return [blocks.common, blocks.own[w]]

    def transcripts(self, text: HiveText, history: list[int], steps: Sequence[list[int]],
                    streams: Sequence[list[int]]) -> list[tuple[int | None, list[int]]]:
        """Each worker's own text."""
        return [(w, list(stream)) for w, stream in enumerate(streams)]


LAYOUTS: dict[str, type[Layout]] = {c.name: c for c in (Combined, Interleaved, Contiguous, Independent)}
