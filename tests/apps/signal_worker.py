"""A worker of ``tests.apps.procapp`` whose main thread cannot take SIGTERM:
``python -m tests.apps.signal_worker``. The kernel then delivers it to
another thread (a bystander started before the main thread blocks it), as
it may at any time in a multi-threaded process -- the worker must still
stop. Its longest idle block is an hour, so nothing else wakes it."""

from __future__ import annotations

import logging
import signal
import threading

from scheduler import Worker
from tests.apps.procapp import app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    worker = Worker(app, ["default"], max_block=3600.0)
    worker.install_signal_handlers()
    # A thread that may take the signal (started before the mask, so it does
    # not inherit it); the worker's own threads, started later, inherit it.
    threading.Thread(target=threading.Event().wait, name="bystander", daemon=True).start()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    worker.run()


if __name__ == "__main__":
    main()
