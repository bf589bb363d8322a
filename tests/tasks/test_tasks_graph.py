import json
import random
import re

import networkx as nx
import pytest

from hivethink.errors import HivethinkError
from hivethink.tasks.base import Instance
from hivethink.tasks.graph import (
    GraphTask,
    _in_circle,
    agent_system_prompt,
    agentsnet_rounds,
    delaunay_triangles,
    final_question,
    neighbours,
    parse_final,
    score_agents,
    valid_answers,
)

# A path A - B - C - D plus the chord B - D:  A-B, B-C, C-D, B-D.
NODES = ["A", "B", "C", "D"]
EDGES = [["A", "B"], ["B", "C"], ["B", "D"], ["C", "D"]]


def _inst(kind: str, colors: int | None = None) -> Instance:
    data = {
        "kind": kind, "graph": "ws", "nodes": NODES, "edges": EDGES, "rounds": 4,
        "colors": colors,
    }  # fmt: skip
    return Instance(task="graph", id="t", prompt="", data=data)


def _answers(*values: str | None) -> dict[str, str | None]:
    return dict(zip(NODES, values, strict=True))


# --- scoring -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("1", "1", "1", "1"), 1.0),
        (("0", "0", "0", "0"), 1.0),
        (("0", "1", "1", "1"), 0.0),  # mixed
        (("1", "1", "1", None), 0.0),  # one agent without an answer
        (("2", "2", "2", "2"), 0.0),  # not a valid value
    ],
)
def test_consensus(values, expected):
    assert score_agents(_inst("consensus"), _answers(*values)) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("Yes", "No", "No", "No"), 1.0),
        (("No", "No", "No", "No"), 0.0),  # no leader
        (("Yes", "No", "Yes", "No"), 0.0),  # two leaders
        (("Yes", "No", "No", None), 0.0),  # a missing answer is invalid
        (("yes", "no", "NO", "No"), 1.0),  # case is normalised
    ],
)
def test_leader_election(values, expected):
    assert score_agents(_inst("leader_election"), _answers(*values)) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("B", "A", "D", "C"), 1.0),  # perfect matching
        (("B", "A", "None", "None"), 0.5),  # C and D both unmatched neighbours: not maximal
        (("C", "A", "B", "None"), 0.0),  # A names a non-neighbour; nobody is consistent
        (("B", "A", "D", None), 0.5),  # D gave no answer, so C's choice is not returned
        (("B", "C", "B", "None"), 0.75),  # B-C pair and D ok; A's claim is not returned
    ],
)
def test_matching(values, expected):
    assert score_agents(_inst("matching"), _answers(*values)) == pytest.approx(expected)


def test_matching_none_answers_in_detail():
    inst = _inst("matching")
    # B-C matched; A's only neighbour B is matched -> A consistent; D's neighbours B, C are
    # matched -> D consistent. Everyone is consistent: this is a maximal matching.
    assert score_agents(inst, _answers("None", "C", "B", "None")) == 1.0
    # A pairs with B, B agrees, C and D unmatched although neighbours -> C, D inconsistent.
    assert score_agents(inst, _answers("B", "A", "None", "None")) == 0.5


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("1", "2", "1", "3"), 1.0),
        (("1", "2", "1", "1"), 0.75),  # C-D share colour 1
        (("1", "2", "1", "5"), 0.0),  # 5 is not a colour (only 1..4)
        (("1", "2", "1", None), 0.0),  # missing answer
        (("Group 1", "colour 2", "1", "3"), 1.0),  # AgentsNet-style names are read
        (("1", "1", "1", "1"), 0.0),
    ],
)
def test_coloring(values, expected):
    assert score_agents(_inst("coloring", colors=4), _answers(*values)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("No", "Yes", "Yes", "No"), 1.0),  # {B, C} covers all; each has an outside neighbour
        (("No", "No", "No", "No"), 0.0),  # empty cover
        ((None, None, None, None), 0.0),  # no answers at all = empty cover
        (("Yes", "Yes", "Yes", "Yes"), 0.0),  # covers everything, nobody is necessary
        (("No", "Yes", "No", "No"), 0.75),  # {B}: C-D uncovered, B necessary
        (("No", "Yes", "Yes", "Yes"), 1 / 3),  # covers; only B has an outside neighbour
    ],
)
def test_vertex_cover(values, expected):
    assert score_agents(_inst("vertex_cover"), _answers(*values)) == pytest.approx(expected)


