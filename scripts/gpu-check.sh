#!/usr/bin/env bash
# The GPU kit (docs/performance.md, "The GPU kit"): checks and measures the CUDA path in one run
# of under 10 minutes on one GPU, with no network:
#   1. hivethink from this checkout (PYTHONPATH=src, nothing built), plus the wheels the GPU image
#      may lack, installed with --no-index from gpu-wheels/ into a temporary folder (the wheels
#      travel with the working tree: scripts/gpu-wheels.sh downloads them on a networked machine);
#   2. the tests marked cuda (bf16 GPU attention against the fp32 CPU reference, the Runner, the
#      captured decode graphs);
#   3. bench engine at the Qwen3-8B shape (contexts 1024, 4096, 16384; N = 1, 2, 4, 8; transformers
#      on the same tensors in the same run; measured copy bandwidth; 16 hives x 4 workers against
#      one hive), the same step eager (--graphs off) at 16k, and the QwQ-32B shape at 1024 and
#      4096 where the GPU's memory allows;
#   4. a short table and the targets last; JSON, summary.json and gpu-check.log under $OUT
#      (default ./gpu-check-out).
# --dry-run: every step on the CPU with the tiny shape and --device cpu (the second bench: the
# flex backend and the bucketed graph step, uncaptured), in a few minutes; CI runs it.
# Exit: 0 when every step ran, 1 when one failed (the others still run), 2 for a bad argument.
set -uo pipefail
cd "$(dirname "$0")/.."
dry=0
for arg in "$@"; do
  case $arg in
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown argument $arg (only --dry-run)" >&2; exit 2 ;;
  esac
done
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ $dry = 1 ] && [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "gpu-check: $PY cannot import torch (set PYTHON to the interpreter that has it)" >&2; exit 1
fi
if [ $dry = 0 ] && ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu-check: no CUDA GPU visible to $PY (torch $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)); run it on a GPU machine, or --dry-run to rehearse on the CPU" >&2
  exit 1
fi
OUT=${OUT:-./gpu-check-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
LOG=$OUT/gpu-check.log
: >"$LOG"
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
start=$SECONDS
# the whole run, so that it ends inside 10 minutes on a GPU; the rehearsal takes a few minutes on
# 2 cores, and more on a busy machine: CI should not fail for that
budget=${GPU_CHECK_BUDGET_S:-$([ $dry = 1 ] && echo 900 || echo 570)}
say() { echo "gpu-check: $*" | tee -a "$LOG"; }

# 1. hivethink and the wheels the image lacks
shopt -s nullglob
wheels=(gpu-wheels/*.whl)
if [ ${#wheels[@]} -gt 0 ]; then
  if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --target "$site" \
      "${wheels[@]}" >>"$LOG" 2>&1; then
    say "the wheels in gpu-wheels/ do not install for $PY (see $LOG); GPU_PYTHON=X.Y bash scripts/gpu-wheels.sh fetches them for another Python"
    exit 1
  fi
  say "installed ${#wheels[@]} wheels from gpu-wheels/"
else
  say "no gpu-wheels/: using what $PY has"
fi
export PYTHONPATH="$site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! missing=$("$PY" -c "
import importlib
for m in ('hivethink.cli.main', 'hivethink.engine.bench', 'hivethink.engine.graphs', 'transformers', 'pytest'):
    try:
        importlib.import_module(m)
    except ImportError as e:
        print(f'{m} cannot import {e.name or e}'); raise SystemExit(1)
" 2>&1); then
  say "$missing: put its wheel in gpu-wheels/ (scripts/gpu-wheels.sh downloads the list in scripts/gpu-wheels.txt on a networked machine)"
  exit 1
fi
"$PY" -c "import torch, hivethink.cli.main as m; print('torch', torch.__version__, '| cuda', torch.version.cuda, '|',
  torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU', '| hivethink from', m.__file__)" | tee -a "$LOG"

# Each step gets at most its own limit and what is left of the budget; a failed step is recorded
# and the next one runs.
statuses=()
step() {
  local name=$1 limit=$2; shift 2
  local left=$((budget - (SECONDS - start)))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 20 ]; then
    say "$name: skipped (the time budget is spent)"; statuses+=("$name=skipped"); return
  fi
  say "$name (at most ${limit}s): $*"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  case $rc in
    0) statuses+=("$name=ok") ;;
    124|137) statuses+=("$name=timed-out"); say "$name: stopped at its limit of ${limit}s" ;;
    *) statuses+=("$name=failed"); say "$name: failed (exit $rc)" ;;
  esac
  say "$name: $((SECONDS - t0))s"
}
hv=("$PY" -m hivethink.cli.main)

# 2. the cuda tests (on the CPU they are collected and skipped: the rehearsal checks they import)
mapfile -t cuda_tests < <(grep -rl --include='*.py' 'mark\.cuda' tests | sort)
step tests 120 "$PY" -m pytest -q -p no:cacheprovider -m cuda "${cuda_tests[@]}"

# 3. the benches
if [ $dry = 1 ]; then
  # the CPU's own attention for the sweep (flex runs unfused on a CPU: a second a step); the
  # flex backend with the bucketed graph step in the second step, at a small size
  dev=(--device cpu)
  main=(--shape tiny --contexts 64,256 --workers 1,2,4,8 --steps 2)
  second=(--device cpu --attention flex --graphs on --shape tiny --contexts 32 --workers 2 --steps 1)
  big=(--shape tiny --contexts 64 --workers 1,4 --steps 2)
  main_name=tiny second_name=flex-graphs-tiny big_name=tiny fits=1 second_limit=150
else
  dev=(--device cuda)
  main=(--shape qwen3-8b --contexts 1024,4096,16384 --workers 1,2,4,8 --steps 20)
  # the same step without graphs, to see what they bring
  second=(--device cuda --graphs off --shape qwen3-8b --contexts 16384 --workers 1,4 --steps 20)
  big=(--shape qwq-32b --contexts 1024,4096 --workers 1,4 --steps 10)
  main_name=qwen3-8b second_name=eager-qwen3-8b big_name=qwq-32b second_limit=60
  # QwQ-32B in bf16 is 65.5 GB of weights; with its cache and transformers' activations: 75 GiB
  fits=$("$PY" -c "import torch; print(int(torch.cuda.get_device_properties(0).total_memory >= 75 * 2**30))")
fi
step "bench-$main_name" 300 "${hv[@]}" bench engine "${dev[@]}" "${main[@]}" --hives 16 --hive-workers 4 \
  --json "$OUT/bench-main-$main_name.json"
step "$second_name" "$second_limit" "${hv[@]}" bench engine "${second[@]}" --no-baseline --json "$OUT/bench-$second_name.json"
if [ "$fits" = 1 ]; then
  step "bench-big-$big_name" 150 "${hv[@]}" bench engine "${dev[@]}" "${big[@]}" --json "$OUT/bench-big-$big_name.json"
else
  say "bench-big-$big_name: skipped (less than 75 GiB of GPU memory)"; statuses+=("bench-big-$big_name=skipped")
fi

# 4. the table, the targets, summary.json
say "done in $((SECONDS - start))s"
"$PY" scripts/gpu_check_summary.py "$OUT" "${statuses[@]}" | tee -a "$LOG"
exit "${PIPESTATUS[0]}"
