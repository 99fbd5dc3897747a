"""A bad schedule declaration in app code stops `scheduler cron` and
`scheduler worker --with-cron` with one line naming the problem (issue 10,
item 11): real processes, a real Redis server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.devserver import DevServer

pytestmark = pytest.mark.slow

HEADER = """\
import os
from scheduler import Scheduler
app = Scheduler.from_url(os.environ["SCHEDULER_TEST_URL"])
@app.task
def noop() -> None:
    pass
"""

COMMANDS = [["cron", "badapp:app"], ["worker", "badapp:app", "--with-cron"]]


def run(tmp_path: Path, url: str, declaration: str, command: list[str]) -> tuple[int, str]:
    (tmp_path / "badapp.py").write_text(HEADER + declaration + "\n")
    env = {**os.environ, "SCHEDULER_TEST_URL": url, "SCHEDULER_URL": url}
    env.pop("SCHEDULER_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler", *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def assert_one_line(out: str, problem: str) -> None:
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert lines[0].startswith("Error: cannot load app 'badapp:app': "), out
    assert problem in lines[0], out
    assert "Traceback" not in out and "Usage:" not in out, out


@pytest.mark.parametrize("command", COMMANDS, ids=["cron", "worker"])
@pytest.mark.parametrize(
    ("declaration", "problem"),
    [
        ('app.cron("bogus", noop)', "cron expression 'bogus' has 1 fields"),
        ('app.cron("* * * * *", noop, bogus=1)', "unknown schedule option(s): bogus"),
        ('app.cron("* * * * *", noop, misfire="sometimes")', "unknown misfire policy"),
        ('app.cron("0 0 31 2 *", noop)', "never fires"),
        ("app.every(0.5, noop)", "interval must be at least 1 s"),
    ],
    ids=["expression", "option", "misfire", "never-fires", "interval"],
)
def test_an_invalid_schedule_is_one_usage_line(
    tmp_path: Path, redis_server: DevServer, command: list[str], declaration: str, problem: str
) -> None:
    code, out = run(tmp_path, redis_server.url, declaration, command)
    assert code == 2, out
    assert_one_line(out, problem)


@pytest.mark.parametrize("command", COMMANDS, ids=["cron", "worker"])
@pytest.mark.parametrize(
    ("declaration", "problem"),
    [
        ("app.cron(noop)", "TypeError: ScheduleDeclarations.cron() missing 1 required positional"),
        ('raise RuntimeError("no config")', "RuntimeError: no config"),
        ("app.cron(", "SyntaxError: "),
    ],
    ids=["call", "raise", "syntax"],
)
def test_app_code_failing_at_import_is_one_line(
    tmp_path: Path, redis_server: DevServer, command: list[str], declaration: str, problem: str
) -> None:
    code, out = run(tmp_path, redis_server.url, declaration, command)
    assert code == 1, out
    assert_one_line(out, problem)


def test_debug_shows_the_traceback_of_app_code(tmp_path: Path, redis_server: DevServer) -> None:
    (tmp_path / "badapp.py").write_text(HEADER + "app.cron(noop)\n")
    env = {**os.environ, "SCHEDULER_TEST_URL": redis_server.url, "SCHEDULER_DEBUG": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler", "cron", "badapp:app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "badapp.py" in proc.stderr
