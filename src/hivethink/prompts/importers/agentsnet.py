"""AgentsNet (floriangroetschla/AgentsNet @ 269f576): the ``agentsnet`` and ``agentsnet-tasks`` books.

Every text lives in ``LiteralMessagePassing.py``, built at run time: ``PromptTemplate`` f-string
templates and attributes set in ``__init__`` (the system prompt, the first request, the
chain-of-thought requests, the final-answer format), f-strings in ``message_passing`` (the round
prompt) and the retry messages in the fallbacks; the task texts are attributes the task classes
(``Consensus``, ``LeaderElection``, ``Matching``, ``Coloring``, ``VertexCover``) set in their
``__init__``. The builder imports the file from the checkout with stand-ins for LangChain and
LangGraph (``PromptTemplate`` formats as LangChain's f-string templates do, with
``str.format``; the chat app keeps one conversation per agent as LangGraph's ``MessagesState``
with a ``MemorySaver`` does) and:

- formats the templates with holes for their fields;
- runs ``message_passing`` with holes for a neighbour's name and message, the chain-of-thought
  request, the question and the options, once per shape (messages or silence, rounds left 7, 8,
  1 and 0), and cuts the prompts into hivethink's parts: the header, one message block, the
  silence line, the request (the rounds left where 7 and 8 differ), the last-chance sentence and
  the final question; it checks that hivethink's assembly of the parts gives the authors'
  prompts back;
- runs the fallbacks for the retry messages;
- builds each task class for the task texts (``Coloring`` with 7 and 8 groups: ``{{colors}}``).

The single-solver baseline prompt is hivethink's own.
"""

from __future__ import annotations

import asyncio
import string
from pathlib import Path
from typing import Any

from hivethink.prompts.importers.child import (
    BuildError,
    BuiltText,
    authors_module,
    built,
    hole,
    number_hole,
    stub_modules,
)
from hivethink.prompts.importers.core import Built, Origin, System, run_child

FILE = "LiteralMessagePassing.py"
CLASSES = {"consensus": "Consensus", "leader_election": "LeaderElection", "matching": "Matching",
           "coloring": "Coloring", "vertex_cover": "VertexCover"}  # main.py's TASKS
ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class _Message:
    type = "human"

    def __init__(self, content: str) -> None:
        self.content = content


class SystemMessage(_Message):
    type = "system"


class HumanMessage(_Message):
    type = "human"


class AIMessage(_Message):
    type = "ai"


class PromptTemplate:
    """LangChain's ``PromptTemplate`` as the authors use it: an f-string template, formatted as
    LangChain formats one (its formatter is ``string.Formatter``)."""

    def __init__(self, template: str) -> None:
        self.template = template

    @classmethod
    def from_template(cls, template: str) -> PromptTemplate:
        return cls(template)

    def format(self, **values: Any) -> str:
        return string.Formatter().format(self.template, **values)


class _Model:
    """The chat model: answers from ``reply(agent, messages)`` and records every request."""

    def __init__(self) -> None:
        self.reply: Any = lambda agent, messages: "{}"
        self.calls: list[tuple[str, list[dict[str, str]]]] = []
        self.agent = ""

    def with_retry(self, **_: Any) -> _Model:
        return self

    def invoke(self, messages: list[_Message]) -> AIMessage:
        shown = [{"role": ROLES[m.type], "content": m.content} for m in messages]
        self.calls.append((self.agent, shown))
        return AIMessage(self.reply(self.agent, shown))


MODEL = _Model()


class _Graph:
    """LangGraph's ``StateGraph`` with a ``MemorySaver``, as the authors wire it: one node that
    calls the model on the thread's whole conversation, which grows by the input and the reply."""

    def __init__(self, **_: Any) -> None:
        self.node: Any = None
        self.threads: dict[str, list[_Message]] = {}

    def add_edge(self, *_: Any) -> None:
        pass

    def add_node(self, _name: str, node: Any) -> None:
        self.node = node

    def compile(self, **_: Any) -> _Graph:
        return self

    async def ainvoke(self, given: dict[str, list[_Message]], config: dict[str, Any]) -> dict[str, list[_Message]]:
        thread = self.threads.setdefault(config["configurable"]["thread_id"], [])
        thread += given["messages"]
        MODEL.agent = config["configurable"]["thread_id"]
        thread.append(self.node({"messages": list(thread)})["messages"])
        return {"messages": list(thread)}


