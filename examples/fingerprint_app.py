"""The example's scheduler app: fingerprint files, and a few delayed checkpoints.

Workers load it with ``scheduler worker fingerprint_app:app`` (run from this
directory); the producer and report live in ``fingerprint.py``.
"""

from __future__ import annotations

import hashlib
import os
import time

from scheduler import Scheduler

app = Scheduler.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), prefix="example")

#: Rough hashing speed used to estimate a job's run time from a file's size.
HASH_BYTES_PER_SECOND = 400e6


def estimated_seconds(size: int) -> float:
    """Estimated run time of fingerprinting a file of ``size`` bytes, in seconds:
    a fixed 0.2 ms of overhead plus the size at :data:`HASH_BYTES_PER_SECOND`."""
    return 0.0002 + size / HASH_BYTES_PER_SECOND


@app.task(queue="files", retry_on=(TimeoutError,))  # an unreadable file will not heal
def fingerprint(path: str) -> dict[str, object]:
    """SHA-256 of one file; returns its size and digest."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"path": path, "size": size, "sha256": digest.hexdigest()}


@app.task(queue="files", priority=1e9)  # due checkpoints jump the queue
def checkpoint(label: str) -> dict[str, object]:
    """Report when this delayed job actually started (wall clock, seconds)."""
    return {"label": label, "started": time.time()}
