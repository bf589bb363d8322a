#!/usr/bin/env bash
# Set up (first time) and run the fast tier of the test suite on the CPU (a few minutes on 2 cores).
# The whole suite, slow tier included (the embedded model, Ray, a browser, real subprocesses):
#   bash scripts/test.sh -m ""        (what CI runs; about 17 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# Browser tests render the HTML report in Debian's Chromium (never a downloaded browser build).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "chromium not installed: browser tests will be skipped"
fi
exec .venv/bin/python -m pytest -q -m "not slow" "$@"
