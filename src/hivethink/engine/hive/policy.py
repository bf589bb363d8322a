"""The per-pass policy of a hive: which tokens a worker may sample, where a step ends, when the
redundancy check is due and how it is answered.

- **Sampling:** every logits processor the generation config implies, built by transformers, over
  the ids each worker fed in the pass (left-padded, as the reference passes them), then a draw
  from each worker's own seeded generator (or the argmax).
- **Suppressed tokens:** ``#``, BOS, EOS and end-of-thinking (the reference's set: the tokenizer's
  own BOS and EOS). hivethink can add a guard against step headers written inside a step
  (``guard_headers``, off by default); any that slip through are counted as impersonations.
- **Steps.** A step ends when a sampled token holds the separator (a blank line) and the step text
  before the last separator ends with one of 16 end-of-sentence characters (with
  ``step_end: fenced``, also not inside an open ```` ``` ````, ``~~~`` or ``$$`` block; ``text``
  also accepts a blank line written as two tokens). The step is decoded as the reference decodes
  it (special tokens kept).
- **Redundancy check.** The fed tokens of all workers (forced ones included) are counted; when a
  worker starts a new step and more than ``check_every`` (256) were fed since the last check, its
  header carries the check question, and the count restarts. Its answer is the first word the
  worker writes after it ("?" if it is neither yes nor no, or none within 8 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from hivethink.engine.hive.config import HiveConfig
from hivethink.engine.hive.prompt import THINK, HiveText
from hivethink.engine.sampling import ConfigProcessors
from hivethink.engine.text import STEP_SEPARATOR, step_ends, yes_no
from hivethink.models.loader import LoadedModel


class Vocab:
    """What the policy needs to know about every token, computed once per tokenizer: its text
    (so that the hot loop never decodes), and which ids hold the step separator: as the reference
    finds them (the vocabulary entries holding the separator token's own entry, where the
    separator is one token), else the tokens whose text holds a blank line."""

    _cache: dict[int, Vocab] = {}

    def __init__(self, tokenizer: Any, size: int):
        self.tok = tokenizer
        self.texts = [tokenizer.decode([i]) for i in range(size)]
        self.size = size
        sep = list(tokenizer.encode(STEP_SEPARATOR, add_special_tokens=False))
        if len(sep) == 1:
            entry = tokenizer.convert_ids_to_tokens(sep[0])
            self.sep = {i for t, i in tokenizer.get_vocab().items() if entry in t and 0 <= i < size}
        else:
            self.sep = {i for i, t in enumerate(self.texts) if STEP_SEPARATOR in t}

    @classmethod
    def of(cls, model: LoadedModel) -> Vocab:
        key = id(model.tokenizer)
        v = cls._cache.get(key)
        if v is None or v.tok is not model.tokenizer:
            v = cls._cache[key] = cls(model.tokenizer, model.cfg.vocab_size)
        return v

    def id_of(self, text: str) -> int | None:
        try:
            ids = self.tok.convert_tokens_to_ids(text)
        except Exception:
            return None
        unk = getattr(self.tok, "unk_token_id", None)
        return ids if isinstance(ids, int) and ids != unk and 0 <= ids < self.size else None


class Guard:
    """The suppressed tokens of the reference (``#``, the tokenizer's BOS and EOS, end of thinking:
    :attr:`suppressed`), plus, with ``guard_headers``, the tokens that would write a worker's step header inside a step: a name
    right after ``**`` (or ``**Name`` in one token), and `` [`` right after a name (the tiny
    models write ``Bob [2]:**`` without the stars). Masks are bool [V] on the device (True: may
    not be sampled)."""

    _cache: dict[tuple[int, tuple[str, ...], bool, str], Guard] = {}

    @classmethod
    def of(cls, vocab: Vocab, model: LoadedModel, names: list[str], headers: bool,
           device: torch.device) -> Guard:
        key = (id(vocab), tuple(names), headers, str(device))
        g = cls._cache.get(key)
        if g is None:
            g = cls._cache[key] = cls(vocab, model, names, headers, device)
        return g

    def __init__(self, vocab: Vocab, model: LoadedModel, names: list[str], headers: bool,
                 device: torch.device):
        tok = model.tokenizer
        banned = torch.zeros(vocab.size, dtype=torch.bool)
        ids = [vocab.id_of(t) for t in ("#", getattr(tok, "bos_token", None), getattr(tok, "eos_token", None),
                                         THINK.replace("<", "</")) if t]
        self.suppressed = sorted({i for i in ids if i is not None})
        banned[self.suppressed] = True
        self.headers = headers
        self.names = sorted(names, key=len, reverse=True)
        if headers:
            def starts_name(r: str) -> bool:
                return bool(r) and any(n.startswith(r) or r.startswith(n) for n in names)

            after2 = torch.zeros(vocab.size, dtype=torch.bool)
            after1 = torch.zeros(vocab.size, dtype=torch.bool)
            bracket = torch.zeros(vocab.size, dtype=torch.bool)
            for i, t in enumerate(vocab.texts):
                at = t.find("**")
                while at >= 0:
                    if starts_name(t[at + 2 :]):
                        banned[i] = True
                    at = t.find("**", at + 1)
                after2[i] = starts_name(t)
                after1[i] = t.startswith("*") and starts_name(t[1:])
                bracket[i] = t.startswith(("[", " ["))
            self.after_stars, self.after_star, self.after_name = after2.to(device), after1.to(device), bracket.to(device)
        self.base = banned.to(device)

    def mask(self, tail: str) -> torch.Tensor:
        """The banned tokens for a worker whose text ends with ``tail``."""
        if not self.headers:
            return self.base
        if tail.endswith("**"):
            return self.base | self.after_stars
        if tail.endswith("*"):
            return self.base | self.after_star
        for n in self.names:
            if tail.endswith(n) and not tail[: -len(n)][-1:].isalnum():
                return self.base | self.after_name
        return self.base


@dataclass
class Worker:
    """One worker's state in the hive."""

    name: str
    step: int = 1  # index of its current step
    step_tokens: list[int] = field(default_factory=list)  # the current step: header + sampled
    pending: list[int] = field(default_factory=list)  # what it feeds in the next pass
    sampled_lead: int = 0  # pending[:sampled_lead] were sampled, the rest is forced
    stream: list[int] = field(default_factory=list)  # every token it wrote
    records: list[tuple[int, int, int, bool]] = field(default_factory=list)  # (pass, position, id, forced)
    generated: int = 0
    answer: str | None = None
    check_from: int | None = None  # where the answer to an open check begins in the stream
    tail: str = ""  # the end of its text (for the header guard)
    active: bool = True


class StepPolicy:
    """The rules a hive applies each pass, for one configuration and vocabulary."""

    CHECK_WINDOW = 8  # tokens within which the check's answer word must come

    def __init__(self, cfg: HiveConfig, vocab: Vocab, pad_id: int):
        self.cfg, self.vocab, self.pad_id = cfg, vocab, pad_id

    def choose(self, processors: ConfigProcessors, guard: Guard, logits: torch.Tensor, fed: list[list[int]],
               tails: list[str], gens: list[torch.Generator]) -> list[int]:
        """The next token of each worker (logits [W, V]; ``fed``: the ids each one fed in this
        pass; ``tails``: the end of each one's text): the generation config's processors over the
        fed ids, left-padded with the pad token as the reference batches them (a worker that fed
        fewer tokens sees pad ids too), the suppressed tokens and the header guard applied."""
        width = max(len(f) for f in fed)
        ids = torch.tensor([[self.pad_id] * (width - len(f)) + f for f in fed], device=logits.device)
        banned = torch.stack([guard.mask(t) for t in tails]) if guard.headers else None
        out: list[int] = processors(ids, logits, gens, banned).tolist()
        return out

    def ends_step(self, text: HiveText, step_tokens: list[int], tid: int) -> bool:
        """Whether ``tid``, just sampled (the last of ``step_tokens``), ends the step. The
        reference looks only at tokens holding a whole blank line; ``step_end: text`` also ends a
        step on a blank line written as two newline tokens (small models such as SmolLM2 rarely
        emit the one token). The step is decoded only for a token that may end it."""
        if self.cfg.step_end == "text":
            if "\n" not in self.vocab.texts[tid]:
                return False
            step = text.raw(step_tokens)
            return step.endswith(STEP_SEPARATOR) and step_ends(step)
        if tid not in self.vocab.sep:
            return False
        return step_ends(text.raw(step_tokens), fenced=self.cfg.step_end == "fenced")

    def check_due(self, fed_since_check: int) -> bool:
        return self.cfg.check_every > 0 and fed_since_check > self.cfg.check_every

    def check_answer(self, answer_text: str, n_tokens: int) -> str | None:
        """The check's answer from what the worker wrote after the question (``n_tokens`` of
        them): "yes", "no", "?" (another word, or no word after 8 tokens), None (not yet)."""
        ans = yes_no(answer_text)
        if ans is not None or n_tokens >= self.CHECK_WINDOW:
            return ans or "?"
        return None