def messages_to_dict(messages: list[_Message]) -> list[dict[str, Any]]:
    return [{"type": m.type, "data": {"content": m.content}} for m in messages]


def _lmp(root: Path) -> Any:
    """``LiteralMessagePassing`` from ``root``, with the stand-ins."""
    standins: dict[str, dict[str, Any]] = {
        "langchain.schema": {"SystemMessage": SystemMessage, "HumanMessage": HumanMessage, "AIMessage": AIMessage,
                             "messages_to_dict": messages_to_dict},
        "langchain.prompts": {"PromptTemplate": PromptTemplate},
        "langchain.chat_models": {"init_chat_model": lambda *a, **k: MODEL},
        "langgraph.checkpoint.memory": {"MemorySaver": lambda: None},
        "langgraph.graph": {"START": "__start__", "MessagesState": dict, "StateGraph": _Graph},
        "langchain_core.rate_limiters": {"InMemoryRateLimiter": lambda **k: None},
        "langchain_ollama": {"ChatOllama": lambda **k: MODEL},
    }
    stub_modules(("langchain", "langgraph", "langgraph.checkpoint", "langchain_core"), **standins)
    return authors_module(root, "LiteralMessagePassing")


def _graph(names: list[str], edges: list[tuple[int, int]]) -> Any:
    import networkx as nx

    g: Any = nx.Graph()
    for i, name in enumerate(names):
        g.add_node(i, name=name)
    g.add_edges_from(edges)
    return g


def _task(lmp: Any, kind: str, graph: Any, rounds: int, **extra: Any) -> Any:
    model = next(iter(lmp.RATE_LIMITER_KWARGS))  # any model the file knows (none is called)
    return getattr(lmp, CLASSES[kind])(graph, rounds, model_name=model, model_provider="openai", **extra)


def _said(agent: Any, call: Any) -> str:
    """The user message ``call`` (a coroutine of ``agent``) sends."""
    before = len(MODEL.calls)
    asyncio.run(call)
    if len(MODEL.calls) != before + 1:
        raise BuildError("the authors' code did not make the one model call hivethink expects")
    return MODEL.calls[-1][1][-1]["content"]


def _cut(text: str, marker: str) -> tuple[str, str]:
    if marker not in text:
        raise BuildError(f"the round prompt has no {marker!r} where hivethink expects it")
    at = text.index(marker)
    return text[:at], text[at:]


