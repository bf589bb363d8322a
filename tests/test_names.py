"""Names: whole-name references (the one count the engine and the metrics share) and step headers
written inside a text."""

from hivethink.names import header_mentions, references, worker_names

NAMES = worker_names(5)  # Alice, Bob, Carol, Dave, Eve


def test_references_count_whole_names_of_others_only():
    text = "Bob and Eve agree. Everyone agrees; Bobby too. Alice (me) checks Carol's sum."
    assert references(text, "Alice", NAMES) == 3  # Bob, Eve, Carol's: not Everyone, Bobby, Alice
    assert references("Alice2 and Alice", "Bob", ["Alice", "Alice2", "Bob"]) == 2
    assert references("anything", "Alice", ["Alice"]) == 0


def test_header_mentions_find_written_headers_with_or_without_stars():
    text = "ok.\n\n**Bob [2]:** mine now\n\nCarol [3]:** too **Dave:** and **bold** Eve says"
    assert header_mentions(text, NAMES) == ["Bob", "Carol", "Dave"]
