"""Hogwild! Inference (eqimp/hogwild_llm @ 1a87a99): the ``hogwild`` book from ``formatting.py``.

- Constants of ``MathFormatting``: the section headers, the ``<...>`` pivot, the redundancy
  question and the finisher suffix, read with ``ast``; the end-of-step characters and the step
  separator are checked equal to hivethink's (they are rules, not texts).
- Built by the authors' code, in a subprocess (:func:`build`): the step prefix
  (``get_step_prefix``), the seeded first steps (``worker_prompts``), the user turn
  (``get_full_prompt``) and the instruction (``_make_system_prompt_math_2workers`` and the example
  builders it calls). The instruction is cut into hivethink's five parts by building it with and
  without examples and suggestions (hivethink joins its parts with the step separator, as the
  builder does). The examples come out wrapped in chat turns of a stand-in tokenizer whose turn
  is ``{{turn_open}}``/``{{turn_close}}``, which hivethink fills with the real model's template.
- ``len(workers)`` becomes ``{{count}}`` and the joined names ``{{workers}}``: the builder runs
  for two and for three workers, and the two texts may differ only there.
"""

from __future__ import annotations

import difflib
import inspect
import re
from pathlib import Path
from typing import Any

from hivethink.prompts.importers.child import (
    BuildError,
    BuiltText,
    ChatTokenizerStandIn,
    authors_module,
    built,
    hole,
)
from hivethink.prompts.importers.core import Built, Constant, Origin, Same, System

FILE = "formatting.py"
SEP = "\n\n"
INSTRUCTION = ("rules", "examples", "collaboration", "collaboration_examples", "task")
# MathFormatting attribute -> the hivethink placeholder it fills in the instruction
HOLES = {"history_header": "history_title", "work_in_progress_others": "others_title",
         "work_in_progress_self": "own_title", "pivot_message": "marker", "begin_of_reasoning": "think"}
NAMES = ("Alice", "Bob", "Carol")  # the check's worker names (any would do)
TURN = ("<|user|>\n", "<|end|>\n<|assistant|>\n")  # the check's chat turn (any two strings would do)
PROBLEM = "What is 6 times 7?"


def _between(text: str, head: str, tail: str, what: str) -> str:
    if not (text.startswith(head) and text.endswith(tail) and len(text) >= len(head) + len(tail)):
        raise BuildError(f"_make_system_prompt_math_2workers: the {what} is not where hivethink expects it "
                         "(between the other parts, separated by blank lines)")
    return text[len(head): len(text) - len(tail)]


def _parts(formatting: Any, fmt: Any) -> dict[str, str]:
    """The instruction cut into hivethink's parts: rules (heading and rules), examples,
    collaboration (heading and suggestions), its examples, and the closing task. It is cut at
    the texts of ``RULES_VARIANTS`` and ``SUGGESTIONS_ON_COLLABORATING_VARIANTS`` and by building
    it without examples or suggestions (without examples, the builder also leaves out the
    suggestions: the conditional covers both, so that build cannot cut them)."""
    make = formatting._make_system_prompt_math_2workers
    style = inspect.signature(make).parameters["prompt_style"].default
    full = {(e, s): make(fmt, add_examples=e, add_suggestions_on_collaborating=s)
            for e, s in ((False, False), (True, False), (True, True))}
    rules, _ = _cut(full[False, False], formatting.RULES_VARIANTS[style](fmt), "RULES_VARIANTS")
    task = _between(full[False, False], rules + SEP, "", "closing task")
    examples = _between(full[True, False], rules + SEP, SEP + task, "examples section")
    middle = _between(full[True, True], rules + SEP + examples + SEP, SEP + task, "collaboration section")
    body = formatting.SUGGESTIONS_ON_COLLABORATING_VARIANTS[style](fmt)
    collaboration, rest = _cut(middle, body, "SUGGESTIONS_ON_COLLABORATING_VARIANTS")
    collab_examples = _between(rest, SEP, "", "collaboration examples")
    parts = dict(zip(INSTRUCTION, (rules, examples, collaboration, collab_examples, task), strict=True))
    for key, text in parts.items():
        if text != text.strip("\n"):  # hivethink strips newlines at the ends of each part
            raise BuildError(f"the instruction's {key} part begins or ends with a newline")
    return parts


def _cut(text: str, body: str, what: str) -> tuple[str, str]:
    """``text`` up to the end of ``body``, and the rest."""
    if body not in text:
        raise BuildError(f"the text of {what} is not in the instruction")
    end = text.index(body) + len(body)
    return text[:end], text[end:]


def _team(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}"


_TOKEN = re.compile(r"\ue000\w+\ue001|\d+|\w+|\s+|.", re.DOTALL)


def _with_count(two: str, three: str, key: str) -> str:
    """The three-worker text with ``{{count}}`` where the two texts say 2 and 3. Elsewhere they
    may differ only where the three-worker text names the first two workers and the two-worker
    one (whose ``a and b`` is the team) says ``{{workers}}``."""
    a, b = _TOKEN.findall(two), _TOKEN.findall(three)
    pair = hole("a") + " and " + hole("b")
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        x, y = "".join(a[i1:i2]), "".join(b[j1:j2])
        if tag == "equal" or (x == hole("workers") and y == pair):
            out.append(y)
        elif x == "2" and y == "3":
            out.append(hole("count"))
        else:
            raise BuildError(f"the {key} text changes with the number of workers where hivethink has no "
                             f"placeholder ({x!r} for two, {y!r} for three)")
    return "".join(out)


