"""Tiny fake task, substrate and backend for the lab and report tests (no model, no registry)."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hivethink.backends.base import Completion, GenRequest
from hivethink.lab.grid import Factories
from hivethink.substrates.base import Budget, SampleResult
from hivethink.tasks.base import Instance
from hivethink.trace import Event

NAMES = ("Alice", "Bob", "Carol", "Dave")


@dataclass
class AddTask:
    """``a + b`` problems; the answer is the last integer in a text."""

    name = "add"
    size: int = 10

    def generate(self, n: int, seed: int) -> list[Instance]:
        return [
            Instance(
                task=self.name,
                id=f"add-{self.size}-{seed}-{i}",
                prompt=f"Compute {i + seed} plus {self.size}.",
                target=str(i + seed + self.size),
            )
            for i in range(n)
        ]

    def extract(self, text: str) -> str | None:
        found = re.findall(r"-?\d+", text)
        return found[-1] if found else None

    def score(self, instance: Instance, answer: str | None) -> float:
        return 1.0 if answer is not None and answer.strip() == instance.target else 0.0


@dataclass
class EchoBackend:
    """Replies with ``reply`` (``{target}`` filled from the prompt's numbers); counts requests."""

    reply: str = "The answer is {target}."
    name: str = "echo"
    requests: list[GenRequest] = field(default_factory=list)

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        out = []
        for req in requests:
            self.requests.append(req)
            a, b = (int(x) for x in re.findall(r"\d+", req.messages[-1]["content"])[:2])
            text = self.reply.format(target=a + b)
            out.append(Completion(text=text, prompt_tokens=5, completion_tokens=len(text.split())))
        return out


@dataclass
class FakeSubstrate:
    """Every worker answers once (one batched call); ``fail_on`` instance ids raise; ``extra``
    is appended to the first worker's text; ``delay`` seconds of sleep per sample."""

    name: str = "fake"
    delay: float = 0.0
    fail_on: tuple[str, ...] = ()
    extra: str = ""

    def run(
        self,
        instance: Instance,
        task: Any,
        backend: Any,
        *,
        workers: int,
        budget: Budget,
        seed: int,
    ) -> SampleResult:
        if instance.id in self.fail_on:
            raise RuntimeError(f"boom on {instance.id}")
        time.sleep(self.delay)
        names = NAMES[:workers]
        requests = [
            GenRequest(
                messages=[{"role": "user", "content": instance.prompt}],
                max_tokens=budget.max_tokens,
                seed=seed,
            )
            for _ in names
        ]
        completions = backend.generate(requests)
        events = [Event(kind="prompt", worker=n, text=instance.prompt) for n in names]
        answers = {}
        for i, (n, c) in enumerate(zip(names, completions, strict=True)):
            text = c.text + (self.extra if i == 0 else "")
            events.append(Event(kind="step", worker=n, text=text, step=0))
            answers[n] = task.extract(c.text)
            events.append(Event(kind="answer", worker=n, text=answers[n] or ""))
        team = answers[names[0]]
        events.append(Event(kind="answer", worker="team", text=team or ""))
        return SampleResult(
            events=events,
            answer=team,
            agent_answers=answers,
            sequential_passes=max(c.completion_tokens for c in completions),
            sequential_calls=1,
            tokens=sum(c.completion_tokens for c in completions),
            prompt_tokens=5 * workers,
            wall_s=0.001,
            info={"rounds": 1, "flipped": False},
        )


@dataclass
class Calls:
    """How often each factory was called (backends must be built once per model)."""

    backends: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def fake_factories(calls: Calls | None = None, **substrate_defaults: Any) -> Factories:
    """Factories building the fakes above; substrate params from the config override the defaults."""
    calls = calls if calls is not None else Calls()

    def backend(kind: str, **params: Any) -> EchoBackend:
        calls.backends.append((kind, params))
        if kind != "echo":
            raise ValueError(f"unknown backend kind {kind!r}")
        return EchoBackend(**params)

    def task(name: str, **params: Any) -> AddTask:
        if name != "add":
            raise ValueError(f"unknown task {name!r}")
        return AddTask(**params)

    def substrate(name: str, **params: Any) -> FakeSubstrate:
        return FakeSubstrate(name=name, **{**substrate_defaults, **params})

    return Factories(get_backend=backend, get_task=task, get_substrate=substrate)


def config_dict(**overrides: Any) -> dict[str, Any]:
    """A small valid config: 1 model x 2 substrates x 2 worker counts x 1 task x 2 instances x 2 seeds."""
    base: dict[str, Any] = {
        "name": "t",
        "models": [{"kind": "echo"}],
        "substrates": ["fake", {"name": "other"}],
        "workers": [2, 3],
        "tasks": [{"name": "add", "n": 2}],
        "seeds": [0, 1],
        "budget": {"max_tokens": 16, "rounds": 1},
    }
    base.update(overrides)
    return base
