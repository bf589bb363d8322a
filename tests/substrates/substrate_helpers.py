"""Helpers for substrate tests: a toy task and readers of scripted requests."""

from __future__ import annotations

import re

from hivethink.backends.base import GenRequest
from hivethink.tasks.base import Instance


class ToyTask:
    """Answers are written ``ANSWER: <token>``; the target is "4"."""

    name = "toy"

    def generate(self, n: int, seed: int) -> list[Instance]:
        return [
            Instance(task="toy", id=f"toy-{seed}-{i}", prompt="What is 2+2?", target="4")
            for i in range(n)
        ]

    def extract(self, text: str) -> str | None:
        found = re.findall(r"ANSWER:\s*(\S+)", text)
        return found[-1] if found else None

    def score(self, instance: Instance, answer: str | None) -> float:
        return float(answer == instance.target)


def speaker(request: GenRequest) -> str:
    """The agent a request belongs to: the name after 'You are' in the system prompt."""
    match = re.search(r"You are (\w+)", request.messages[0]["content"])
    return match.group(1) if match else "?"


def last_user(request: GenRequest) -> str:
    """The newest message the agent was shown."""
    return request.messages[-1]["content"]


def text_of(request: GenRequest) -> str:
    """Everything the agent was shown."""
    return "\n".join(m["content"] for m in request.messages)
