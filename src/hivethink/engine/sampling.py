"""Next-token choice on the device: greedy, or temperature, top-k, top-p and min-p sampling; and,
for the hive, every logits processor a model's ``GenerationConfig`` implies, built by transformers.

Each row draws its randomness from its own seeded generator, one uniform vector per sampled
token, so a row's choices depend on its seed and its own logits only, never on which other rows
share the pass (the scheduler's results do not depend on the batch). A draw is the exponential
race ``argmax(p / E)`` with ``E = -log(u)``: the same distribution as ``multinomial(p)``, computed
for all rows at once. :func:`sample`'s warpers follow the order of the transformers reference
(suppressed tokens, temperature, top-k, top-p, min-p); :class:`ConfigProcessors` is transformers'
own list (repetition penalty, n-gram bans, ... included), as the Hogwild! reference builds it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

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
    return draw(probs, [not p.greedy for p in params], generators, fallback=x.argmax(-1))


def draw(probs: torch.Tensor, sampled: Sequence[bool], generators: Sequence[torch.Generator],
         fallback: torch.Tensor | None = None) -> torch.Tensor:
    """Row r's token: a draw from ``probs[r]`` with ``generators[r]`` where ``sampled[r]``, else
    ``fallback[r]`` (the argmax of ``probs`` if none is given). Only sampled rows consume their
    generator."""
    V = probs.shape[-1]
    pick = torch.tensor(list(sampled), device=probs.device)
    if fallback is None:
        fallback = probs.argmax(-1)
    if not bool(pick.any()):
        return fallback
    u = torch.stack([torch.rand(V, generator=g, device=probs.device) if s else torch.ones(V, device=probs.device)
                     for s, g in zip(sampled, generators, strict=True)])
    race = probs / (-torch.log(u.clamp(min=1e-20)))  # exponential race: argmax ~ multinomial(probs)
    return torch.where(pick, race.argmax(-1), fallback)


class _RowMask:
    """A logits processor that bans per-row tokens (``banned`` [R, V] bool, or None): hivethink's
    own masks (the hive's header guard) in the place of the caller's processors."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, banned: torch.Tensor | None) -> torch.Tensor:
        return scores if banned is None else scores.masked_fill(banned, float("-inf"))


class ConfigProcessors:
    """Every logits processor a transformers ``GenerationConfig`` implies, in transformers' order,
    built by transformers itself (``GenerationMixin._get_logits_processor`` over the config
    completed with transformers' defaults, as ``generate`` and the Hogwild! reference's
    ``get_logits_processor`` do), with ``suppress`` as the caller's own
    ``SuppressTokensLogitsProcessor`` (so it takes the place of a config's ``suppress_tokens``, as
    there). A model object is not needed: a stand-in carries the config. Then a row is drawn
    (``do_sample``) or its argmax taken, as the reference does after the same list.

    The processors see the ``input_ids`` the caller passes: the Hogwild! reference passes only the
    tokens fed in that pass (left-padded), so its repetition penalty covers those ids."""

    def __init__(self, generation: Any, suppress: Sequence[int], vocab_size: int, device: torch.device | str):
        from transformers import GenerationConfig, LogitsProcessorList, PretrainedConfig
        from transformers.generation.logits_process import SuppressTokensLogitsProcessor
        from transformers.generation.utils import GenerationMixin

        from hivethink.errors import HivethinkError

        generation = generation if generation is not None else GenerationConfig()
        if generation.guidance_scale not in (None, 1, 1.0):
            raise HivethinkError("the model's generation config asks for classifier-free guidance "
                                 "(guidance_scale), which needs a second model pass; set sampling explicitly")
        model_config = PretrainedConfig()  # a decoder-only model's (watermarking reads its vocab_size)
        model_config.vocab_size = vocab_size
        host = _ConfigHost(generation, model_config, torch.device(device))
        with warnings.catch_warnings():  # transformers warns that penalties see no prompt: true here too
            warnings.simplefilter("ignore")
            cfg, kwargs = GenerationMixin._prepare_generation_config(host, generation)  # type: ignore[arg-type]
            GenerationMixin._prepare_special_tokens(host, cfg, device=host.device)  # type: ignore[arg-type]
            ours = LogitsProcessorList([SuppressTokensLogitsProcessor(list(suppress), device=str(host.device)),
                                        _RowMask()])
            self.processors = GenerationMixin._get_logits_processor(
                host, generation_config=cfg, input_ids_seq_length=0, encoder_input_ids=None,  # type: ignore[arg-type]
                prefix_allowed_tokens_fn=None, logits_processor=ours, device=str(host.device), model_kwargs=kwargs)
        self.do_sample = bool(cfg.do_sample)

    def __call__(self, input_ids: torch.Tensor, logits: torch.Tensor, generators: Sequence[torch.Generator],
                 banned: torch.Tensor | None = None) -> torch.Tensor:
        """Token ids [R] for logits [R, V] given the ids [R, L] the processors see."""
        scores = self.processors(cast(torch.LongTensor, input_ids), logits.float(), banned=banned)
        if not self.do_sample:
            return scores.argmax(-1)
        return draw(scores.softmax(-1), [True] * len(generators), generators)

    def describe(self) -> str:
        """What the list does, e.g. "sample: RepetitionPenalty(penalty=1.1), Temperature(temperature=0.6)"
        (the suppressed tokens and hivethink's masks left out)."""
        parts = []
        for p in self.processors:
            if isinstance(p, _RowMask) or type(p).__name__ == "SuppressTokensLogitsProcessor":
                continue
            name = type(p).__name__.removesuffix("LogitsProcessor").removesuffix("LogitsWarper")
            args = ", ".join(f"{k}={v:g}" for k, v in vars(p).items()
                             if isinstance(v, (int, float)) and not isinstance(v, bool)
                             and k not in ("min_tokens_to_keep", "filter_value"))
            parts.append(f"{name}({args})")
        head = "sample" if self.do_sample else "greedy"
        return f"{head}: {', '.join(parts)}" if parts else head


class _ConfigHost:
    """What transformers' generation helpers read from a model: its generation config, its
    config (a decoder-only one) and its device."""

    def __init__(self, generation: Any, config: Any, device: torch.device):
        self.generation_config, self.config, self.device = generation, config, device

    def _merge_criteria_processor_list(self, default_list: Any, custom_list: Any) -> Any:
        from transformers.generation.utils import GenerationMixin

        return GenerationMixin._merge_criteria_processor_list(self, default_list, custom_list)  # type: ignore[arg-type]
