"""A process-pool app loader whose module, when a child process unpickles it
(before the child's own code runs), sends that child SIGINT: a Ctrl-C on the
terminal reaching a child that is still starting (tests/test_worker_faults.py).
Once: only while the file $SCHEDULER_TEST_SIGINT_ONCE does not exist (the
module creates it)."""

from __future__ import annotations

import os
import signal

from scheduler.worker.execution import TaskApp, load_task_app

_MARKER = os.environ.get("SCHEDULER_TEST_SIGINT_ONCE")
if _MARKER and not os.path.exists(_MARKER):
    with open(_MARKER, "w"):
        pass
    os.kill(os.getpid(), signal.SIGINT)


def load(path: str) -> TaskApp:
    """Load the app at ``path`` (:func:`load_task_app`)."""
    return load_task_app(path)
