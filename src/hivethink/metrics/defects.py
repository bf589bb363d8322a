"""Defect attribution on a multi-agent trace (after Gao et al., arXiv 2505.18286, §11 of
protocols.md): the sample's dependency graph and node-, edge- and path-level defect labels.

**The graph** (:func:`dependency_graph`, a networkx ``DiGraph``). A node is one contribution:
one ``step`` event of an agent (id ``<worker>#<k>``, its k-th), or one team answer (``team#<k>``,
the team's ``answer`` event; a run of several tasks has one per task). An edge ``u -> v`` means v
*read* u: v's ``prompt`` event names u's worker in ``seen``, and u is that worker's newest
contribution before the prompt (its work on an earlier task, too: organisational memory). A
team answer reads the workers its event names in ``seen``, else every agent's newest
contribution. Substrates that record no ``seen`` (the shared cache, where everyone reads
everything as it is written) give a graph without edges. Node attributes: ``worker``,
``text``, ``answer`` (the task's extraction), ``correct`` (the task's score is 1; None without
an answer, without a task, or for a judged task), ``abstain`` (a ``role`` event with
``data["abstain"]``), ``failed`` (its call failed: an ``error`` event with ``data["backend"]``).

**Use.** v *used* u when v names u's worker or shares a word 4-gram with u that is not in the
task prompt (the same evidence the coordination metrics use for redundancy).

**Labels** (each a rule over the graph; ``correct`` needs an exact-answer task):

- node ``failed``: the contribution is empty or its call failed (abstentions are not failures);
- node ``origin``: its answer is wrong and no contribution it read holds that answer (the error
  starts here);
- edge ``ignored``: v read a usable (non-empty, not abstaining, not failed) u and shows no use
  of it (v a contribution, not the team answer);
- edge ``dropped``: u's answer is correct, v's is wrong, and v read fewer than ``fan_in``
  contributions;
- edge ``overloaded``: the same with ``fan_in`` or more inputs (a reader overwhelmed by many
  inputs, the paper's edge-level defect);
- path ``lost_correct``: a team answer is wrong and a correct contribution none of whose inputs
  was correct (where the correct answer first appeared) reaches it: the shortest such path;
- path ``propagated_error``: a team answer is wrong, its answer first appeared at an ``origin``
  node, and it travelled there through contributions that all repeat it, at least one of them by
  another worker: the shortest such path.

Only traces with at least two agents are attributed (a single agent's trace has no edges to
blame). ``chain_depth``: the most contributions in a chain in which each used the one before.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from hivethink.metrics.outcome import Metrics
from hivethink.metrics.text import normalize, text_ngrams, words
from hivethink.metrics.views import NON_AGENTS, agent_names
from hivethink.tasks.base import Instance, Task, is_judged
from hivethink.trace import Event

FAN_IN = 4  # inputs from which a reader that drops a correct answer counts as overloaded
USE_NGRAM = 4
NODE_LABELS = ("failed", "origin")
EDGE_LABELS = ("ignored", "dropped", "overloaded")
PATH_LABELS = ("lost_correct", "propagated_error")


def _is_team(node: str) -> bool:
    return node.startswith("team#")


def dependency_graph(
    events: Sequence[Event], task: Task | None = None, instance: Instance | None = None
) -> nx.DiGraph:
    """Who read whose output (module docstring)."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    scorable = task is not None and instance is not None and not is_judged(task)
    newest: dict[str, str] = {}  # worker -> its newest contribution
    count: dict[str, int] = {}
    reading: dict[str, list[str]] = {}  # worker -> what its coming contribution read
    teams = 0

    def correct(answer: str | None) -> bool | None:
        if not scorable or answer is None:
            return None
        assert task is not None and instance is not None
        return float(task.score(instance, answer)) >= 1.0

    for ev in events:
        agent = ev.worker not in NON_AGENTS
        if ev.kind == "prompt" and agent:
            reading[ev.worker] = [
                newest[w] for w in (ev.seen or []) if w in newest and w != ev.worker
            ]
        elif ev.kind == "step" and agent:
            count[ev.worker] = count.get(ev.worker, 0) + 1
            node = f"{ev.worker}#{count[ev.worker]}"
            answer = task.extract(ev.text) if task is not None and ev.text.strip() else None
            graph.add_node(
                node,
                worker=ev.worker,
                text=ev.text,
                answer=answer,
                correct=correct(answer),
                abstain=False,
                failed=not ev.text.strip(),
            )
            graph.add_edges_from((u, node) for u in reading.pop(ev.worker, []))
            newest[ev.worker] = node
        elif ev.kind == "role" and agent and ev.data.get("abstain") and ev.worker in newest:
            graph.nodes[newest[ev.worker]]["abstain"] = True
        elif ev.kind == "error" and agent and ev.data.get("backend") and ev.worker in newest:
            graph.nodes[newest[ev.worker]]["failed"] = True
        elif ev.kind == "answer" and ev.worker == "team":
            teams += 1
            node = f"team#{teams}"
            answer = None if ev.data.get("none") or not ev.text.strip() else ev.text
            ok = correct(answer)
            graph.add_node(
                node,
                worker="team",
                text=ev.text,
                answer=answer,
                correct=False if scorable and answer is None else ok,
                abstain=False,
                failed=False,
            )
            read = [newest[w] for w in ev.seen if w in newest] if ev.seen else list(newest.values())
            graph.add_edges_from((u, node) for u in read)
    return graph