def build(root: Path) -> dict[str, BuiltText]:
    lmp = _lmp(root)
    out: dict[str, BuiltText] = {}
    g = _graph(["Ada", "Bo", "Cy"], [(0, 1), (1, 2)])
    agent = _task(lmp, "consensus", g, 3)
    fields = {"short_task_description": "task", "long_problem_description": "goal", "num_agents": "n",
              "own_name": "name", "neighbors": "neighbours", "num_rounds": "rounds"}
    system = agent.bootstrap_template.format(**{f: hole(p) for f, p in fields.items()})
    given = agent.get_bootstrap_parameters(1)
    asyncio.run(agent.bootstrap_node(1))
    [(_, sent)] = [c for c in MODEL.calls if c[0] == "1"]
    out["agentsnet/system"] = built(system, (sent[0]["content"], {fields[f]: v for f, v in given.items()}))
    out["agentsnet/first"] = built(agent.bootstrap_ask_for_first_messages.format(cot_prompt=hole("cot")),
                                   (sent[1]["content"], {"cot": agent.cot_prompt}))
    out["agentsnet/cot"] = built(agent.cot_prompt)
    out["agentsnet/cot_final"] = built(agent.cot_prompt_final_prediction)
    out["agentsnet/retry_messages"] = built(_said(agent, agent.fallback_json_request(1)))
    out["agentsnet/retry_answer"] = built(_said(agent, agent.fallback_answer_request(1)))

    # the round prompts of Ada, whose one neighbour is called "sender", cut into hivethink's parts
    probe = _task(lmp, "consensus", _graph([hole("name"), hole("sender")], [(0, 1)]), 9)
    probe.cot_prompt, probe.cot_prompt_final_prediction = hole("cot"), hole("cot_final")
    probe.question_for_prediction = hole("question")
    probe.get_valid_answers = lambda node: [hole("options")]
    message = {hole("sender"): hole("text")}
    silent7, ask7 = _cut(_said(probe, probe.message_passing(0, 7, {})), hole("cot"))
    _, ask8 = _cut(_said(probe, probe.message_passing(0, 8, {})), hole("cot"))
    told7, ask = _cut(_said(probe, probe.message_passing(0, 7, message)), hole("cot"))
    silent1, ask1 = _cut(_said(probe, probe.message_passing(0, 1, {})), hole("cot"))
    final = _said(probe, probe.message_passing(0, 0, message))
    if ask != ask7 or silent1 != silent7:
        raise BuildError("message_passing's request depends on the messages received, or its header on the rounds "
                         "left; hivethink's does not")
    n = 0
    while n < min(len(silent7), len(told7)) and silent7[n] == told7[n]:
        n += 1
    received, silence, block = silent7[:n], silent7[n:], told7[n:]
    request = number_hole({7: ask7, 8: ask8}, "rounds_left")
    last_chance = ask1.removeprefix(request.replace(hole("rounds_left"), "1"))
    if block not in final or last_chance == ask1:
        raise BuildError("the last round's prompt or the last-chance sentence is not where hivethink expects it")
    received_last, closing = final.split(block, 1)
    parts = {"received": received, "received_last": received_last, "message": block,
             "silent": silence.replace(hole("sender"), hole("names")),
             "request": request.replace(hole("sender"), hole("neighbours")), "last_chance": last_chance,
             "final": closing}
    # hivethink's assembly (substrates.agentsnet._round_prompt) must give the authors' prompts back
    for whole, again in ((silent7 + ask7, received + silence + ask7), (told7 + ask, received + block + ask),
                         (silent1 + ask1, received + silence + request.replace(hole("rounds_left"), "1") + last_chance),
                         (final, received_last + block + closing)):
        if whole != again:
            raise BuildError("message_passing's prompt is not hivethink's assembly of header, messages, silence "
                             "line and request")
    out |= {f"agentsnet/{k}": built(v) for k, v in parts.items()}

    # the task texts: each task class's descriptions (Coloring with 7 and 8 groups)
    for kind in CLASSES:
        texts = {}
        for colors in (7, 8):
            task = _task(lmp, kind, g, 3, **({"num_colors": colors} if kind == "coloring" else {}))
            texts[colors] = (task.short_task_description, task.long_problem_description, task.question_for_prediction)
        for i, key in enumerate(("task", "goal", "question")):
            versions = {colors: t[i] for colors, t in texts.items()}
            text = versions[7] if versions[7] == versions[8] else number_hole(versions, "colors")
            out[f"agentsnet-tasks/{key}_{kind}"] = built(text)
    return out


ORIGIN = Origin(
    repository="floriangroetschla/AgentsNet",
    kind="git",
    pinned="269f576e966f441e54ba72a653769663a4f4322c",
    marks=(FILE, "utils.py", "main.py"),
    texts={
        "agentsnet/system": Built(FILE, "LiteralMessagePassing.bootstrap_template"),
        "agentsnet/first": Built(FILE, "LiteralMessagePassing.bootstrap_ask_for_first_messages"),
        "agentsnet/cot": Built(FILE, "LiteralMessagePassing.cot_prompt"),
        "agentsnet/cot_final": Built(FILE, "LiteralMessagePassing.cot_prompt_final_prediction"),
        **{f"agentsnet/{k}": Built(FILE, f"LiteralMessagePassing.message_passing: {what}") for k, what in (
            ("received", "the header"), ("received_last", "the last round's header"),
            ("message", "one neighbour's message"), ("silent", "the silent neighbours' line"),
            ("request", "the request for messages"), ("last_chance", "the last-chance sentence"),
            ("final", "the final question (cot_prompt_final_prediction and format_instructions)"))},
        "agentsnet/retry_messages": Built(FILE, "LiteralMessagePassing.fallback_json_request"),
        "agentsnet/retry_answer": Built(FILE, "LiteralMessagePassing.fallback_answer_request"),
        **{f"agentsnet-tasks/{key}_{kind}": Built(FILE, f"{cls}.{attr}")
           for kind, cls in CLASSES.items()
           for key, attr in (("task", "short_task_description"), ("goal", "long_problem_description"),
                             ("question", "question_for_prediction"))},
    },
    builder=f"{__name__}:build",
)

