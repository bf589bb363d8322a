"""AgentsNet tasks: agents on the nodes of a graph solve a global problem by local messages.

Each agent knows N, its own name and its neighbours' names only. For ``rounds`` synchronous
rounds it sends a JSON object ``{neighbour_name: message}``; then each agent gives one final
answer (``final_question`` / ``parse_final``), and ``score_agents`` scores the answers together.

Scores (AgentsNet):

- consensus: 1 iff every agent answers, all with the same value of "0"/"1";
- leader_election: 1 iff every agent answers "Yes"/"No" and exactly one says "Yes";
- matching: fraction of consistent agents. An agent naming neighbour ``v`` is consistent iff
  ``v`` names it back; an agent answering "None" is consistent iff every neighbour is matched
  (sits in a mutual pair), i.e. it could not have joined a pair (maximality). A missing
  answer, or a name that is not a neighbour, is inconsistent;
- coloring (max degree + 1 colours "1".."k"): 0 unless every agent answers a valid colour, else
  the fraction of edges whose ends differ;
- vertex_cover ("Yes" = in the cover; a missing answer counts as "No"): edge coverage times the
  fraction of cover agents that are necessary (have a neighbour outside the cover, so dropping
  them uncovers an edge). An empty cover scores 0.

Rounds: 2*diameter+1 for consensus and leader election, and for every task on more than 16
nodes; otherwise the fixed counts the AgentsNet scripts use for small graphs: 4 rounds up to
4 nodes, 5 up to 8, 6 up to 16. ``rounds=`` overrides both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from random import Random
from typing import Any

import networkx as nx

from hivethink.errors import HivethinkError
from hivethink.tasks._common import (
    agent_names,
    instance_id,
    instance_rng,
    json_objects,
    params_of,
)
from hivethink.tasks.base import Instance

KINDS = ("consensus", "leader_election", "matching", "coloring", "vertex_cover")
GRAPHS = ("ws", "ba", "delaunay")
MAX_SIZE = 200

_DESCRIPTIONS = {
    "consensus": (
        "All agents must end up choosing the same value, either 0 or 1. Any common value is "
        "fine, but everybody must pick the same one."
    ),
    "leader_election": (
        "The agents must elect exactly one leader among all {n} agents: in the end exactly one "
        "agent says it is the leader and every other agent says it is not."
    ),
    "matching": (
        "The agents must form pairs of neighbours. Every agent is in at most one pair, the two "
        "members of a pair must name each other, and an agent may stay unpaired only when all "
        "of its neighbours are already paired with someone else."
    ),
    "coloring": (
        "Every agent must pick one of {colors} colours, numbered 1 to {colors}, so that no two "
        "neighbours pick the same colour."
    ),
    "vertex_cover": (
        "The agents must choose a group of coordinators so that for every pair of neighbours "
        "at least one of the two is a coordinator, and every coordinator has at least one "
        "neighbour who is not a coordinator (no coordinator is unnecessary)."
    ),
}

_QUESTIONS = {
    "consensus": "Which value do you choose? Answer 0 or 1.",
    "leader_election": "Are you the leader? Answer Yes or No.",
    "matching": (
        "Which neighbour are you paired with? Answer with that neighbour's name, or None if "
        "you are not in a pair."
    ),
    "coloring": "Which colour do you pick? Answer with a number from 1 to {colors}.",
    "vertex_cover": "Are you a coordinator? Answer Yes or No.",
}


# --- graphs ----------------------------------------------------------------------------------


def _orient(a: tuple[int, int], b: tuple[int, int], c: tuple[int, int]) -> int:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _in_circle(
    a: tuple[int, int], b: tuple[int, int], c: tuple[int, int], d: tuple[int, int]
) -> bool:
    """True iff ``d`` is strictly inside the circle through counter-clockwise ``a, b, c``."""
    adx, ady = a[0] - d[0], a[1] - d[1]
    bdx, bdy = b[0] - d[0], b[1] - d[1]
    cdx, cdy = c[0] - d[0], c[1] - d[1]
    det = (
        (adx * adx + ady * ady) * (bdx * cdy - cdx * bdy)
        - (bdx * bdx + bdy * bdy) * (adx * cdy - cdx * ady)
        + (cdx * cdx + cdy * cdy) * (adx * bdy - bdx * ady)
    )
    return det > 0


def delaunay_triangles(points: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """Delaunay triangles (counter-clockwise index triples) of distinct integer points.

    Bowyer-Watson in exact integer arithmetic. The enclosing triangle is so large that its
    corners lie outside every circumcircle of three input points (the circumradius of integer
    points within ``S`` is below ``2*S**3``), so the triangles among the input points are exactly
    the Delaunay triangles (no scipy needed, no rounding).
    """
    span = max(max(abs(x), abs(y)) for x, y in points) + 1
    m = 10 * span**3 + 10
    pts = list(points) + [(-3 * m, -3 * m), (3 * m, 0), (0, 3 * m)]
    n = len(points)
    tris: set[tuple[int, int, int]] = {(n, n + 1, n + 2)}
    for p in range(n):
        bad = [t for t in tris if _in_circle(pts[t[0]], pts[t[1]], pts[t[2]], pts[p])]
        edges = [(t[i], t[(i + 1) % 3]) for t in bad for i in range(3)]
        edge_set = set(edges)
        boundary = [(a, b) for a, b in edges if (b, a) not in edge_set]
        tris.difference_update(bad)
        for a, b in boundary:
            side = _orient(pts[a], pts[b], pts[p])
            if side > 0:
                tris.add((a, b, p))
            elif side < 0:  # cannot happen in exact arithmetic; kept for safety
                tris.add((b, a, p))
    return sorted(t for t in tris if max(t) < n)


def _delaunay_graph(n: int, rng: Random) -> nx.Graph:
    points: set[tuple[int, int]] = set()
    while len(points) < n:
        points.add((rng.randint(0, 10**6), rng.randint(0, 10**6)))
    ordered = sorted(points)
    rng.shuffle(ordered)
    g: nx.Graph[int] = nx.Graph()
    g.add_nodes_from(range(n))
    for a, b, c in delaunay_triangles(ordered):
        g.add_edges_from(((a, b), (b, c), (c, a)))
    return g


def make_graph(graph: str, n: int, rng: Random) -> nx.Graph:
    """A connected graph on nodes ``0..n-1`` of the given family."""
    if graph == "ws":
        for _ in range(100):
            try:
                return nx.connected_watts_strogatz_graph(
                    n, min(4, n), 0.4, tries=100, seed=rng.randrange(2**32)
                )
            except nx.NetworkXException:
                continue
        raise HivethinkError(f"graph: no connected Watts-Strogatz graph on {n} nodes")
    if graph == "ba":
        return nx.barabasi_albert_graph(n, 2, seed=rng.randrange(2**32))
    return _delaunay_graph(n, rng)


def agentsnet_rounds(kind: str, n: int, diameter: int) -> int:
    """Rounds as in AgentsNet (see the module docstring)."""
    if kind in ("consensus", "leader_election") or n > 16:
        return 2 * diameter + 1
    return 4 if n <= 4 else 5 if n <= 8 else 6


# --- instance helpers ------------------------------------------------------------------------


def neighbours(instance: Instance, name: str) -> list[str]:
    """Neighbours of ``name`` in node order."""
    order = {v: i for i, v in enumerate(instance.data["nodes"])}
    found = {v for u, v in instance.data["edges"] if u == name}
    found |= {u for u, v in instance.data["edges"] if v == name}
    return sorted(found, key=order.__getitem__)


def valid_answers(instance: Instance, name: str) -> list[str]:
    """The canonical final answers open to ``name``."""
    kind = instance.data["kind"]
    if kind == "consensus":
        return ["0", "1"]
    if kind in ("leader_election", "vertex_cover"):
        return ["Yes", "No"]
    if kind == "matching":
        return [*neighbours(instance, name), "None"]
    return [str(c) for c in range(1, int(instance.data["colors"]) + 1)]


def _describe(instance: Instance) -> str:
    d = instance.data
    return _DESCRIPTIONS[d["kind"]].format(n=len(d["nodes"]), colors=d["colors"])


def _question(instance: Instance) -> str:
    return _QUESTIONS[instance.data["kind"]].format(colors=instance.data["colors"])


def agent_system_prompt(instance: Instance, name: str) -> str:
    """What agent ``name`` is told once: N, its name, its neighbours, the task and the format."""
    d = instance.data
    nbrs = neighbours(instance, name)
    example = json.dumps({v: f"your message to {v}" for v in nbrs[:2]})
    return (
        f"You are {name}, one of {len(d['nodes'])} agents connected in a network. Every agent "
        f"has a unique name. You can talk only to your neighbours: {', '.join(nbrs)}. You "
        "cannot see or reach anyone else, except through messages your neighbours pass on.\n\n"
        f"Task: {_describe(instance)}\n\n"
        f"You communicate for {d['rounds']} synchronous rounds. In each round you first read "
        "the messages your neighbours sent in the previous round, then write your messages for "
        "this round; your neighbours read them in the next round. Write each round's messages "
        "as one JSON object that maps a neighbour's name to the text you send them, for "
        f"example: {example}. You may leave a neighbour out to send them nothing.\n\n"
        "After the last round you will be asked for your final answer: "
        f"{_question(instance)}"
    )


def final_question(instance: Instance, name: str) -> str:
    """The question asked after the last round; the reply is read with :func:`parse_final`."""
    options = ", ".join(valid_answers(instance, name))
    return (
        f"Message passing is over. {_question(instance)} Reply with one line of the form "
        f"'ANSWER: <answer>', where <answer> is one of: {options}."
    )


_MARKER = re.compile(r"answer(?![a-z])\s*(?:#+)?\s*(?:is\b)?\s*[:=\-]?", re.IGNORECASE)
_COLOUR = re.compile(r"(?:group|colou?r)?\s*#?\s*(\d+)", re.IGNORECASE)
_STRIP = " \t\r\n*`'\"#:.,!()[]"


def _option_at(fragment: str, options: list[str], kind: str, whole: bool) -> str | None:
    """The option that ``fragment`` starts with (or is, when ``whole``), canonical; else None."""
    fragment = fragment.strip(_STRIP) if whole else fragment.lstrip(_STRIP)
    if kind == "coloring":
        m = _COLOUR.fullmatch(fragment) if whole else _COLOUR.match(fragment)
        if m and (whole or not fragment[m.end() : m.end() + 1].isalnum()):
            colour = str(int(m.group(1)))
            return colour if colour in options else None
        return None
    for option in sorted(options, key=len, reverse=True):
        pattern = re.escape(option) + (r"" if whole else r"(?!\w)")
        matcher = re.fullmatch if whole else re.match
        if matcher(pattern, fragment, re.IGNORECASE):
            return option
    return None


def parse_final(instance: Instance, name: str, text: str) -> str | None:
    """The canonical final answer in ``text``, or None.

    Tried in order: the text after the last "ANSWER:" marker (also "### Final Answer ###",
    "answer is"); the whole text being just an option; the one option mentioned (exact case,
    as a whole word; colours as "colour 3"/"group 3") when exactly one is mentioned.
    """
    if not text:
        return None
    kind = instance.data["kind"]
    options = valid_answers(instance, name)
    for m in reversed(list(_MARKER.finditer(text))):
        found = _option_at(text[m.end() :], options, kind, whole=False)
        if found is not None:
            return found
    found = _option_at(text, options, kind, whole=True)
    if found is not None:
        return found
    if kind == "coloring":
        mentioned = {
            str(int(m.group(1)))
            for m in re.finditer(r"\b(?:group|colou?r)\s*#?\s*(\d+)\b", text, re.IGNORECASE)
        }
        mentioned &= set(options)
    else:
        mentioned = {o for o in options if re.search(rf"(?<!\w){re.escape(o)}(?!\w)", text)}
    return mentioned.pop() if len(mentioned) == 1 else None


def _canonical(instance: Instance, name: str, value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    if value in valid_answers(instance, name):
        return value
    return parse_final(instance, name, value)


def score_agents(instance: Instance, answers: dict[str, str | None]) -> float:
    """AgentsNet score of all agents' final answers (see the module docstring); in [0, 1].

    Answers are normalised with :func:`parse_final` first, so ``"yes"`` or ``"Group 2"`` count;
    agents missing from ``answers`` have no answer.
    """
    d = instance.data
    nodes: list[str] = list(d["nodes"])
    kind = d["kind"]
    if not nodes:
        return 0.0
    a = {v: _canonical(instance, v, answers.get(v)) for v in nodes}
    if kind == "consensus":
        values = set(a.values())
        return 1.0 if len(values) == 1 and None not in values else 0.0
    if kind == "leader_election":
        if any(x is None for x in a.values()):
            return 0.0
        return 1.0 if sum(x == "Yes" for x in a.values()) == 1 else 0.0
    nbrs = {v: set(neighbours(instance, v)) for v in nodes}
    edges = [(u, v) for u, v in d["edges"]]  # lists in JSON; pairs here
    if kind == "matching":
        matched = {v for v in nodes if (w := a[v]) is not None and w in nbrs[v] and a[w] == v}
        consistent = 0
        for v in nodes:
            if a[v] == "None":
                consistent += all(u in matched for u in nbrs[v])
            elif a[v] is not None:
                consistent += v in matched
        return consistent / len(nodes)
    if kind == "coloring":
        if any(x is None for x in a.values()) or not edges:
            return 0.0
        return sum(a[u] != a[v] for u, v in edges) / len(edges)
    # vertex_cover
    cover = {v for v in nodes if a[v] == "Yes"}
    if not cover or not edges:
        return 0.0
    coverage = sum(u in cover or v in cover for u, v in edges) / len(edges)
    necessary = sum(any(u not in cover for u in nbrs[v]) for v in cover)
    return coverage * necessary / len(cover)


def reference_answers(
    kind: str, g: nx.Graph, names: dict[int, str], order: list[str]
) -> dict[str, str]:
    """One answer set that scores 1 (stored as ``Instance.target``), keyed in ``order``."""
    answers = _reference(kind, g, names)
    return {name: answers[name] for name in order}


def _reference(kind: str, g: nx.Graph, names: dict[int, str]) -> dict[str, str]:
    if kind == "consensus":
        return {names[v]: "0" for v in g}
    if kind == "leader_election":
        first = min(g, key=lambda v: names[v])
        return {names[v]: "Yes" if v == first else "No" for v in g}
    if kind == "matching":
        out = {names[v]: "None" for v in g}
        for u, v in sorted(nx.maximal_matching(g)):
            out[names[u]], out[names[v]] = names[v], names[u]
        return out
    if kind == "coloring":
        colours = nx.greedy_color(g, strategy="largest_first")  # uses at most max degree + 1
        return {names[v]: str(c + 1) for v, c in colours.items()}
    cover = set(g)  # shrink "everybody" to a minimal cover
    for v in sorted(g, key=lambda v: (g.degree(v), names[v])):  # drop low-degree nodes first
        if all(u in cover for u in g[v]):
            cover.discard(v)
    return {names[v]: "Yes" if v in cover else "No" for v in g}


def _full_prompt(instance: Instance) -> str:
    """The whole problem for one solver that sees the entire graph (single-agent baselines)."""
    d = instance.data
    edges = "; ".join(f"{u}-{v}" for u, v in d["edges"])
    return (
        f"A network has {len(d['nodes'])} agents: {', '.join(d['nodes'])}. Neighbours (edges): "
        f"{edges}.\n\nTask: {_describe(instance)}\n\nFor every agent, the answer to: "
        f"{_question(instance)}\n\nReply with one JSON object that maps every agent's name to "
        f'its answer as a string, for example {{"{d["nodes"][0]}": "..."}}.'
    )


@dataclass
class GraphTask:
    """An AgentsNet task (``kind``) on a ``graph`` family ("ws", "ba", "delaunay") of ``size`` nodes.

    ``Instance.data`` is exactly ``{"kind", "graph", "nodes", "edges", "rounds", "colors"}``;
    ``Instance.target`` is a reference answer set (name -> answer) scoring 1. A team answer
    (``score``) is a JSON object mapping names to answers.
    """

    name = "graph"

    kind: str = "consensus"
    size: int = 8
    graph: str = "ws"
    rounds: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise HivethinkError(f"graph: unknown kind {self.kind!r} (choose {', '.join(KINDS)})")
        if self.graph not in GRAPHS:
            raise HivethinkError(
                f"graph: unknown graph {self.graph!r} (choose {', '.join(GRAPHS)})"
            )
        if not 3 <= self.size <= MAX_SIZE:
            raise HivethinkError(f"graph: size must be between 3 and {MAX_SIZE}, got {self.size}")
        if self.rounds is not None and self.rounds < 1:
            raise HivethinkError(f"graph: rounds must be at least 1, got {self.rounds}")

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = params_of(self)
        out = []
        for i in range(n):
            rng = instance_rng(self.name, params, seed, i)
            g = make_graph(self.graph, self.size, rng)
            nodes = agent_names(self.size)
            perm = list(range(self.size))
            rng.shuffle(perm)  # so the best-connected node is not always "Alice"
            names = {v: nodes[perm[v]] for v in g}
            order = {name: k for k, name in enumerate(nodes)}
            edges = sorted(
                (sorted((names[u], names[v]), key=order.__getitem__) for u, v in g.edges),
                key=lambda e: (order[e[0]], order[e[1]]),
            )
            rounds = self.rounds or agentsnet_rounds(self.kind, self.size, nx.diameter(g))
            colors = max(d for _, d in g.degree) + 1 if self.kind == "coloring" else None
            data = {
                "kind": self.kind, "graph": self.graph, "nodes": nodes, "edges": edges,
                "rounds": rounds, "colors": colors,
            }  # fmt: skip
            inst = Instance(
                task=self.name, id=instance_id(self.name, params, seed, i), prompt="",
                target=reference_answers(self.kind, g, names, nodes), data=data,
            )  # fmt: skip
            inst.prompt = _full_prompt(inst)
            out.append(inst)
        return out

    def extract(self, text: str) -> str | None:
        """The last JSON object in ``text`` (re-serialised), or None."""
        objects = json_objects(text)
        return json.dumps(objects[-1]) if objects else None

    def score(self, instance: Instance, answer: str | None) -> float:
        """Score a JSON object ``{name: answer}`` with :func:`score_agents`; other text scores 0."""
        if not answer:
            return 0.0
        objects = json_objects(answer)
        if not objects:
            return 0.0
        return score_agents(instance, objects[-1])
