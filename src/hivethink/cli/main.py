"""The ``hivethink`` command. Bad input -> one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hivethink.errors import HivethinkError
from hivethink.memory import SERVER_MALLOC_ARENAS, limit_malloc_arenas

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Run LLM workers in parallel over one shared KV cache, and measure how they coordinate.")
bench_app = typer.Typer(no_args_is_help=True, help="Speed measurements, as ratios against a baseline.")
app.add_typer(bench_app, name="bench")

ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="HF directory, hub id or .gguf file (default: embedded SmolLM2-135M-Instruct).")]
DtypeOpt = Annotated[str, typer.Option(help="auto (bf16 where the hardware has it, else fp32) | float32 | bfloat16 | float16")]
WeightsOpt = Annotated[str, typer.Option(help="exact (dequantized: the reference) | int4 | int8 | auto (each matmul as close to the file's own quantization as a CPU kernel allows, else exact)")]


def check_weights(weights: str) -> None:
    """A ``--weights`` that names no mode: one line, before any model loads."""
    from hivethink.models.weights import check_mode

    check_mode(weights)


def weights_note(console: Console, loaded) -> None:
    """One line saying which kernel each matmul got, for a quantized mode."""
    if loaded.plan is not None and loaded.plan.mode != "exact":
        console.print(f"weights {loaded.plan.mode}: {loaded.plan.summary}", markup=False, highlight=False)


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


def _check_device(device: str | None) -> None:
    from hivethink.models.loader import check_device

    if device is not None:
        check_device(device)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def use_prompts(directory: Path | None) -> None:
    """``--prompts DIR``: replace the built-in prompt books it holds (validated now: bad files
    fail before any model loads)."""
    from hivethink import prompts
    from hivethink.engine import hive  # noqa: F401  (declares the hogwild book)

    if directory is not None:
        prompts.use_directory(directory)


def _hive(name: str, *decls: str) -> Any:
    """A ``solve`` option for a HiveConfig field: its default and help come from the config."""
    from hivethink.engine.hive import HiveConfig

    return typer.Option(*decls, help=HiveConfig.help(name))


def _default(name: str) -> Any:
    from hivethink.engine.hive import HiveConfig

    return HiveConfig.default(name)


@app.command()
def solve(
    problem: Annotated[str, typer.Argument(help="The problem text, or @FILE to read it from a file.")],
    workers: Annotated[int, _hive("workers", "--workers", "-n")] = _default("workers"),
    layout: Annotated[str, _hive("layout")] = _default("layout"),
    max_steps: Annotated[int, _hive("max_steps")] = _default("max_steps"),
    visibility: Annotated[str, _hive("visibility")] = _default("visibility"),
    snapshots: Annotated[str | None, typer.Option(help="Smaller budgets (passes, comma-separated) that also get their answer, from the same run.")] = None,
    model: ModelOpt = None,
    dtype: DtypeOpt = "auto",
    weights: WeightsOpt = "exact",
    sampling: Annotated[str, _hive("sampling")] = _default("sampling"),
    temperature: Annotated[float | None, _hive("temperature")] = _default("temperature"),
    top_p: Annotated[float | None, _hive("top_p")] = _default("top_p"),
    seed: int = _default("seed"),
    check_every: Annotated[int, _hive("check_every")] = _default("check_every"),
    finisher_tokens: Annotated[int, _hive("finisher_tokens")] = _default("finisher_tokens"),
    expect: Annotated[str | None, typer.Option(help="The right answer, if known: the summary says whether the team got it.")] = None,
    examples: Annotated[bool, _hive("examples")] = _default("examples"),
    suggestions: Annotated[str, _hive("suggestions")] = _default("suggestions"),
    guard: Annotated[bool, _hive("guard_headers")] = _default("guard_headers"),
    step_end: Annotated[str, _hive("step_end")] = _default("step_end"),
    think: Annotated[str, _hive("think")] = _default("think"),
    extract: Annotated[str, _hive("extract")] = _default("extract"),
    prompts_dir: Annotated[Path | None, typer.Option("--prompts", help="A directory of prompt books replacing the built-in texts.")] = None,
    trace: Annotated[Path | None, typer.Option(help="Write every token and event as JSONL here.")] = None,
    live: Annotated[bool, typer.Option(help="Show the workers writing, side by side.")] = True,
) -> None:
    """Solve one problem with N workers over one shared KV cache (Hogwild! Inference)."""
    from hivethink.cli.live import SideBySide, summary
    from hivethink.display import clean_text as neutralize
    from hivethink.engine.hive import Hive, HiveConfig
    from hivethink.models.loader import load_model, parse_dtype
    from hivethink.names import worker_names
    from hivethink.trace import write_jsonl

    text = read_problem(problem)
    budgets = tuple(_int_list(snapshots, "--snapshots")) if snapshots else ()
    # built before the model loads: bad arguments fail fast, in one line
    options = dict(workers=workers, layout=layout, max_steps=max_steps, visibility=visibility, sampling=sampling,
                   temperature=temperature, top_p=top_p, seed=seed, check_every=check_every,
                   finisher_tokens=finisher_tokens, snapshots=budgets, examples=examples, suggestions=suggestions,
                   guard_headers=guard, step_end=step_end, think=think, extract=extract)
    flags = {f: "--" + f.replace("_", "-") for f in options} | {"guard_headers": "--guard"}
    cfg = HiveConfig.parse(options, "solve", flags)
    use_prompts(prompts_dir)
    parse_dtype(dtype)
    check_weights(weights)
    if trace is not None and trace.is_dir():
        raise HivethinkError(f"--trace {trace}: is a directory, not a file")
    console = Console(stderr=False)
    with console.status("loading model..."):
        loaded = load_model(model, dtype=dtype, device=default_device(), weights=weights)
    weights_note(console, loaded)
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
    summary(console, result, cfg, expected=expect, next_steps=True)


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
    dtype: DtypeOpt = "auto",
    weights: WeightsOpt = "exact",
    contexts: Annotated[str, typer.Option(help="Context lengths, comma-separated.")] = "512,2048",
    workers: Annotated[str, typer.Option(help="Worker counts, comma-separated.")] = "1,2,4,8",
    steps: Annotated[int, typer.Option(help="Timed passes per point.")] = 20,
    baseline: Annotated[bool, typer.Option(help="Also time transformers in the same run.")] = True,
    llamacpp: Annotated[bool, typer.Option(help="Also time llama.cpp on the same GGUF (if llama-cpp-python is installed).")] = True,
    device: Annotated[str | None, typer.Option(help="cpu | cuda (default: cuda if present).")] = None,
    shape: Annotated[str | None, typer.Option(help="Random weights at a public model's shape instead of --model: qwen3-8b | qwq-32b | tiny (no download).")] = None,
    attention: Annotated[str | None, typer.Option(help="blocks | flex (default: flex on cuda, blocks on cpu).")] = None,
    profile: Annotated[bool, typer.Option(help="Also profile each point: the top operators of a step (torch profiler), printed for the last point and kept in the JSON.")] = False,
    batch_invariant: Annotated[bool, typer.Option(help="A row's result does not depend on the rest of the pass (the engine's default): free with row-count-invariant packed kernels (fp32/bf16 on CPU when the load-time check passes), else rows in tiles of 4.")] = True,
    graphs: Annotated[str | None, typer.Option(help="Decode steps as CUDA graphs at bucketed sizes: auto (on with CUDA and flex) | on | off (default: $HIVETHINK_GRAPHS, else auto).")] = None,
    hives: Annotated[int, typer.Option(help="Also time this many hives decoding together against one, at the first context (0: not).")] = 0,
    hive_workers: Annotated[int, typer.Option(help="Workers of each hive for --hives.")] = 4,
    rounds: Annotated[int, typer.Option(help="Time every point this many times over (the engine's points, then llama.cpp's, per round) and report medians, with each round's ratio: on a shared machine figures move with its phases.")] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
) -> None:
    """Per-step latency of the engine for N workers vs transformers decoding batch N."""
    import torch

    from hivethink.engine.attention_backends import attention_names
    from hivethink.engine.bench import BenchRow, run_bench, write_json
    from hivethink.engine.graphs import graph_mode
    from hivethink.models.loader import check_device, load_model, parse_dtype
    from hivethink.models.shapes import SHAPES, random_model

    ctxs, ns = _int_list(contexts, "contexts"), _int_list(workers, "workers")
    if hives < 0:
        raise HivethinkError(f"--hives must be 0 or more, got {hives}")
    if hive_workers < 1:
        raise HivethinkError(f"--hive-workers must be at least 1, got {hive_workers}")
    if rounds < 1:
        raise HivethinkError(f"--rounds must be at least 1, got {rounds}")
    if shape is not None and shape not in SHAPES:
        raise HivethinkError(f"unknown --shape {shape!r} (choose from {', '.join(sorted(SHAPES))})")
    if shape is not None and model is not None:
        raise HivethinkError("--shape and --model exclude each other (--shape uses random weights)")
    check_weights(weights)
    if shape is not None and weights != "exact":
        raise HivethinkError("--weights applies to a model's own tensors; --shape draws plain random ones")
    if attention is not None and attention not in attention_names():
        raise HivethinkError(f"--attention must be one of {', '.join(attention_names())}, got {attention!r}")
    dev = device or default_device()
    check_device(dev)
    graph_mode(graphs)
    dtype = str(parse_dtype(dtype, dev)).removeprefix("torch.")
    console = Console()
    with console.status("loading model..."):
        if shape is not None:
            loaded = random_model(shape, dtype=dtype, device=dev)
        else:
            loaded = load_model(model, dtype=dtype, device=dev, weights=weights,
                                keep_plain=baseline and weights == "exact")
    weights_note(console, loaded)
    table = Table(title=f"engine step time ({dtype}, weights {loaded.weights}, {loaded.decoder.device})")
    for col in ("context", "workers", "engine ms/step", "transformers ms/step", "speed-up vs transformers",
                "step time vs N=1", "engine tokens/s", "of bandwidth bound"):
        table.add_column(col, justify="right")

    def progress(rnd: int, ctx: int, n: int, ms: float) -> None:
        at = f"round {rnd + 1}/{rounds} " if rounds > 1 else ""
        console.print(f"  {at}ctx {ctx:>6} N={n:<2} engine {ms:8.2f} ms", highlight=False)

    try:
        result = run_bench(loaded, contexts=ctxs, workers=ns, steps=steps, baseline=baseline,
                           llamacpp=llamacpp, attention=attention, profile=profile, on_point=progress,
                           batch_invariant=batch_invariant, graphs=graphs, hives=hives, hive_workers=hive_workers,
                           rounds=rounds)
    except torch.OutOfMemoryError:
        raise HivethinkError(f"out of {dev} memory for {loaded.source} at these contexts and workers: "
                             "fewer or shorter ones may fit") from None
    for r in (BenchRow(**row) for row in result["rows"]):
        table.add_row(str(r.context), str(r.workers), f"{r.engine_ms:.2f}",
                      "-" if r.baseline_ms is None else f"{r.baseline_ms:.2f}",
                      "-" if r.vs_baseline is None else f"{r.vs_baseline:.2f}x",
                      f"{r.vs_one_worker:.2f}x", f"{r.engine_tok_s:.1f}", f"{r.bandwidth_fraction or 0:.0%}")
    console.print(table)
    last = result["rows"][-1] if result["rows"] else None
    if last and last["profile"]:
        ops = Table(title=f"where a step goes: context {last['context']}, N={last['workers']}")
        for col in ("operator", "ms/step", "calls/step"):
            ops.add_column(col, justify="left" if col == "operator" else "right")
        for op in last["profile"]:
            ops.add_row(Text(op["op"]), f"{op['ms_per_step']:.2f}", f"{op['calls_per_step']:g}")
        console.print(ops)
    console.print(f"weights ({result['weights']}) {result['weight_bytes'] / 1e9:.3f} GB per step, measured bandwidth "
                  f"{result['bandwidth_gb_s']:.0f} GB/s: bound {result['weight_bound_ms']:.2f} ms/step "
                  f"({result['attention']} attention)", highlight=False)
    if result["kernel_first_call_s"] is not None:
        console.print(f"paged attention kernel (numba): first call {result['kernel_first_call_s']:.2f} s "
                      "(compiled, or loaded from numba's on-disk cache)", highlight=False)
    if result["graphs_used"]:
        console.print(f"decode steps as graphs ({result['graphs']}): {result['graph_captures']} buckets "
                      + ("captured" if str(result["device"]).startswith("cuda") else "built (bucketed, not captured: no CUDA)")
                      + (f"; capture failed, eager instead: {'; '.join(result['graph_failures'])}"
                         if result["graph_failures"] else ""), markup=False, highlight=False)
    if result["hives"]:
        h = result["hives"]
        console.print(f"{h['hives']} hives x {h['workers']} workers at context {h['context']}: "
                      f"{h['aggregate_tok_s']:.1f} tokens/s together, {h['one_hive_tok_s']:.1f} for one hive "
                      f"({h['throughput_ratio']:.2f}x)", highlight=False)
    if llamacpp and shape is None and result["llamacpp_tok_s"] is None and result["model"].endswith(".gguf"):
        import importlib.util

        if importlib.util.find_spec("llama_cpp") is None:  # an optional extra: say why it is missing
            console.print("llama.cpp not timed: llama-cpp-python is not installed "
                          "(pip install 'hivethink[llamacpp]' builds it)", markup=False, highlight=False)
    for ctx, tok_s in (result["llamacpp_tok_s"] or {}).items():
        at = ", ".join(f"N={r['workers']} {r['engine_tok_s']:.1f} ({r['vs_llamacpp']:.2f}x)"
                       for r in result["rows"] if r["context"] == ctx)
        console.print(f"llama.cpp, one sequence, context {ctx}: {tok_s:.1f} tokens/s; engine tokens/s: {at}",
                      highlight=False)
        batched = [r for r in result["rows"] if r["context"] == ctx and r["llamacpp_batched_ms"] is not None]
        if batched:
            def spread(r: dict[str, Any]) -> str:
                per = r["vs_llamacpp_batched_rounds"]
                return f"; rounds {min(per):.2f}-{max(per):.2f}x" if per else ""

            at = ", ".join(f"N={r['workers']} {r['workers'] * 1000 / r['llamacpp_batched_ms']:.1f} "
                           f"(engine {r['vs_llamacpp_batched']:.2f}x{spread(r)})" for r in batched)
            console.print(f"llama.cpp, N sequences sharing the prompt in one decode a step, context {ctx}: "
                          f"tokens/s {at}", highlight=False)
    if json_out:
        write_json(result, json_out)
        console.print(f"wrote {json_out}")


@bench_app.command("greedy")
def bench_greedy(
    model: ModelOpt = None,
    dtype: DtypeOpt = "auto",
    weights: WeightsOpt = "auto",
    tokens: Annotated[int, typer.Option(help="Greedy tokens per prompt.")] = 64,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
) -> None:
    """Greedy decoding by the engine against llama.cpp on the same GGUF: three prompts, token by
    token; the first divergence and both logit gaps there."""
    import importlib.util
    import json

    from hivethink.engine.bench import GREEDY_PROMPTS, greedy_vs_llamacpp
    from hivethink.models.loader import load_model, resolve

    check_weights(weights)
    if tokens < 1:
        raise HivethinkError(f"--tokens must be at least 1, got {tokens}")
    if resolve(model)[0] != "gguf":
        raise HivethinkError("bench greedy compares with llama.cpp, which reads GGUF files: give a .gguf model")
    if importlib.util.find_spec("llama_cpp") is None:
        raise HivethinkError("bench greedy needs llama-cpp-python (pip install 'hivethink[llamacpp]' builds it)")
    console = Console()
    with console.status("loading model..."):
        loaded = load_model(model, dtype=dtype, device="cpu", weights=weights)
    weights_note(console, loaded)
    rows = greedy_vs_llamacpp(loaded, GREEDY_PROMPTS, tokens) or []
    table = Table(title=f"greedy: engine ({loaded.weights}) vs llama.cpp, {tokens} tokens")
    for col in ("prompt", "agreed", "first divergence", "engine chose", "llama.cpp chose", "engine gap",
                "llama.cpp gap"):
        table.add_column(col, justify="left" if col in ("prompt", "engine chose", "llama.cpp chose") else "right")
    for r in rows:
        table.add_row(Text(r.prompt[:40]), f"{r.agreed}/{r.tokens}", "-" if r.diverged_at is None else str(r.diverged_at),
                      Text(repr(r.engine_token) if r.engine_token is not None else "-"),
                      Text(repr(r.llamacpp_token) if r.llamacpp_token is not None else "-"),
                      "-" if r.engine_gap is None else f"{r.engine_gap:.3f}",
                      "-" if r.llamacpp_gap is None else f"{r.llamacpp_gap:.3f}")
    console.print(table)
    if json_out:
        from dataclasses import asdict

        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"model": loaded.source, "weights": loaded.weights,
                                        "weights_plan": loaded.plan.summary if loaded.plan else None,
                                        "tokens": tokens, "rows": [asdict(r) for r in rows]}, indent=2))
        console.print(f"wrote {json_out}")


LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _serve_limits(max_tokens_limit: int, max_workers: int, max_n: int, max_body_bytes: int):
    from hivethink.serve.limits import ServeLimits

    limits = ServeLimits(max_tokens=max_tokens_limit, max_workers=max_workers, max_n=max_n,
                         max_body_bytes=max_body_bytes,
                         default_max_tokens=min(ServeLimits.default_max_tokens, max_tokens_limit))
    limits.validate()
    return limits


def _check_keep(mb: int | None) -> None:
    if mb is not None and mb < 0:
        raise HivethinkError(f"--prefix-cache-mb must be at least 0, got {mb}")


def _mib(mb: int | None) -> int | None:
    return None if mb is None else mb << 20


def _check_batching(max_batch: int, max_waiting: int) -> None:
    if max_batch < 1:
        raise HivethinkError(f"--max-batch must be at least 1, got {max_batch}")
    if max_waiting < 1:
        raise HivethinkError(f"--max-waiting must be at least 1, got {max_waiting}")


@app.command()
def serve(
    model: ModelOpt = None,
    dtype: DtypeOpt = "auto",
    weights: WeightsOpt = "exact",
    host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    api_key: Annotated[str | None, typer.Option(envvar="HIVETHINK_API_KEY", help="Require 'Authorization: Bearer KEY' on every request.")] = None,
    served_model_name: Annotated[str | None, typer.Option(help="The model name clients send (default: smollm2, or the model's directory or file name).")] = None,
    max_batch: Annotated[int, typer.Option(help="Rows decoded together in one pass (a multi-worker request takes one per worker).")] = 32,
    max_waiting: Annotated[int, typer.Option(help="Requests queued beyond the batch; more get 429.")] = 256,
    prefix_cache_mb: Annotated[int | None, typer.Option(help="MiB of ended prompts' KV pages the prefix cache keeps for reuse, and at least as many as are in use (default: 1024, at most an eighth of free memory).")] = None,
    max_tokens_limit: Annotated[int, typer.Option(help="Most tokens per choice (and passes per multi-worker job).")] = 2048,
    max_workers: Annotated[int, typer.Option(help="Most workers of a multi-worker request.")] = 8,
    max_n: Annotated[int, typer.Option(help="Most choices (n) per request.")] = 4,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body; larger: 413.")] = 1_000_000,
    device: Annotated[str | None, typer.Option(help="cpu | cuda (default: cuda if present).")] = None,
    log_level: Annotated[str, typer.Option(help="critical | error | warning | info | debug")] = "info",
    prompts_dir: Annotated[Path | None, typer.Option("--prompts", help="A directory of prompt books replacing the built-in texts.")] = None,
) -> None:
    """Serve the model over an OpenAI-compatible HTTP API (chat completions, streaming, multi-worker)."""
    if not 1 <= port <= 65535:
        raise HivethinkError(f"--port must be between 1 and 65535, got {port}")
    if log_level not in LOG_LEVELS:
        raise HivethinkError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    if api_key is not None and not api_key.strip():
        raise HivethinkError("--api-key must not be empty")
    _check_batching(max_batch, max_waiting)
    _check_keep(prefix_cache_mb)
    check_weights(weights)
    _check_device(device)
    limits = _serve_limits(max_tokens_limit, max_workers, max_n, max_body_bytes)
    use_prompts(prompts_dir)
    from hivethink.engine.scheduler import Engine
    from hivethink.models.loader import load_model
    from hivethink.serve import create_app, serve_forever
    from hivethink.serve.server import bind, default_served_name

    console = Console(stderr=True)
    name = served_model_name or default_served_name(model)
    sock = bind(host, port)  # before the model loads: a taken port fails fast
    if not sock.getsockname()[0].startswith(("127.", "::1")) and api_key is None:
        console.print(f"warning: serving on {host} without --api-key: anyone who can reach it can use it",
                      markup=False, highlight=False, soft_wrap=True)
    limit_malloc_arenas(SERVER_MALLOC_ARENAS)
    try:
        with console.status("loading model..."):
            loaded = load_model(model, dtype=dtype, device=device or default_device(), weights=weights)
        weights_note(console, loaded)
        engine = Engine(loaded, max_rows=max_batch, max_waiting=max_waiting, keep_bytes=_mib(prefix_cache_mb)).start()
        try:
            application = create_app(engine, name, api_key=api_key, limits=limits)
            shown = f"[{host}]" if ":" in host else host
            console.print(f"serving {name!r} on http://{shown}:{port}/v1 (Ctrl-C stops)", markup=False,
                          highlight=False)
            serve_forever(application, sock, log_level=log_level, max_connections=max_batch + max_waiting + 64)
        finally:
            engine.close()
    finally:
        sock.close()


@bench_app.command("serve")
def bench_serve(
    url: Annotated[str | None, typer.Option(help="A running server (http://HOST:PORT); default: start one in-process on loopback.")] = None,
    model: ModelOpt = None,
    dtype: DtypeOpt = "auto",
    weights: WeightsOpt = "exact",
    requests: Annotated[int, typer.Option(help="Concurrent streaming requests per round.")] = 50,
    concurrency: Annotated[int | None, typer.Option(help="Most in flight at once (default: all).")] = None,
    max_tokens: Annotated[int, typer.Option(help="Tokens per request.")] = 32,
    rounds: Annotated[int, typer.Option(help="Rounds (memory is read after each).")] = 2,
    max_batch: Annotated[int, typer.Option(help="In-process server: requests per pass.")] = 32,
    hive_every: Annotated[int, typer.Option(help="Every k-th request is a hive job (0: none): hive and plain requests mixed.")] = 0,
    hive_workers: Annotated[int, typer.Option(help="Workers of each hive request.")] = 2,
    prefix_cache_mb: Annotated[int | None, typer.Option(help="MiB of ended prompts' KV pages the prefix cache keeps for reuse, and at least as many as are in use (default: 1024, at most an eighth of free memory).")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="HIVETHINK_API_KEY", help="API key of the server at --url.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds a round may take; unfinished requests are lost.")] = 300.0,
    device: Annotated[str | None, typer.Option(help="cpu | cuda (default: cuda if present).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
) -> None:
    """Load test: rounds of concurrent streaming chat requests; requests/s, p50/p99 latency, memory."""
    import asyncio
    import os
    import resource

    from hivethink.serve.bench import run_load, write_json

    for what, value in (("--requests", requests), ("--max-tokens", max_tokens), ("--rounds", rounds),
                        ("--concurrency", concurrency or 1), ("--hive-workers", hive_workers)):
        if value < 1:
            raise HivethinkError(f"{what} must be at least 1, got {value}")
    _check_keep(prefix_cache_mb)
    if not timeout > 0:
        raise HivethinkError(f"--timeout must be positive, got {timeout}")
    if hive_every < 0:
        raise HivethinkError(f"--hive-every must be 0 or more, got {hive_every}")
    _check_batching(max_batch, 256)
    check_weights(weights)
    if url is None:
        _check_device(device)
    console = Console()
    mix = f" (every {hive_every}th a {hive_workers}-worker hive)" if hive_every else ""
    table = Table(title=f"serve load test: {requests} streaming requests x {max_tokens} tokens{mix}",
                  caption="latency (to the last chunk) and TTFT in seconds; RSS: the server's, after the round")
    for col in ("round", "ok", "lost", "wall s", "req/s", "tok/s", "lat p50", "lat p99",
                "TTFT p50", "TTFT p99", "RSS MiB"):
        table.add_column(col, justify="right")

    def show(r) -> None:
        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        console.print(f"  round {r.round}: {r.ok}/{r.requests} ok in {r.wall_s:.1f}s", highlight=False)
        table.add_row(str(r.round), str(r.ok), str(r.lost), f"{r.wall_s:.2f}", f"{r.requests_per_s:.2f}",
                      f"{r.tokens_per_s:.1f}", f(r.latency_p50_s), f(r.latency_p99_s), f(r.ttft_p50_s),
                      f(r.ttft_p99_s), "-" if r.server_rss_mb is None else f"{r.server_rss_mb:.0f}")

    def load(target: str, name: str | None, key: str | None):
        return asyncio.run(run_load(target, name, requests=requests, concurrency=concurrency,
                                    max_tokens=max_tokens, rounds=rounds, api_key=key, timeout_s=timeout,
                                    on_round=show, hive_every=hive_every, hive_workers=hive_workers))

    load_before = [round(x, 2) for x in os.getloadavg()]
    if url is not None:
        report = load(url, model, api_key)
    else:
        from hivethink.engine.scheduler import Engine
        from hivethink.models.loader import load_model
        from hivethink.serve import BackgroundServer, ServeLimits, create_app
        from hivethink.serve.server import default_served_name

        limit_malloc_arenas(SERVER_MALLOC_ARENAS)
        with console.status("loading model..."):
            loaded = load_model(model, dtype=dtype, device=device or default_device(), weights=weights)
        weights_note(console, loaded)
        name = default_served_name(model)
        engine = Engine(loaded, max_rows=max_batch, keep_bytes=_mib(prefix_cache_mb)).start()
        try:
            # every hive request of a round may be in flight: the test measures sharing, not the
            # server's 429 back-pressure
            hives = requests // hive_every if hive_every else 0
            limits = ServeLimits(max_tokens=max(max_tokens, ServeLimits.max_tokens),
                                 max_hive_jobs=max(hives, ServeLimits.max_hive_jobs))
            with BackgroundServer(create_app(engine, name, limits=limits)) as target:
                report = load(target, name, None)
        finally:
            engine.close()
        report.in_process = True
        report.extra = {"dtype": dtype, "weights": loaded.weights, "device": str(loaded.decoder.device),
                        "max_batch": max_batch, "prefix_cache_mb": round(engine.cache.keep_pages * engine.cache.page_bytes / 2**20)}
    report.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    report.extra.update(cpus=os.cpu_count(), loadavg_before=load_before,
                        loadavg_after=[round(x, 2) for x in os.getloadavg()])
    console.print(table)
    console.print(f"peak RSS of this process{' (server and client)' if report.in_process else ' (client)'}: "
                  f"{report.peak_rss_mb:.0f} MiB; server RSS before: {report.server_rss_before_mb} MiB",
                  highlight=False)
    if json_out:
        write_json(report, json_out)
        console.print(f"wrote {json_out}")
    if report.lost:
        errors = sorted({e for r in report.rounds for e in r.errors})
        raise HivethinkError(f"{report.lost} request(s) lost: {'; '.join(errors)[:300]}")


@bench_app.command("lab")
def bench_lab(
    config: Annotated[Path, typer.Argument(help="YAML lab config (keep the grid small).")],
    concurrency: Annotated[int, typer.Option(help="K: samples in flight in the second run.")] = 4,
    limit: Annotated[int | None, typer.Option(help="Only the first N samples of the grid.")] = None,
    prompts: Annotated[Path | None, typer.Option(help="Prompt books replacing the built-in ones.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
) -> None:
    """A lab grid at concurrency 1 and at K: samples/min, generated tokens/s, their ratio, and
    whether both runs gave equal results (exit 1 if not)."""
    from hivethink.lab import load_config
    from hivethink.lab.bench import run_bench_lab, write_json

    if limit is not None and limit < 1:
        raise HivethinkError(f"--limit must be at least 1, got {limit}")
    cfg = load_config(config)
    if prompts is not None:
        cfg = cfg.model_copy(update={"prompts": str(prompts)})
    console = Console(stderr=True)
    result = run_bench_lab(cfg, concurrency, source=str(config), limit=limit, console=console)
    table = Table(title=f"lab throughput: {config.name}")
    for col in ("concurrency", "samples", "failed", "wall s", "samples/min", "tokens/s"):
        table.add_column(col, justify="right")
    for r in result.runs:
        table.add_row(str(r.concurrency), str(r.samples), str(r.failed), f"{r.wall_s:.2f}",
                      f"{r.samples_per_min:.1f}", f"{r.tokens_per_s:.1f}")
    passes = None
    if any(r.passes is not None for r in result.runs):  # a local model: where its time went
        passes = Table(title="engine passes (chunk: passes with prompt chunks)")
        for col in ("K", "passes", "rows/pass", "tokens/pass", "chunk tokens", "pass s", "chunk s"):
            passes.add_column(col, justify="right")
        for r in result.runs:
            passes.add_row(str(r.concurrency), *("-" if x is None else f"{x:.1f}" if isinstance(x, float) else str(x)
                                                 for x in (r.passes, r.rows_per_pass, r.tokens_per_pass,
                                                           r.chunk_tokens, r.busy_s, r.chunk_busy_s)))
    out = Console()
    out.print(table)
    if passes is not None:
        out.print(passes)

    def times(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}x"

    out.print(f"concurrency {concurrency} vs 1: {times(result.samples_per_min_ratio)} samples/min, "
              f"{times(result.tokens_per_s_ratio)} tokens/s; results equal: "
              f"{'yes' if result.equal else 'NO'}", highlight=False)
    for line in result.differences:
        out.print(Text(f"  {line}"))
    if json_out:
        write_json(result, json_out)
        out.print(Text(f"wrote {json_out}"))
    if not result.equal:
        raise typer.Exit(1)


def _mount_lab() -> None:
    try:
        from hivethink.cli.lab import app as lab_app
    except ImportError:
        return
    app.add_typer(lab_app, name="lab", help="Run the coordination lab: grids, reports, traces.")


_mount_lab()


def _mount_data() -> None:
    from hivethink.cli.data import app as data_app

    app.add_typer(data_app, name="data", help="Check problem files before a run.")


_mount_data()


def _mount_prompts() -> None:
    from hivethink.cli.prompts import app as prompts_app

    app.add_typer(prompts_app, name="prompts", help="Import the authors' published prompts, or export hivethink's.")


_mount_prompts()


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
    except OSError as e:  # a file that cannot be written or read: the environment, not a bug
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
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
