#!/usr/bin/env bash
# Set up (first time) and run the demo: two workers share one KV cache on the embedded model,
# with the published Hogwild! prompting and instant visibility. The model is tiny (135M): it
# shows the machinery (steps moving into the shared history, redundancy checks, the finisher),
# not intelligence, and the summary says plainly what it got wrong.
# Two settings differ from the published ones, to make a short run show its parts:
#   --step-end text   SmolLM2 writes a blank line as two newline tokens, and the published rule
#                     only ends a step on a token that holds the whole blank line;
#   --check-every 64  the redundancy check comes after 64 fed tokens instead of 256.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/hivethink solve "Ann has 3 apples and buys 4 more. How many apples does she have now?" \
  --workers 2 --max-steps 120 --step-end text --check-every 64 --expect 7 --trace demo-trace.jsonl "$@"
