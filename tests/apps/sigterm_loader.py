"""A process-pool app loader that receives SIGTERM while it loads the app:
a child started just as its worker stops (tests/test_worker_faults.py)."""

from __future__ import annotations

import os
import signal

from scheduler.worker.execution import TaskApp, load_task_app


def load_after_sigterm(path: str) -> TaskApp:
    """SIGTERM this process, then load the app at ``path``."""
    os.kill(os.getpid(), signal.SIGTERM)
    return load_task_app(path)
