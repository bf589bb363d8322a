"""Config validation: one-line HivethinkError messages, unknown keys forbidden."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_fakes import config_dict

from hivethink.errors import HivethinkError
from hivethink.lab import load_config, parse_config


def _error(data: object) -> str:
    with pytest.raises(HivethinkError) as info:
        parse_config(data, "c.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_valid_config_parses_with_shorthands() -> None:
    cfg = parse_config(
        config_dict(models=[{"kind": "local", "model": "smollm2", "dtype": "bfloat16"}])
    )
    assert cfg.models[0].params == {"model": "smollm2", "dtype": "bfloat16"}
    assert cfg.models[0].label == "smollm2"
    assert [s.display for s in cfg.substrates] == ["fake", "other"]
    assert cfg.budget.max_tokens == 16 and cfg.budget.tokens is None and cfg.budget.passes is None
    assert cfg.tasks[0].label == "add"


def test_unknown_top_level_key() -> None:
    assert _error(config_dict(bogus=1)) == "c.yaml: bogus: unknown key"


def test_unknown_key_in_task_and_budget() -> None:
    assert "tasks.0.instances: unknown key" in _error(
        config_dict(tasks=[{"name": "add", "instances": 3}])
    )
    assert "budget.max_token: unknown key" in _error(config_dict(budget={"max_token": 3}))


def test_bad_values() -> None:
    assert "workers" in _error(config_dict(workers=[0]))
    assert "tasks.0.n" in _error(config_dict(tasks=[{"name": "add", "n": 0}]))
    assert "models" in _error(config_dict(models=[]))
    assert "models.0.kind" in _error(config_dict(models=[{"model": "x"}]))
    assert "seeds" in _error(config_dict(seeds="zero"))


def test_cross_checks() -> None:
    message = _error(config_dict(tasks=[{"name": "add", "substrates": ["nope"]}]))
    assert "unknown substrate(s) ['nope']" in message
    assert "duplicate substrate" in _error(config_dict(substrates=["fake", "fake"]))


def test_top_level_must_be_mapping() -> None:
    assert "expected a mapping" in _error([1, 2])


def test_load_config_errors(tmp_path: Path) -> None:
    with pytest.raises(HivethinkError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n  - kind: x\n", encoding="utf-8")
    with pytest.raises(HivethinkError, match=r"invalid YAML at line \d+"):
        load_config(bad)


def test_example_quick_yaml_is_valid() -> None:
    cfg = load_config(Path(__file__).parents[2] / "examples" / "quick.yaml")
    assert cfg.models[0].kind == "local" and cfg.models[0].params["model"] == "smollm2"
    names = {s.name for s in cfg.substrates}
    assert names == {
        "shared-cache", "independent", "single", "chat", "blackboard", "sequential",
        "centralized", "program", "debate-du", "camel", "coral", "agentsnet", "consensus-game",
    }  # fmt: skip
    assert all(t.substrates for t in cfg.tasks)  # every task is paired with chosen substrates
    assert cfg.budget.max_tokens <= 96 and cfg.seeds == [0]
    # tasks whose answers are not numbers read the shared cache's answer with their own extractor
    task_reader = next(s for s in cfg.substrates if s.display == "shared-cache-task")
    assert task_reader.params == {"extract": "task"}
    assert all("shared-cache" not in t.substrates for t in cfg.tasks if t.name in ("enumerate", "countdown"))
    from hivethink.lab import expand_grid
    from hivethink.lab.grid import Factories, default_factories

    real = default_factories()
    expand_grid(cfg, Factories(lambda kind, **p: None, real.get_task, real.get_substrate))  # params checked


def test_example_published_yaml_expands_with_the_presets_defaults() -> None:
    from hivethink.lab import expand_grid
    from hivethink.lab.grid import Factories, default_factories

    cfg = load_config(Path(__file__).parents[2] / "examples" / "published.yaml")
    real = default_factories()
    plan = expand_grid(cfg, Factories(lambda kind, **p: None, real.get_task, real.get_substrate))
    assert {s.name for s in plan.substrates} == {"agentsnet", "consensus-game", "coral", "debate-du", "camel"}
    assert cfg.mast is not None and cfg.mast.judge.kind == "openai"
    assert len(plan.samples) == 6 + 25 * 3 + 20 * 2 + 20 * 2 + 100  # coral and its cot baseline; 100 arithmetic



def test_a_quantized_weights_mode_shows_in_the_model_label():
    from hivethink.lab.config import ModelSpec

    assert ModelSpec(kind="local", model="smollm2").label == "smollm2"
    assert ModelSpec(kind="local", model="smollm2", weights="exact").label == "smollm2"
    assert ModelSpec(kind="local", model="smollm2", weights="int4").label == "smollm2 (int4)"
    assert ModelSpec(kind="local", model="smollm2", weights="auto", name="q").label == "q"
