"""Turn SIGTERM and SIGINT into a call to a ``stop()`` function, reliably.

A Python signal handler runs in the main thread, and only when the main
thread next runs Python code. The kernel may deliver a process's signal to
*any* of its threads: then CPython (3.11, POSIX) only flags it, and a main
thread blocked in a wait without a timeout (the worker's dispatcher waiting
on its inbox) never runs the handler -- a worker that ignored SIGTERM under
load. A handler doing real work (logging, ``Event.set``) is also not safe
to run in the middle of the main thread's own use of the same locks.

So the handler itself does nothing: :func:`stop_on_signals` points Python's
wakeup fd (:func:`signal.set_wakeup_fd`, written by the C-level handler in
whatever thread took the signal) at a pipe, and a daemon thread reading
that pipe logs the signal and calls ``stop()`` -- the self-pipe pattern.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

__all__ = ["STOP_SIGNALS", "stop_on_signals"]

#: The signals that stop a worker or a cron runner.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _noted(_signum: int, _frame: object) -> None:
    """Python-level handler: nothing to do (the watcher thread acts)."""


def _forget_wakeup_fd() -> None:
    """In a forked child: do not write the child's signals into the
    parent's pipe (the child's watcher thread does not exist)."""
    signal.set_wakeup_fd(-1)


_fork_hook_registered = False


def stop_on_signals(stop: Callable[[], None], log: logging.Logger, what: str = "") -> None:
    """Make SIGTERM and SIGINT call ``stop()`` from a daemon thread
    (``scheduler-signals``) and log ``received SIGTERM: stopping[ what]`` to
    ``log`` first. Works whichever thread the kernel delivers the signal to
    and however the main thread waits. Call from the main thread, once per
    process (it replaces any earlier :func:`signal.set_wakeup_fd`).

    Raises:
        ValueError: not called from the main thread.
    """
    global _fork_hook_registered
    for sig in STOP_SIGNALS:
        signal.signal(sig, _noted)  # a Python handler: the C handler writes the fd
    read_fd, write_fd = os.pipe()  # not inherited by spawned processes
    os.set_blocking(write_fd, False)  # set_wakeup_fd requires it
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    if not _fork_hook_registered:
        os.register_at_fork(after_in_child=_forget_wakeup_fd)
        _fork_hook_registered = True
    suffix = f" {what}" if what else ""

    def watch() -> None:
        while True:
            data = os.read(read_fd, 64)
            for number in data:
                if number in STOP_SIGNALS:
                    log.info("received %s: stopping%s", signal.Signals(number).name, suffix)
                    stop()

    threading.Thread(target=watch, name="scheduler-signals", daemon=True).start()
