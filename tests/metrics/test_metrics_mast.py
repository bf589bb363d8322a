"""The MAST judge hook: prompt contents and robust parsing of the judge's reply."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hivethink.backends.base import Completion, GenRequest
from hivethink.metrics import MAST_GROUPS, MAST_MODES, mast_judge, parse_mast_reply
from hivethink.trace import Event

EVENTS = [
    Event(kind="step", worker="Alice", text="Thank you!"),
    Event(kind="step", worker="Bob", text="Thank you!"),
    Event(kind="token", worker="Bob", text="tok"),
]


class OneReply:
    name = "judge"

    def __init__(self, text: str) -> None:
        self.text = text
        self.requests: list[GenRequest] = []

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        self.requests.extend(requests)
        return [Completion(text=self.text) for _ in requests]


def test_taxonomy_has_14_modes_in_3_groups() -> None:
    assert len(MAST_GROUPS) == 3 and [len(g) for g in MAST_GROUPS.values()] == [5, 6, 3]
    assert len(MAST_MODES) == 14 and MAST_MODES["1.3"] == "step repetition"


def test_judge_with_fenced_json_reply() -> None:
    reply = 'Here you go:\n```json\n{"1.3": true, "2.5": "yes", "3.1": false, "summary": "they loop {politely}"}\n```'
    backend = OneReply(reply)
    out = mast_judge(EVENTS, backend)
    prompt = backend.requests[0].messages[-1]["content"]
    assert all(name in prompt for name in MAST_MODES.values())
    assert "[step] Alice: Thank you!" in prompt and "[token]" not in prompt
    assert out["parsed"] and out["failures"] == ["1.3", "2.5"]
    assert out["modes"]["3.1"] is False and out["modes"]["1.1"] is None
    assert out["summary"] == "they loop {politely}" and out["raw"] == reply and out["error"] is None


def test_scripted_fake_backend_if_available() -> None:
    fake = pytest.importorskip("hivethink.backends.fake")
    backend = fake.ScriptedBackend(['{"modes": {"FM-1.3 Step repetition": {"present": true}}}'])
    assert mast_judge(EVENTS, backend)["failures"] == ["1.3"]


@pytest.mark.parametrize(
    ("reply", "failures"),
    [
        ("{'1.1': True, '2.3': False, 'step repetition': 'yes',}", ["1.1", "1.3"]),
        (
            "1.2 disobey role specification: yes\n2.1: no\n3.3 incorrect verification - TRUE",
            ["1.2", "3.3"],
        ),
        ('{"modes": {"conversation reset": 1, "2.2": 0}}', ["2.1"]),
    ],
)
def test_parse_variants(reply: str, failures: list[str]) -> None:
    out = parse_mast_reply(reply)
    assert out["parsed"] and out["failures"] == failures


def test_unparseable_reply() -> None:
    out = parse_mast_reply("I cannot judge this trace { not json")
    assert not out["parsed"] and out["failures"] == [] and set(out["modes"]) == set(MAST_MODES)
