"""SIGTERM stops a worker process whichever of its threads the kernel
delivers the signal to (:mod:`scheduler.stop_signals`)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

import redis

from scheduler import Scheduler
from scheduler.stop_signals import stop_on_signals
from tests.helpers import ROOT, Output, wait_until


def blocked(client: redis.Redis) -> int:
    """Connections blocked in BLPOP (idle workers)."""
    return sum(1 for c in client.client_list() if c.get("cmd") == "blpop")


def test_sigterm_taken_by_another_thread_stops_an_idle_worker(papp: Scheduler) -> None:
    """The dispatcher waits on its inbox (no message for an hour); SIGTERM
    lands on another thread. Before the fix the Python handler was only
    flagged there and never ran: the worker ignored SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.signal_worker"],
        cwd=ROOT,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out = Output(proc)
    try:
        out.wait_for(" started: ")
        wait_until(lambda: blocked(papp.redis) >= 1, timeout=30)  # idle: its waiter blocks
    except BaseException:
        proc.kill()
        out.finish()
        raise
    code, text = out.finish()  # SIGTERM; fails with every thread's stack if it hangs
    assert code == 0, text
    assert "received SIGTERM: stopping" in text, text
    assert "Traceback" not in text, text


def test_a_forked_child_does_not_signal_its_parent() -> None:
    """A child forked after the handlers were installed (a task using
    ``os.fork``) does not write its signals into the parent's wakeup pipe:
    its wakeup fd is reset."""
    script = """
import logging, os, signal, sys
from scheduler.stop_signals import stop_on_signals
stop_on_signals(lambda: None, logging.getLogger("t"))
assert signal.set_wakeup_fd(-1) != -1  # set here ...
stop_on_signals(lambda: None, logging.getLogger("t"))
pid = os.fork()
if pid == 0:
    os._exit(0 if signal.set_wakeup_fd(-1) == -1 else 1)  # ... not in the child
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()


def test_stop_on_signals_is_main_thread_only() -> None:
    """Installing from another thread raises (signal.signal's own rule)."""
    errors: list[BaseException] = []

    def install() -> None:
        try:
            stop_on_signals(lambda: None, logging.getLogger("t"))
        except ValueError as exc:
            errors.append(exc)

    t = threading.Thread(target=install)
    t.start()
    t.join()
    assert errors