@dataclass
class Attribution:
    """A sample's dependency graph with its defect labels."""

    graph: nx.DiGraph
    fan_in: int = FAN_IN
    nodes: dict[str, list[str]] = field(default_factory=dict)
    edges: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    paths: list[tuple[str, list[str]]] = field(default_factory=list)
    used: set[tuple[str, str]] = field(default_factory=set)

    def chain_depth(self) -> int:
        """The most contributions in a chain where each used the one before."""
        g = self.graph
        live = [
            n
            for n in g
            if not _is_team(n) and not g.nodes[n]["abstain"] and not g.nodes[n]["failed"]
        ]
        chain: nx.DiGraph[str] = nx.DiGraph()
        chain.add_nodes_from(live)
        chain.add_edges_from(e for e in self.used if e[0] in chain and e[1] in chain)
        return int(nx.dag_longest_path_length(chain)) + 1 if live else 0

    def metrics(self) -> Metrics:
        out: Metrics = {
            "graph_nodes": self.graph.number_of_nodes(),
            "graph_edges": self.graph.number_of_edges(),
            "fan_in_max": max((d for _, d in self.graph.in_degree()), default=0),
            "chain_depth": self.chain_depth(),
        }
        for kind, names, found in (
            ("node", NODE_LABELS, list(self.nodes.values())),
            ("edge", EDGE_LABELS, list(self.edges.values())),
            ("path", PATH_LABELS, [[label] for label, _ in self.paths]),
        ):
            for name in names:
                out[f"defect_{kind}_{name}"] = sum(name in labels for labels in found)
        return out

    def labels(self) -> dict[str, Any]:
        """The labelled parts as JSON (a results line's ``defects``)."""
        return {
            "nodes": [
                {"id": n, "worker": self.graph.nodes[n]["worker"], "labels": v}
                for n, v in self.nodes.items()
            ],
            "edges": [
                {"from": u, "to": v, "labels": labels} for (u, v), labels in self.edges.items()
            ],
            "paths": [{"label": label, "nodes": nodes} for label, nodes in self.paths],
        }


def _used(graph: nx.DiGraph, prompt: str) -> set[tuple[str, str]]:
    """The read edges with evidence of use (module docstring)."""
    shown = text_ngrams([prompt], USE_NGRAM)
    grams: dict[Hashable, set[tuple[str, ...]]] = {
        n: text_ngrams([graph.nodes[n]["text"]], USE_NGRAM) - shown for n in graph
    }
    said = {n: set(words(graph.nodes[n]["text"])) for n in graph}
    return {
        (u, v)
        for u, v in graph.edges
        if graph.nodes[u]["worker"].lower() in said[v] or grams[u] & grams[v]
    }


def attribute(
    events: Sequence[Event],
    task: Task | None = None,
    instance: Instance | None = None,
    fan_in: int = FAN_IN,
) -> Attribution | None:
    """The labelled dependency graph of a multi-agent trace; None with fewer than two agents."""
    if len(agent_names(events)) < 2:
        return None
    g = dependency_graph(events, task, instance)
    out = Attribution(g, fan_in, used=_used(g, instance.prompt if instance is not None else ""))
    attr = g.nodes

    def same(a: str | None, b: str | None) -> bool:
        return a is not None and b is not None and normalize(a) == normalize(b)

    for n in g:
        labels = []
        if attr[n]["failed"] and not _is_team(n):
            labels.append("failed")
        if (
            attr[n]["correct"] is False
            and not _is_team(n)
            and not any(same(attr[u]["answer"], attr[n]["answer"]) for u in g.predecessors(n))
        ):
            labels.append("origin")
        if labels:
            out.nodes[n] = labels
    for u, v in g.edges:
        labels = []
        usable = attr[u]["text"].strip() and not attr[u]["abstain"] and not attr[u]["failed"]
        reader = not _is_team(v) and attr[v]["text"].strip() and not attr[v]["abstain"]
        if usable and reader and (u, v) not in out.used:
            labels.append("ignored")
        if attr[u]["correct"] is True and attr[v]["correct"] is False:
            labels.append("overloaded" if g.in_degree(v) >= fan_in else "dropped")
        if labels:
            out.edges[(u, v)] = labels
    for team in (n for n in g if _is_team(n) and attr[n]["correct"] is False):
        upstream = nx.ancestors(g, team)
        firsts = [
            n
            for n in upstream
            if attr[n]["correct"] is True
            and not any(attr[p]["correct"] is True for p in g.predecessors(n))
        ]
        if firsts:
            path = min((nx.shortest_path(g, n, team) for n in firsts), key=lambda p: (len(p), p))
            out.paths.append(("lost_correct", path))
        answer = attr[team]["answer"]
        carriers = [n for n in upstream if same(attr[n]["answer"], answer)]
        sub = g.subgraph([*carriers, team])
        chains = [
            nx.shortest_path(sub, n, team)
            for n in carriers
            if "origin" in out.nodes.get(n, []) and nx.has_path(sub, n, team)
        ]
        chains = [
            p for p in chains if any(attr[m]["worker"] != attr[p[0]]["worker"] for m in p[1:-1])
        ]
        if chains:
            out.paths.append(("propagated_error", min(chains, key=lambda p: (len(p), p))))
    return out


def defect_metrics(
    events: Sequence[Event], task: Task | None = None, instance: Instance | None = None
) -> Metrics:
    """Graph size, ``chain_depth`` and the count of each defect label (``defect_<level>_<label>``;
    paths counted per label); all None for a trace with fewer than two agents."""
    found = attribute(events, task, instance)
    if found is None:
        empty = Attribution(nx.DiGraph()).metrics()
        return dict.fromkeys(empty)
    return found.metrics()
