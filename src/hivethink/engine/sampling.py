"""Next-token choice on the device: greedy, or temperature, top-k, top-p and min-p sampling.

Each row draws its randomness from its own seeded generator, one uniform vector per sampled
token, so a row's choices depend on its seed and its own logits only, never on which other rows
share the pass (the scheduler's results do not depend on the batch). A draw is the exponential
race ``argmax(p / E)`` with ``E = -log(u)``: the same distribution as ``multinomial(p)``, computed
for all rows at once. The warpers follow the order of the transformers reference (suppressed
tokens, temperature, top-k, top-p, min-p), so a model's ``generation_config`` means the same here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    min_p: float = 0.0  # 0 = off
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    @classmethod
    def from_generation_config(cls, gen: Any, seed: int = 0) -> SamplingParams:
        """The model's own decoding settings (``generation_config``): greedy unless it samples."""
        if gen is None or not getattr(gen, "do_sample", False):
            return cls(seed=seed)
        return cls(temperature=float(getattr(gen, "temperature", None) or 1.0),
                   top_p=float(getattr(gen, "top_p", None) or 1.0),
                   top_k=int(getattr(gen, "top_k", None) or 0),
                   min_p=float(getattr(gen, "min_p", None) or 0.0), seed=seed)

    def describe(self) -> str:
        if self.greedy:
            return "greedy"
        parts = [f"temperature {self.temperature:g}"]
        parts += [f"top-p {self.top_p:g}"] if self.top_p < 1 else []
        parts += [f"top-k {self.top_k}"] if self.top_k else []
        parts += [f"min-p {self.min_p:g}"] if self.min_p else []
        return ", ".join(parts)


def new_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def sample(logits: torch.Tensor, params: Sequence[SamplingParams], generators: Sequence[torch.Generator],
           banned: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
    """logits [R, V] (fp32) -> token ids [R] (on the logits' device).

    ``banned[r]``: a bool [V] mask of tokens row r may not take (suppressed tokens, a grammar's
    complement), or None. Row r draws from ``generators[r]`` unless it is greedy."""
    R, V = logits.shape
    x = logits.float()
    if banned is not None and any(b is not None for b in banned):
        ban = torch.stack([b if b is not None else torch.zeros(V, dtype=torch.bool, device=x.device)
                           for b in banned])
        x = x.masked_fill(ban, float("-inf"))
    greedy = torch.tensor([p.greedy for p in params], device=x.device)
    if bool(greedy.all()):
        return x.argmax(-1)
    temp = torch.tensor([p.temperature if not p.greedy else 1.0 for p in params], device=x.device)
    x = x / temp[:, None]
    if any(p.top_k for p in params):
        k = torch.tensor([p.top_k if p.top_k else V for p in params], device=x.device).clamp(max=V)
        kth = x.sort(-1, descending=True).values.gather(1, (k - 1)[:, None])
        x = x.masked_fill(x < kth, float("-inf"))
    if any(p.top_p < 1 for p in params):
        top_p = torch.tensor([p.top_p for p in params], device=x.device)
        sorted_x, idx = x.sort(-1, descending=True)
        probs = sorted_x.softmax(-1)
        drop = probs.cumsum(-1) - probs >= top_p[:, None]  # keeps the top token always
        x = x.masked_fill(drop.scatter(1, idx, drop), float("-inf"))
    probs = x.softmax(-1)
    if any(p.min_p for p in params):
        min_p = torch.tensor([p.min_p for p in params], device=x.device)
        probs = probs.masked_fill(probs < min_p[:, None] * probs.amax(-1, keepdim=True), 0.0)
    u = torch.stack([torch.rand(V, generator=g, device=x.device) if not p.greedy
                     else torch.ones(V, device=x.device) for p, g in zip(params, generators, strict=True)])
    race = probs / (-torch.log(u.clamp(min=1e-20)))  # exponential race: argmax ~ multinomial(probs)
    return torch.where(greedy, x.argmax(-1), race.argmax(-1))
