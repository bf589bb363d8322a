"""Independent batched generation: N unrelated prompts decoded together in one batch.

Each prompt is its own block and each continuation another; a row's view is just
[its prompt, its continuation], so rows never see each other. This is the local backend of the
lab's text-level protocols (all agents of a round in one batch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from hivethink.engine.forward import Runner
from hivethink.engine.sampling import Sampler, SamplingParams
from hivethink.models.loader import LoadedModel


@dataclass
class Generated:
    tokens: list[int]
    text: str
    prompt_tokens: int
    finish_reason: str  # "stop" (end of turn or a stop string) | "length"
    wall_s: float


def generate_batch(model: LoadedModel, prompts: list[list[int]], *, max_tokens: list[int],
                   sampling: list[SamplingParams], stop: list[list[str]] | None = None) -> list[Generated]:
    t0 = time.perf_counter()
    tok = model.tokenizer
    runner = Runner(model)
    cache = runner.cache
    n = len(prompts)
    stop = stop or [[] for _ in range(n)]
    eos = {t for t in (*model.cfg.eos_token_ids, getattr(tok, "eos_token_id", None)) if t is not None}
    views = []
    first: list[int] = []
    sampler = Sampler(sampling)
    for i, ids in enumerate(prompts):
        pb = cache.new_block(f"prompt{i}")
        logits = runner.prefill(pb, ids)
        views.append([pb, cache.new_block(f"gen{i}")])
        first.append(sampler.sample(logits[None], [i])[0])
    out: list[list[int]] = [[] for _ in range(n)]
    reason = ["length"] * n
    nxt = first
    active = [i for i in range(n) if max_tokens[i] > 0]
    while active:
        still = []
        for i in active:
            tid = nxt[i]
            if tid in eos:
                reason[i] = "stop"
                continue
            out[i].append(tid)
            if stop[i] and any(s in tok.decode(out[i][-16:]) for s in stop[i]):
                reason[i] = "stop"
                continue
            if len(out[i]) < max_tokens[i]:
                still.append(i)
        active = still
        if not active:
            break
        logits = runner.extend([views[i] for i in active], [[out[i][-1]] for i in active])
        for i, tid in zip(active, sampler.sample(logits, active), strict=True):
            nxt[i] = tid
    wall = time.perf_counter() - t0
    results = []
    for i in range(n):
        text = tok.decode(out[i], skip_special_tokens=True)
        for s in stop[i]:
            if s in text:
                text = text[: text.index(s)]
        results.append(Generated(out[i], text, len(prompts[i]), reason[i], wall))
    return results
