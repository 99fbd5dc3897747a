"""Run a worker of ``tests.apps.procapp`` in its own process with settings the
CLI does not offer (``max_block``): ``python -m tests.apps.run_worker QUEUES
MAX_BLOCK [CONCURRENCY [PREFETCH]]``. SIGTERM/SIGINT stop it gracefully."""

from __future__ import annotations

import logging
import sys

from scheduler import Worker
from tests.apps.procapp import app


def main(argv: list[str]) -> None:
    queues, max_block = argv[0].split(","), float(argv[1])
    concurrency = int(argv[2]) if len(argv) > 2 else 1
    prefetch = int(argv[3]) if len(argv) > 3 else None
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    worker = Worker(app, queues, concurrency=concurrency, prefetch=prefetch, max_block=max_block)
    worker.install_signal_handlers()
    worker.run()


if __name__ == "__main__":
    main(sys.argv[1:])
