#!/usr/bin/env bash
# Set up (first time) and run the demo: three workers share one KV cache on the embedded model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/hivethink solve "A train leaves at 3pm and travels at 60 km per hour. How far has it travelled by 5pm?" \
  --workers 3 --layout combined --max-steps 384 --trace demo-trace.jsonl "$@"
