"""Grid expansion: counts, restrictions, the ``single`` rule, stable keys."""

from __future__ import annotations

import pytest
from lab_fakes import config_dict, fake_factories

from hivethink.errors import HivethinkError
from hivethink.lab import expand_grid, parse_config, sample_key


def _plan(**overrides: object):
    return expand_grid(parse_config(config_dict(**overrides)), fake_factories())


def test_full_cross_product_count() -> None:
    plan = _plan(models=[{"kind": "echo"}, {"kind": "echo", "name": "b", "reply": "{target}"}])
    # 2 models x 2 substrates x 2 worker counts x 1 task x 2 instances x 2 seeds
    assert len(plan.samples) == 32
    assert len({s.key for s in plan.samples}) == 32
    assert [s.index for s in plan.samples] == list(range(32))


def test_task_substrate_restriction_and_worker_override() -> None:
    plan = _plan(
        substrates=["fake", {"name": "other", "workers": [4]}],
        tasks=[
            {"name": "add", "n": 2, "substrates": ["other"]},
            {"name": "add", "n": 1, "params": {"size": 3}},
        ],
    )
    first = [s for s in plan.samples if s.task == 0]
    assert {s.substrate for s in first} == {1} and {s.workers for s in first} == {4}
    assert len(first) == 2 * 1 * 2  # instances x workers x seeds
    second = [s for s in plan.samples if s.task == 1]
    assert len(second) == 1 * (2 + 1) * 2  # fake at N=2,3 and other at N=4, two seeds each


def test_single_collapses_only_with_a_fixed_total_budget() -> None:
    per_n = _plan(substrates=["single"])
    assert sorted({s.workers for s in per_n.samples}) == [2, 3]  # N x max_tokens baselines
    fixed = _plan(substrates=["single"], budget={"max_tokens": 16, "tokens": 64})
    assert {s.workers for s in fixed.samples} == {1}
    assert len(fixed.samples) == 2 * 2  # instances x seeds


def test_keys_are_stable_and_sensitive() -> None:
    a = [s.key for s in _plan().samples]
    assert a == [s.key for s in _plan().samples]
    assert set(a).isdisjoint(s.key for s in _plan(budget={"max_tokens": 17}).samples)
    cell = _plan().samples[0].cell
    assert sample_key(cell, "i", 0) != sample_key(cell, "i", 1)
    assert sample_key(cell, "i", 0) != sample_key(cell, "j", 0)
    assert sample_key({**cell}, "i", 0) == sample_key(dict(reversed(list(cell.items()))), "i", 0)


def test_duplicate_samples_and_bad_names_are_errors() -> None:
    with pytest.raises(HivethinkError, match="repeats a sample"):
        _plan(seeds=[0, 0])
    with pytest.raises(HivethinkError, match="task 'nope'"):
        _plan(tasks=[{"name": "nope"}])


def _real(**overrides: object):
    from hivethink.lab import default_factories

    return expand_grid(parse_config(config_dict(**overrides)), default_factories())


def test_tasks_run_only_on_the_substrates_they_are_meant_for() -> None:
    plan = _real(
        substrates=["agentsnet", "debate-du", "single"], workers=[2], seeds=[0],
        tasks=[{"name": "graph", "params": {"size": 4}}, {"name": "arithmetic"}],
    )  # fmt: skip
    pairs = {(plan.config.tasks[s.task].name, plan.config.substrates[s.substrate].name) for s in plan.samples}
    assert pairs == {("graph", "agentsnet"), ("graph", "single"), ("arithmetic", "debate-du"), ("arithmetic", "single")}


@pytest.mark.parametrize(
    ("substrates", "task", "message"),
    [
        (["debate-du"], {"name": "graph", "substrates": ["debate-du"]}, "not meant for substrate"),
        (["debate-du", "coral"], {"name": "agree"}, "meant for none of the configured substrates"),
        (["agentsnet"], {"name": "arithmetic"}, "meant for none"),
    ],
)
def test_pairings_no_sample_could_run_are_one_line_errors(substrates, task, message) -> None:
    with pytest.raises(HivethinkError, match=message) as err:
        _real(substrates=substrates, tasks=[task])
    assert "\n" not in str(err.value)


def test_a_preset_option_that_does_not_exist_is_a_config_error() -> None:
    with pytest.raises(HivethinkError, match="substrate 'agentsnet' has no parameter parse"):
        _real(substrates=[{"name": "agentsnet", "params": {"parse": "lenient"}}],
              tasks=[{"name": "graph"}])  # fmt: skip