def test_vertex_cover_necessity_fraction():
    # cover {B, C, D}: coverage 1; B has outside neighbour A (necessary); C's neighbours B, D
    # are in the cover (not necessary); D's neighbours B, C too -> 1 * 1/3.
    assert score_agents(_inst("vertex_cover"), _answers("No", "Yes", "Yes", "Yes")) == (
        pytest.approx(1 / 3)
    )
    # None counts as "No": same as the first case of the table above.
    assert score_agents(_inst("vertex_cover"), _answers(None, "Yes", "Yes", None)) == 1.0


def test_missing_agents_in_answers_count_as_no_answer():
    assert score_agents(_inst("consensus"), {"A": "1", "B": "1", "C": "1"}) == 0.0
    assert score_agents(_inst("vertex_cover"), {}) == 0.0


def test_task_score_reads_a_json_object():
    task = GraphTask(kind="coloring", size=4)
    inst = _inst("coloring", colors=4)
    assert task.score(inst, json.dumps(_answers("1", "2", "1", "3"))) == 1.0
    assert task.score(inst, 'Final: {"A": 1, "B": 2, "C": 1, "D": 3}') == 1.0
    assert task.score(inst, '{"A": "1", "B": "2", "C": "1", "D": null}') == 0.0
    assert task.score(inst, "not json") == 0.0
    assert task.score(inst, None) == 0.0
    assert task.extract('x {"A": "1"} y {"B": "2"}') == '{"B": "2"}'
    assert task.extract("nothing") is None


# --- final answers and messages ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "text", "expected"),
    [
        ("leader_election", "A", "I think about it.\nANSWER: Yes", "Yes"),
        ("leader_election", "A", "### Final Answer ###\nNo", "No"),
        ("leader_election", "A", "**Answer:** no.", "No"),
        ("leader_election", "A", "Yes", "Yes"),
        ("leader_election", "A", "Maybe Yes, maybe No", None),
        ("leader_election", "A", "I am the leader: Yes.", "Yes"),
        ("consensus", "A", "ANSWER: 1", "1"),
        ("consensus", "A", "ANSWER: 10", None),
        ("consensus", "A", "we agreed on 0", "0"),
        ("matching", "B", "ANSWER: c", "C"),
        ("matching", "B", "ANSWER: None", "None"),
        ("matching", "A", "ANSWER: C", None),  # C is not A's neighbour
        ("coloring", "A", "ANSWER: Group 3", "3"),
        ("coloring", "A", "ANSWER: 4", "4"),
        ("coloring", "A", "ANSWER: 7", None),
        ("coloring", "A", "I take colour 2 since B has colour 2", "2"),
        ("vertex_cover", "A", "", None),
    ],
)
def test_parse_final(kind, name, text, expected):
    inst = _inst(kind, colors=4 if kind == "coloring" else None)
    assert parse_final(inst, name, text) == expected


def test_valid_answers_and_neighbours():
    assert neighbours(_inst("matching"), "B") == ["A", "C", "D"]
    assert valid_answers(_inst("matching"), "A") == ["B", "None"]
    assert valid_answers(_inst("coloring", colors=3), "A") == ["1", "2", "3"]


def test_prompts_show_only_local_knowledge():
    inst = GraphTask(kind="matching", size=8, graph="ba").generate(1, 0)[0]
    name = inst.data["nodes"][0]
    nbrs = neighbours(inst, name)
    prompt = agent_system_prompt(inst, name)
    assert f"You are {name}" in prompt and "8 agents" in prompt
    assert ", ".join(nbrs) in prompt
    strangers = [v for v in inst.data["nodes"] if v != name and v not in nbrs]
    assert strangers and not any(re.search(rf"\b{s}\b", prompt) for s in strangers)
    assert f"{inst.data['rounds']} synchronous rounds" in prompt
    question = final_question(inst, name)
    assert "ANSWER:" in question and ", ".join([*nbrs, "None"]) in question


