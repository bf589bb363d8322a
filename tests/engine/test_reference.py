"""hivethink against the published Hogwild! reference itself (eqimp/hogwild_llm, commit 1a87a99).

The fixture holds a small random Llama and the next-token logits the reference's ``shared_cache``
gave for it, teacher-forced with two workers in the combined layout ([common, others' header, the
other's step, own header, own step]), six passes, one of them writing five tokens at once. They
were recorded once by running the reference under its own stack (transformers 4.50.3, torch
2.13.0 CPU, fp32; nothing of its code is in this repository): ``spec.json`` says what was fed.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from hivethink.engine.forward import Runner
from tests.conftest import as_loaded

FIXTURE = Path(__file__).parent / "fixtures" / "hogwild_reference"


def engine_logits(visibility: str) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    spec = json.loads((FIXTURE / "spec.json").read_text())
    hf = AutoModelForCausalLM.from_pretrained(FIXTURE, dtype=torch.float32).eval()
    runner = Runner(as_loaded(hf), page_size=8)
    c = runner.cache
    common, others, own, a, b = (c.new_block(n) for n in ("common", "others", "own", "A", "B"))
    for block, ids in ((common, spec["prompt"]), (others, spec["others_header"]), (own, spec["own_header"])):
        runner.prefill(block, ids)  # each header its own block from position 0, as the reference
    views = [[common, others, b, own, a], [common, others, a, own, b]]
    return torch.stack([runner.extend(views, [fa, fb], visibility=visibility) for fa, fb in spec["feeds"]])


def test_instant_visibility_reproduces_the_reference_pass_by_pass():
    want = load_file(FIXTURE / "reference_logits.safetensors")["logits"]
    got = engine_logits("instant")
    assert got.shape == want.shape == (6, 2, 256)
    assert (got - want).abs().max().item() < 1e-5  # measured: < 1e-7


def test_lagged_visibility_is_not_the_published_rule():
    want = load_file(FIXTURE / "reference_logits.safetensors")["logits"]
    per_pass = (engine_logits("lagged") - want).abs().amax(dim=(1, 2))
    assert (per_pass > 1e-3).all()  # off from the very first pass
