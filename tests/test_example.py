"""``examples/demo.py`` (the README's first command) runs end to end against a
real server and prints its report: paid jobs overtaking the backlog, delayed
jobs on time, a flaky e-mail retried, a dead one retried from the CLI, a
worker killed with ``kill -9`` and its job recovered, and each cron firing
enqueued exactly once by two cron processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import redis

from scheduler import Scheduler
from scheduler.devserver import DevServer
from tests.helpers import ROOT

pytestmark = pytest.mark.slow


def test_example_runs_and_reports(redis_server: DevServer, real_redis: redis.Redis) -> None:
    env = {**os.environ, "REDIS_URL": redis_server.url}
    env.pop("SCHEDULER_PREFIX", None)
    # a small directory keeps it quick; the stdlib is the default
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), str(ROOT / "scheduler")],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard: a loaded machine takes its time
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert f"Redis: {redis_server.url}" in out
    assert "Started 2 workers and 2 cron processes (all registered)" in out
    assert re.search(r"all 8 paid jobs started before \d+ of \d+ free-tier jobs", out)
    assert re.search(r"delayed checkpoints started -?\d+, -?\d+, -?\d+ ms after their ETA", out)
    assert "welcome:ada failed twice (mail server timeout), sent on attempt 3" in out
    assert "welcome:bob is dead after 1 attempt: ValueError" in out
    assert "retried: job welcome:bob (queue email) is now ready" in out, out
    assert "welcome:bob sent to bob@example.com -> succeeded" in out
    assert re.search(r"killed with kill -9 while running invoice:order-1001 .* attempt 2", out)
    assert re.search(r"fired 'nightly-report' \(every 1 s\) (\d+) times -> \1 jobs", out)
    assert "each firing exactly once" in out
    # the default prefix: what the README's CLI commands look at afterwards
    app = Scheduler.from_url(redis_server.url)
    try:
        assert app.job("welcome:bob", queue="email").info().state.value == "succeeded"
        # No schedule left behind: any cron process on the server (the
        # user's own, which serves every queue) would fire it every second.
        assert app.schedules.list() == []
        status = subprocess.run(
            [sys.executable, "-m", "scheduler", "status"],
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr
        for queue in ("files", "email", "invoices", "reports"):
            assert queue in status.stdout
    finally:
        app.close()
