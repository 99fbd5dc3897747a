"""The example's scheduler app: a small shop's background jobs.

* ``fingerprint`` -- the bulk workload: SHA-256 of one file (the demo feeds
  it the Python standard library). Free-tier jobs get ``weight=1``, paid
  customers' ``weight=100``, so paid jobs overtake the backlog.
* ``checkpoint`` -- a delayed job that reports when it actually started.
* ``send_welcome`` -- e-mail a customer read from a tiny JSON "database";
  the mail server is flaky (the first two attempts fail with
  ``ConnectionError``, retried with backoff); an invalid address fails with
  ``ValueError``, which is not retried: the job goes dead at once.
* ``render_invoice`` -- a slow job (the demo kills its worker with
  ``kill -9`` mid-job; the short lease brings it back to another worker).
* ``nightly_report`` -- fired by an interval schedule (every second here;
  ``app.cron("0 3 * * *", ...)`` in real life).

Workers load it with ``scheduler worker shop:app`` (run from this
directory); the demo that drives it is ``demo.py``. Everything runs on the
default key prefix, so ``scheduler status`` shows the queues afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from scheduler import Backoff, Scheduler

app = Scheduler.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))

#: The queues this app uses (the demo empties them before it starts).
QUEUES = ("files", "email", "invoices", "reports")

#: Lease of every task, seconds: a killed worker's jobs come back this soon
#: (heartbeats keep a running job's lease alive). Real apps use more.
LEASE = 2.0

#: Rough hashing speed used to estimate a job's run time from a file's size.
HASH_BYTES_PER_SECOND = 400e6

#: Id of the interval schedule of ``nightly_report``.
REPORT_SCHEDULE = "nightly-report"


def estimated_seconds(size: int) -> float:
    """Estimated run time of fingerprinting a file of ``size`` bytes, in seconds:
    a fixed 0.2 ms of overhead plus the size at :data:`HASH_BYTES_PER_SECOND`."""
    return 0.0002 + size / HASH_BYTES_PER_SECOND


@app.task(queue="files", lease=LEASE, retry_on=(TimeoutError,))  # unreadable files will not heal
def fingerprint(path: str) -> dict[str, object]:
    """SHA-256 of one file; returns its size, digest and start time (Unix seconds)."""
    started = time.time()
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest(), "started": started}


@app.task(queue="files", lease=LEASE, priority=1e9)  # due checkpoints jump the queue
def checkpoint(label: str) -> dict[str, object]:
    """Report when this delayed job actually started (Unix seconds)."""
    return {"label": label, "started": time.time()}


def customers_file() -> Path:
    """The JSON "customer database" (``$SHOP_DB``): ``{id: {"email": ...}}``."""
    return Path(os.environ.get("SHOP_DB", "customers.json"))


def welcome_job_id(customer: str) -> str:
    """The welcome e-mail's job id: a natural key, so it is sent once."""
    return f"welcome:{customer}"


def this_attempt(job_id: str) -> int:
    """The running attempt's number (1-based), read from the job's record."""
    return app.job(job_id, queue="email").info().attempts


@app.task(
    queue="email",
    lease=LEASE,
    max_attempts=5,
    backoff=Backoff(base=0.2, maximum=1.0, jitter=0.0),
    retry_on=(ConnectionError,),
)
def send_welcome(customer: str) -> dict[str, object]:
    """Send a customer their welcome e-mail.

    Raises:
        ValueError: the stored address is invalid (not retried: dead at once).
        ConnectionError: the (simulated) flaky mail server, on the first two
            attempts; retried with backoff.
    """
    record = json.loads(customers_file().read_text())[customer]
    address = record["email"]
    if address.endswith(".invalid"):
        raise ValueError(f"undeliverable address {address!r}")
    attempt = this_attempt(welcome_job_id(customer))
    if record.get("flaky") and attempt < 3:
        raise ConnectionError(f"mail server timed out (attempt {attempt})")
    return {"to": address, "attempt": attempt}


@app.task(queue="invoices", lease=LEASE)
def render_invoice(order: str, seconds: float = 1.0) -> dict[str, object]:
    """Render an order's invoice (simulated: ``seconds`` of work); returns
    the pid of the worker process that finished it."""
    time.sleep(seconds)
    return {"order": order, "pid": os.getpid()}


@app.task(queue="reports", lease=LEASE)
def nightly_report() -> dict[str, object]:
    """Summarise the day (simulated); returns when it ran (Unix seconds)."""
    return {"ran": time.time()}


app.every(1, nightly_report, id=REPORT_SCHEDULE)
