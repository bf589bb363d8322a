"""The substrate registry: names, parameters, one-line errors."""

import pytest

from hivethink import prompts
from hivethink.errors import HivethinkError
from hivethink.substrates import ALIASES, SUBSTRATES, Substrate, get_substrate

NAMES = {
    "independent", "single", "chat", "blackboard", "sequential", "centralized", "program",
    "agentsnet", "consensus-game", "coral", "debate-du", "camel",
}  # fmt: skip
PRESETS = {"agentsnet", "consensus-game", "coral", "debate-du", "camel"}


def test_every_substrate_is_registered_and_satisfies_the_protocol():
    assert set(SUBSTRATES) >= NAMES
    for name in NAMES:
        sub = get_substrate(name)
        assert isinstance(sub, Substrate) and sub.name == name


def test_old_names_mean_the_presets_that_replaced_them():
    assert {a: get_substrate(a).name for a in ALIASES} == {
        "agree": "consensus-game", "pair": "coral", "debate": "debate-du", "roleplay": "camel",
    }  # fmt: skip


def test_presets_declare_their_prompt_books():
    for name in PRESETS:
        books = get_substrate(name).prompt_books
        assert books and all(b in prompts.books() for b in books)
        for b in books:  # every built-in text renders its placeholders only
            prompts.check_book_dir(prompts.books()[b], prompts.BUILTIN_ROOT / b)
    assert get_substrate("chat").prompt_books == ()


def test_params_are_set_and_strings_converted():
    sub = get_substrate("camel", max_messages="12", temperature="0.2", specify="no")
    assert sub.max_messages == 12 and sub.temperature == 0.2 and sub.specify is False
    assert get_substrate("chat", topology="ring").topology == "ring"
    assert get_substrate("blackboard", subscribe="plan, answer").subscribe == ["plan", "answer"]


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("nope", {}, "unknown substrate 'nope'"),
        ("chat", {"rounds": 3}, "no parameter rounds"),
        ("chat", {"topology": "torus"}, "unknown topology"),
        ("roleplay", {"max_messages": "many"}, "bad parameter value"),
        ("agentsnet", {"parse": "lenient"}, "no parameter parse"),
        ("sequential", {"final": "first"}, "final must be"),
        ("blackboard", {"subscribe": ["gossip"]}, "unknown entry kinds"),
    ],
)
def test_bad_names_and_params_raise_one_line_errors(name, params, message):
    with pytest.raises(HivethinkError, match=message) as err:
        get_substrate(name, **params)
    assert "\n" not in str(err.value)
