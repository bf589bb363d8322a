"""Constants read from the authors' Python source without running it (``ast``)."""

from __future__ import annotations

import pytest

from hivethink.errors import HivethinkError
from hivethink.prompts.importers.pyread import constant

SOURCE = '''
SEP = "\\n\\n"
TOP = ("Top " "level").strip()


class Outer:
    head = "  Head  ".strip()
    tail = (f"{SEP}Tail with {head}: " "\\\\boxed{")
    chars = [".", "?"]
    computed = str(3)

    class Inner:
        deep = "Deep" + " one"
'''


@pytest.fixture
def module(tmp_path):
    path = tmp_path / "formatting.py"
    path.write_text(SOURCE, encoding="utf-8")
    return path


def test_literals_f_strings_strips_and_nested_classes(module):
    assert constant(module, "TOP") == "Top level"
    assert constant(module, "Outer.head") == "Head"
    assert constant(module, "Outer.tail") == "\n\nTail with Head: \\boxed{"  # holes name other constants
    assert constant(module, "Outer.chars") == [".", "?"]
    assert constant(module, "Outer.Inner.deep") == "Deep one"


@pytest.mark.parametrize(("name", "message"), [
    ("Outer.moved", r"no constant Outer.moved \(the importer expects it there; was it moved or renamed\?\)"),
    ("Gone.head", r"no class, function or assignment Gone \(expected Gone.head there"),
    ("Outer.computed", r"Outer.computed \(line \d+\) is not a constant the importer can read: a Call expression"),
])
def test_what_is_not_there_or_not_a_constant_is_one_line(module, name, message):
    with pytest.raises(HivethinkError, match=message):
        constant(module, name)
