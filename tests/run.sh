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
# An editable install from before the distribution was renamed (it was
# "scheduler") would shadow this one's command; drop it.
if .venv/bin/python -m pip show -q scheduler >/dev/null 2>&1; then
  .venv/bin/python -m pip uninstall -q -y scheduler
fi
# The tools live in pyproject.toml's [dependency-groups] (PEP 735), group "dev".
if .venv/bin/python -m pip install --help | grep -q -- '--group'; then
  .venv/bin/python -m pip install -q -e '.[embedded,web]' --group dev
else
  # pip < 25.1 has no --group (an index without a newer pip): read the group here.
  .venv/bin/python - >.venv/dev-requirements.txt <<'PYEOF'
import tomllib

with open("pyproject.toml", "rb") as f:
    groups = tomllib.load(f)["dependency-groups"]


def expand(name):
    for item in groups[name]:
        if isinstance(item, dict):
            yield from expand(item["include-group"])
        else:
            yield item


print("\n".join(dict.fromkeys(expand("dev"))))
PYEOF
  .venv/bin/python -m pip install -q -e '.[embedded,web]' -r .venv/dev-requirements.txt
fi
# The dashboard's browser tests drive the system's Chromium with Playwright
# (never `playwright install`: it downloads a browser build, which cannot work
# offline). Install Debian's chromium when missing and we can (root with
# apt-get); there, and wherever it is installed, a missing browser fails those
# tests instead of skipping them.
# promtool (Debian's prometheus package) checks and unit-tests docs/alerts.yml.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  if [ ! -x /usr/bin/chromium ] || ! command -v promtool >/dev/null; then
    apt-get update -qq >/dev/null || echo "warning: apt-get update failed" >&2
  fi
  if [ ! -x /usr/bin/chromium ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null ||
      echo "warning: could not install chromium; the browser tests will fail" >&2
  fi
  if ! command -v promtool >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
      >/dev/null || echo "warning: could not install promtool; its test will skip" >&2
  fi
  export SCHEDULER_REQUIRE_BROWSER=1
elif [ -x /usr/bin/chromium ]; then
  export SCHEDULER_REQUIRE_BROWSER=1
fi
.venv/bin/ruff check scheduler tests bench examples
.venv/bin/ruff format --check scheduler tests bench examples
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
