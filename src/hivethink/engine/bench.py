"""``hivethink bench engine``: per-step latency of the shared-cache engine against transformers.

For each context C and worker count N, the engine decodes N workers that share a C-token prompt
(one copy in the cache); the baseline is transformers decoding a batch of N sequences with its
own KV cache (the per-step forward that ``generate`` runs), same model, dtype and batch size,
measured in the same run. The prompt is prefilled once and the baseline's cache is repeated
N times, so prefill time is not part of either figure.

The memory-bandwidth bound of a step is the weight bytes it must read divided by the device's
bandwidth, measured here by a large device-to-device copy; ``bandwidth_fraction`` is that bound
over the measured step time (1.0: the step runs at the speed of reading the weights once).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from hivethink.engine import attention_kernel
from hivethink.engine.attention import RowSpec, reserve_rows
from hivethink.engine.attention_backends import attention_backend
from hivethink.engine.buckets import bucket
from hivethink.engine.cache import Block
from hivethink.engine.forward import Runner, row_tile
from hivethink.engine.graphs import DecodeGraphs, graph_mode
from hivethink.models.loader import LoadedModel
from hivethink.models.weights import Linear


@dataclass
class BenchRow:
    context: int
    workers: int
    engine_ms: float  # per sequential forward pass (one token per worker)
    baseline_ms: float | None  # transformers, batch = workers
    engine_tok_s: float
    vs_baseline: float | None  # baseline_ms / engine_ms (> 1: engine faster)
    vs_one_worker: float  # engine_ms / engine_ms at N=1, same context
    vs_llamacpp: float | None = None  # engine tokens/s / llama.cpp single-sequence tokens/s
    llamacpp_batched_ms: float | None = None  # llama.cpp, N sequences sharing the prompt, one decode a step
    vs_llamacpp_batched: float | None = None  # engine tokens/s / llama.cpp batched tokens/s (same N)
    bandwidth_fraction: float | None = None  # weight bytes / bandwidth / engine_ms
    read_bound_fraction: float | None = None  # (weights + the prompt's K/V, read once) / bandwidth / engine_ms
    profile: list[dict[str, Any]] | None = None  # top ops of the engine's step (--profile)
    # with several rounds (--rounds): each round's figure; the fields above are their medians
    engine_ms_rounds: list[float] | None = None
    llamacpp_batched_ms_rounds: list[float] | None = None
    vs_llamacpp_batched_rounds: list[float] | None = None  # each round's ratio (engine and llama.cpp of one round)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], object], steps: int, device: torch.device, warmup: int = 3,
          rounds: int = 5) -> float:
    """ms per call: the median over ``rounds`` rounds of the mean of steps / rounds calls, so one
    disturbed round (a shared machine) does not move the figure. Warm-up calls also absorb
    compilation (the flex kernel on CUDA); the device is drained around each round, since CUDA
    launches return at once."""
    for _ in range(warmup):
        fn()
    per = max(1, steps // rounds)
    means = []
    for _ in range(rounds):
        _sync(device)
        t = time.perf_counter()
        for _ in range(per):
            fn()
        _sync(device)
        means.append((time.perf_counter() - t) / per * 1000)
    return statistics.median(means)


def bandwidth_gb_s(device: torch.device, mb: int | None = None, reps: int = 10) -> float:
    """Device memory bandwidth: bytes read + written per second by a large copy (1 GiB on CUDA:
    far beyond L2; 64 MiB on CPU, enough for the caches there)."""
    n = (mb or (1024 if device.type == "cuda" else 64)) << 20
    src = torch.empty(n, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    ms = _time(lambda: dst.copy_(src), reps, device, warmup=2)
    return 2 * n / (ms / 1000) / 1e9


def engine_step(model: LoadedModel, context: int, workers: int, steps: int,
                attention: str | None = None, batch_invariant: bool = True, graphs: str | None = None,
                hives: int = 1) -> tuple[Callable[[], Any], Runner]:
    """A decode pass of ``hives`` independent hives of N workers, each over its own shared
    ``context``-token prompt, ready to call (one hive: the engine's step for one team)."""
    P = 64
    # The whole run fits from the start: no arena growth while timing. The arena's size is a
    # bucket, so points of one run share the compiled attention kernels' shapes.
    per_hive = 1 + (context + P - 1) // P + workers * (1 + (steps + 8) // P)
    runner = Runner(model, page_size=P, pages=bucket(2 + hives * per_hive), attention=attention,
                    batch_invariant=batch_invariant, graphs=graphs)
    cache = runner.cache
    views: list[list[Block]] = []
    rows: list[RowSpec] = []
    for h in range(hives):
        gen = torch.Generator().manual_seed(h)
        prompt = torch.randint(100, model.cfg.vocab_size - 100, (context,), generator=gen).tolist()
        common = cache.new_block(f"h{h}")
        runner.prefill(common, prompt)
        own = [cache.new_block(f"h{h}w{i}") for i in range(workers)]
        mine = [[common, *(b for b in own if b is not m), m] for m in own]  # contiguous
        views += mine
        rows += [RowSpec(v, 1, group=h) for v in mine]
    feed = [[7]] * len(rows)

    def step() -> None:
        reserve_rows(cache, rows)
        runner.forward(rows, feed)
        for v in views:
            cache.commit(v[-1], [7], self_contained=False)

    return step, runner


def engine_step_ms(model: LoadedModel, context: int, workers: int, steps: int,
                   attention: str | None = None, batch_invariant: bool = True, graphs: str | None = None,
                   hives: int = 1, graph_notes: list[DecodeGraphs] | None = None) -> float:
    """ms per step; ``graph_notes`` collects the runner's decode graphs (captures, failures)."""
    step, runner = engine_step(model, context, workers, steps, attention, batch_invariant, graphs, hives)
    ms = _time(step, steps, runner.cache.device)
    if graph_notes is not None and runner.graphs is not None:
        graph_notes.append(runner.graphs)
    return ms


def profile_step(model: LoadedModel, context: int, workers: int, steps: int = 10,
                 attention: str | None = None, top: int = 12, batch_invariant: bool = True) -> list[dict[str, Any]]:
    """Where a step's time goes: the ``top`` operators by own time (torch profiler; device time
    on CUDA), per step, over ``steps`` passes after a warm-up."""
    from torch.profiler import ProfilerActivity, profile

    step, runner = engine_step(model, context, workers, steps + 3, attention, batch_invariant)
    device = runner.cache.device
    for _ in range(3):
        step()
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        _sync(device)

    def own_us(e: Any) -> float:
        return e.self_device_time_total if cuda else e.self_cpu_time_total

    ops = sorted(prof.key_averages(), key=own_us, reverse=True)[:top]
    return [{"op": e.key, "ms_per_step": round(own_us(e) / steps / 1000, 3),
             "calls_per_step": round(e.count / steps, 1)} for e in ops]


def hf_model(model: LoadedModel) -> Any:
    """The same weights as a transformers model (sdpa attention). Its parameters are views of the
    model's plain tensors: built on the meta device and assigned, so there is no random init and
    no second copy (an 8B model would take minutes to initialise on CPU; a 32B one would not fit
    twice on one GPU). A model that dropped its plain weights (packed or quantized ones) has its
    exact weights read again from its source."""
    from transformers import AutoModelForCausalLM

    if not model.decoder.plain or not isinstance(model.decoder.embed, torch.Tensor):
        from hivethink.models.loader import load_model

        model = load_model(model.source, dtype=model.dtype, device=model.decoder.device, pack=False)
    with torch.device("meta"):
        hf = AutoModelForCausalLM.from_config(model.hf_config, dtype=model.dtype, attn_implementation="sdpa")
    d = model.decoder

    def plain(lin: Linear) -> torch.Tensor:
        assert lin.weight is not None
        return lin.weight

    assert isinstance(d.embed, torch.Tensor)
    sd: dict[str, torch.Tensor] = {"model.embed_tokens.weight": d.embed, "model.norm.weight": d.norm,
                                   "lm_head.weight": plain(d.lm_head)}
    c = model.cfg
    nq, nkv = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
    for i, lw in enumerate(d.layers):
        p = f"model.layers.{i}."
        q, k, v = plain(lw.wqkv).split([nq, nkv, nkv])
        sd |= {p + "self_attn.q_proj.weight": q, p + "self_attn.k_proj.weight": k,
               p + "self_attn.v_proj.weight": v, p + "self_attn.o_proj.weight": plain(lw.wo),
               p + "input_layernorm.weight": lw.attn_norm, p + "post_attention_layernorm.weight": lw.mlp_norm,
               p + "mlp.down_proj.weight": plain(lw.w_down)}
        g, u = plain(lw.w_gate_up).chunk(2)
        sd |= {p + "mlp.gate_proj.weight": g, p + "mlp.up_proj.weight": u}
        if lw.bqkv is not None:
            bq, bk, bv = lw.bqkv.split([nq, nkv, nkv])
            sd |= {p + "self_attn.q_proj.bias": bq, p + "self_attn.k_proj.bias": bk, p + "self_attn.v_proj.bias": bv}
        if lw.q_norm is not None and lw.k_norm is not None:
            sd |= {p + "self_attn.q_norm.weight": lw.q_norm, p + "self_attn.k_norm.weight": lw.k_norm}
    hf.load_state_dict(sd, strict=False, assign=True)
    # RoPE tables are computed buffers, never in a state dict: build them for real.
    hf.model.rotary_emb = type(hf.model.rotary_emb)(config=hf.config).to(d.device)
    left = [n for n, t in [*hf.named_parameters(), *hf.named_buffers()] if t.is_meta]
    assert not left, f"weights not set: {left[:3]}"
    return hf.eval()


@torch.inference_mode()
def baseline_step_ms(hf: Any, vocab: int, context: int, workers: int, steps: int) -> float:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(100, vocab - 100, (1, context), generator=gen).to(hf.device)
    # logits of the last position only: all of them at 16k x 152k vocab would be 5 GB
    out = hf(input_ids=ids, use_cache=True, logits_to_keep=1)
    cache = out.past_key_values
    cache.batch_repeat_interleave(workers)
    nxt = torch.full((workers, 1), 7, device=hf.device)

    def step() -> None:
        with warnings.catch_warnings():  # newer transformers rename the argument; older lack the new name
            warnings.filterwarnings("ignore", message=".*past_key_values.*deprecated", category=FutureWarning)
            hf(input_ids=nxt, past_key_values=cache, use_cache=True, logits_to_keep=1)

    return _time(step, steps, hf.device)


def llamacpp_tok_s(gguf: Path, context: int, steps: int, threads: int) -> float | None:
    """Single-sequence decode speed of llama.cpp on the same GGUF file at ``context`` tokens,
    or None when ``llama-cpp-python`` is not installed (an optional extra)."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    llm = Llama(model_path=str(gguf), n_ctx=context + steps + 16, n_threads=threads, n_batch=512,
                verbose=False)
    gen = torch.Generator().manual_seed(0)
    prompt = torch.randint(100, llm.n_vocab() - 100, (context,), generator=gen).tolist()
    llm.eval(prompt)
    ms = _time(lambda: llm.eval([7]), steps, torch.device("cpu"), warmup=0)
    return 1000 / ms


class LlamaCpp:
    """llama.cpp through llama-cpp-python's low-level API: one model, a context per use, batches
    of several sequences in one ``llama_decode``. The KV cache is unified (all sequences in one
    buffer), so sequences that copy a prompt share its cells, as hivethink's workers share the
    prompt's pages. Spellings differ between versions (``llama_memory_*`` replaced
    ``llama_kv_self_*``, which replaced ``llama_kv_cache_*``); the newest one present is used."""

    BATCH = 512

    def __init__(self, gguf: Path, threads: int):
        import llama_cpp as lc

        self.lc, self.threads = lc, threads
        lc.llama_backend_init()
        load = getattr(lc, "llama_model_load_from_file", None) or lc.llama_load_model_from_file
        self.model = load(str(gguf).encode(), lc.llama_model_default_params())
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {gguf}")
        vocab = lc.llama_model_get_vocab(self.model) if hasattr(lc, "llama_model_get_vocab") else None
        self.n_vocab = int(lc.llama_vocab_n_tokens(vocab) if vocab is not None else lc.llama_n_vocab(self.model))

    def context(self, n_ctx: int, n_seq: int) -> Any:
        lc = self.lc
        p = lc.llama_context_default_params()
        p.n_ctx, p.n_batch, p.n_ubatch, p.n_seq_max = n_ctx, self.BATCH, self.BATCH, max(1, n_seq)
        p.n_threads = p.n_threads_batch = self.threads
        if hasattr(p, "kv_unified"):
            p.kv_unified = True
        init = getattr(lc, "llama_init_from_model", None) or lc.llama_new_context_with_model
        ctx = init(self.model, p)
        if not ctx:
            raise RuntimeError("llama.cpp could not create a context")
        return ctx

    def decode(self, ctx: Any, entries: list[tuple[int, int, int, bool]]) -> None:
        """One ``llama_decode`` of (token, position, sequence, wants logits) entries."""
        lc = self.lc
        batch = lc.llama_batch_init(len(entries), 0, 1)
        try:
            for i, (tok, pos, seq, logits) in enumerate(entries):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = tok, pos, 1
                batch.seq_id[i][0], batch.logits[i] = seq, logits
            batch.n_tokens = len(entries)
            if lc.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")
        finally:
            lc.llama_batch_free(batch)

    def prefill(self, ctx: Any, tokens: list[int], seq: int = 0) -> None:
        for at in range(0, len(tokens), self.BATCH):
            part = tokens[at : at + self.BATCH]
            self.decode(ctx, [(t, at + i, seq, at + i == len(tokens) - 1) for i, t in enumerate(part)])

    def copy_sequence(self, ctx: Any, src: int, dst: int) -> None:
        lc = self.lc
        if hasattr(lc, "llama_memory_seq_cp"):
            lc.llama_memory_seq_cp(lc.llama_get_memory(ctx), src, dst, -1, -1)
        elif hasattr(lc, "llama_kv_self_seq_cp"):
            lc.llama_kv_self_seq_cp(ctx, src, dst, -1, -1)
        else:
            lc.llama_kv_cache_seq_cp(ctx, src, dst, -1, -1)

    def logits(self, ctx: Any) -> torch.Tensor:
        """The logits of the last entry that asked for them."""
        ptr = self.lc.llama_get_logits_ith(ctx, -1)
        return torch.tensor([ptr[i] for i in range(self.n_vocab)], dtype=torch.float32)

    def free(self, ctx: Any) -> None:
        self.lc.llama_free(ctx)

    def close(self) -> None:
        free = getattr(self.lc, "llama_model_free", None) or self.lc.llama_free_model
        free(self.model)


def llamacpp_batched_ms(gguf: Path, context: int, workers: list[int], steps: int,
                        threads: int) -> dict[int, float] | None:
    """llama.cpp decoding N sequences that share one ``context``-token prompt (prefilled once,
    copied to the others in the unified KV cache), all N in one ``llama_decode`` per step:
    ms per step for each N, or None without llama-cpp-python."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return None
    llm = LlamaCpp(gguf, threads)
    gen = torch.Generator().manual_seed(0)
    prompt = torch.randint(100, llm.n_vocab - 100, (context,), generator=gen).tolist()
    out: dict[int, float] = {}
    warmup = 3
    try:
        for n in workers:
            ctx = llm.context(context + n * (steps + warmup + 8) + 16, n)
            try:
                llm.prefill(ctx, prompt)
                for s in range(1, n):
                    llm.copy_sequence(ctx, 0, s)
                pos = [context]

                def step(n: int = n, ctx: Any = ctx, pos: list[int] = pos) -> None:
                    llm.decode(ctx, [(7, pos[0], s, True) for s in range(n)])
                    pos[0] += 1

                out[n] = _time(step, steps, torch.device("cpu"), warmup=warmup)
            finally:
                llm.free(ctx)
    finally:
        llm.close()
    return out


