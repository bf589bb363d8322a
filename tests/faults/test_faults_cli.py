"""Hostile command lines and configs: exit code 2, exactly one ``error:`` line, no traceback.

Every case runs the real entry point (``hivethink.cli.main.run``, what the ``hivethink`` script
calls) in its own process, with its own stdout, stderr, working directory and exit status. A
fresh interpreter spends about two seconds importing torch, so the cases are forked from one
driver process that has imported everything once (about 30 cases in a few seconds on 2 cores);
a few run in a completely fresh ``python -m hivethink.cli.main`` as well. Model cases point
``HIVETHINK_CACHE`` at an empty directory: none of them may load (or dequantize) a model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slow  # one subprocess per hostile input (a fresh interpreter for some)

BASE: dict[str, Any] = {
    "name": "hostile",
    "models": [{"kind": "echo"}],
    "substrates": ["independent"],
    "workers": [2],
    "tasks": [{"name": "math", "n": 1}],
    "budget": {"max_tokens": 8},
}


def _config(**changes: Any) -> str:
    return yaml.safe_dump({**BASE, **changes})


@dataclass
class Case:
    args: list[str]  # "{d}" is replaced by the directory holding the inputs
    expect: str  # a piece of the one error line
    fresh: bool = False  # also run it in a fresh interpreter


FILES: dict[str, bytes | str | None] = {  # inputs; None makes a directory
    "problem-latin1.txt": "Combien font 2 + 2 ? Réponse en français.".encode("latin-1"),
    "problem-dir": None,
    "empty.gguf": b"",
    "corrupt.gguf": b"GGUF" + bytes(range(256)) * 16,
    "notgguf.bin": b"\x00" * 64,
    "bert/config.json": json.dumps(
        {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 32,
         "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
         "vocab_size": 100}
    ),
    "broken/config.json": "{not json",
    "trace-dir": None,
    "a-file.txt": "plain text",
    "results-dir/results.jsonl": None,
    "c/nested-unknown-key.yaml": _config(budget={"max_tokens": 8, "colour": "blue"}),
    "c/unknown-task-key.yaml": _config(tasks=[{"name": "math", "size": 3}]),
    "c/workers-string.yaml": _config(workers="many"),
    "c/seeds-words.yaml": _config(seeds=["a", "b"]),
    "c/budget-negative.yaml": _config(budget={"max_tokens": -5}),
    "c/models-mapping.yaml": _config(models={"kind": "echo"}),
    "c/workers-0.yaml": _config(workers=[0]),
    "c/workers-10000.yaml": _config(workers=[10000]),
    "c/substrate-workers-10000.yaml": _config(
        substrates=[{"name": "independent", "workers": [10000]}]
    ),
    "c/list.yaml": "- models\n- tasks\n",
    "c/empty.yaml": "",
    "c/latin1.yaml": "name: caf\xe9\n".encode("latin-1"),
    "c/python-tag.yaml": "!!python/object/apply:os.system ['echo pwned']\n",
    "c/binary.yaml": b"\x00\x01\x02\x03models: [\n",
    "c/dir.yaml": None,
    "c/missing-model.yaml": _config(models=[{"kind": "local", "model": "/no/such/model.gguf"}]),
    "c/corrupt-gguf.yaml": "CORRUPT",  # written below: needs the absolute path
    "c/bert.yaml": "BERT",
    "c/backend-unknown-param.yaml": _config(models=[{"kind": "echo", "colour": "red"}]),
    "c/backend-bad-type.yaml": _config(models=[{"kind": "echo", "delay_s": "slow"}]),
    "c/surrogate.yaml": _config(models=[{"kind": "echo", "reply": "x\ud800"}]),
    "c/openai-no-url.yaml": _config(models=[{"kind": "openai", "model": "x"}]),
    "c/task-param-type.yaml": _config(tasks=[{"name": "math", "params": {"steps": "two"}}]),
    "c/unknown-substrate.yaml": _config(substrates=["telepathy"]),
    "c/substrate-param.yaml": _config(
        substrates=[{"name": "roleplay", "params": {"max_messages": "x"}}]
    ),
    "c/ok.yaml": _config(),
    "c/budgets-down.yaml": _config(budgets=[128, 64]),
    "c/budgets-and-passes.yaml": _config(budgets=[64], budget={"max_tokens": 8, "passes": 32}),
    "c/prompts-missing.yaml": _config(prompts="no-such-books"),
    # issue 23: problem files read when the grid is built (cases run in base/cwdN, inputs in base/inputs)
    "data/code-missing.jsonl": json.dumps({"task_id": "x/0", "prompt": "def f():\n", "test": "assert True"}) + "\n",
    "data/evidence-noparas.jsonl": json.dumps({"question": "Is ice cold?", "answer": True}) + "\n",
    "data/evidence-ok.jsonl": json.dumps({"question": "Is ice cold?", "answer": True, "paragraphs": ["Ice is cold."]}) + "\n",
    "c/code-missing-field.yaml": _config(substrates=["metagpt"], tasks=[
        {"name": "code", "params": {"source": "../inputs/data/code-missing.jsonl"}}]),
    "c/evidence-no-paragraphs.yaml": _config(substrates=["llm-program"], tasks=[
        {"name": "evidence", "params": {"source": "../inputs/data/evidence-noparas.jsonl"}}]),
    "c/llm-program-echo.yaml": _config(substrates=["llm-program"], tasks=[
        {"name": "evidence", "params": {"source": "../inputs/data/evidence-ok.jsonl"}}]),
    "newer-run/results.jsonl": json.dumps({"schema_version": 99, "key": "k"}) + "\n",
    # published presets' options (issue 21); a model that cannot load shows the check comes first
    "gsm-no-question.jsonl": json.dumps({"problem": "How many?", "answer": "1 + 2 = 3\n#### 3"}) + "\n",
    "c/consensus-names.yaml": _config(models=[{"kind": "local", "model": "/no/such/model.gguf"}],
                                      substrates=[{"name": "consensus-game", "params": {"names": "nicknames"}}],
                                      tasks=[{"name": "agree", "n": 1}]),
    "c/graph-empty-cover.yaml": _config(models=[{"kind": "local", "model": "/no/such/model.gguf"}],
                                        substrates=["agentsnet"],
                                        tasks=[{"name": "graph", "params": {"kind": "vertex_cover", "empty_cover": "skip"}}]),
    "c/coral-variant.yaml": _config(models=[{"kind": "local", "model": "/no/such/model.gguf"}],
                                    substrates=[{"name": "coral", "params": {"variant": "solo"}}]),
    "c/gsm-no-fields.yaml": "GSM",
}

MODEL_MISSING = "/no/such/model.gguf"
CASES: dict[str, Case] = {
    # solve: bad numbers fail before the model loads (a model that would fail differently is given)
    "solve workers 10000": Case(["solve", "x", "-n", "10000", "--model", "{d}/corrupt.gguf"],
                                "--workers: Input should be less than or equal to 16", fresh=True),
    "solve workers -1": Case(["solve", "x", "-n", "-1", "--model", "{d}/corrupt.gguf"],
                             "--workers: Input should be greater than or equal to 1"),
    "solve max-steps 0": Case(["solve", "x", "--max-steps", "0", "--model", MODEL_MISSING],
                              "--max-steps: Input should be greater than or equal to 1"),
    "solve temperature nan": Case(["solve", "x", "--temperature", "nan", "--model", MODEL_MISSING],
                                  "temperature"),
    "solve check-interval -5": Case(
        ["solve", "x", "--check-interval", "-5", "--model", MODEL_MISSING], "interval"
    ),
    "solve unknown option": Case(["solve", "x", "--colour", "red"], "No such option"),
    "solve bad dtype": Case(["solve", "x", "--dtype", "float64"], "unknown dtype"),
    "solve empty gguf": Case(["solve", "x", "--model", "{d}/empty.gguf"], "could not read GGUF"),
    "solve corrupt gguf": Case(["solve", "x", "--model", "{d}/corrupt.gguf"], "could not read GGUF",
                               fresh=True),
    "solve not a gguf file": Case(["solve", "x", "--model", "{d}/notgguf.bin"], "not a .gguf file"),
    "solve model dir, unsupported architecture": Case(["solve", "x", "--model", "{d}/bert"],
                                                      "unsupported architecture 'bert'"),
    "solve model dir, broken config": Case(["solve", "x", "--model", "{d}/broken"],
                                           "could not read model directory"),
    "solve empty model dir": Case(["solve", "x", "--model", "{d}/problem-dir"],
                                  "no config.json"),
    "solve non-UTF-8 problem": Case(["solve", "@{d}/problem-latin1.txt", "--model", MODEL_MISSING],
                                    "not UTF-8"),
    "solve problem is a directory": Case(["solve", "@{d}/problem-dir"], "cannot read problem file"),
    "solve trace is a directory": Case(["solve", "x", "--trace", "{d}/trace-dir"],
                                       "is a directory"),
    # lab run: config files
    "lab nested unknown key": Case(["lab", "run", "{d}/c/nested-unknown-key.yaml"],
                                   "budget.colour: unknown key"),
    "lab unknown task key": Case(["lab", "run", "{d}/c/unknown-task-key.yaml"],
                                 "tasks.0.size: unknown key"),
    "lab workers a string": Case(["lab", "run", "{d}/c/workers-string.yaml"], "workers"),
    "lab seeds words": Case(["lab", "run", "{d}/c/seeds-words.yaml"], "seeds.0"),
    "lab budget negative": Case(["lab", "run", "{d}/c/budget-negative.yaml"], "budget.max_tokens"),
    "lab models a mapping": Case(["lab", "run", "{d}/c/models-mapping.yaml"], "models"),
    "lab workers 0": Case(["lab", "run", "{d}/c/workers-0.yaml"], "between 1 and 256"),
    "lab workers 10000": Case(["lab", "run", "{d}/c/workers-10000.yaml"], "between 1 and 256"),
    "lab substrate workers 10000": Case(["lab", "run", "{d}/c/substrate-workers-10000.yaml"],
                                        "from 1 to 256"),
    "lab yaml is a list": Case(["lab", "run", "{d}/c/list.yaml"], "expected a mapping", fresh=True),
    "lab yaml is empty": Case(["lab", "run", "{d}/c/empty.yaml"], "expected a mapping"),
    "lab yaml not UTF-8": Case(["lab", "run", "{d}/c/latin1.yaml"], "cannot read"),
    "lab yaml python tag": Case(["lab", "run", "{d}/c/python-tag.yaml"], "invalid YAML"),
    "lab yaml binary": Case(["lab", "run", "{d}/c/binary.yaml"], "invalid YAML"),
    "lab config is a directory": Case(["lab", "run", "{d}/c/dir.yaml"], "cannot read"),
    "lab missing model file": Case(["lab", "run", "{d}/c/missing-model.yaml"], "model not found"),
    "lab corrupt gguf": Case(["lab", "run", "{d}/c/corrupt-gguf.yaml"], "could not read GGUF"),
    "lab unsupported architecture": Case(["lab", "run", "{d}/c/bert.yaml"],
                                         "unsupported architecture"),
    "lab backend unknown parameter": Case(["lab", "run", "{d}/c/backend-unknown-param.yaml"],
                                          "bad parameters for the echo backend"),
    "lab backend parameter type": Case(["lab", "run", "{d}/c/backend-bad-type.yaml"], "delay_s"),
    "lab echo reply with a lone surrogate": Case(["lab", "run", "{d}/c/surrogate.yaml"],
                                                 "lone surrogate"),
    "lab openai without url": Case(["lab", "run", "{d}/c/openai-no-url.yaml"],
                                   "bad parameters for the openai backend"),
    "lab task parameter type": Case(["lab", "run", "{d}/c/task-param-type.yaml"],
                                    "parameter 'steps' must be int"),
    "lab unknown substrate": Case(["lab", "run", "{d}/c/unknown-substrate.yaml"],
                                  "unknown substrate 'telepathy'"),
    "lab substrate parameter value": Case(["lab", "run", "{d}/c/substrate-param.yaml"],
                                          "bad parameter value"),
    "lab out is a file": Case(["lab", "run", "{d}/c/ok.yaml", "--out", "{d}/a-file.txt"],
                              "a-file.txt"),
    "lab negative limit": Case(["lab", "run", "{d}/c/ok.yaml", "--limit", "-1"], "--limit"),
    "lab concurrency 0": Case(["lab", "run", "{d}/c/ok.yaml", "--concurrency", "0"],
                              "--concurrency must be at least 1, got 0", fresh=True),
    "lab concurrency a word": Case(["lab", "run", "{d}/c/ok.yaml", "--concurrency", "many"],
                                   "--concurrency"),
    "lab budgets not increasing": Case(["lab", "run", "{d}/c/budgets-down.yaml"],
                                       "budgets: must be a non-empty, strictly increasing"),
    "lab budgets and budget.passes": Case(["lab", "run", "{d}/c/budgets-and-passes.yaml"],
                                          "budget.passes and budgets both set"),
    "lab code file missing a field": Case(["lab", "run", "{d}/c/code-missing-field.yaml"],
                                          "line 1: no field 'entry_point'"),
    "lab evidence file without paragraphs": Case(["lab", "run", "{d}/c/evidence-no-paragraphs.yaml"],
                                                 "line 1: no field 'paragraphs'"),
    "lab llm-program on a backend that cannot score": Case(["lab", "run", "{d}/c/llm-program-echo.yaml"],
                                                           "backend kind 'echo'"),
    "lab prompts directory missing": Case(
        ["lab", "run", "{d}/c/ok.yaml", "--prompts", "{d}/no-such-books"],
        "no such prompts directory"),
    "lab prompts directory is a file": Case(
        ["lab", "run", "{d}/c/ok.yaml", "--prompts", "{d}/a-file.txt"], "no such prompts directory"),
    "lab prompts key missing": Case(["lab", "run", "{d}/c/prompts-missing.yaml"],
                                    "c/no-such-books: no such prompts directory"),
    "lab report of a newer schema": Case(["lab", "report", "{d}/newer-run"],
                                         "written by a newer hivethink (record schema 99",
                                         fresh=True),
    "lab consensus-game names": Case(["lab", "run", "{d}/c/consensus-names.yaml"],
                                     "names must be one of names, ids, not 'nicknames'"),
    "lab graph empty_cover": Case(["lab", "run", "{d}/c/graph-empty-cover.yaml"],
                                  "empty_cover must be one of exclude, zero, not 'skip'"),
    "lab coral variant": Case(["lab", "run", "{d}/c/coral-variant.yaml"],
                              "variant must be one of collaborative, cot, not 'solo'"),
    "lab GSM8K file without the question field": Case(["lab", "run", "{d}/c/gsm-no-fields.yaml"],
                                                      "no field 'question' for the question"),
    # lab report / show
    "lab report on a file": Case(["lab", "report", "{d}/a-file.txt"], "a-file.txt"),
    "lab show, results is a directory": Case(["lab", "show", "{d}/results-dir", "--sample", "0"],
                                             "results.jsonl"),
}

DRIVER = r"""
import json, os, signal, sys, time, traceback
cases = json.load(open(sys.argv[1]))
import hivethink.cli.main as cli                      # everything a case may need, imported once
import hivethink.engine.hive, hivethink.lab, hivethink.models.loader, hivethink.report
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
codes = {}
for case in cases:
    pid = os.fork()
    if pid == 0:                                       # the case: like a fresh `hivethink ...`
        code = 1
        try:
            os.chdir(case["cwd"])
            for fd, name in ((1, "stdout"), (2, "stderr")):
                os.dup2(os.open(case[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
            sys.argv = ["hivethink", *case["args"]]
            try:
                cli.run()
                code = 0
            except SystemExit as e:                    # what the interpreter does with it
                if e.code is None or isinstance(e.code, int):
                    code = e.code or 0
                else:
                    print(e.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            codes[case["id"]] = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            codes[case["id"]] = "timeout"
            break
        time.sleep(0.005)
json.dump(codes, open(sys.argv[2], "w"))
"""


@dataclass
class Outcome:
    code: int | str
    stdout: str
    stderr: str


def _write_inputs(d: Path) -> None:
    for name, content in FILES.items():
        path = d / name
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "CORRUPT":
            content = _config(models=[{"kind": "local", "model": str(d / "corrupt.gguf")}])
        elif content == "BERT":
            content = _config(models=[{"kind": "local", "model": str(d / "bert")}])
        elif content == "GSM":
            content = _config(models=[{"kind": "local", "model": MODEL_MISSING}], substrates=["debate-du"],
                              tasks=[{"name": "math", "params": {"source": str(d / "gsm-no-question.jsonl"),
                                                                 "selection": "debate-du"}}])  # fmt: skip
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Run every case (forked from one driver; the ``fresh`` ones also in a new interpreter)."""
    base = tmp_path_factory.mktemp("hostile")
    d = base / "inputs"
    _write_inputs(d)
    env = {**os.environ, "HIVETHINK_CACHE": str(base / "cache"), "COLUMNS": "200"}
    specs, fresh = [], {}
    for i, (name, case) in enumerate(CASES.items()):
        cwd = base / f"cwd{i}"
        cwd.mkdir()
        args = [a.replace("{d}", str(d)) for a in case.args]
        specs.append({"id": name, "args": args, "cwd": str(cwd),
                      "stdout": str(cwd / "out"), "stderr": str(cwd / "err")})
        if case.fresh:
            fcwd = base / f"fresh{i}"
            fcwd.mkdir()
            fresh[name] = subprocess.Popen(
                [sys.executable, "-m", "hivethink.cli.main", *args], cwd=fcwd, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
    (base / "cases.json").write_text(json.dumps(specs), encoding="utf-8")
    driver = subprocess.run(
        [sys.executable, "-c", DRIVER, str(base / "cases.json"), str(base / "codes.json")],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert driver.returncode == 0, driver.stderr[-3000:]
    codes = json.loads((base / "codes.json").read_text(encoding="utf-8"))
    results = {}
    for spec in specs:
        read = lambda p: Path(p).read_text(encoding="utf-8", errors="replace")  # noqa: E731
        results[spec["id"]] = Outcome(codes[spec["id"]], read(spec["stdout"]), read(spec["stderr"]))
    for name, proc in fresh.items():
        out, err = proc.communicate(timeout=120)
        results[f"{name} (fresh interpreter)"] = Outcome(proc.returncode, out, err)
    return results


ALL = [*CASES, *(f"{name} (fresh interpreter)" for name, c in CASES.items() if c.fresh)]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ALL)
def test_hostile_input_is_one_error_line_and_exit_2(
    outcomes: dict[str, Outcome], name: str
) -> None:
    result = outcomes[name]
    shown = f"exit {result.code}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr + result.stdout, shown
    assert result.code == 2, shown
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    expect = CASES[name.removesuffix(" (fresh interpreter)")].expect
    assert expect in lines[0], shown
