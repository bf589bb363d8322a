from hivethink.answers import boxed as last_boxed
from hivethink.tasks._common import (
    agent_names,
    answer_is,
    instance_id,
    json_objects,
)


def test_last_boxed_takes_the_last_balanced_box():
    assert last_boxed(r"first \boxed{1} then \boxed{\frac{1}{2}} end") == r"\frac{1}{2}"
    assert last_boxed(r"\boxed{ {a}{b} }") == "{a}{b}"
    assert last_boxed("no box here") is None


def test_last_boxed_skips_an_unclosed_final_box():
    assert last_boxed(r"\boxed{3} and then \boxed{4") == "3"
    assert last_boxed(r"\boxed{4") is None


def test_answer_is_reads_the_final_statement():
    assert answer_is("So the answer is 42.") == "42"
    assert answer_is("The answer is 3. Then the final answer is $12.5$.") == "12.5"
    assert answer_is("The answer is **7/3**\nDone") == "7/3"
    assert answer_is("nothing") is None


def test_json_objects_finds_top_level_objects_only():
    text = 'prose {"a": {"b": 1}} more {not json} and ```{"c": 2}```'
    assert json_objects(text) == [{"a": {"b": 1}}, {"c": 2}]
    assert json_objects("[1, 2]") == []


def test_agent_names_are_distinct_for_large_groups():
    names = agent_names(250)
    assert len(set(names)) == 250
    assert names[:3] == ["Alice", "Bob", "Carol"]
    assert len(set(agent_names(100))) == 100
    assert all(name.isalpha() for name in agent_names(100))


def test_instance_id_is_stable_and_parameter_sensitive():
    a = instance_id("math", {"steps": 3, "x": None}, 7, 2)
    assert a == instance_id("math", {"x": None, "steps": 3}, 7, 2)
    assert a.startswith("math-") and a.endswith("-7-2")
    assert a != instance_id("math", {"steps": 4, "x": None}, 7, 2)
