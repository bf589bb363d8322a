"""AgentsNet tasks: the published scores rule by rule (protocols.md section 2), rounds, options,
generation, and loading the published node-link graph files."""

import json
import random

import networkx as nx
import pytest
from networkx.readwrite import json_graph

from hivethink.errors import HivethinkError
from hivethink.tasks._common import NAMES
from hivethink.tasks.base import Instance
from hivethink.tasks.graph import (
    GraphOutcome,
    GraphTask,
    _in_circle,
    adjacency,
    agentsnet_rounds,
    delaunay_triangles,
    load_graphs,
    network,
    score_answers,
)

# A path A - B - C - D plus the chord B - D, edges in this order: A-B, B-C, B-D, C-D.
NODES = ["A", "B", "C", "D"]
EDGES = [["A", "B"], ["B", "C"], ["B", "D"], ["C", "D"]]


def _inst(kind: str) -> Instance:
    data = {"kind": kind, "graph": "ws", "nodes": NODES, "edges": EDGES, "rounds": 4,
            "colors": 4 if kind == "coloring" else None}  # fmt: skip
    return Instance(task="graph", id="t", prompt="", data=data)


def score(kind: str, *values: str | None) -> float:
    return score_answers(network(_inst(kind)), dict(zip(NODES, values, strict=True)))


# --- the published scores ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("1", "1", "1", "1"), 1.0),
        (("0", "0", "0", "0"), 1.0),
        (("0", "1", "1", "1"), 0.0),  # not all equal
        (("1", "1", "1", None), 0.0),  # a missing answer is invalid
        (("2", "2", "2", "2"), 0.0),  # not an option
    ],
)
def test_consensus_needs_all_valid_and_equal(values, expected):
    assert score("consensus", *values) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("Yes", "No", "No", "No"), 1.0),
        (("No", "No", "No", "No"), 0.0),  # no leader
        (("Yes", "No", "Yes", "No"), 0.0),  # two leaders
        (("Yes", "No", "No", None), 0.0),  # a missing answer is invalid
        (("Yes", "no", "No", "No"), 0.0),  # options are case-sensitive: "no" is not valid
        (("yes", "No", "No", "No"), 0.0),
    ],
)
def test_leader_election_needs_all_valid_and_exactly_one_yes(values, expected):
    assert score("leader_election", *values) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("B", "A", "D", "C"), 1.0),  # two mutual pairs
        (("B", "A", "None", "None"), 0.5),  # C and D answer None next to each other: both off
        (("None", "C", "B", "None"), 1.0),  # None is fine while no neighbour says None
        (("None", "None", "D", "C"), 0.5),  # A and B: None next to None
        (("C", "A", "B", "None"), 0.25),  # A names a non-neighbour; B and C are not named back
        (("B", "A", "D", None), 0.5),  # D has no answer, so C is not named back either
        (("B", "A", "D", "c"), 0.5),  # names are case-sensitive
        (("B", "A", "none", "C"), 0.5),  # "none" is not "None" (nor a neighbour)
    ],
)
def test_matching_counts_consistent_nodes(values, expected):
    assert score("matching", *values) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("Group 1", "Group 2", "Group 3", "Group 1"), 1.0),
        (("Group 1", "Group 2", "Group 1", "Group 1"), 0.75),  # C-D share a group
        (("1", "2", "3", "1"), 0.0),  # the options are "Group k", not numbers
        (("group 1", "Group 2", "Group 3", "Group 1"), 0.0),  # case-sensitive
        (("Group 1", "Group 2", "Group 3", None), 0.0),  # one answer missing: all invalid
        (("Group 5", "Group 2", "Group 3", "Group 1"), 0.0),  # only Group 1..Group Δ+1
    ],
)
def test_coloring_is_all_valid_times_the_properly_coloured_edges(values, expected):
    assert score("coloring", *values) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("No", "Yes", "Yes", "No"), 1.0),  # a minimal cover
        (("Yes", "Yes", "Yes", "Yes"), 0.0),  # complete, but no member is necessary
        (("No", "Yes", "Yes", "Yes"), pytest.approx(1 / 3)),  # only B is necessary
        # incomplete (coverage 3/4): switching A off leaves coverage below 1 as it already is,
        # so the published rule counts A as necessary too: 3/4 x 2/2
        (("Yes", "Yes", "No", "No"), 0.75),
        (("Yes", "No", "No", "No"), 0.25),  # coverage 1/4, A necessary
        (("No", "No", "No", "No"), None),  # empty cover: the published code divides by zero
        (("No", "yes", "Yes", None), 0.5),  # "yes" and None are not "Yes": coverage 2/4, C needed
    ],
)
def test_vertex_cover_is_coverage_times_necessary_share(values, expected):
    assert score("vertex_cover", *values) == expected


