"""The prompt registry: declared books, rendering, user directories, digests."""

from __future__ import annotations

import pytest

from hivethink import prompts
from hivethink.errors import HivethinkError


@pytest.fixture
def demo_book(tmp_path, monkeypatch):
    """A book whose built-in texts live in a temporary package root."""
    root = tmp_path / "builtin"
    (root / "demo").mkdir(parents=True)
    (root / "demo" / "greet.txt").write_text("Hello {{name}}, \\boxed{x} stays.\n", encoding="utf-8")
    (root / "demo" / "bye.txt").write_text("Bye.  ", encoding="utf-8")
    monkeypatch.setattr(prompts, "BUILTIN_ROOT", root)
    monkeypatch.setattr(prompts, "_books", {})
    monkeypatch.setattr(prompts, "_override", None)
    return prompts.book("demo", {"greet": ["name"], "bye": []})


def test_render_fills_declared_placeholders_only(demo_book):
    assert demo_book.render("greet", name="Ann") == "Hello Ann, \\boxed{x} stays."
    assert demo_book.render("bye") == "Bye.  "  # only one trailing newline is dropped
    with pytest.raises(KeyError, match="needs a value"):
        demo_book.render("greet")
    with pytest.raises(KeyError, match="takes no value"):
        demo_book.render("bye", name="x")
    with pytest.raises(ValueError, match="declared twice"):
        prompts.book("demo", {"greet": ["other"]})


def test_a_user_directory_replaces_a_whole_book(demo_book, tmp_path):
    user = tmp_path / "mine"
    (user / "demo").mkdir(parents=True)
    (user / "demo" / "greet.txt").write_text("Hi {{name}}!\n", encoding="utf-8")
    with pytest.raises(HivethinkError, match=r"missing template\(s\) bye.txt"):
        prompts.use_directory(user)
    (user / "demo" / "bye.txt").write_text("See you.\n", encoding="utf-8")
    before = prompts.digest(["demo"])
    prompts.use_directory(user)
    assert demo_book.render("greet", name="Ann") == "Hi Ann!"
    assert demo_book.source == str(user.resolve() / "demo")
    assert prompts.digest(["demo"]) != before
    prompts.use_directory(None)
    assert prompts.digest(["demo"]) == before and demo_book.source == "builtin"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"greet.txt": "Hi {{who}}", "bye.txt": "x"}, r"unknown placeholder\(s\) \{\{who\}\}"),
        ({"greet.txt": "Hi", "bye.txt": "x", "extra.txt": "y"}, r"has no template\(s\) extra.txt"),
    ],
)
def test_bad_user_directories_are_one_line_errors(demo_book, tmp_path, files, message):
    user = tmp_path / "bad"
    (user / "demo").mkdir(parents=True)
    for name, text in files.items():
        (user / "demo" / name).write_text(text, encoding="utf-8")
    with pytest.raises(HivethinkError, match=message):
        prompts.check_directory(user)
    (user / "demo").rename(user / "nosuchbook")
    with pytest.raises(HivethinkError, match="no prompt book is called 'nosuchbook'"):
        prompts.check_directory(user)
    with pytest.raises(HivethinkError, match="no such prompts directory"):
        prompts.check_directory(tmp_path / "absent")


def test_export_writes_a_directory_that_validates(demo_book, tmp_path):
    written = prompts.export(tmp_path / "out", ["demo"])
    assert sorted(p.name for p in written) == ["bye.txt", "greet.txt"]
    prompts.check_directory(tmp_path / "out")
    prompts.use_directory(tmp_path / "out")
    assert demo_book.render("bye") == "Bye.  "
    prompts.use_directory(None)
