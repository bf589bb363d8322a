"""The decode step at bucketed sizes (engine/graphs.py): the switch, the padding, the fallback.

On a CPU, graphs=on runs the bucketed step over static buffers without capture: padding rows and
merge columns to a bucket must leave the real rows' logits bit-identical to the eager pass. The
``cuda`` test captures real graphs."""

from __future__ import annotations

import pytest
import torch

from hivethink.engine.buckets import bucket
from hivethink.engine.forward import Runner
from hivethink.engine.graphs import graph_mode
from hivethink.errors import HivethinkError

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _tiny(seed: int = 5):
    from tests.conftest import as_loaded, tiny_hf

    return as_loaded(tiny_hf("qwen3", seed=seed))


def _decode(runner: Runner, workers: int, steps: int, feed: list[list[int]] | None = None):
    """Shared prompt, N workers (contiguous views), greedy decoding -> (tokens, logits [steps, N, V])."""
    cache = runner.cache
    common = cache.new_block("common")
    runner.prefill(common, list(range(5, 45)))
    own = [cache.new_block(f"w{i}") for i in range(workers)]
    views = [[common, *(b for b in own if b is not mine), mine] for mine in own]
    logits = runner.extend(views, [[9 + i] for i in range(workers)])
    toks, out = [], []
    for s in range(steps):
        nxt = feed[s] if feed is not None else logits.argmax(-1).tolist()
        toks.append(nxt)
        logits = runner.extend(views, [[t] for t in nxt])
        out.append(logits)
    return toks, torch.stack(out).float().cpu()


def test_bucket_rounds_up_to_a_power_of_two_above_the_floor():
    assert [bucket(n) for n in (0, 1, 2, 3, 4, 5, 9)] == [1, 1, 2, 4, 4, 8, 16]
    assert bucket(3, 4) == 4 and bucket(5, 4) == 8 and bucket(1, 8) == 8


# 2 workers: 3 parts a token, merged over 4 columns; 9: 16 rows where the eager pass has 12
@pytest.mark.parametrize("workers", [2, 9])
def test_bucketed_decode_step_gives_the_eager_logits_bit_for_bit(workers):
    model = _tiny()
    want_toks, want = _decode(Runner(model, page_size=8, attention="flex", graphs="off"), workers, 4)
    runner = Runner(model, page_size=8, attention="flex", graphs="on")
    assert runner.graphs is not None
    toks, got = _decode(runner, workers, 4)
    assert toks == want_toks
    assert torch.equal(got, want)
    # the first step makes the bucket; the others reuse it, or a new one when a page fills
    g = runner.graphs
    assert g.captures >= 1 and g.replays >= 1 and g.captures + g.replays == 5  # every pass after the prefill
    assert all(key[0] == bucket(workers, runner.align) for key in g.buckets)


def test_a_failed_capture_falls_back_to_the_eager_step(recwarn):
    model = _tiny()
    want_toks, want = _decode(Runner(model, page_size=8, attention="flex", graphs="off"), 2, 3)
    runner = Runner(model, page_size=8, attention="flex", graphs="on")
    assert runner.graphs is not None
    runner.graphs.cuda = True  # a capture is tried, and fails: this torch has no CUDA
    toks, got = _decode(runner, 2, 3)
    assert toks == want_toks and torch.equal(got, want)
    assert runner.graphs.failed and runner.graphs.captures == 0 and not runner.graphs.buckets
    assert any("decoding eagerly" in str(w.message) for w in recwarn)


def test_the_switch_by_argument_and_environment(monkeypatch):
    model = _tiny()
    monkeypatch.delenv("HIVETHINK_GRAPHS", raising=False)
    assert graph_mode() == "auto" and graph_mode("off") == "off"
    assert Runner(model, attention="flex").graphs is None  # auto: only with CUDA
    monkeypatch.setenv("HIVETHINK_GRAPHS", "on")
    assert Runner(model, attention="flex").graphs is not None
    assert Runner(model, attention="flex", graphs="off").graphs is None  # the argument wins
    with pytest.raises(HivethinkError, match="flex"):
        Runner(model, attention="blocks")
    monkeypatch.setenv("HIVETHINK_GRAPHS", "always")
    with pytest.raises(HivethinkError, match="HIVETHINK_GRAPHS"):
        Runner(model)


@pytest.mark.parametrize("how", ["option", "env"])
def test_cli_reports_a_bad_graphs_value_in_one_line(how, monkeypatch, capsys):
    from hivethink.cli.main import main

    args = ["bench", "engine", "--shape", "tiny", "--device", "cpu", "--contexts", "32", "--workers", "1",
            "--steps", "1", "--no-baseline"]
    if how == "env":
        monkeypatch.setenv("HIVETHINK_GRAPHS", "sometimes")
    else:
        args += ["--graphs", "sometimes"]
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "graphs" in err and len(err.splitlines()) == 1


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("workers", [1, 4])
def test_cuda_graph_decode_replays_the_eager_step(workers):
    """Captured graphs on the GPU: the same tokens as the eager bf16 pass, logits within bf16
    rounding (the eager pass pads rows to the row tile, the graph to its bucket)."""
    def run(graphs: str, feed: list[list[int]] | None = None):
        model = _tiny()
        model.decoder.to(device="cuda", dtype=torch.bfloat16)
        runner = Runner(model, page_size=16, graphs=graphs)
        return runner, _decode(runner, workers, 6, feed)

    _, (want_toks, want) = run("off")
    runner, (_, got) = run("on", want_toks)  # the eager run's tokens: logits compared step by step
    g = runner.graphs
    assert g is not None and g.failed is None and g.captures >= 1 and g.replays >= 1
    assert torch.isfinite(got).all()
    assert (got - want).abs().max().item() < 0.05 * want.abs().max().item()
