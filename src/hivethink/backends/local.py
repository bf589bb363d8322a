"""The local backend: the engine itself. All requests of one call decode together in one batch."""

from __future__ import annotations

from collections.abc import Sequence

from hivethink.backends.base import Completion, GenRequest
from hivethink.engine.generate import generate_batch
from hivethink.engine.hive import chat_ids
from hivethink.engine.sampling import SamplingParams
from hivethink.models.loader import LoadedModel, load_model


class LocalBackend:
    def __init__(self, model: str | None = None, dtype: str = "bfloat16", device: str = "cpu",
                 loaded: LoadedModel | None = None):
        self.model = loaded or load_model(model, dtype=dtype, device=device)
        self.name = f"local:{model or 'smollm2'}"

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        if not requests:
            return []
        prompts = [chat_ids(self.model.tokenizer, r.messages) for r in requests]
        outs = generate_batch(
            self.model, prompts, max_tokens=[r.max_tokens for r in requests],
            sampling=[SamplingParams(r.temperature, r.top_p, r.seed or 0) for r in requests],
            stop=[list(r.stop) for r in requests],
        )
        return [Completion(text=o.text, prompt_tokens=o.prompt_tokens, completion_tokens=len(o.tokens),
                           wall_s=o.wall_s, finish_reason=o.finish_reason) for o in outs]
