"""``agentsnet``: the AgentsNet protocol (floriangroetschla/AgentsNet, ``LiteralMessagePassing.py``).

One agent per graph node, each with one growing conversation (every call carries its whole
history, failed replies and retry prompts included). Rounds for R = the instance's rounds:

- bootstrap (step 0): the system prompt (the task, N, the agent's name, its neighbours, R) and a
  request for the first messages;
- steps 1..R-1: the messages addressed to the agent in the previous step, one block per
  neighbour that sent one (in the agent's neighbour order), a line naming the silent
  neighbours, the chain-of-thought and JSON reminders, the rounds left, the neighbour list and,
  with one round left, a last-chance sentence;
- step R: the last messages and the final question: answer after the marker
  ``### Final Answer ###`` with one of the valid options (listed, comma-separated).

An agent makes R+1 calls plus retries. A reply's messages are read by the published parser
(:func:`parse_messages`); a final answer by :func:`parse_answer`. After every agent's first
attempt in a step, each agent whose reply could not be read gets ONE retry message appended to
its conversation; a second failure sends nothing (``{}``) or gives no final answer. Messages
to known names that are not neighbours are accepted and never delivered (the trace keeps them:
a ``message`` event with no recipients and ``data["to"]``). Every call's events say its phase
(``messages`` or ``answer``) and attempt (1, or 2 for the retry).

The system prompt's JSON example ends its last entry with a trailing comma, as published (it is
not valid JSON under the published parser: models that copy it fail to parse, which feeds the
published failure counters).

Decoding: no per-call cap in the published code; here ``max_tokens`` (4096) unless the grid's
budget is smaller. No temperature is set in the published code, so each provider's default
applies (OpenAI and Anthropic 1.0; the published runs' Gemini client 0.7): with
``provider_temperature`` (default) hivethink sends none either (the openai backend omits it,
the local backend samples as the model's generation config says); ``provider_temperature=False``
samples at ``temperature``.

Named variants: ``cot=False`` (no chain-of-thought request, a published option);
``messages="lenient"`` (the last JSON object of the reply, string values only, names checked
against the neighbours only); ``answer="bounded"`` (an option must end at a word boundary, so
"Group 12" is not read as "Group 1") or ``answer="lenient"`` (also case-insensitive).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import ClassVar

from hivethink import prompts
from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Messages, Recorder, SubstrateBase, find_json
from hivethink.tasks._common import NAMES
from hivethink.tasks.base import Instance, Task
from hivethink.tasks.graph import GraphOutcome, Network, network, task_texts

MARKER = "### Final Answer ###"
MESSAGE_PARSERS = ("published", "lenient")
ANSWER_PARSERS = ("published", "bounded", "lenient")

BOOK = prompts.book(
    "agentsnet",
    {
        "system": ["task", "n", "name", "neighbours", "rounds", "goal"],
        "first": ["cot"],
        "cot": [],
        "cot_final": [],
        "received": [],
        "received_last": [],
        "message": ["sender", "text"],
        "silent": ["names"],
        "request": ["cot", "rounds_left", "neighbours"],
        "last_chance": [],
        "final": ["cot_final", "question", "marker", "options"],
        "retry_messages": [],
        "retry_answer": [],
    },
)


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def parse_messages(reply: str, known: frozenset[str]) -> dict[str, str] | None:
    """The published parser. Literal backslash-n in the reply becomes a newline first; the
    candidates are, for every ``{``, the text from it to the reply's last ``}``; the first
    candidate that strict JSON reads as an object whose keys are all known agent names
    (case-sensitive) and whose values are all strings is the agent's messages. None when there
    is none. ``{}`` passes (the agent sends nothing, without a retry)."""
    text = reply.replace("\\n", "\n")
    end = text.rfind("}")
    decoder = json.JSONDecoder()
    start = text.find("{")
    while 0 <= start < end:
        # a candidate reads as JSON iff one value starts at its "{" and only JSON whitespace
        # follows it up to the last "}" (decoding in place: no copy of the text per candidate)
        try:
            obj, stop = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            obj, stop = None, -1
        if (
            stop > start
            and _JSON_SPACE.fullmatch(text, stop, end + 1)
            and isinstance(obj, dict)
            and all(k in known for k in obj)
            and all(isinstance(v, str) for v in obj.values())
        ):
            return obj
        start = text.find("{", start + 1)
    return None


def parse_messages_lenient(reply: str, neighbours: list[str]) -> dict[str, str] | None:
    """Variant: the first JSON object anywhere in the reply; its string values for neighbours
    (other keys dropped). None without an object, or when none of its keys is a neighbour."""
    obj = find_json(reply, dict)
    if obj is None:
        return None
    out = {k: v for k, v in obj.items() if k in neighbours and isinstance(v, str)}
    return out if out or not obj else None


def parse_answer(reply: str, options: list[str], mode: str = "published") -> str | None:
    """The option after the first marker that one follows: the marker, optional whitespace,
    then the options tried in the order offered. ``published``: case-sensitive, nothing
    required after the option (so "10" reads as "1"); ``bounded``: the option must end at a
    word boundary; ``lenient``: bounded and case-insensitive. Returns the option as offered."""
    boundary = "" if mode == "published" else r"(?!\w)"
    pattern = re.escape(MARKER) + r"\s*(" + "|".join(map(re.escape, options)) + ")" + boundary
    match = re.search(pattern, reply, re.IGNORECASE if mode == "lenient" else 0)
    if match is None:
        return None
    return next(o for o in options if o.lower() == match.group(1).lower())


@dataclass
class AgentsNet(SubstrateBase):
    """Parameters: ``cot``, ``messages``, ``answer``, ``provider_temperature`` (see the module
    docstring), ``max_tokens``."""

    name = "agentsnet"
    kind: ClassVar[str] = "graph"
    prompt_books: ClassVar[tuple[str, ...]] = ("agentsnet", "agentsnet-tasks")
    temperature: float = 1.0  # used only with provider_temperature=False
    provider_temperature: bool = True
    cot: bool = True
    messages: str = "published"
    answer: str = "published"
    max_tokens: int = 4096

    def __post_init__(self) -> None:
        if self.messages not in MESSAGE_PARSERS:
            raise HivethinkError(
                f"agentsnet: messages must be one of {', '.join(MESSAGE_PARSERS)}, "
                f"not {self.messages!r}"
            )
        if self.answer not in ANSWER_PARSERS:
            raise HivethinkError(
                f"agentsnet: answer must be one of {', '.join(ANSWER_PARSERS)}, not {self.answer!r}"
            )
        if self.max_tokens < 1:
            raise HivethinkError("agentsnet: max_tokens must be at least 1")
        if self.provider_temperature and self.temperature != 1.0:
            raise HivethinkError(
                "agentsnet: temperature is used only with provider_temperature: false "
                "(the published runs send none)"
            )

    def run(
        self,
        instance: Instance,
        task: Task,
        backend: Backend,
        *,
        workers: int,
        budget: Budget,
        seed: int,
    ) -> SampleResult:
        net = network(instance)
        temperature = None if self.provider_temperature else self.temperature
        rec = Recorder(backend, budget, seed=seed, temperature=temperature, probe=instance.probe)
        run = _Run(self, net, rec)
        answers = run.play()
        rec.answers(answers, step=net.rounds)
        outcome = GraphOutcome(answers=answers, **run.counts)
        info = {"rounds": run.steps_done, "budget_exhausted": run.steps_done < net.rounds + 1}
        result = rec.finish(None, agent_answers=dict(answers), info=info)
        result.outcome = outcome
        return result


class _Run:
    """The state of one AgentsNet run: conversations, the last messages sent, the counters."""

    def __init__(self, preset: AgentsNet, net: Network, rec: Recorder) -> None:
        self.preset, self.net, self.rec = preset, net, rec
        self.known = frozenset(NAMES) | frozenset(net.nodes)
        self.history: dict[str, Messages] = {}
        self.sent: dict[str, dict[str, str]] = {v: {} for v in net.nodes}
        self.counts = dict.fromkeys(
            ("unparsed_messages", "unparsed_after_retry", "answer_retries", "answers_missing",
             "fallbacks", "foreign_keys"), 0,
        )  # fmt: skip
        self.steps_done = 0

    def play(self) -> dict[str, str | None]:
        net, cot = self.net, self.preset.cot
        for v in net.nodes:
            texts = task_texts(net, v)
            system = BOOK.render(
                "system", task=texts["task"], n=len(net.nodes), name=v,
                neighbours=", ".join(net.neighbours[v]), rounds=net.rounds, goal=texts["goal"],
            )  # fmt: skip
            first = BOOK.render("first", cot=BOOK.render("cot") if cot else "")
            self.history[v] = [{"role": "system", "content": system}, {"role": "user", "content": first}]
        self._message_step(0, {v: [] for v in net.nodes})
        for step in range(1, net.rounds + 1):
            if self.rec.exhausted:
                return dict.fromkeys(net.nodes)
            inbox = self._inboxes()
            for v in net.nodes:
                self.history[v].append({"role": "user", "content": self._round_prompt(v, step, inbox[v])})
            if step < net.rounds:
                self._message_step(step, {v: [s for s, _ in inbox[v]] for v in net.nodes})
            else:
                return self._answer_step(step, {v: [s for s, _ in inbox[v]] for v in net.nodes})
        return dict.fromkeys(net.nodes)

    def _inboxes(self) -> dict[str, list[tuple[str, str]]]:
        """For each agent, (neighbour, message) for every neighbour whose last messages were
        addressed to it, in the agent's neighbour order."""
        return {
            v: [(u, self.sent[u][v]) for u in self.net.neighbours[v] if v in self.sent[u]]
            for v in self.net.nodes
        }

    def _round_prompt(self, v: str, step: int, inbox: list[tuple[str, str]]) -> str:
        net, cot = self.net, self.preset.cot
        rounds_left = net.rounds - step
        head = BOOK.render("received" if rounds_left else "received_last")
        blocks = "".join(BOOK.render("message", sender=u, text=t) for u, t in inbox)
        silent = [u for u in net.neighbours[v] if u not in dict(inbox)]
        quiet = BOOK.render("silent", names=", ".join(silent)) if silent else ""
        if rounds_left:
            ask = BOOK.render(
                "request", cot=BOOK.render("cot") if cot else "", rounds_left=rounds_left,
                neighbours=", ".join(net.neighbours[v]),
            )  # fmt: skip
            if rounds_left == 1:
                ask += BOOK.render("last_chance")
        else:
            ask = BOOK.render(
                "final", cot_final=BOOK.render("cot_final") if cot else "",
                question=task_texts(net, v)["question"], marker=MARKER,
                options=", ".join(net.options(v)),
            )  # fmt: skip
        return head + blocks + quiet + ask

    def _call(
        self, step: int, agents: list[str], seen: dict[str, list[str]], phase: str, attempt: int
    ) -> dict[str, str]:
        calls = [Call(v, list(self.history[v]), seen=seen.get(v)) for v in agents]
        texts = self.rec.round(calls, step=step, max_tokens=self.preset.max_tokens, phase=phase, attempt=attempt)
        for v, text in zip(agents, texts, strict=True):
            self.history[v].append({"role": "assistant", "content": text})
        self.steps_done = step + 1
        return dict(zip(agents, texts, strict=True))

    def _read_messages(self, v: str, text: str) -> dict[str, str] | None:
        if self.preset.messages == "lenient":
            return parse_messages_lenient(text, self.net.neighbours[v])
        return parse_messages(text, self.known)

    def _message_step(self, step: int, seen: dict[str, list[str]]) -> None:
        """Every agent writes its messages; one retry for replies that cannot be read."""
        replies = self._call(step, self.net.nodes, seen, "messages", 1)
        parsed = {v: self._read_messages(v, t) for v, t in replies.items()}
        failed = [v for v, p in parsed.items() if p is None]
        self.counts["unparsed_messages"] += len(failed)
        self.counts["fallbacks"] += len(failed)
        for v in failed:
            self.rec.error(v, "messages could not be parsed; one retry", step=step)
            self.history[v].append({"role": "user", "content": BOOK.render("retry_messages")})
        if failed:
            for v, text in self._call(step, failed, {}, "messages", 2).items():
                parsed[v] = self._read_messages(v, text)
                if parsed[v] is None:
                    self.counts["unparsed_after_retry"] += 1
                    self.rec.error(v, "messages could not be parsed after the retry; sends nothing", step=step)
        for v in self.net.nodes:
            self.sent[v] = parsed[v] or {}
            for u, text in self.sent[v].items():
                if u in self.net.neighbours[v]:
                    self.rec.event("message", v, text, step=step, recipients=[u])
                else:  # accepted by the parser, delivered to nobody
                    self.counts["foreign_keys"] += 1
                    self.rec.event("message", v, text, step=step, recipients=[],
                                   data={"to": u, "delivered": False})  # fmt: skip

    def _answer_step(self, step: int, seen: dict[str, list[str]]) -> dict[str, str | None]:
        """Every agent gives its final answer; one retry for answers that cannot be read."""
        mode, net = self.preset.answer, self.net
        replies = self._call(step, net.nodes, seen, "answer", 1)
        answers = {v: parse_answer(t, net.options(v), mode) for v, t in replies.items()}
        failed = [v for v, a in answers.items() if a is None]
        self.counts["answer_retries"] += len(failed)
        self.counts["fallbacks"] += len(failed)
        for v in failed:
            self.rec.error(v, "final answer could not be parsed; one retry", step=step)
            self.history[v].append({"role": "user", "content": BOOK.render("retry_answer")})
        if failed:
            for v, text in self._call(step, failed, {}, "answer", 2).items():
                answers[v] = parse_answer(text, net.options(v), mode)
                if answers[v] is None:
                    self.counts["answers_missing"] += 1
                    self.rec.error(v, "no valid final answer after the retry", step=step)
        return answers
