"""Tiny fake task, substrate and backend for the lab and report tests (no model, no registry)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hivethink import prompts
from hivethink.backends.base import Completion, GenRequest
from hivethink.lab.grid import Factories
from hivethink.substrates.base import Budget, SampleResult
from hivethink.tasks.base import Instance
from hivethink.trace import Event

NAMES = ("Alice", "Bob", "Carol", "Dave")
# A prompt book for :class:`PromptedSubstrate`; it has no built-in texts, so a run using it needs
# a prompts directory (``prompts:`` / ``--prompts``) holding ``lab-fake/ask.txt``.
BOOK = prompts.book("lab-fake", {"ask": ["prompt"]})
_COUNTING = threading.Lock()  # guards the call counters of every EchoBackend (module-level: a
# backend stays picklable)


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
    delay_s: float = 0.0  # per call, to let concurrent calls overlap
    requests: list[GenRequest] = field(default_factory=list)
    calls: int = 0
    max_inflight: int = 0  # most calls running at once (concurrency reached the backend)
    inflight: int = 0

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        with _COUNTING:
            self.calls += 1
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            time.sleep(self.delay_s)
            out = []
            for req in requests:
                self.requests.append(req)
                a, b = (int(x) for x in re.findall(r"\d+", req.messages[-1]["content"])[:2])
                text = self.reply.format(target=a + b)
                out.append(
                    Completion(text=text, prompt_tokens=5, completion_tokens=len(text.split()))
                )
            return out
        finally:
            with _COUNTING:
                self.inflight -= 1


@dataclass
class FakeSubstrate:
    """Every worker answers once (one batched call); ``fail_on`` instance ids raise; ``extra``
    is appended to the first worker's text; ``delay`` seconds of sleep per sample, plus
    ``stagger`` x (seed mod 3) (so that samples started together finish out of order)."""

    name: str = "fake"
    delay: float = 0.0
    fail_on: tuple[str, ...] = ()
    extra: str = ""
    stagger: float = 0.0

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
        time.sleep(self.delay + self.stagger * (seed % 3))
        names = NAMES[:workers]
        requests = [
            GenRequest(
                messages=[{"role": "user", "content": self.ask(instance)}],
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

    def ask(self, instance: Instance) -> str:
        return instance.prompt


@dataclass
class PromptedSubstrate(FakeSubstrate):
    """:class:`FakeSubstrate` asking through the ``lab-fake`` prompt book."""

    prompt_books: ClassVar[tuple[str, ...]] = ("lab-fake",)

    def ask(self, instance: Instance) -> str:
        return BOOK.render("ask", prompt=instance.prompt)


@dataclass
class SnapshotSubstrate:
    """Decodes one word per forward pass: each worker's reply cut to ``budget.passes`` words (all
    workers side by side, so passes = the longest reply). With ``snapshots = True`` it fills
    ``at_budget`` from the same decode, each snapshot exactly what a run at that budget gives."""

    name: str = "snap"
    snapshots: ClassVar[bool] = True

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
        assert budget.passes is not None and budget.match == "passes"
        names = NAMES[:workers]
        request = GenRequest([{"role": "user", "content": instance.prompt}], seed=seed)
        replies = [c.text.split() for c in backend.generate([request] * workers)]
        result = self._cut(instance, task, names, replies, budget.passes)
        result.at_budget = {b: self._cut(instance, task, names, replies, b) for b in budget.snapshots}
        return result

    @staticmethod
    def _cut(
        instance: Instance, task: Any, names: Sequence[str], replies: list[list[str]], passes: int
    ) -> SampleResult:
        texts = [" ".join(words[:passes]) for words in replies]
        events = [Event(kind="prompt", worker=n, text=instance.prompt) for n in names]
        answers = {}
        for n, text in zip(names, texts, strict=True):
            events.append(Event(kind="step", worker=n, text=text, step=0))
            answers[n] = task.extract(text)
            events.append(Event(kind="answer", worker=n, text=answers[n] or ""))
        events.append(Event(kind="answer", worker="team", text=answers[names[0]] or ""))
        used = [min(len(words), passes) for words in replies]
        return SampleResult(
            events=events,
            answer=answers[names[0]],
            agent_answers=answers,
            sequential_passes=max(used),
            sequential_calls=1,
            tokens=sum(used),
        )


@dataclass
class PlainSnapshotSubstrate(SnapshotSubstrate):
    """The same decode without snapshots: the lab runs it once per budget."""

    snapshots: ClassVar[bool] = False


@dataclass
class Calls:
    """How often each factory was called (backends must be built once per model)."""

    backends: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    built: list[EchoBackend] = field(default_factory=list)


def fake_factories(calls: Calls | None = None, **substrate_defaults: Any) -> Factories:
    """Factories building the fakes above; substrate params from the config override the defaults
    (substrates ``snap`` / ``snap-plain`` and ``prompted`` are the classes of those names)."""
    calls = calls if calls is not None else Calls()

    def backend(kind: str, **params: Any) -> EchoBackend:
        calls.backends.append((kind, params))
        if kind != "echo":
            raise ValueError(f"unknown backend kind {kind!r}")
        calls.built.append(EchoBackend(**params))
        return calls.built[-1]

    def task(name: str, **params: Any) -> AddTask:
        if name != "add":
            raise ValueError(f"unknown task {name!r}")
        return AddTask(**params)

    def substrate(name: str, **params: Any) -> Any:
        if name in ("snap", "snap-plain"):
            return (SnapshotSubstrate if name == "snap" else PlainSnapshotSubstrate)(name, **params)
        kind = PromptedSubstrate if name == "prompted" else FakeSubstrate
        return kind(name=name, **{**substrate_defaults, **params})

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
