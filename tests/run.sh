#!/usr/bin/env bash
# Set up a virtualenv (once) and run the whole test suite: lint, types, tests.
# Usage: bash tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test,embedded]'
.venv/bin/ruff check scheduler tests bench examples
.venv/bin/ruff format --check scheduler tests bench examples
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
