"""The substrate registry: names, parameters, one-line errors."""

import pytest

from hivethink.errors import HivethinkError
from hivethink.substrates import SUBSTRATES, Substrate, get_substrate

NAMES = {
    "independent",
    "single",
    "chat",
    "blackboard",
    "sequential",
    "centralized",
    "debate",
    "program",
    "roleplay",
    "agree",
    "pair",
}


def test_every_substrate_is_registered_and_satisfies_the_protocol():
    assert set(SUBSTRATES) >= NAMES
    for name in NAMES:
        sub = get_substrate(name)
        assert isinstance(sub, Substrate) and sub.name == name


def test_params_are_set_and_strings_converted():
    sub = get_substrate("roleplay", max_messages="12", temperature="0.2")
    assert sub.max_messages == 12 and sub.temperature == 0.2
    assert get_substrate("chat", topology="ring").topology == "ring"
    assert get_substrate("blackboard", subscribe="plan, answer").subscribe == ["plan", "answer"]


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("nope", {}, "unknown substrate 'nope'"),
        ("chat", {"rounds": 3}, "no parameter rounds"),
        ("chat", {"topology": "torus"}, "unknown topology"),
        ("roleplay", {"max_messages": "many"}, "bad parameter value"),
        ("sequential", {"final": "first"}, "final must be"),
        ("blackboard", {"subscribe": ["gossip"]}, "unknown entry kinds"),
    ],
)
def test_bad_names_and_params_raise_one_line_errors(name, params, message):
    with pytest.raises(HivethinkError, match=message) as err:
        get_substrate(name, **params)
    assert "\n" not in str(err.value)