SYSTEM = System(name="agentsnet", books=("agentsnet", "agentsnet-tasks"), declares="hivethink.substrates.agentsnet",
                origins=(ORIGIN,))


# -- the fidelity check: hivethink against the published driver, on the same replies ------------

NAMES = ["James", "Mary", "John"]  # names the published parser knows (utils.names)
EDGES = [(0, 1), (1, 2)]
ROUNDS = 3


def reply(messages: list[dict[str, str]]) -> str:
    """The same reply for every agent, by how many it has given: messages to everyone (the
    neighbours get them), nothing, an unreadable reply and its retry, an unreadable final answer
    and its retry."""
    sent = sum(m["role"] == "assistant" for m in messages)
    everyone = "{" + ", ".join(f'"{n}": "round {sent} from a neighbour"' for n in NAMES) + "}"
    return [everyone, "{}", "no JSON this time", everyone, "I would say one.", "### Final Answer ### 1"][sent]


def replay(root: Path, given: dict[str, Any]) -> dict[str, list[list[list[dict[str, str]]]]]:
    """In the child: the published driver (``main.py``'s steps: the task class, ``bootstrap``,
    then ``pass_messages``) for each task kind on a path of three agents, every model call
    answered by :func:`reply`; -> per kind, each agent's requests in node order."""
    lmp = _lmp(root)
    MODEL.reply = lambda agent, messages: reply(messages)
    out = {}
    for kind in given["kinds"]:
        MODEL.calls.clear()
        task = _task(lmp, kind, _graph(given["names"], [tuple(e) for e in given["edges"]]), given["rounds"])
        asyncio.run(task.bootstrap())
        asyncio.run(task.pass_messages())
        out[kind] = [[shown for agent, shown in MODEL.calls if agent == str(i)] for i in range(len(given["names"]))]
    return out


def fidelity(root: Path) -> list[tuple[str, Any, Any]]:
    """Every request hivethink's ``agentsnet`` preset sends (with the prompts directory in use) for
    every task kind, against the published driver's on the same replies: (what, hivethink's, the
    authors')."""
    from hivethink.backends.fake import ScriptedBackend
    from hivethink.substrates import Budget, get_substrate
    from hivethink.tasks.base import Instance
    from hivethink.tasks.graph import GraphTask

    given = {"kinds": list(CLASSES), "names": NAMES, "edges": EDGES, "rounds": ROUNDS}
    published = run_child(f"{__name__}:replay", root, given, what="driver")
    out: list[tuple[str, Any, Any]] = []
    for kind, theirs in published.items():
        data = {"kind": kind, "nodes": NAMES, "edges": [[NAMES[a], NAMES[b]] for a, b in EDGES], "rounds": ROUNDS,
                "colors": 3}  # Coloring's published default: max degree + 1
        backend = ScriptedBackend(lambda request, i: reply(request.messages))
        get_substrate("agentsnet").run(Instance(task="graph", id="fidelity", prompt="", data=data),
                                       GraphTask(kind=kind), backend, workers=1, budget=Budget(), seed=0)
        ours: dict[str, list[list[dict[str, str]]]] = {}
        for request in backend.requests:  # an agent's requests share its system prompt
            ours.setdefault(request.messages[0]["content"], []).append(request.messages)
        out.append((f"{kind}: the number of agents called", len(ours), len(theirs)))
        for name, mine, them in zip(NAMES, ours.values(), theirs, strict=False):
            out.append((f"{kind}, {name}: the number of requests", len(mine), len(them)))
            out += [(f"{kind}, {name}: request {k + 1}", o, t) for k, (o, t) in enumerate(zip(mine, them, strict=False))]
    return out