# --- generation ----------------------------------------------------------------------------


@pytest.mark.parametrize("graph", ["ws", "ba", "delaunay"])
@pytest.mark.parametrize(
    "kind", ["consensus", "leader_election", "matching", "coloring", "vertex_cover"]
)
def test_generated_instances(kind, graph):
    for size in (4, 8, 20):
        insts = GraphTask(kind=kind, size=size, graph=graph).generate(2, 4)
        for inst in insts:
            d = inst.data
            assert list(d) == ["kind", "graph", "nodes", "edges", "rounds", "colors"]
            assert d["kind"] == kind and d["graph"] == graph and len(d["nodes"]) == size
            g = nx.Graph(d["edges"])
            g.add_nodes_from(d["nodes"])
            assert nx.is_connected(g) and set(g) == set(d["nodes"])
            assert all(isinstance(e, list) and len(e) == 2 for e in d["edges"])
            assert d["rounds"] == agentsnet_rounds(kind, size, nx.diameter(g))
            if kind == "coloring":
                assert d["colors"] == max(dict(g.degree).values()) + 1
            else:
                assert d["colors"] is None
            assert score_agents(inst, inst.target) == 1.0  # the reference answers are valid
            assert GraphTask(kind=kind).score(inst, json.dumps(inst.target)) == 1.0
            json.dumps(d)  # plain JSON


def test_rounds_rule():
    assert agentsnet_rounds("consensus", 8, 3) == 7
    assert agentsnet_rounds("leader_election", 4, 1) == 3
    assert agentsnet_rounds("coloring", 4, 1) == 4
    assert agentsnet_rounds("matching", 8, 3) == 5
    assert agentsnet_rounds("vertex_cover", 16, 4) == 6
    assert agentsnet_rounds("coloring", 17, 4) == 9
    assert GraphTask(kind="coloring", rounds=2).generate(1, 0)[0].data["rounds"] == 2


def test_generation_is_deterministic():
    task = GraphTask(kind="coloring", size=12, graph="delaunay")
    a, b, c = task.generate(3, 5), task.generate(3, 5), task.generate(3, 6)
    assert [(i.id, i.data, i.target) for i in a] == [(i.id, i.data, i.target) for i in b]
    assert [i.data["edges"] for i in a] != [i.data["edges"] for i in c]


def test_large_graphs_have_distinct_names():
    inst = GraphTask(kind="consensus", size=100, graph="ba").generate(1, 0)[0]
    assert len(set(inst.data["nodes"])) == 100
    assert inst.data["rounds"] == 2 * nx.diameter(nx.Graph(inst.data["edges"])) + 1


@pytest.mark.parametrize("n", [3, 10, 60])
def test_delaunay_is_delaunay(n):
    rng = random.Random(n)
    points = list({(rng.randint(0, 1000), rng.randint(0, 1000)) for _ in range(n)})
    tris = delaunay_triangles(points)
    # empty circumcircles
    for a, b, c in tris:
        for p in range(len(points)):
            if p not in (a, b, c):
                assert not _in_circle(points[a], points[b], points[c], points[p])
    # a full triangulation: 2n - 2 - h triangles for h hull vertices (general position)
    hull = _hull_size(points)
    assert len(tris) == 2 * len(points) - 2 - hull


def test_delaunay_of_a_square_with_centre():
    points = [(0, 0), (10, 0), (10, 10), (0, 10), (5, 5)]
    tris = delaunay_triangles(points)
    assert len(tris) == 4 and all(4 in t for t in tris)


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


def test_bad_parameters():
    with pytest.raises(HivethinkError):
        GraphTask(kind="chess")
    with pytest.raises(HivethinkError):
        GraphTask(graph="grid")
    with pytest.raises(HivethinkError):
        GraphTask(size=2)
    with pytest.raises(HivethinkError):
        GraphTask(rounds=0)
