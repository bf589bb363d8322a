"""The last part of scripts/gpu-check.sh: the issue's targets read off the bench JSON, one short
table, and summary.json (every step's status, each target met or not) beside the other files.

Usage: python scripts/gpu_check_summary.py OUT_DIR STEP=STATUS ...  (STATUS: ok | failed | skipped ...)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def row(res: dict[str, Any], ctx: int, n: int) -> dict[str, Any] | None:
    return next((r for r in res["rows"] if r["context"] == ctx and r["workers"] == n), None)


def targets(main: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for the 8B shape: N=4 vs N=1 at the longest context; N=1's
    fraction of the weight-bandwidth bound and its speed against transformers."""
    ctx = max(r["context"] for r in main["rows"])
    out: list[tuple[str, str, bool | None]] = []
    n1, n4 = row(main, ctx, 1), row(main, ctx, 4)
    if n1 and n4:
        ratio = n4["engine_ms"] / n1["engine_ms"]
        out.append((f"N=4 step <= 1.15x N=1 at {ctx}", f"{ratio:.2f}x", ratio <= 1.15))
    for r in [row(main, c, 1) for c in sorted({r["context"] for r in main["rows"]})]:
        if r is None:
            continue
        frac = r["bandwidth_fraction"]
        out.append((f"N=1 >= 70% of the weight-bandwidth bound at {r['context']}", f"{frac:.0%}", frac >= 0.7))
        if r["vs_baseline"] is not None:
            out.append((f"N=1 at least as fast as transformers at {r['context']}", f"{r['vs_baseline']:.2f}x",
                        r["vs_baseline"] >= 1.0))
    return out


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    steps = dict(a.split("=", 1) for a in argv[1:])
    benches = {p.stem: load(p) for p in sorted(out.glob("bench-*.json"))}
    lines = ["| shape | device | context | N | engine ms | transformers ms | vs N=1 | of bandwidth bound |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, res in benches.items():
        for r in (res or {}).get("rows", []):
            base = "-" if r["baseline_ms"] is None else f"{r['baseline_ms']:.2f}"
            lines.append(f"| {name.removeprefix('bench-')} | {res['gpu'] or res['device']} | {r['context']} | "
                         f"{r['workers']} | {r['engine_ms']:.2f} | {base} | {r['vs_one_worker']:.2f}x | "
                         f"{r['bandwidth_fraction']:.0%} |")
    hive_lines, met = [], []
    for name, res in benches.items():
        h = (res or {}).get("hives")
        if h:
            hive_lines.append(f"{name.removeprefix('bench-')}: {h['hives']} hives x {h['workers']} workers at "
                              f"{h['context']}: {h['aggregate_tok_s']:.1f} tokens/s together vs "
                              f"{h['one_hive_tok_s']:.1f} for one hive ({h['throughput_ratio']:.2f}x)")
        if res and res.get("graph_failures"):
            hive_lines.append(f"{name}: CUDA graph capture failed, eager instead: {res['graph_failures']}")
    main_bench = next((r for n, r in benches.items() if n.startswith("bench-main") and r), None)
    if main_bench and main_bench["device"].startswith("cuda"):  # the targets are a GPU's
        met = targets(main_bench)
    summary = {"steps": steps, "device": main_bench["device"] if main_bench else None,
               "gpu": main_bench["gpu"] if main_bench else None,
               "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in met],
               "files": sorted(p.name for p in out.iterdir())}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\n".join(["", "gpu-check summary", *lines, *hive_lines]))
    for t, m, ok in met:
        print(f"target: {t}: {m} ({'met' if ok else 'NOT met'})")
    if main_bench and not met:
        print("targets: measured on a GPU only (this run: the CPU rehearsal)")
    print("steps: " + ", ".join(f"{k} {v}" for k, v in steps.items()))
    return 0 if all(v in ("ok", "skipped") for v in steps.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