# Prompts for the greedy comparison (our own words; any three short instructions would do).
GREEDY_PROMPTS = (
    "Explain in a few sentences why the sky looks blue during the day.",
    "Write a short Python function that returns the n-th Fibonacci number.",
    "List three things to pack for a weekend hike and say why each matters.",
)


@dataclass
class GreedyRow:
    prompt: str
    prompt_tokens: int
    agreed: int  # tokens both chose alike before the first divergence (== tokens: all agreed)
    tokens: int
    diverged_at: int | None = None
    engine_token: str | None = None  # what each chose there (decoded)
    llamacpp_token: str | None = None
    engine_gap: float | None = None  # engine logit of its choice minus of llama.cpp's choice
    llamacpp_gap: float | None = None  # llama.cpp logit of its choice minus of the engine's
    text: str = ""  # the agreed continuation


def greedy_vs_llamacpp(model: LoadedModel, prompts: tuple[str, ...] = GREEDY_PROMPTS, tokens: int = 64,
                       threads: int | None = None) -> list[GreedyRow] | None:
    """Greedy decoding by the engine and by llama.cpp from the same prompt token ids (the chat
    template applied by the model's tokenizer), token by token until ``tokens`` or the first
    divergence, where both logit gaps say how close each was to the other's choice. None
    without llama-cpp-python or for a model that is not a GGUF file."""
    if not model.source.endswith(".gguf"):
        return None
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return None
    llm = LlamaCpp(Path(model.source), threads or torch.get_num_threads())
    tok = model.tokenizer
    rows = []
    try:
        for text in prompts:
            ids = list(tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                               tokenize=True, return_dict=False))
            runner = Runner(model, page_size=64, pages=2 + (len(ids) + tokens) // 64 + 1)
            block = runner.cache.new_block("greedy")
            ours = runner.prefill(block, ids)
            ctx = llm.context(len(ids) + tokens + 16, 1)
            try:
                llm.prefill(ctx, ids)
                theirs = llm.logits(ctx)
                row = GreedyRow(prompt=text, prompt_tokens=len(ids), agreed=0, tokens=tokens)
                out: list[int] = []
                for i in range(tokens):
                    a, b = int(ours.argmax()), int(theirs.argmax())
                    if a != b:
                        row.diverged_at, row.engine_token, row.llamacpp_token = i, tok.decode([a]), tok.decode([b])
                        row.engine_gap = round(float(ours[a] - ours[b]), 4)
                        row.llamacpp_gap = round(float(theirs[b] - theirs[a]), 4)
                        break
                    out.append(a)
                    row.agreed = i + 1
                    ours = runner.extend([[block]], [[a]])[0]
                    llm.decode(ctx, [(a, len(ids) + i, 0, True)])
                    theirs = llm.logits(ctx)
                row.text = tok.decode(out)
                rows.append(row)
            finally:
                llm.free(ctx)
    finally:
        llm.close()
    return rows


def run_bench(model: LoadedModel, *, contexts: list[int], workers: list[int], steps: int,
              baseline: bool = True, llamacpp: bool = True, attention: str | None = None,
              profile: bool = False, on_point: Callable[[int, int, int, float], None] | None = None,
              batch_invariant: bool = True, graphs: str | None = None, hives: int = 0,
              hive_workers: int = 4, rounds: int = 1) -> dict[str, Any]:
    """Every (context, N) point; with ``hives`` > 1 also that many hives of ``hive_workers``
    workers at the first context decoding together, against one such hive.

    ``rounds``: the engine's points, then llama.cpp's, that many times over; each row reports the
    medians and keeps every round's figure. On a shared machine one run's figures move by tens of
    percent with the machine's phases, and a ratio of two figures taken minutes apart with them;
    a ratio per round and their median are steadier. ``on_point(round, context, N, ms)`` sees
    each engine figure as it is measured."""
    from hivethink.models.shapes import weight_bytes

    dev = model.decoder.device
    hf = hf_model(model) if baseline else None
    w_bytes = weight_bytes(model)
    gb_s = bandwidth_gb_s(dev)
    bound_ms = w_bytes / (gb_s * 1e9) * 1000
    c = model.cfg
    kv_token = 2 * c.n_layers * c.n_kv_heads * c.head_dim * torch.finfo(model.dtype).bits // 8
    notes: list[DecodeGraphs] = []
    points = [(ctx, n) for ctx in contexts for n in workers]
    engine: dict[tuple[int, int], list[float]] = {p: [] for p in points}
    base: dict[tuple[int, int], list[float]] = {p: [] for p in points}
    one_seq: dict[int, list[float]] = {}  # llama.cpp, one sequence: tokens/s per context
    batched: dict[tuple[int, int], list[float]] = {}  # llama.cpp batched ms, per point
    gguf = Path(model.source) if model.source.endswith(".gguf") else None
    for rnd in range(rounds):
        for ctx, n in points:
            ms = engine_step_ms(model, ctx, n, steps, attention, batch_invariant, graphs, graph_notes=notes)
            engine[ctx, n].append(ms)
            if on_point:
                on_point(rnd, ctx, n, ms)
            if hf is not None:
                base[ctx, n].append(baseline_step_ms(hf, model.cfg.vocab_size, ctx, n, steps))
        # llama.cpp after the engine: its thread pool keeps spinning for a while after it runs,
        # which would slow whatever is timed next on a small machine (hence the pause between rounds)
        for ctx in contexts if llamacpp and gguf else []:
            assert gguf is not None
            tok_s = llamacpp_tok_s(gguf, ctx, steps, torch.get_num_threads())
            if tok_s is None:
                break
            one_seq.setdefault(ctx, []).append(tok_s)
            for n, ms in (llamacpp_batched_ms(gguf, ctx, workers, steps, torch.get_num_threads()) or {}).items():
                batched.setdefault((ctx, n), []).append(ms)
        if one_seq and rnd + 1 < rounds:
            time.sleep(1.0)
    rows: list[BenchRow] = []
    for ctx, n in points:
        ms = statistics.median(engine[ctx, n])
        one = statistics.median(engine[ctx, 1 if (ctx, 1) in engine else workers[0]])
        b = statistics.median(base[ctx, n]) if base[ctx, n] else None
        row = BenchRow(context=ctx, workers=n, engine_ms=round(ms, 3), baseline_ms=None if b is None else round(b, 3),
                       engine_tok_s=round(n * 1000 / ms, 2), vs_baseline=None if b is None else round(b / ms, 3),
                       vs_one_worker=round(ms / one, 3), bandwidth_fraction=round(bound_ms / ms, 3),
                       read_bound_fraction=round((w_bytes + ctx * kv_token) / (gb_s * 1e9) * 1000 / ms, 3),
                       profile=profile_step(model, ctx, n, attention=attention,
                                            batch_invariant=batch_invariant) if profile else None,
                       engine_ms_rounds=[round(x, 3) for x in engine[ctx, n]] if rounds > 1 else None)
        if ctx in one_seq:
            row.vs_llamacpp = round(row.engine_tok_s / statistics.median(one_seq[ctx]), 3)
        if (ctx, n) in batched:
            lb = batched[ctx, n]
            row.llamacpp_batched_ms = round(statistics.median(lb), 3)
            per_round = [round(x / y, 3) for x, y in zip(lb, engine[ctx, n], strict=False)]
            row.vs_llamacpp_batched = round(statistics.median(per_round), 3)
            if rounds > 1:
                row.llamacpp_batched_ms_rounds = [round(x, 3) for x in lb]
                row.vs_llamacpp_batched_rounds = per_round
        rows.append(row)
    llama = {ctx: round(statistics.median(v), 2) for ctx, v in one_seq.items()}
    by = {(r.context, r.workers): r.engine_ms for r in rows}
    team: dict[str, Any] | None = None
    if hives > 1:
        ctx, n = contexts[0], hive_workers
        one_ms = by.get((ctx, n)) or engine_step_ms(model, ctx, n, steps, attention, batch_invariant, graphs)
        all_ms = engine_step_ms(model, ctx, n, steps, attention, batch_invariant, graphs, hives, notes)
        team = {"hives": hives, "workers": n, "context": ctx, "one_hive_ms": round(one_ms, 3),
                "all_hives_ms": round(all_ms, 3), "one_hive_tok_s": round(n * 1000 / one_ms, 2),
                "aggregate_tok_s": round(hives * n * 1000 / all_ms, 2),
                # aggregate tokens/s over one hive's: = hives when a step of all costs one of one
                "throughput_ratio": round(hives * one_ms / all_ms, 3)}
    mode = graph_mode(graphs)
    return {
        "model": model.source, "dtype": str(model.dtype).removeprefix("torch."), "weights": model.weights,
        "weights_plan": model.plan.summary if model.plan is not None else None,
        "device": str(dev), "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "attention": attention_backend(dev, attention).name, "batch_invariant": batch_invariant,
        # whether decode steps ran as (CUDA) graphs, how many buckets were captured, and why not
        "graphs": mode, "graphs_used": bool(notes), "graph_captures": sum(g.captures for g in notes),
        "graph_failures": sorted({g.failed for g in notes if g.failed}) or None,
        "row_tile": row_tile(model, batch_invariant),  # 1: invariant kernels, no padding needed
        # the paged backend's numba kernel: seconds its first call took (compile, or load from cache)
        "kernel_first_call_s": None if attention_kernel.first_call_s is None else round(attention_kernel.first_call_s, 2),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "steps": steps, "rounds": rounds, "llamacpp_tok_s": llama or None,
        "weight_bytes": w_bytes, "kv_bytes_per_token": kv_token, "bandwidth_gb_s": round(gb_s, 1),
        "weight_bound_ms": round(bound_ms, 3),
        # the target: N=4 step time over N=1 step time, per context
        "step_ratio_n4_n1": {c: round(by[c, 4] / by[c, 1], 3) for c in contexts
                             if (c, 1) in by and (c, 4) in by} or None,
        "rows": [asdict(r) for r in rows],
        "hives": team,
    }


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
