"""The ``hivethink`` command. Bad input -> one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hivethink.errors import HivethinkError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Run LLM workers in parallel over one shared KV cache, and measure how they coordinate.")
bench_app = typer.Typer(no_args_is_help=True, help="Speed measurements, as ratios against a baseline.")
app.add_typer(bench_app, name="bench")

ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="HF directory, hub id or .gguf file (default: embedded SmolLM2-135M-Instruct).")]
DtypeOpt = Annotated[str, typer.Option(help="float32 | bfloat16 | float16")]


def read_problem(problem: str) -> str:
    if not problem.startswith("@"):
        return problem
    path = Path(problem[1:])
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise HivethinkError(f"problem file not found: {path}") from None
    except UnicodeDecodeError:
        raise HivethinkError(f"problem file is not UTF-8 text: {path}") from None
    except OSError as e:
        raise HivethinkError(f"cannot read problem file {path}: {e.strerror}") from None


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@app.command()
def solve(
    problem: Annotated[str, typer.Argument(help="The problem text, or @FILE to read it from a file.")],
    workers: Annotated[int, typer.Option("--workers", "-n", help="Number of workers (1-16).")] = 3,
    layout: Annotated[str, typer.Option(help="combined | interleaved | contiguous | independent")] = "combined",
    max_steps: Annotated[int, typer.Option(help="Budget in sequential forward passes.")] = 512,
    model: ModelOpt = None,
    dtype: DtypeOpt = "bfloat16",
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    check_interval: Annotated[int, typer.Option(help="Tokens between redundancy checks; 0 = off.")] = 1024,
    trace: Annotated[Path | None, typer.Option(help="Write every token and event as JSONL here.")] = None,
    live: Annotated[bool, typer.Option(help="Show the workers writing, side by side.")] = True,
) -> None:
    """Solve one problem with N workers over one shared KV cache."""
    from hivethink.cli.live import SideBySide
    from hivethink.engine.hive import Hive, HiveConfig
    from hivethink.engine.prompts import worker_names
    from hivethink.models.loader import load_model
    from hivethink.report.text import clean_text as neutralize
    from hivethink.trace import write_jsonl

    text = read_problem(problem)
    cfg = HiveConfig(workers=workers, layout=layout, max_steps=max_steps, temperature=temperature,
                     top_p=top_p, seed=seed, check_interval=check_interval or None)
    cfg.validate()  # before the model loads: bad arguments fail fast
    console = Console(stderr=False)
    with console.status("loading model..."):
        loaded = load_model(model, dtype=dtype, device=default_device())
    if live and console.is_terminal:
        with SideBySide(worker_names(workers), console) as view:
            result = Hive(loaded, cfg, on_token=view).solve(text)
    else:
        result = Hive(loaded, cfg).solve(text)
        for name, t in result.texts.items():
            console.rule(name)
            console.print(neutralize(t), markup=False, highlight=False)
    if trace is not None:
        write_jsonl(trace, result.events)
    table = Table(title="result", show_header=True)
    for col in ("worker", "tokens", "answer", "refs to others"):
        table.add_column(col)
    for name in result.texts:
        table.add_row(name, str(result.tokens[name]), neutralize(result.answers[name] or "-"),
                      str(result.references[name]))
    console.print(table)
    console.print(f"[bold]final answer:[/bold] {neutralize(result.answer or '(none)')}  "
                  f"(by {result.finished_by})", highlight=False)
    console.print(f"steps {result.steps} | tokens {sum(result.tokens.values())} | "
                  f"{result.tokens_per_s:.1f} tokens/s | wall {result.wall_s:.1f}s | redundancy checks "
                  f"{result.checks} (yes: {result.checks_yes})")


def _int_list(s: str, what: str) -> list[int]:
    try:
        values = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise HivethinkError(f"{what} must be comma-separated integers, got {s!r}") from None
    if not values or min(values) < 1:
        raise HivethinkError(f"{what} must be positive integers, got {s!r}")
    return values


@bench_app.command("engine")
def bench_engine(
    model: ModelOpt = None,
    dtype: DtypeOpt = "bfloat16",
    contexts: Annotated[str, typer.Option(help="Context lengths, comma-separated.")] = "512,2048",
    workers: Annotated[str, typer.Option(help="Worker counts, comma-separated.")] = "1,2,4,8",
    steps: Annotated[int, typer.Option(help="Timed passes per point.")] = 20,
    baseline: Annotated[bool, typer.Option(help="Also time transformers in the same run.")] = True,
    llamacpp: Annotated[bool, typer.Option(help="Also time llama.cpp on the same GGUF (if llama-cpp-python is installed).")] = True,
    device: Annotated[str | None, typer.Option(help="cpu | cuda (default: cuda if present).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
) -> None:
    """Per-step latency of the engine for N workers vs transformers decoding batch N."""
    from hivethink.engine.bench import BenchRow, run_bench, write_json
    from hivethink.models.loader import load_model

    ctxs, ns = _int_list(contexts, "contexts"), _int_list(workers, "workers")
    console = Console()
    with console.status("loading model..."):
        loaded = load_model(model, dtype=dtype, device=device or default_device())
    table = Table(title=f"engine step time ({dtype}, {loaded.decoder.device})")
    for col in ("context", "workers", "engine ms/step", "transformers ms/step", "speed-up vs transformers",
                "step time vs N=1", "engine tokens/s"):
        table.add_column(col, justify="right")

    def show(r: BenchRow) -> None:
        console.print(f"  ctx {r.context:>6} N={r.workers:<2} engine {r.engine_ms:8.2f} ms  "
                      f"transformers {r.baseline_ms or float('nan'):8.2f} ms", highlight=False)
        table.add_row(str(r.context), str(r.workers), f"{r.engine_ms:.2f}",
                      "-" if r.baseline_ms is None else f"{r.baseline_ms:.2f}",
                      "-" if r.vs_baseline is None else f"{r.vs_baseline:.2f}x",
                      f"{r.vs_one_worker:.2f}x", f"{r.engine_tok_s:.1f}")

    result = run_bench(loaded, contexts=ctxs, workers=ns, steps=steps, baseline=baseline,
                       llamacpp=llamacpp, on_row=show)
    console.print(table)
    for ctx, tok_s in (result["llamacpp_tok_s"] or {}).items():
        best = max((r for r in result["rows"] if r["context"] == ctx), key=lambda r: r["engine_tok_s"])
        console.print(f"llama.cpp, one sequence, context {ctx}: {tok_s:.1f} tokens/s; engine N={best['workers']}: "
                      f"{best['engine_tok_s']:.1f} tokens/s ({best['vs_llamacpp']:.2f}x)", highlight=False)
    if json_out:
        write_json(result, json_out)
        console.print(f"wrote {json_out}")


def _mount_lab() -> None:
    try:
        from hivethink.cli.lab import app as lab_app
    except ImportError:
        return
    app.add_typer(lab_app, name="lab", help="Run the coordination lab: grids, reports, traces.")


_mount_lab()


def main(argv: list[str] | None = None) -> int:
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="hivethink")
        if isinstance(rv, int):  # typer.Exit(code) comes back as the return value here
            return rv
    except HivethinkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        # Usage errors of the (possibly vendored) click under typer: recognised by their interface.
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):
            print(f"error: {e.format_message()}", file=sys.stderr)
            return 2
        if type(e).__name__ == "Abort":
            print("aborted", file=sys.stderr)
            return 130
        raise
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
