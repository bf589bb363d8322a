import math

import pytest

from hivethink.errors import HivethinkError
from hivethink.tasks.base import Instance
from hivethink.tasks.enumerate import CATEGORIES, EnumerateTask


def _numbers(k: int, valid: list[int]) -> Instance:
    return Instance(
        task="enumerate", id="t", prompt="", target=[str(v) for v in valid],
        data={"k": k, "kind": "primes", "lo": 10, "hi": 40},
    )  # fmt: skip


PRIMES_10_40 = [11, 13, 17, 19, 23, 29, 31, 37]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("11, 13, 17, 19, 23", 1.0),
        ("11, 13, 17, 19, 23, 29, 31", 1.0),  # capped at K
        ("11, 11, 13, 13, 17", 0.6),  # duplicates count once
        ("11, 12, 13, 15, 17", 0.6),  # invalid items neither add nor subtract
        ("11,13,17,19,23", 1.0),  # no spaces
        ("4, 6, 8", 0.0),
        ("", 0.0),
        (None, 0.0),
        ("1. 11\n2. 13\n3. 17", 0.6),  # list markers are not items
        ("11.5, 13", 0.2),  # a decimal is not an integer item
    ],
)
def test_score_numbers(answer, expected):
    assert EnumerateTask(k=5).score(_numbers(5, PRIMES_10_40), answer) == pytest.approx(expected)


def test_score_words_case_insensitive_and_only_shown_words():
    inst = Instance(
        task="enumerate", id="t", prompt="", target=["cat", "dog", "horse"],
        data={"k": 2, "kind": "words", "category": "animals",
              "words": ["cat", "dog", "horse", "apple", "red"]},
    )  # fmt: skip
    task = EnumerateTask(k=2)
    assert task.score(inst, "Cat and DOG") == 1.0
    assert task.score(inst, "cat, apple, red") == 0.5
    assert task.score(inst, "tiger, lion") == 0.0  # animals, but not in the shown list


def test_items_normalise_and_dedupe_in_order():
    task = EnumerateTask()
    assert task.items("I found 017, 5 and 17 again; also 5.") == ["17", "5"]
    assert task.items("- cat\n- Dog\n- the cat") == ["cat", "dog"]
    assert task.items("1. 7\n2. 14\n3. 21") == ["7", "14", "21"]


def test_extract_prefers_last_box():
    task = EnumerateTask()
    assert task.extract(r"thinking 2, 3 ... \boxed{5, 7}") == "5, 7"
    assert task.extract("  5, 7  ") == "5, 7"
    assert task.extract("   ") is None


@pytest.mark.parametrize("kind", ["primes", "multiples", "squares", "words"])
def test_generated_sets_are_correct(kind):
    k = 6
    for inst in EnumerateTask(k=k, kind=kind).generate(15, 1):
        d = inst.data
        assert d["k"] == k and d["kind"] == kind
        assert len(inst.target) >= 2 * k
        if kind == "primes":
            expected = [
                n for n in range(d["lo"], d["hi"] + 1)
                if n > 1 and all(n % p for p in range(2, math.isqrt(n) + 1))
            ]  # fmt: skip
        elif kind == "multiples":
            expected = list(range(d["m"], d["below"], d["m"]))
        elif kind == "squares":
            expected = [n for n in range(d["lo"], d["hi"] + 1) if math.isqrt(n) ** 2 == n]
        else:
            pool = set(CATEGORIES[d["category"]])
            expected = sorted(w for w in d["words"] if w in pool)
            assert all(w in inst.prompt for w in d["words"])
        assert inst.target == [str(x) for x in expected]
        assert EnumerateTask(k=k).score(inst, ", ".join(inst.target)) == 1.0


def test_generation_is_deterministic_and_mixed():
    task = EnumerateTask(k=4)
    a, b = task.generate(20, 9), task.generate(20, 9)
    assert [(i.id, i.prompt, i.target) for i in a] == [(i.id, i.prompt, i.target) for i in b]
    assert {i.data["kind"] for i in a} == {"primes", "multiples", "squares", "words"}


def test_bad_parameters():
    with pytest.raises(HivethinkError):
        EnumerateTask(k=0)
    with pytest.raises(HivethinkError):
        EnumerateTask(kind="planets")
    with pytest.raises(HivethinkError):
        EnumerateTask(k=30, kind="words")
    assert {i.data["kind"] for i in EnumerateTask(k=30).generate(10, 0)} <= {
        "primes", "multiples", "squares",
    }  # fmt: skip