def build(root: Path) -> dict[str, BuiltText]:
    formatting = authors_module(root, "formatting", stubs=("transformers",))
    cls = formatting.MathFormatting

    def fmt(workers: list[str] | tuple[str, ...], holes: bool) -> Any:
        turn = (hole("turn_open"), hole("turn_close")) if holes else TURN
        f = cls(ChatTokenizerStandIn(*turn, tokens=[SEP]), workers=list(workers))
        if holes:
            for attr, name in HOLES.items():
                setattr(f, attr, hole(name))
        return f

    real = {name: getattr(cls, attr) for attr, name in HOLES.items()}
    out: dict[str, BuiltText] = {}

    holes3 = [hole("a"), hole("b"), hole("c")]
    by_n = {n: {k: v.replace(_team(holes3[:n]), hole("workers")) for k, v in _parts(formatting, fmt(holes3[:n], True)).items()}
            for n in (2, 3)}
    reals = {n: _parts(formatting, fmt(NAMES[:n], False)) for n in (2, 3)}
    for key in INSTRUCTION:
        if hole("c") in by_n[3][key]:
            raise BuildError(f"the instruction's {key} names a third worker, which hivethink's template cannot")
        checks = [(reals[n][key], dict(real, a=NAMES[0], b=NAMES[1], workers=_team(NAMES[:n]), count=n,
                                       turn_open=TURN[0], turn_close=TURN[1])) for n in (2, 3)]
        out[f"hogwild/{key}"] = built(_with_count(by_n[2][key], by_n[3][key], key), *checks)

    two = fmt(NAMES[:2], False)
    if two.system_prompt != SEP.join(reals[2].values()):
        raise BuildError("MathFormatting's own instruction is not _make_system_prompt_math_2workers with its defaults")
    out["hogwild/step_header"] = built(two.get_step_prefix(hole("name"), hole("index")),
                                       (two.get_step_prefix(NAMES[0], 7), {"name": NAMES[0], "index": 7}))

    same = fmt([hole("name"), hole("name")], True)
    for i, key in enumerate(("first_step_lead", "first_step_other")):
        text, prefix = same.worker_prompts[i], same.get_step_prefix(hole("name"), 1)
        real_text, real_prefix = two.worker_prompts[i], two.get_step_prefix(NAMES[i], 1)
        if not (text.startswith(prefix) and real_text.startswith(real_prefix)):
            raise BuildError(f"worker_prompts[{i}] does not begin with the worker's first step prefix")
        out[f"hogwild/{key}"] = built(text[len(prefix):], (real_text[len(real_prefix):], {"name": NAMES[i]}))

    def user_turn(f: Any, turn: tuple[str, str], problem: str) -> str:
        return _between(f.get_full_prompt(problem), turn[0], turn[1], "user turn")

    holed = fmt(holes3[:2], True)
    holed.system_prompt = hole("instruction")
    out["hogwild/user_turn"] = built(user_turn(holed, (hole("turn_open"), hole("turn_close")), hole("problem")),
                                     (user_turn(two, TURN, PROBLEM), {"instruction": two.system_prompt,
                                                                       "problem": PROBLEM}))
    return out


ORIGIN = Origin(
    repository="eqimp/hogwild_llm",
    kind="git",
    pinned="1a87a99d7a13d4aff93e16f229c6733665754b66",
    marks=(FILE, "generation.py", "shared_cache/__init__.py"),
    texts={
        "hogwild/history_title": Constant(FILE, "MathFormatting.history_header"),
        "hogwild/others_title": Constant(FILE, "MathFormatting.work_in_progress_others"),
        "hogwild/own_title": Constant(FILE, "MathFormatting.work_in_progress_self"),
        "hogwild/marker": Constant(FILE, "MathFormatting.pivot_message"),
        "hogwild/check": Constant(FILE, "MathFormatting.s1_collab_message"),
        "hogwild/finisher": Constant(FILE, "MathFormatting.s1_finisher_suffix"),
        "hogwild/step_header": Built(FILE, "MathFormatting.get_step_prefix"),
        "hogwild/first_step_lead": Built(FILE, "MathFormatting.worker_prompts[0] after the step prefix"),
        "hogwild/first_step_other": Built(FILE, "MathFormatting.worker_prompts[1] after the step prefix"),
        "hogwild/user_turn": Built(FILE, "MathFormatting.get_full_prompt (the user turn's content)"),
        "hogwild/rules": Built(FILE, "_make_system_prompt_math_2workers: heading and RULES_VARIANTS"),
        "hogwild/examples": Built(FILE, "_make_system_prompt_math_2workers: '# Examples' "
                                        "(EXAMPLES example_first_step, example_full_equation)"),
        "hogwild/collaboration": Built(FILE, "_make_system_prompt_math_2workers: heading and "
                                             "SUGGESTIONS_ON_COLLABORATING_VARIANTS"),
        "hogwild/collaboration_examples": Built(FILE, "_make_system_prompt_math_2workers: EXAMPLES "
                                                      "example_medium_calc, example_debate_geom, "
                                                      "example_step_avoid_redundancy_1-3"),
        "hogwild/task": Built(FILE, "_make_system_prompt_math_2workers: the closing section"),
    },
    builder=f"{__name__}:build",
    checks=(Same(FILE, "MathFormatting.end_of_step_chars", "hivethink.engine.text:END_OF_STEP_CHARS"),
            Same(FILE, "MathFormatting.step_separator", "hivethink.engine.text:STEP_SEPARATOR")),
)

SYSTEM = System(name="hogwild", books=("hogwild",), declares="hivethink.engine.hive", origins=(ORIGIN,))
