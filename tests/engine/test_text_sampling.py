from __future__ import annotations

import torch

from hivethink.engine.sampling import SamplingParams, new_generator, sample
from hivethink.engine.text import boxed, yes_no


def test_boxed_takes_the_last_balanced_box():
    assert boxed("first \\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert boxed("\\boxed{ 42 }") == "42"
    assert boxed("\\boxed{unclosed") is None
    assert boxed("no answer") is None


def test_yes_no():
    assert yes_no(" yes)") == "yes" and yes_no("No.") == "no" and yes_no("maybe") == "?"
    assert yes_no("  ") is None


LOGITS = torch.tensor([[0.0, 5.0, 4.9, -1.0, 2.0]] * 2)


def draws(params: SamplingParams, n: int = 40, seed: int | None = None) -> list[int]:
    g = new_generator(params.seed if seed is None else seed)
    return [int(sample(LOGITS[:1], [params], [g])[0]) for _ in range(n)]


def test_greedy_top_p_top_k_min_p():
    assert sample(LOGITS, [SamplingParams()] * 2, [new_generator(0)] * 2).tolist() == [1, 1]
    # top-p small enough keeps only the best token even at high temperature
    assert set(draws(SamplingParams(temperature=5.0, top_p=0.01))) == {1}
    assert set(draws(SamplingParams(temperature=5.0, top_k=2))) == {1, 2}
    assert set(draws(SamplingParams(temperature=1.0, min_p=0.5))) <= {1, 2}
    assert set(draws(SamplingParams(temperature=5.0), n=200)) == {0, 1, 2, 3, 4}


def test_banned_tokens_are_never_sampled():
    ban = torch.zeros(5, dtype=torch.bool)
    ban[1] = True
    out = sample(LOGITS, [SamplingParams(), SamplingParams(2.0)], [new_generator(0), new_generator(1)], [ban, ban])
    assert 1 not in out.tolist()


def test_draws_are_seeded_per_row_and_independent_of_the_batch():
    p = SamplingParams(temperature=2.0, seed=7)
    assert draws(p) == draws(p) and draws(p) != draws(p, seed=8)
    # a row draws the same next tokens alone and beside others (its generator only)
    alone = [int(sample(LOGITS[:1], [p], [g])[0]) for g in [new_generator(7)] for _ in range(20)]
    g, other = new_generator(7), new_generator(99)
    both = [int(sample(LOGITS, [p, SamplingParams(1.0)], [g, other])[0]) for _ in range(20)]
    assert alone == both


def test_the_models_generation_config_is_read():
    from transformers import GenerationConfig

    assert SamplingParams.from_generation_config(None).greedy
    assert SamplingParams.from_generation_config(GenerationConfig(do_sample=False, temperature=0.7)).greedy
    p = SamplingParams.from_generation_config(GenerationConfig(do_sample=True, temperature=0.6, top_p=0.95,
                                                               top_k=40), seed=3)
    assert (p.temperature, p.top_p, p.top_k, p.seed) == (0.6, 0.95, 40, 3)
    assert p.describe() == "temperature 0.6, top-p 0.95, top-k 40"