def test_an_empty_cover_is_left_out_of_means_unless_zero_is_asked_for():
    """The published script crashes on an empty cover and never saves that run: its means leave
    it out. ``empty_cover: exclude`` (the default) scores None, which the lab and the report
    leave out; ``empty_cover: zero`` scores 0."""
    from hivethink.metrics.outcome import outcome_metrics

    inst = _inst("vertex_cover")
    empty = GraphOutcome(answers=dict.fromkeys(NODES, "No"))
    assert GraphTask(kind="vertex_cover").score_outcome(inst, empty) is None
    assert outcome_metrics(GraphTask(kind="vertex_cover"), inst, None, empty) == {"score": None, "correct": None}
    assert GraphTask(kind="vertex_cover", empty_cover="zero").score_outcome(inst, empty) == 0.0
    assert GraphTask(kind="vertex_cover").score(inst, '{"A": "No", "B": "No", "C": "No", "D": "No"}') == 0.0
    with pytest.raises(HivethinkError, match="empty_cover must be one of exclude, zero"):
        GraphTask(kind="vertex_cover", empty_cover="skip")


def test_missing_agents_have_no_answer_and_outcomes_are_scored_by_the_task():
    inst = _inst("consensus")
    task = GraphTask(kind="consensus")
    assert score_answers(network(inst), {"A": "1", "B": "1", "C": "1"}) == 0.0
    all_one = GraphOutcome(answers=dict.fromkeys(NODES, "1"))
    assert task.score_outcome(inst, all_one) == 1.0
    assert all_one.metrics()["agentsnet_fallbacks"] == 0 and "agentsnet_answers" not in all_one.metrics()
    # the single baseline answers with a JSON object; numbers count as their text
    assert task.score(inst, 'here: {"A": 0, "B": "0", "C": 0, "D": "0"}') == 1.0
    assert task.score(inst, "no json") == 0.0 and task.score(inst, None) == 0.0


# --- options, neighbours, rounds -----------------------------------------------------------------


def test_options_are_offered_in_the_published_order():
    assert network(_inst("matching")).options("B") == ["A", "C", "D", "None"]
    assert network(_inst("matching")).options("A") == ["B", "None"]
    assert network(_inst("coloring")).options("A") == ["Group 1", "Group 2", "Group 3", "Group 4"]
    assert network(_inst("consensus")).options("A") == ["0", "1"]
    assert network(_inst("vertex_cover")).options("C") == ["Yes", "No"]


def test_neighbour_order_is_the_order_networkx_builds_from_a_node_link_file():
    g = nx.Graph()
    g.add_nodes_from(["D", "A", "C", "B"])
    g.add_edges_from([("C", "A"), ("D", "B"), ("B", "C"), ("A", "D"), ("A", "C")])
    loaded = json_graph.node_link_graph(json_graph.node_link_data(g, edges="links"), edges="links")
    order = adjacency(list(loaded.nodes), [list(e) for e in g.edges])
    assert order == {v: list(loaded.neighbors(v)) for v in loaded.nodes}


def test_rounds_rule():
    assert agentsnet_rounds("consensus", 8, 3) == 7  # 2 x diameter + 1
    assert agentsnet_rounds("leader_election", 4, 1) == 3
    assert agentsnet_rounds("coloring", 4, 1) == 4  # published main.sh: 4, 5, 6 rounds
    assert agentsnet_rounds("matching", 8, 3) == 5
    assert agentsnet_rounds("vertex_cover", 16, 4) == 6
    assert agentsnet_rounds("coloring", 17, 4) == 9  # more than 16 nodes: 2 x diameter + 1
    assert GraphTask(kind="coloring", rounds=2).generate(1, 0)[0].data["rounds"] == 2


# --- generation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("graph", ["ws", "ba", "delaunay"])
@pytest.mark.parametrize("kind", ["consensus", "leader_election", "matching", "coloring", "vertex_cover"])
def test_generated_instances(kind, graph):
    for size in (4, 8, 20):
        for inst in GraphTask(kind=kind, size=size, graph=graph).generate(2, 4):
            d = inst.data
            assert d["kind"] == kind and d["graph"] == graph and len(d["nodes"]) == size
            assert set(d["nodes"]) <= set(NAMES) and len(set(d["nodes"])) == size
            g = nx.Graph(d["edges"])
            assert nx.is_connected(g) and set(g) == set(d["nodes"])
            assert d["rounds"] == agentsnet_rounds(kind, size, nx.diameter(g))
            assert d["colors"] == (max(dict(g.degree).values()) + 1 if kind == "coloring" else None)
            assert GraphTask(kind=kind).score_outcome(inst, GraphOutcome(answers=inst.target)) == 1.0
            assert "Reply with one JSON object" in inst.prompt  # the single baseline's prompt
            json.dumps(d)


