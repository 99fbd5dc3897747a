"""A worker of ``tests.apps.limits_app`` with a capacity, in its own process,
that samples its held resource at every lease:
``python -m tests.apps.capacity_worker CAPACITY CONCURRENCY``. Each lease
pushes ``pid,held`` (the resource units of the jobs it holds that take room,
this one included) onto the Redis list ``held`` before the job can start --
so the samples survive a ``kill -9``."""

from __future__ import annotations

import os
import sys

import redis

from scheduler import Worker
from scheduler.worker.execution import LeasedJob
from tests.apps.limits_app import URL, app


def main(argv: list[str]) -> None:
    capacity, concurrency = float(argv[0]), int(argv[1])
    log = redis.Redis.from_url(URL)
    pid = os.getpid()

    class Probe:
        def on_leased(self, job: LeasedJob) -> None:
            log.rpush("held", f"{pid},{worker._book.held_resource!r}")  # test-only peek

        def on_finished(self, job: LeasedJob, outcome: str, duration: float) -> None:
            pass

        def on_released(self, job: LeasedJob) -> None:
            pass

        def on_lease_lost(self, job: LeasedJob) -> None:
            pass

    worker = Worker(
        app, ["cap"], concurrency=concurrency, capacity=capacity, observer=Probe(), max_block=0.2
    )
    worker.install_signal_handlers()
    print("ready", flush=True)
    worker.run()


if __name__ == "__main__":
    main(sys.argv[1:])
