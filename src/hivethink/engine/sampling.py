"""Next-token choice per worker: greedy, or temperature + top-p with a seeded generator each."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0


class Sampler:
    def __init__(self, params: list[SamplingParams]):
        self.params = params
        self.generators = []
        for i, p in enumerate(params):
            g = torch.Generator()
            g.manual_seed(p.seed * 1000 + i)  # distinct, reproducible streams per worker
            self.generators.append(g)

    def sample(self, logits: torch.Tensor, rows: list[int]) -> list[int]:
        """logits [R, V] for the workers ``rows`` -> one token id each."""
        return [sample_one(logits[r], self.params[w], self.generators[w]) for r, w in enumerate(rows)]


def sample_one(logits: torch.Tensor, p: SamplingParams, generator: torch.Generator) -> int:
    """One token from logits [V]: argmax at temperature 0, else temperature + nucleus (top-p)."""
    if p.temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.float().cpu() / p.temperature, dim=-1)
    if p.top_p < 1.0:
        sorted_p, idx = probs.sort(descending=True)
        keep = sorted_p.cumsum(0) - sorted_p < p.top_p  # always keeps the top token
        probs = torch.zeros_like(probs).scatter_(0, idx[keep], sorted_p[keep])
    return int(torch.multinomial(probs, 1, generator=generator))
