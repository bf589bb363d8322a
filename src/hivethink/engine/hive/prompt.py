"""The hive's words: the ``hogwild`` prompt book and the prompt a hive starts from.

Every text shown to the model comes from the book (``--prompts DIR`` replaces it). The
collaboration instruction (rules, worked examples, ways to work together) and the problem form
the *user* turn; the model's chat template adds the generation prompt."""

from __future__ import annotations

from typing import Any

from hivethink import prompts
from hivethink.engine.hive.config import HiveConfig
from hivethink.engine.text import STEP_SEPARATOR, chat_ids

HOGWILD = prompts.book("hogwild", {
    "rules": ["count", "workers", "a", "b", "history_title", "others_title", "own_title", "marker"],
    "examples": ["a", "b", "history_title", "others_title", "own_title", "marker", "turn_open",
                 "turn_close", "think"],
    "collaboration": ["a", "b"],
    "collaboration_examples": ["a", "b", "history_title", "others_title", "own_title", "marker",
                               "turn_open", "turn_close", "think"],
    "task": ["workers"],
    "user_turn": ["instruction", "problem"],
    "solo": ["problem"],
    "history_title": [],
    "others_title": [],
    "own_title": [],
    "marker": [],
    "step_header": ["name", "index"],
    "stream_header": ["name"],
    "first_step_lead": ["name"],
    "first_step_other": ["name"],
    "check": [],
    "finisher": [],
})

THINK = "<think>"  # the reference writes it in its examples whatever the model


class HiveText:
    """The book's texts as one tokenizer reads and writes them, for one team."""

    def __init__(self, tokenizer: Any, names: list[str]):
        self.tok, self.names = tokenizer, names

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        """Text to show (special tokens left out)."""
        return self.tok.decode(ids, skip_special_tokens=True)

    def raw(self, ids: list[int]) -> str:
        """Text as the reference decodes it for its rules (step ends, answers): special tokens kept."""
        return str(self.tok.decode(ids))

    @staticmethod
    def titles() -> dict[str, str]:
        return {k: HOGWILD.render(k) for k in ("history_title", "others_title", "own_title", "marker")}

    def marker(self) -> list[int]:
        """A marker closing an unfinished step (views and transcripts)."""
        return self.encode(HOGWILD.render("marker") + STEP_SEPARATOR)

    def others_section(self) -> str:
        """The others' section title between the history and the unfinished steps."""
        return STEP_SEPARATOR + HOGWILD.render("others_title") + STEP_SEPARATOR

    def instruction(self, examples: bool, suggestions: str = "with-examples") -> str:
        """The collaboration instruction for N >= 2 workers (rules, examples, ways to cooperate).

        Without examples the authors' builder also drops the ways to work together (one
        conditional covers both) and leaves its empty place between two separators: so does
        ``suggestions: with-examples``; ``always`` keeps them."""
        names = self.names
        team = ", ".join(names[:-1]) + f" and {names[-1]}"
        a, b = names[0], names[1]
        turn_open, turn_close = _turn_parts(self.tok)
        common = dict(a=a, b=b, **self.titles())
        shots = dict(common, turn_open=turn_open, turn_close=turn_close, think=THINK)
        parts = [HOGWILD.render("rules", count=len(names), workers=team, **common)]
        if examples:
            parts.append(HOGWILD.render("examples", **shots))
        if examples:
            parts.append(HOGWILD.render("collaboration", a=a, b=b))
            parts.append(HOGWILD.render("collaboration_examples", **shots))
        elif suggestions == "always":
            parts.append(HOGWILD.render("collaboration", a=a, b=b))
        else:
            parts.append("")
        parts.append(HOGWILD.render("task", workers=team))
        return STEP_SEPARATOR.join(p.strip("\n") for p in parts)

    def prompt(self, problem: str, cfg: HiveConfig, think_id: int | None) -> list[int]:
        """The prompt's token ids: the user turn and the generation prompt (which opens the
        thinking block where the chat template does so); ``think: vocab`` also opens it, for a
        model whose vocabulary has ``think_id``, where the template did not."""
        if cfg.workers == 1:
            user = HOGWILD.render("solo", problem=problem)
        else:
            user = HOGWILD.render("user_turn", instruction=self.instruction(cfg.examples, cfg.suggestions),
                                  problem=problem)
        ids = chat_ids(self.tok, [{"role": "user", "content": user}])
        if cfg.think == "vocab" and think_id is not None and think_id not in ids[-4:]:
            ids += self.encode(THINK + "\n")
        return ids


def _turn_parts(tokenizer: Any) -> tuple[str, str]:
    """The text a chat template puts before and after one user message (generation prompt
    included), so that worked examples can be written as the model would see a real turn."""
    mark = "\x00QUESTION\x00"
    if not getattr(tokenizer, "chat_template", None):
        return "User: ", "\n\nAssistant:"
    text = tokenizer.apply_chat_template([{"role": "user", "content": mark}], tokenize=False,
                                         add_generation_prompt=True)
    before, _, after = str(text).partition(mark)
    return before, after
