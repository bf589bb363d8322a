from __future__ import annotations

import torch

from hivethink.engine.sampling import Sampler, SamplingParams
from hivethink.engine.text import boxed, step_ended, yes_no


def test_step_boundaries():
    assert step_ended("We add 3 and 4.\n\n")
    assert step_ended("Done!\n\n")
    assert not step_ended("We add 3 and 4.\n")
    assert not step_ended("a list:\n\n")
    assert not step_ended("```python\nx = 1.\n\n")  # inside a code block
    assert not step_ended("$$ x = 1.\n\n")
    assert not step_ended("\\[ x = 1.\n\n")
    assert step_ended("\\[ x \\] so x = 1.\n\n")


def test_boxed_takes_the_last_balanced_box():
    assert boxed("first \\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert boxed("\\boxed{ 42 }") == "42"
    assert boxed("\\boxed{unclosed") is None
    assert boxed("no answer") is None


def test_yes_no():
    assert yes_no(" yes)") == "yes" and yes_no("No.") == "no" and yes_no("maybe") == "?"
    assert yes_no("  ") is None


def test_sampler_greedy_topp_and_seeds():
    logits = torch.tensor([[0.0, 5.0, 4.9, -1.0]] * 2)
    assert Sampler([SamplingParams()] * 2).sample(logits, [0, 1]) == [1, 1]
    # top-p small enough keeps only the best token even at high temperature
    s = Sampler([SamplingParams(temperature=5.0, top_p=0.01, seed=3)] * 2)
    assert all(s.sample(logits, [0, 1]) == [1, 1] for _ in range(20))
    a = Sampler([SamplingParams(2.0, 1.0, 7)])
    b = Sampler([SamplingParams(2.0, 1.0, 7)])
    assert [a.sample(logits[:1], [0])[0] for _ in range(30)] == [b.sample(logits[:1], [0])[0] for _ in range(30)]
    c = Sampler([SamplingParams(2.0, 1.0, 8)])
    assert [a.sample(logits[:1], [0])[0] for _ in range(30)] != [c.sample(logits[:1], [0])[0] for _ in range(30)]
