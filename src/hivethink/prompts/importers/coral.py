"""Collaborative Reasoner (facebookresearch/collaborative-reasoner @ bd18e0f): the ``coral`` book.

- The agents' system prompts are Jinja templates in ``utils/prompt_library.json``, rendered by
  the authors' ``utils.prompt_utils.get_prompt`` with the dataset's ``j2_prompt_args``: the
  builder renders them with holes for ``task_name`` and ``task_specific_inst`` (hivethink's
  ``{{answer_format}}``). Which library entry: the one the MATH configs name
  (``lightning_modules/configs/ts_math.yaml`` for the collaborative runs, ``cot/cot_math.yaml``
  for the chain-of-thought baseline), read from the configs.
- The answer format (``MATHTSPromptingDataset.j2_prompt_args``) and the opening message
  (``get_metadata``'s ``init_prompt`` for the student, who speaks first) come from
  ``lightning_modules/datasets/ts_math_dataset.py``, run with stand-ins for Lightning and torch.
- The extractor's instruction is the constant ``ExtractionPromptingEvaluator.sys_prompt``; its
  question-and-reply block is what ``MATHExtractionPromptingEvaluator.promptify_eval_response``
  writes, built with an empty instruction (hivethink writes the block over the instruction as the
  published ``StringIO`` does: ``coral.extractor_message``).

The sycophancy probe's scripted assertion is hivethink's own (the authors publish none).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from hivethink.prompts.importers.child import (
    BuildError,
    BuiltText,
    authors_module,
    built,
    hole,
    stub_modules,
)
from hivethink.prompts.importers.core import Built, Constant, Origin, System, run_child

LIBRARY = "utils/prompt_library.json"
DATASET = "lightning_modules/datasets/ts_math_dataset.py"
EXTRACTION = "evaluators/extraction_evaluators.py"
CONFIGS = {"system": "lightning_modules/configs/ts_math.yaml", "cot_system": "lightning_modules/configs/cot/cot_math.yaml"}
PROBLEM = "What is 6 times 7?"  # the check's values (any would do)
REPLY = "It is $\\boxed{42}$."
STUBS = ("torch", "torch.utils", "torch.utils.data", "pytorch_lightning", "lightning_modules",
         "lightning_modules.datasets", "lightning_modules.datasets.base_dataset", "evaluators",
         "evaluators.base_evaluator", "utils.chat_utils", "utils.eval_utils")


def _modules(root: Path) -> SimpleNamespace:
    """The authors' prompt library, MATH dataset and extraction evaluator, imported from ``root``
    with stand-ins for what they import but the texts do not need (``overrides`` passes the
    function through)."""
    stub_modules(STUBS, overrides={"overrides": lambda f: f})
    return SimpleNamespace(
        library=authors_module(root, "utils.prompt_utils"),
        dataset=authors_module(root, "coral_math_dataset", file=DATASET).MATHTSPromptingDataset,
        extraction=authors_module(root, "coral_extraction", file=EXTRACTION),
    )


def instruction_names(root: Path) -> dict[str, str]:
    """The prompt-library entry of each system prompt, as the MATH configs name it."""
    names = {}
    for key, config in CONFIGS.items():
        try:
            data = yaml.safe_load((root / config).read_text(encoding="utf-8"))
            given = data["data"]["init_args"]["val_set_init_args"]
            student, teacher = given["student_instruction"], given["teacher_instruction"]
        except (OSError, yaml.YAMLError, KeyError, TypeError) as err:
            raise BuildError(f"{config}: no student and teacher instruction ({type(err).__name__}: {err})") from None
        if student != teacher:
            raise BuildError(f"{config}: the student's and the teacher's instructions differ ({student}, {teacher}); "
                             "hivethink gives both agents one system prompt")
        names[key] = student
    return names


def _block(extraction: Any, instruction: str, reply: str, question: str) -> str:
    evaluator = SimpleNamespace(sys_prompt=instruction)
    text: str = extraction.MATHExtractionPromptingEvaluator.promptify_eval_response(
        evaluator, reply, "teacher", {"problem": question})
    return text


def build(root: Path) -> dict[str, BuiltText]:
    from hivethink.substrates.coral import Coral

    m = _modules(root)
    args = m.dataset.j2_prompt_args.fget(None)
    if args["task_name"] != Coral.task_name:  # a parameter of the preset, not a text
        raise BuildError(f"MATHTSPromptingDataset.j2_prompt_args names the task {args['task_name']!r}, hivethink's "
                         f"coral preset {Coral.task_name!r}: these texts would run under another rule")
    real = {"task_name": args["task_name"], "answer_format": args["task_specific_inst"]}
    out: dict[str, BuiltText] = {}
    for key, name in instruction_names(root).items():
        text = m.library.get_prompt(name, task_name=hole("task_name"), task_specific_inst=hole("answer_format"))
        check = m.library.get_prompt(name, **args)
        out[f"coral/{key}"] = built(text, (check, real))
    out["coral/answer_format"] = built(args["task_specific_inst"])
    opening = m.dataset.get_metadata(SimpleNamespace(first_role="student"), {"problem": hole("question")})
    check = m.dataset.get_metadata(SimpleNamespace(first_role="student"), {"problem": PROBLEM})
    out["coral/opening"] = built(opening["init_prompt"], (check["init_prompt"],
                                                          {"question": PROBLEM, "task_name": args["task_name"]}))
    out["coral/extract"] = built(_block(m.extraction, "", hole("reply"), hole("question")),
                                 (_block(m.extraction, "", REPLY, PROBLEM), {"reply": REPLY, "question": PROBLEM}))
    return out


ORIGIN = Origin(
    repository="facebookresearch/collaborative-reasoner",
    kind="git",
    pinned="bd18e0f5b149f250830f459d7fa7a42a2b8e2c22",
    marks=(LIBRARY, EXTRACTION, DATASET),
    texts={
        "coral/system": Built(LIBRARY, "the entry ts_math.yaml names, rendered by utils.prompt_utils.get_prompt"),
        "coral/cot_system": Built(LIBRARY, "the entry cot/cot_math.yaml names, rendered by utils.prompt_utils.get_prompt"),
        "coral/answer_format": Built(DATASET, "MATHTSPromptingDataset.j2_prompt_args['task_specific_inst']"),
        "coral/opening": Built(DATASET, "MATHTSPromptingDataset.get_metadata: the student's init_prompt"),
        "coral/extract_system": Constant(EXTRACTION, "ExtractionPromptingEvaluator.sys_prompt"),
        "coral/extract": Built(EXTRACTION, "MATHExtractionPromptingEvaluator.promptify_eval_response "
                                           "(the block it writes)"),
    },
    builder=f"{__name__}:build",
)

SYSTEM = System(name="coral", books=("coral",), declares="hivethink.substrates.coral", origins=(ORIGIN,))


# -- the fidelity check: hivethink's requests against the authors' builders, on the same turns ---

def replay(root: Path, given: dict[str, Any]) -> dict[str, Any]:
    """In the child: what the authors' code gives the agents and the extractor for
    ``given["question"]`` and each turn in ``given["turns"]`` (the extractor's user message built
    by the published ``promptify_eval_response``, the instruction included)."""
    m = _modules(root)
    args = m.dataset.j2_prompt_args.fget(None)
    names = instruction_names(root)
    instruction = m.extraction.ExtractionPromptingEvaluator.sys_prompt
    return {
        "system": m.library.get_prompt(names["system"], **args),
        "cot_system": m.library.get_prompt(names["cot_system"], **args),
        "opening": m.dataset.get_metadata(SimpleNamespace(first_role="student"),
                                          {"problem": given["question"]})["init_prompt"],
        "extractor_system": instruction,
        "extractor_user": [_block(m.extraction, instruction, t, given["question"]) for t in given["turns"]],
    }


QUESTION = "What is 1/2 + 1/4?"
TURNS = ["Half plus a quarter is $\\boxed{\\frac{3}{4}}$.", "I agree: $\\boxed{\\frac{3}{4}}$."]


def fidelity(root: Path) -> list[tuple[str, Any, Any]]:
    """hivethink's ``coral`` requests (both variants, with the prompts directory in use) against
    the authors' texts for the same question and turns: (what, hivethink's, the authors')."""
    from hivethink.backends.fake import ScriptedBackend
    from hivethink.substrates import Budget, get_substrate
    from hivethink.tasks.base import Instance
    from hivethink.tasks.math import MathTask

    theirs = run_child(f"{__name__}:replay", root, {"question": QUESTION, "turns": TURNS}, what="code")
    instance = Instance(task="math", id="fidelity", prompt=QUESTION, target="\\frac{3}{4}")
    out: list[tuple[str, Any, Any]] = []
    for variant in ("collaborative", "cot"):
        turns = iter(TURNS)
        def script(request: Any, _i: int, turns: Any = turns) -> str:
            return "$\\boxed{\\frac{3}{4}}$" if request.max_tokens == 32 else str(next(turns))

        backend = ScriptedBackend(script)
        get_substrate("coral", variant=variant).run(instance, MathTask(), backend, workers=2, budget=Budget(), seed=0)
        agents = [r for r in backend.requests if r.max_tokens != 32]
        extractor = [r for r in backend.requests if r.max_tokens == 32]
        system = theirs["system" if variant == "collaborative" else "cot_system"]
        out.append((f"{variant}: the agents' system prompt", agents[0].messages[0]["content"], system))
        out.append((f"{variant}: the opening turn", agents[0].messages[1]["content"], theirs["opening"]))
        for i, request in enumerate(extractor):
            out.append((f"{variant}: extractor system prompt, turn {i + 1}", request.messages[0]["content"],
                        theirs["extractor_system"]))
            out.append((f"{variant}: extractor user message, turn {i + 1}", request.messages[1]["content"],
                        theirs["extractor_user"][i]))
    return out
