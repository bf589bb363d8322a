#!/usr/bin/env bash
# Download, on a machine with network, the wheels scripts/gpu-check.sh installs on a GPU machine
# that has none: those listed in scripts/gpu-wheels.txt, for the GPU image's Python (default 3.12,
# x86-64 Linux), into gpu-wheels/ (git-ignored; carry it with the working tree: about 2.5 MB).
#   GPU_PYTHON=3.11 bash scripts/gpu-wheels.sh     (another Python on the GPU machine)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
ver=${GPU_PYTHON:-3.12}
mkdir -p gpu-wheels
grep -v '^\s*#' scripts/gpu-wheels.txt | grep . | xargs "$PY" -m pip download -q --disable-pip-version-check \
  --no-deps --only-binary=:all: --python-version "$ver" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d gpu-wheels
ls -1 gpu-wheels
du -sh gpu-wheels
