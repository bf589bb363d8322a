"""Multi-agent debate (composable-models/llm_multiagent_debate @ 9846749): the ``debate-du`` book.

- The first question of each setup is a ``str.format`` template written inline in the script's
  main block (``gsm/gen_gsm.py``: formatted with the question; ``math/gen_math.py``: with the six
  operands), read with ``ast``. The arithmetic one is cut where hivethink's task puts its own
  question text (``tasks.arithmetic.question``: the same words): the template is ``{{question}}``
  and the rest of the published sentence.
- The revision messages are built by the authors' ``construct_message`` (run from the checkout):
  with no other agent (the lone agent's check), and with one and two other agents, which gives the
  message around the solutions (``{{solutions}}``, and the GSM question) and the text of one
  solution (``{{text}}``). The published solution line has no name in it, so hivethink's
  ``names=True`` variant shows none with these texts; ``anonymous`` and ``named_system`` (that
  variant's) stay hivethink's own.
- The lone GSM agent's check is a plain string with ``\\boxed{{answer}}`` written in it (it never
  passes through ``format``): its double braces are kept with the escapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hivethink.prompts.importers import pyread
from hivethink.prompts.importers.child import (
    BuildError,
    BuiltText,
    authors_module,
    built,
    hole,
    repeat_unit,
)
from hivethink.prompts.importers.core import Built, FormatCall, Origin, System, run_child

GSM, MATH = "gsm/gen_gsm.py", "math/gen_math.py"
OPERANDS = ("a", "b", "c", "d", "e", "f")
QUESTION, TEXT, OTHER = "What is 2 + 3?", "It is 5.", "I think it is 6."  # the check's values (any would do)


def _construct(module: Any, texts: list[str], question: str) -> str:
    """The authors' revision message when the other agents' latest answers are ``texts``."""
    message: dict[str, str] = module.construct_message([[{"role": "assistant", "content": t}] for t in texts],
                                                       question, 0)
    return message["content"]


def _revisions(module: Any, setup: str) -> dict[str, BuiltText]:
    alone = _construct(module, [], hole("question"))
    one, two = (_construct(module, [hole("text")] * n, hole("question")) for n in (1, 2))
    head, unit, tail = repeat_unit(one, two, hole("text"))
    others = head + hole("solutions") + tail
    values = {"question": QUESTION}
    if setup == "arithmetic" and hole("question") in others:
        raise BuildError(f"{MATH}: construct_message restates the question; hivethink's arithmetic revision does not")
    real_solutions = unit.replace(hole("text"), TEXT) + unit.replace(hole("text"), OTHER)
    return {
        f"debate-du/{setup}_alone": built(alone, (_construct(module, [], QUESTION), values)),
        f"debate-du/{setup}_others": built(others, (_construct(module, [TEXT, OTHER], QUESTION),
                                                    {**values, "solutions": real_solutions})),
        f"debate-du/{setup}_solution": built(unit, (_construct(module, [TEXT], QUESTION).replace(head, "", 1)
                                                    .removesuffix(tail.replace(hole("question"), QUESTION)),
                                                    {"text": TEXT})),
    }


def build(root: Path) -> dict[str, BuiltText]:
    from hivethink.tasks.arithmetic import question

    gsm = authors_module(root, "debate_gen_gsm", file=GSM, stubs=("openai",))
    math = authors_module(root, "debate_gen_math", file=MATH, stubs=("openai",))
    out = {**_revisions(gsm, "gsm"), **_revisions(math, "arithmetic")}
    literal = pyread.format_literal(root / MATH, "__main__", OPERANDS, occurrence=1)
    asked = literal.format(*(hole(x) for x in OPERANDS))
    ours = question([hole(x) for x in OPERANDS])  # type: ignore[misc]  # holes stand for the operands
    if asked.count(ours) != 1:
        raise BuildError(f"{MATH}: the first question does not hold hivethink's question text {ours!r} once")
    operands = [1, 2, 3, 4, 5, 6]
    out["debate-du/arithmetic_question"] = built(asked.replace(ours, hole("question")),
                                                 (literal.format(*operands), {"question": question(operands)}))
    return out


ORIGIN = Origin(
    repository="composable-models/llm_multiagent_debate",
    kind="git",
    pinned="9846749350eb917ae5bfaaff4c645fc705b8d3af",
    marks=(GSM, MATH, "gsm/eval_gsm.py"),
    texts={
        "debate-du/gsm_question": FormatCall(GSM, "__main__", ("question",), fields={"0": "question"}),
        "debate-du/gsm_alone": Built(GSM, "construct_message with no other agent"),
        "debate-du/gsm_others": Built(GSM, "construct_message with other agents (around their solutions)"),
        "debate-du/gsm_solution": Built(GSM, "construct_message: one other agent's solution"),
        "debate-du/arithmetic_question": Built(MATH, "the first str.format template in __main__ called with "
                                                     "(a, b, c, d, e, f), after hivethink's question text"),
        "debate-du/arithmetic_alone": Built(MATH, "construct_message with no other agent"),
        "debate-du/arithmetic_others": Built(MATH, "construct_message with other agents (around their answers)"),
        "debate-du/arithmetic_solution": Built(MATH, "construct_message: one other agent's answer"),
    },
    builder=f"{__name__}:build",
)

SYSTEM = System(name="debate-du", books=("debate-du",), declares="hivethink.substrates.debate", origins=(ORIGIN,))


# -- the fidelity check: hivethink's requests against the published debate loop -------------------

SETUPS = {"gsm": (GSM, 3, 2), "arithmetic": (MATH, 2, 3)}  # setup -> script, agents, rounds


def replay(root: Path, given: dict[str, Any]) -> list[list[dict[str, str]]]:
    """In the child: the requests of the published debate loop (the scripts' main blocks, which
    need the dataset and the API, written out here step for step: the first question for every
    agent, then per round and agent ``construct_message`` over the other agents' contexts at
    index ``2 * round - 1``) with the authors' question template and ``construct_message``, each
    agent answering ``given["replies"][agent][round]``."""
    path, agents, rounds = SETUPS[given["setup"]]
    module = authors_module(root, f"debate_{given['setup']}", file=path, stubs=("openai",))
    if given["setup"] == "gsm":
        first = pyread.format_literal(root / GSM, "__main__", ("question",)).format(given["question"])
        revise_with = given["question"]
    else:
        first = pyread.format_literal(root / MATH, "__main__", OPERANDS, occurrence=1).format(*given["operands"])
        revise_with = pyread.format_literal(root / MATH, "__main__", OPERANDS, occurrence=2).format(*given["operands"])
    contexts = [[{"role": "user", "content": first}] for _ in range(agents)]
    requests = []
    for r in range(rounds):
        for i, context in enumerate(contexts):
            if r != 0:
                context.append(module.construct_message(contexts[:i] + contexts[i + 1:], revise_with, 2 * r - 1))
            requests.append([dict(m) for m in context])
            context.append({"role": "assistant", "content": given["replies"][i][r]})
    return requests


def fidelity(root: Path) -> list[tuple[str, Any, Any]]:
    """hivethink's ``debate-du`` requests (both setups, with the prompts directory in use) against
    the published loop's on the same replies: (what, hivethink's, the authors')."""
    from hivethink.backends.fake import ScriptedBackend
    from hivethink.substrates import Budget, get_substrate
    from hivethink.tasks.arithmetic import ArithmeticTask
    from hivethink.tasks.base import Instance
    from hivethink.tasks.math import MathTask

    out: list[tuple[str, Any, Any]] = []
    for setup, (_, agents, rounds) in SETUPS.items():
        replies = [[f"Agent {i} says {10 * i + r} in round {r}: \\boxed{{{10 * i + r}}}." for r in range(rounds)]
                   for i in range(agents)]
        if setup == "gsm":
            instance = Instance(task="math", id="fidelity", prompt="Tom has 3 apples and buys 4. How many? (box it)",
                                target="7", data={"question": "Tom has 3 apples and buys 4. How many?"})
            given: dict[str, Any] = {"setup": setup, "question": instance.question, "replies": replies}
            task: Any = MathTask()
        else:
            [instance] = ArithmeticTask().generate(1, 0)
            given = {"setup": setup, "operands": instance.data["operands"], "replies": replies}
            task = ArithmeticTask()
        theirs = run_child(f"{__name__}:replay", root, given, what="debate loop")
        def script(_request: Any, i: int, replies: list[list[str]] = replies, n: int = agents) -> str:
            return replies[i % n][i // n]

        backend = ScriptedBackend(script)
        get_substrate("debate-du", setup=setup).run(instance, task, backend, workers=agents, budget=Budget(), seed=0)
        ours = [r.messages for r in backend.requests]
        out.append((f"{setup}: the number of requests", len(ours), len(theirs)))
        out += [(f"{setup}: request {k + 1}", o, t) for k, (o, t) in enumerate(zip(ours, theirs, strict=False))]
    return out
