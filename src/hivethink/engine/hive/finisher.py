"""The finisher: the team's last words when a budget ends without an answer.

As the reference does, the transcript is decoded whole (special tokens kept) and encoded again,
the finisher text is appended, and up to ``finisher_tokens`` greedy tokens are decoded once for
the team (once per worker that answers alone), one generation per distinct state: budgets past
the end of a run share its final state. The generations are rows of the hive's own job (its
attention group, its passes), not jobs of their own."""

from __future__ import annotations

from typing import Any

import torch

from hivethink.engine.cache import Block
from hivethink.engine.hive.prompt import HOGWILD
from hivethink.engine.sampling import SamplingParams
from hivethink.engine.scheduler import GenJob, JobHost, NewBlock, PassRow


class Finisher:
    def __init__(self, tokenizer: Any, max_tokens: int, host: JobHost, group: int):
        self.tok, self.max_tokens, self.host, self.group = tokenizer, max_tokens, host, group
        self.text = HOGWILD.render("finisher")
        self.jobs: list[GenJob] = []  # one per distinct state, in the order asked
        self.asked: list[tuple[int, int | None, GenJob]] = []  # (budget, worker or None, its generation)
        self._by_state: dict[tuple[int, int | None], GenJob] = {}

    def ask(self, budget: int, worker: int | None, passes: int, prompt_and_body: list[int]) -> None:
        """Budget ``budget`` (whose state is that after ``passes`` passes) needs the finisher on
        this transcript (the prompt's ids, then the body's)."""
        key = (passes, worker)
        job = self._by_state.get(key)
        if job is None:
            text = self.tok.decode(prompt_and_body) + self.text
            job = GenJob(list(self.tok.encode(text, add_special_tokens=False)), max_tokens=self.max_tokens,
                         sampling=SamplingParams(seed=0), end_ids=self.host.end_ids, tokenizer=self.tok)
            job.id = self.group
            job.attach(self.host)
            self._by_state[key] = job
            self.jobs.append(job)
        self.asked.append((budget, worker, job))

    @property
    def done(self) -> bool:
        return all(job.done for job in self.jobs)

    def wants(self) -> list[NewBlock]:
        return [w for job in self.jobs for w in job.wants()]

    def given(self, blocks: list[Block]) -> None:
        at = 0
        for job in self.jobs:
            n = len(job.wants())
            if n:
                job.given(blocks[at : at + n])
                at += n

    def rows(self) -> list[PassRow]:
        rows = []
        for job in self.jobs:
            if not job.done:
                intent = job.intent()
                assert intent is not None, "a finisher without its block"
                rows += intent.rows
        return rows

    def update(self, logits: list[torch.Tensor | None], positions: list[int]) -> None:
        live = [job for job in self.jobs if not job.done]  # one row each
        for i, job in enumerate(live):
            job.update(logits[i : i + 1], positions[i : i + 1])