def test_names_are_random_common_names_and_generation_is_deterministic():
    task = GraphTask(kind="coloring", size=12, graph="delaunay")
    a, b, c = task.generate(3, 5), task.generate(3, 5), task.generate(3, 6)
    assert [(i.id, i.data, i.target) for i in a] == [(i.id, i.data, i.target) for i in b]
    assert [i.data["nodes"] for i in a] != [i.data["nodes"] for i in c]
    assert len({tuple(i.data["nodes"]) for i in a}) == 3  # not always the same first names
    big = GraphTask(kind="consensus", size=100, graph="ba").generate(1, 0)[0]
    assert sorted(big.data["nodes"]) == sorted(NAMES)


@pytest.mark.parametrize(
    "params", [{"kind": "chess"}, {"graph": "grid"}, {"size": 3}, {"size": 101}, {"rounds": 0}]
)
def test_bad_parameters(params):
    with pytest.raises(HivethinkError):
        GraphTask(**params)


# --- the published instances ---------------------------------------------------------------------


def _published_file(g: nx.Graph, names: list[str]) -> dict:
    """A graph file as the published generate_graphs.py writes it (networkx node-link data)."""
    g = nx.relabel_nodes(g, {v: i for i, v in enumerate(g.nodes)})
    nx.set_node_attributes(g, dict(enumerate(names)), "name")
    return {"graph": json_graph.node_link_data(g, edges="links"), "num_nodes": g.order(),
            "diameter": nx.diameter(g), "max_degree": max(dict(g.degree).values())}  # fmt: skip


def test_loading_published_files_runs_exactly_those_graphs(tmp_path):
    ws = nx.connected_watts_strogatz_graph(8, 4, 0.4, seed=1)
    ba = nx.barabasi_albert_graph(8, 2, seed=2)
    (tmp_path / "graph_ws_8_0.json").write_text(json.dumps(_published_file(ws, NAMES[:8])))
    row = {"graph_generator": "ba", "num_nodes": 8, "index": 0,
           "graph": json.dumps(_published_file(ba, NAMES[10:18]))}  # fmt: skip
    (tmp_path / "rows.jsonl").write_text(json.dumps(row) + "\n\n")
    graphs = load_graphs(str(tmp_path))
    assert [(g.family, len(g.nodes)) for g in graphs] == [("ws", 8), ("ba", 8)]

    task = GraphTask(kind="matching", source=str(tmp_path), graph="ws")
    [inst] = task.generate(1, 0)
    loaded = json_graph.node_link_graph(_published_file(ws, NAMES[:8])["graph"], edges="links")
    assert inst.data["nodes"] == list(NAMES[:8])
    net = network(inst)
    assert net.neighbours == {
        loaded.nodes[v]["name"]: [loaded.nodes[u]["name"] for u in loaded.neighbors(v)] for v in loaded
    }
    assert inst.data["rounds"] == 5 and inst.data["where"].endswith("graph_ws_8_0.json")
    assert len(GraphTask(kind="consensus", source=str(tmp_path)).generate(2, 0)) == 2
    with pytest.raises(HivethinkError, match="holds 1 graph"):
        GraphTask(kind="consensus", source=str(tmp_path), size=8, graph="ba").generate(2, 0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such graph file"),
        ("{not json", "not valid JSON"),
        ('{"graph": {"nodes": 3, "links": []}}', "'nodes' and 'links' must be lists"),
        ('{"nodes": [{"id": 0}], "links": []}', "node 0 has no name"),
        ('{"nodes": [{"id": 0, "name": "A"}, {"id": 1, "name": "A"}], "links": []}', "unique"),
        ('{"nodes": [{"id": 0, "name": "A"}], "links": [{"source": 0, "target": 9}]}', "does not join"),
        ('{"hello": 1}', "not a node-link graph"),
        ('{"nodes": [{"id": 0, "name": "A"}, {"id": 1, "name": "B"}], "links": []}', "not a connected"),
    ],
)
def test_bad_graph_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "g.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(HivethinkError, match=message) as err:
        GraphTask(kind="consensus", source=str(path)).generate(1, 0)
    assert "\n" not in str(err.value)


def test_a_directory_without_graph_files_is_an_error(tmp_path):
    with pytest.raises(HivethinkError, match="holds no .json or .jsonl graph files"):
        GraphTask(source=str(tmp_path))


# --- Delaunay ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 10, 60])
def test_delaunay_is_delaunay(n):
    rng = random.Random(n)
    points = list({(rng.randint(0, 1000), rng.randint(0, 1000)) for _ in range(n)})
    tris = delaunay_triangles(points)
    for a, b, c in tris:  # empty circumcircles
        for p in range(len(points)):
            if p not in (a, b, c):
                assert not _in_circle(points[a], points[b], points[c], points[p])
    assert len(tris) == 2 * len(points) - 2 - _hull_size(points)  # a full triangulation


def _hull_size(points):
    pts = sorted(points)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return len(lower) + len(upper) - 2
