"""AgentsNet tasks: agents on the nodes of a graph solve a global problem by local messages.

Each agent knows N, its own name and its neighbours' names only; the protocol is the
``agentsnet`` substrate. This module owns the instances (generated like the published ones,
or loaded from the published node-link files), the valid final answers and the published
scores (``floriangroetschla/AgentsNet``, ``LiteralMessagePassing.get_score``):

- consensus: 1 iff every answer is "0" or "1" and all are equal;
- leader_election: 1 iff every answer is "Yes" or "No" and exactly one is "Yes";
- matching: a node is inconsistent if its answer is not a neighbour's name (a missing answer
  included) or that neighbour does not name it back, or if it answers "None" while a
  neighbour also answers "None"; score = consistent nodes / N;
- coloring (options "Group 1".."Group k", k = max degree + 1): 1[every answer an option] x the
  fraction of edges whose ends differ;
- vertex_cover ("Yes" = in the cover): coverage (edges with an end in the cover / edges) x
  (cover nodes whose switch to "No" leaves coverage below 1) / cover size. With an incomplete
  cover every cover node counts (coverage is below 1 already), as in the published code. The
  published code divides by zero on an empty cover, and the script does not catch it: that
  run (and the rest of its invocation) is never saved, so the published means leave it out.
  :func:`score_answers` gives None there; ``GraphTask(empty_cover="exclude")`` (the default)
  scores such a run None (left out of means), ``empty_cover="zero"`` scores it 0.

Answers are compared exactly (case-sensitive); the preset's parser yields the option strings.

Rounds (published ``main.py`` and ``main.sh``): 2*diameter+1 for consensus and leader election
and for every task on more than 16 nodes; otherwise 4, 5, 6 rounds at 4, 8, 16 nodes (sizes in
between take the count of the next published size).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any, ClassVar

import networkx as nx

from hivethink import prompts
from hivethink.errors import HivethinkError
from hivethink.tasks._common import NAMES, instance_id, instance_rng, json_objects, params_of
from hivethink.tasks.base import Instance, Outcome

KINDS = ("consensus", "leader_election", "matching", "coloring", "vertex_cover")
EMPTY_COVER = ("exclude", "zero")  # how an empty vertex cover is scored
GRAPHS = ("ws", "ba", "delaunay")
MIN_SIZE, MAX_SIZE = 4, 100
# The published file names and dataset rows call the Delaunay family "dt".
_FAMILY_ALIASES = {"dt": "delaunay"}
_FILE_NAME = re.compile(r"graph_([a-z]+)_(\d+)_(\d+)")

# Texts about the tasks (what each agent is told to achieve and asked at the end), and the prompt
# of the single-solver baseline that sees the whole graph.
BOOK = prompts.book(
    "agentsnet-tasks",
    {
        **{f"task_{k}": [] for k in KINDS},
        **{f"goal_{k}": ["n", "colors", "options"] for k in KINDS},
        **{f"question_{k}": [] for k in KINDS},
        "baseline": ["n", "names", "edges", "task", "goal", "question", "options", "example"],
    },
)


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
    """Delaunay triangulation of ``n`` uniform points in the unit square (on a 10^6 grid)."""
    points: set[tuple[int, int]] = set()
    while len(points) < n:
        points.add((rng.randint(0, 10**6), rng.randint(0, 10**6)))
    ordered = sorted(points)
    rng.shuffle(ordered)
    g: nx.Graph = nx.Graph()
    g.add_nodes_from(range(n))
    for a, b, c in delaunay_triangles(ordered):
        g.add_edges_from(((a, b), (b, c), (c, a)))
    return g


def make_graph(graph: str, n: int, rng: Random) -> nx.Graph:
    """A connected graph on nodes ``0..n-1`` of the given family (the published generators:
    connected Watts-Strogatz k=4 p=0.4, Barabasi-Albert m=2, Delaunay)."""
    if graph == "ws":
        return nx.connected_watts_strogatz_graph(n, 4, 0.4, tries=1000, seed=rng.randrange(2**32))
    if graph == "ba":
        return nx.barabasi_albert_graph(n, 2, seed=rng.randrange(2**32))
    return _delaunay_graph(n, rng)


def agentsnet_rounds(kind: str, n: int, diameter: int) -> int:
    """Rounds as published (see the module docstring)."""
    if kind in ("consensus", "leader_election") or n > 16:
        return 2 * diameter + 1
    return 4 if n <= 4 else 5 if n <= 8 else 6


# --- the network of one instance ----------------------------------------------------------------


def adjacency(nodes: list[str], edges: list[list[str]]) -> dict[str, list[str]]:
    """Neighbour lists in the order networkx builds them from a node-link file (nodes first,
    then each edge in file order appends each end to the other's list once): the order in which
    the published agents are shown their neighbours and options."""
    out: dict[str, list[str]] = {n: [] for n in nodes}
    for u, v in edges:
        if v not in out[u]:
            out[u].append(v)
            out[v].append(u)
    return out


@dataclass(frozen=True)
class Network:
    """An AgentsNet instance as its agents see it: names in node order, ordered neighbours."""

    kind: str
    nodes: list[str]
    neighbours: dict[str, list[str]]
    edges: list[tuple[str, str]]
    rounds: int
    colors: int | None

    def options(self, name: str) -> list[str]:
        """The valid final answers of ``name``, in the order they are offered (and matched)."""
        if self.kind == "consensus":
            return ["0", "1"]
        if self.kind in ("leader_election", "vertex_cover"):
            return ["Yes", "No"]
        if self.kind == "matching":
            return [*self.neighbours[name], "None"]
        return [f"Group {c}" for c in range(1, int(self.colors or 0) + 1)]


def network(instance: Instance) -> Network:
    """The network of a graph-task instance; another instance is a one-line error."""
    d = instance.data
    if not all(k in d for k in ("kind", "nodes", "edges", "rounds")) or d["kind"] not in KINDS:
        raise HivethinkError(f"instance {instance.id} is not an AgentsNet graph instance")
    nodes = list(d["nodes"])
    return Network(
        kind=d["kind"],
        nodes=nodes,
        neighbours=adjacency(nodes, d["edges"]),
        edges=[(u, v) for u, v in d["edges"]],
        rounds=int(d["rounds"]),
        colors=d.get("colors"),
    )


# --- the published scores ------------------------------------------------------------------------


def _coverage(net: Network, answers: Mapping[str, str | None]) -> float:
    return sum(answers.get(u) == "Yes" or answers.get(v) == "Yes" for u, v in net.edges) / len(
        net.edges
    )


def score_answers(net: Network, answers: Mapping[str, str | None]) -> float | None:
    """The published score of the final answers (name -> option or None); see the module
    docstring. Agents missing from ``answers`` have no answer. None: an empty vertex cover,
    which the published scorer cannot score (it divides by zero)."""
    a = {v: answers.get(v) for v in net.nodes}
    if net.kind == "consensus":
        return float(all(x in ("0", "1") for x in a.values()) and len(set(a.values())) == 1)
    if net.kind == "leader_election":
        valid = all(x in ("Yes", "No") for x in a.values())
        return float(valid and sum(x == "Yes" for x in a.values()) == 1)
    if net.kind == "matching":
        inconsistent = 0
        for v in net.nodes:
            if a[v] != "None":
                inconsistent += a[v] not in net.neighbours[v] or a[str(a[v])] != v
            else:
                inconsistent += any(a[u] == "None" for u in net.neighbours[v])
        return (len(net.nodes) - inconsistent) / len(net.nodes)
    if net.kind == "coloring":
        colours = net.options(net.nodes[0])
        valid = all(x in colours for x in a.values())
        return float(valid) * sum(a[u] != a[v] for u, v in net.edges) / len(net.edges)
    cover = [v for v in net.nodes if a[v] == "Yes"]
    if not cover:  # the published scorer divides by zero here
        return None
    necessary = sum(_coverage(net, {**a, v: "No"}) < 1.0 for v in cover)
    return _coverage(net, a) * necessary / len(cover)


class GraphOutcome(Outcome):
    """What the ``agentsnet`` preset returns: every node's final answer (an option, or None)
    and the published failure counters, summed over agents."""

    prefix: ClassVar[str] = "agentsnet"

    answers: dict[str, str | None]
    unparsed_messages: int = 0  # replies whose messages could not be parsed (first attempt)
    unparsed_after_retry: int = 0  # ... nor after the retry: the agent sent nothing
    answer_retries: int = 0  # final replies without a valid answer (first attempt)
    answers_missing: int = 0  # ... nor after the retry: no answer
    fallbacks: int = 0  # retries of either kind (the published num_fallbacks)
    foreign_keys: int = 0  # messages addressed to known names that are not neighbours


# --- loading the published instances -------------------------------------------------------------


@dataclass
class LoadedGraph:
    """One graph read from a user's file: node names in order, edges in file order."""

    where: str  # file (and line or index) it came from
    nodes: list[str]
    edges: list[list[str]]
    family: str | None  # ws | ba | delaunay when the file says so


def _node_link(row: Any, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(node-link mapping, metadata) from a file's JSON: node-link data itself, or a record
    holding it under "graph" (as a mapping or as JSON text, possibly wrapped once more)."""
    meta: dict[str, Any] = {}
    for _ in range(3):
        if isinstance(row, str):
            try:
                row = json.loads(row)
            except ValueError:
                raise HivethinkError(f"{where}: 'graph' is not JSON text") from None
        if isinstance(row, dict) and "nodes" in row:
            return row, meta
        if isinstance(row, dict) and "graph" in row:
            meta = {**{k: v for k, v in row.items() if k != "graph"}, **meta}
            row = row["graph"]
            continue
        break
    raise HivethinkError(f"{where}: not a node-link graph (no 'nodes' and 'links')")


def _graph_from(row: Any, where: str, file_name: str) -> LoadedGraph:
    data, meta = _node_link(row, where)
    raw_nodes, raw_links = data.get("nodes"), data.get("links", data.get("edges"))
    if not isinstance(raw_nodes, list) or not isinstance(raw_links, list):
        raise HivethinkError(f"{where}: not a node-link graph ('nodes' and 'links' must be lists)")
    names: dict[Any, str] = {}
    for node in raw_nodes:
        if not isinstance(node, dict) or not isinstance(node.get("id"), (int, str)):
            raise HivethinkError(f"{where}: every node needs an 'id' (a number or text)")
        name = node.get("name")
        if not isinstance(name, str) or not name.strip():
            raise HivethinkError(f"{where}: node {node['id']!r} has no name")
        if name in names.values() or node["id"] in names:
            raise HivethinkError(f"{where}: node names and ids must be unique ({name!r})")
        names[node["id"]] = name
    edges: list[list[str]] = []
    for link in raw_links:
        ends = (link.get("source"), link.get("target")) if isinstance(link, dict) else (None, None)
        if any(not isinstance(e, (int, str)) or e not in names for e in ends) or ends[0] == ends[1]:
            raise HivethinkError(f"{where}: link {link!r} does not join two distinct nodes")
        edges.append([names[ends[0]], names[ends[1]]])
    family = meta.get("graph_generator")
    if family is None and (m := _FILE_NAME.search(file_name)):
        family = m.group(1)
    family = _FAMILY_ALIASES.get(str(family), family) if family is not None else None
    return LoadedGraph(where, list(names.values()), edges, family)


def load_graphs(source: str) -> list[LoadedGraph]:
    """Every graph in ``source``: a ``.json`` file (node-link data, a record holding it under
    "graph", or a list of those), a ``.jsonl`` file (one per line, e.g. rows of the published
    dataset), or a directory of such files (sorted by name). Anything else is a one-line error."""
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl"))
        if not files:
            raise HivethinkError(f"{path}: holds no .json or .jsonl graph files")
    elif path.is_file():
        files = [path]
    else:
        raise HivethinkError(f"{path}: no such graph file or directory")
    graphs: list[LoadedGraph] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise HivethinkError(f"{file}: cannot read: {err}") from None
        if file.suffix == ".jsonl":
            lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
            rows = [(f"{file}:{i}", _loads(line, f"{file}:{i}")) for i, line in lines]
        else:
            data = _loads(text, str(file))
            items = data if isinstance(data, list) else [data]
            rows = [(f"{file}[{i}]" if len(items) > 1 else str(file), r) for i, r in enumerate(items)]
        graphs += [_graph_from(row, where, file.name) for where, row in rows]
    if not graphs:
        raise HivethinkError(f"{path}: holds no graph")
    return graphs


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise HivethinkError(f"{where}: not valid JSON") from None


# --- the task -------------------------------------------------------------------------------------


@dataclass
class GraphTask:
    """An AgentsNet task (``kind``) on graphs of a family (``graph``: ws, ba, delaunay) and size.

    Generated (default 8 nodes, ws): nodes get distinct random common first names, as published.
    With ``source`` (a file or directory, see :func:`load_graphs`) the instances are the graphs
    read from it, in order; ``size`` and ``graph`` then select among them (by node count and by
    the family a record or file name states). ``rounds`` overrides the published round count.
    ``empty_cover``: how a vertex-cover run whose cover is empty is scored (see the module
    docstring): ``exclude`` (None, left out of means, as published) or ``zero``. The ``single``
    baseline's text answer with an empty cover scores 0.

    ``Instance.data``: ``{"kind", "graph", "nodes", "edges", "rounds", "colors", "where"}``;
    ``Instance.target`` is one answer set scoring 1. The ``agentsnet`` preset returns a
    :class:`GraphOutcome`; the ``single`` baseline answers with a JSON object name -> answer.
    """

    name = "graph"
    substrates: ClassVar[tuple[str, ...]] = ("agentsnet", "single")
    prompt_books: ClassVar[tuple[str, ...]] = ("agentsnet-tasks",)

    kind: str = "consensus"
    size: int | None = None
    graph: str | None = None
    rounds: int | None = None
    source: str | None = None
    empty_cover: str = "exclude"
    _loaded: list[LoadedGraph] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise HivethinkError(f"graph: unknown kind {self.kind!r} (choose {', '.join(KINDS)})")
        if self.graph is not None and self.graph not in GRAPHS:
            raise HivethinkError(
                f"graph: unknown graph {self.graph!r} (choose {', '.join(GRAPHS)})"
            )
        if self.size is not None and not MIN_SIZE <= self.size <= MAX_SIZE:
            raise HivethinkError(
                f"graph: size must be between {MIN_SIZE} and {MAX_SIZE}, got {self.size}"
            )
        if self.empty_cover not in EMPTY_COVER:
            raise HivethinkError(
                f"graph: empty_cover must be one of {', '.join(EMPTY_COVER)}, not {self.empty_cover!r}"
            )
        if self.rounds is not None and self.rounds < 1:
            raise HivethinkError(f"graph: rounds must be at least 1, got {self.rounds}")
        if self.source is not None:
            self._loaded = load_graphs(self.source)

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = params_of(self)
        if self._loaded is not None:
            chosen = [
                g for g in self._loaded
                if (self.size is None or len(g.nodes) == self.size)
                and (self.graph is None or g.family == self.graph)
            ]  # fmt: skip
            if len(chosen) < n:
                raise HivethinkError(
                    f"graph: {self.source} holds {len(chosen)} graph(s) with size={self.size}, "
                    f"graph={self.graph}; {n} asked for"
                )
            return [
                self._instance(g.nodes, g.edges, g.family, g.where, instance_id(self.name, params, seed, i))
                for i, g in enumerate(chosen[:n])
            ]
        out = []
        size, family = self.size or 8, self.graph or "ws"
        for i in range(n):
            rng = instance_rng(self.name, params, seed, i)
            g = make_graph(family, size, rng)
            names = rng.sample(NAMES, size)  # distinct random common first names, node by node
            edges = [[names[u], names[v]] for u, v in g.edges]
            where = f"generated {family} graph, seed {seed}, index {i}"
            out.append(self._instance(names, edges, family, where, instance_id(self.name, params, seed, i)))
        return out

    def _instance(
        self, nodes: list[str], edges: list[list[str]], family: str | None, where: str, iid: str
    ) -> Instance:
        g: nx.Graph = nx.Graph()
        g.add_nodes_from(nodes)
        g.add_edges_from((u, v) for u, v in edges)
        if not nx.is_connected(g) or len(nodes) < 2:
            raise HivethinkError(f"graph: {where} is not a connected graph of 2 or more nodes")
        data = {
            "kind": self.kind, "graph": family, "nodes": nodes, "edges": edges,
            "rounds": self.rounds or agentsnet_rounds(self.kind, len(nodes), nx.diameter(g)),
            "colors": max(d for _, d in g.degree) + 1 if self.kind == "coloring" else None,
            "where": where,
        }  # fmt: skip
        inst = Instance(task=self.name, id=iid, prompt="", target=reference_answers(self.kind, g), data=data)
        inst.prompt = baseline_prompt(network(inst))
        return inst

    def extract(self, text: str) -> str | None:
        """The last JSON object in ``text`` (re-serialised): the single baseline's answers."""
        objects = json_objects(text)
        return json.dumps(objects[-1]) if objects else None

    def score(self, instance: Instance, answer: str | None) -> float:
        """The published score of a JSON object name -> answer (the single baseline); numbers
        count as their text; anything else scores 0."""
        objects = json_objects(answer or "")
        if not objects:
            return 0.0
        values = {
            k: str(v) if isinstance(v, (str, int)) and not isinstance(v, bool) else None
            for k, v in objects[-1].items()
        }
        return score_answers(network(instance), values) or 0.0

    def score_outcome(self, instance: Instance, outcome: Outcome) -> float | None:
        """The published score of the nodes' answers; an empty vertex cover scores None (left
        out of means, as the published runs effectively did) or 0 (``empty_cover="zero"``)."""
        if not isinstance(outcome, GraphOutcome):
            raise HivethinkError(f"graph: cannot score a {type(outcome).__name__}")
        score = score_answers(network(instance), outcome.answers)
        return 0.0 if score is None and self.empty_cover == "zero" else score


def reference_answers(kind: str, g: nx.Graph) -> dict[str, str]:
    """One answer set that scores 1 (stored as ``Instance.target``), keyed in node order."""
    if kind == "consensus":
        return {v: "0" for v in g}
    if kind == "leader_election":
        return {v: "Yes" if i == 0 else "No" for i, v in enumerate(g)}
    if kind == "matching":
        out = {v: "None" for v in g}
        for u, v in sorted(nx.maximal_matching(g)):
            out[u], out[v] = v, u
        return out
    if kind == "coloring":
        colours = nx.greedy_color(g, strategy="largest_first")  # at most max degree + 1
        return {v: f"Group {colours[v] + 1}" for v in g}
    cover = set(g)  # shrink "everybody" to a minimal cover, low-degree nodes first
    for v in sorted(g, key=lambda v: (g.degree(v), v)):
        if all(u in cover for u in g[v]):
            cover.discard(v)
    return {v: "Yes" if v in cover else "No" for v in g}


def task_texts(net: Network, name: str) -> dict[str, str]:
    """The task's descriptions for agent ``name``: ``task`` (short), ``goal`` (what is asked
    after the last round) and ``question`` (the final question)."""
    options = net.options(name)
    values = {"n": len(net.nodes), "colors": net.colors or 0, "options": ", ".join(options)}
    return {
        "task": BOOK.render(f"task_{net.kind}"),
        "goal": BOOK.render(f"goal_{net.kind}", **values),
        "question": BOOK.render(f"question_{net.kind}"),
    }


def baseline_prompt(net: Network) -> str:
    """The whole problem for one solver that sees the entire graph (the single baseline)."""
    texts = task_texts(net, net.nodes[0])
    return BOOK.render(
        "baseline",
        n=len(net.nodes),
        names=", ".join(net.nodes),
        edges="; ".join(f"{u}-{v}" for u, v in net.edges),
        options=", ".join(net.options(net.nodes[0])) if net.kind != "matching" else
        "a neighbour's name or None",
        example=json.dumps({net.nodes[0]: "..."}),
        **texts,
    )
