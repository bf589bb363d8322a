"""Check by hand that hivethink, run with imported texts, shows a model exactly what the authors'
code would: imports the authors' module from their checkout (or package) in this process, builds
their texts, and compares them with hivethink's, token for token where a model is involved.

    python scripts/check_imported_prompts.py hogwild CHECKOUT PROMPTS_DIR [--model M] [--trace T]
    python scripts/check_imported_prompts.py mast SOURCE PROMPTS_DIR
    python scripts/check_imported_prompts.py agentsnet|consensus-game|coral|debate-du|camel|metagpt CHECKOUT PROMPTS_DIR

hogwild: the embedded model's tokenizer unless --model (the authors' formatting.py imports
transformers, which hivethink has). --trace: a ``hivethink solve --trace`` JSONL of a two-worker
run with these prompts; every forced text in it (the prompt, the header blocks with the pivot,
the seeded first steps, each later step header with or without the redundancy question, the
finisher's suffix) is compared, token for token, with what the authors' code builds. mast:
SOURCE is an openevolve-mast checkout or a directory holding the agentdash package. The text
protocols: every request the preset sends with the imported texts, on scripted replies, against
the request the authors' own driver builds from the checkout on the same replies (the importer
module's ``fidelity``: the driver runs in a subprocess with stand-ins for the model clients).
metagpt (v0.1.0 or v0.8.1, by the checkout): every template as hivethink renders it against the
authors' constant formatted as their code formats it; v0.8.1 also each document's whole prompt as
the checkout's ``ActionNode.compile`` builds it (in a subprocess) against hivethink's node prompt
filled with the imported node list, example and constraint, and the two inline joiners hivethink
keeps as its own against the authors' f-strings. One line per comparison; exit 1 on any difference.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

from hivethink import prompts

PROBLEM = "Find the sum of all integer bases b > 9 for which 17_b is a divisor of 97_b."
failed = False


def same(what: str, ours: object, theirs: object) -> None:
    global failed
    ok = ours == theirs
    failed |= not ok
    size = f"{len(theirs)} {'tokens' if isinstance(theirs, list) else 'chars'}" if hasattr(theirs, "__len__") else ""
    print(f"{'same' if ok else 'DIFFERENT'}: {what} ({size})")


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def hogwild(checkout: Path, model_id: str | None, trace: Path | None = None) -> None:
    from hivethink.engine.hive import HOGWILD, HiveConfig, HiveJob, chat_ids
    from hivethink.models.loader import load_model

    model = load_model(model_id, dtype="float32")
    tok = model.tokenizer
    formatting = load(checkout / "formatting.py", "authors_formatting")
    for names in (("Alice", "Bob"), ("Alice", "Bob", "Carol")):
        theirs = formatting.MathFormatting(tok, workers=names)
        job = HiveJob(model, HiveConfig(workers=len(names)), PROBLEM)
        n = len(names)
        same(f"{n} workers: the instruction", job.text.instruction(True), theirs.system_prompt)
        conversation = [{"role": "user", "content": theirs.system_prompt + theirs.sep + PROBLEM}]
        assert theirs.get_full_prompt(PROBLEM) == tok.apply_chat_template(conversation, tokenize=False,
                                                                           add_generation_prompt=True)
        same(f"{n} workers: the prompt's token ids (get_full_prompt)", job.prompt, chat_ids(tok, conversation))
        for w in range(2):
            same(f"{n} workers: worker {w}'s seeded first step", job.decode(job.workers[w].pending),
                 theirs.worker_prompts[w])
    titles = {k: HOGWILD.render(k) for k in ("others_title", "own_title", "marker")}
    same("the others' header block", "\n\n" + titles["others_title"] + "\n\n", theirs.current_step_header)
    same("the own header block", titles["marker"] + "\n\n" + titles["own_title"] + "\n\n",
         theirs.current_worker_header)
    same("a later step header", HOGWILD.render("step_header", name="Bob", index=5), theirs.get_step_prefix("Bob", 5))
    same("the redundancy question", HOGWILD.render("check"), theirs.s1_collab_message)
    same("the finisher suffix", HOGWILD.render("finisher"), theirs.s1_finisher_suffix)
    if trace is not None:
        forced_in_trace(trace, tok, formatting.MathFormatting(tok, workers=("Alice", "Bob")))


def forced_in_trace(path: Path, tok: object, theirs: object) -> None:
    """Every forced text of a two-worker trace against the authors' (``theirs``: their
    ``MathFormatting``), as token ids: the reference encodes each forced string whole."""
    from hivethink.trace import read_jsonl

    def ids(text: str) -> list[int]:
        return list(tok.encode(text, add_special_tokens=False))  # type: ignore[attr-defined]

    events = list(read_jsonl(path))
    [prompt] = [e for e in events if e.kind == "prompt"]
    problem = PROBLEM if PROBLEM in prompt.text else None
    if problem is not None:
        same("trace: the prompt's length in tokens", prompt.data["tokens"], len(ids(theirs.get_full_prompt(problem))))
    headers = prompt.data.get("headers", {})
    same("trace: the others' header block (prefilled)", headers.get("others_header"), theirs.current_step_header)
    same("trace: the own header block with the pivot (prefilled)", headers.get("own_header"),
         theirs.current_worker_header)
    runs: dict[tuple[str, int], list[int]] = {}
    for e in events:
        if e.kind == "token" and e.data.get("forced"):
            runs.setdefault((e.worker, e.step), []).append(e.token_id)
    names = list(theirs.workers)
    index = dict.fromkeys(names, 1)
    checks = 0
    for (worker, step), got in sorted(runs.items(), key=lambda kv: kv[0][1]):
        w = names.index(worker)
        if step == 0:
            same(f"trace: {worker}'s seeded first step", got, ids(theirs.worker_prompts[w]))
            continue
        index[worker] += 1
        header = theirs.get_step_prefix(worker, index[worker])
        with_check = header + theirs.s1_collab_message
        want = with_check if got == ids(with_check) else header
        checks += want == with_check
        same(f"trace: {worker}'s step {index[worker]} header{' + the redundancy question' if want == with_check else ''}"
             f" (pass {step})", got, ids(want))
    finisher = [e for e in events if e.kind == "step" and e.data.get("finisher")]
    for e in finisher:
        same("trace: the finisher's suffix", e.text[: len(theirs.s1_finisher_suffix)], theirs.s1_finisher_suffix)
    print(f"trace: {len(runs)} forced runs, {sum(index.values()) - len(names)} later step headers, "
          f"{checks} with the redundancy question, {len(finisher)} finisher(s)")


class Echo:
    def __init__(self) -> None:
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    @staticmethod
    def create(*, messages: list[dict[str, str]], **_: object) -> object:
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=messages[0]["content"]))])


def mast(root: Path) -> None:
    from hivethink.metrics.mast import mast_prompt, render_trace
    from hivethink.trace import Event

    events = [Event(kind="prompt", worker="Alice", text="Solve 2+2."),
              Event(kind="step", worker="Alice", text="It is 4."), Event(kind="step", worker="Bob", text="Agreed.")]
    trace = render_trace(events)
    evaluator = root / "openevolve/examples/multi_agent_evolution_v2/evaluator.py"
    if evaluator.exists():
        theirs = load(evaluator, "authors_evaluator").openai_evaluator(trace, client=Echo())
    else:
        sys.path.insert(0, str(root))
        annotator = importlib.import_module("agentdash.annotator").annotator
        loaded = SimpleNamespace()
        loaded.definitions, loaded.examples = annotator._load_definitions(loaded), annotator._load_examples(loaded)
        theirs = annotator._create_evaluation_prompt(loaded, trace)
    same("the judge prompt for one trace", mast_prompt(events), theirs)


PROTOCOLS = ("agentsnet", "consensus-game", "coral", "debate-du", "camel", "metagpt")


def protocol(system: str, checkout: Path) -> None:
    module = importlib.import_module(f"hivethink.prompts.importers.{system.replace('-', '_')}")
    global failed
    for what, ours, theirs in module.fidelity(checkout):
        ok = ours == theirs
        failed |= not ok
        size = "" if isinstance(theirs, int) else f" ({len(json.dumps(theirs, ensure_ascii=False))} chars of JSON)"
        print(f"{'same' if ok else 'DIFFERENT'}: {what}{size}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("system", choices=["hogwild", "mast", *PROTOCOLS])
    parser.add_argument("source", type=Path)
    parser.add_argument("prompts_dir", type=Path)
    parser.add_argument("--model")
    parser.add_argument("--trace", type=Path)
    args = parser.parse_args()
    from hivethink.prompts.importers import declare_books

    declare_books()
    prompts.use_directory(args.prompts_dir)
    if args.system == "hogwild":
        hogwild(args.source, args.model, args.trace)
    elif args.system == "mast":
        mast(args.source)
    else:
        protocol(args.system, args.source)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
