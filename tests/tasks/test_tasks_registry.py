import pytest

from hivethink.errors import HivethinkError
from hivethink.tasks import TASKS, get_task, task_parameters
from hivethink.tasks.base import Task
from hivethink.tasks.graph import GraphTask


def test_every_task_satisfies_the_protocol_and_generates():
    for name in TASKS:
        task = get_task(name)
        assert isinstance(task, Task)
        assert task.name == name
        insts = task.generate(2, 0)
        assert len(insts) == 2 and all(i.task == name for i in insts)
        assert len({i.id for i in insts}) == 2
        assert task.score(insts[0], None) == 0.0
        assert task.extract("") is None


def test_get_task_passes_parameters():
    task = get_task("graph", kind="coloring", size=16, graph="delaunay")
    assert isinstance(task, GraphTask) and task.size == 16
    assert get_task("math", source=None).source is None
    assert get_task("graph", rounds=None).rounds is None


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("chess", {}, "unknown task 'chess'"),
        ("math", {"stepz": 3}, "no parameter 'stepz'"),
        ("math", {"steps": "3"}, "'steps' must be int"),
        ("math", {"steps": 2.5}, "'steps' must be int"),
        ("pair", {"probe": 1}, "'probe' must be bool"),
        ("enumerate", {"k": True}, "'k' must be int"),
        ("graph", {"kind": 3}, "'kind' must be str"),
        ("graph", {"rounds": "4"}, "'rounds' must be int or None"),
        ("graph", {"kind": "chess"}, "unknown kind"),
        ("graph", {"source": "/no/such/graphs"}, "no such graph file"),
        ("agree", {"agents": 3}, "no parameter 'agents'"),
        ("countdown", {"numbers": 1}, "numbers must be"),
        ("math", {"_rows": []}, "no parameter '_rows'"),
    ],
)
def test_get_task_errors_are_one_line(name, params, message):
    with pytest.raises(HivethinkError, match=message) as err:
        get_task(name, **params)
    assert "\n" not in str(err.value)


def test_task_parameters():
    assert task_parameters("graph") == {
        "kind": "consensus",
        "size": None,
        "graph": None,
        "rounds": None,
        "source": None,
        "empty_cover": "exclude",
    }
    assert task_parameters("agree") == {"honest": 4, "byzantine": 0, "max_rounds": 50}
