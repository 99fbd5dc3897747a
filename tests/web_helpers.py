"""Jobs in every state, a schedule and a live worker, for the dashboard's tests
and its screenshots (``docs/img/make_screenshots.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import attrs

from scheduler import Scheduler
from scheduler.backend.record import parse_record
from scheduler.serialization import encode_error

#: Arguments of a job that would run script if rendered unescaped.
EVIL = "<script>alert('x')</script>"


@attrs.frozen
class Population:
    """Ids of the jobs :func:`populate` made, by state."""

    ready: list[str]
    delayed: str
    failed: str
    leased: str
    dead: list[str]
    succeeded: str
    cancelled: str
    evil: str
    schedule: str


def _lease(app: Scheduler, queue: str, n: int, tag: str) -> list[tuple[str, str]]:
    reply = app.scripts.lease(app.queue_keys(queue), n, "worker-1", f"req-{tag}")
    return [(job_id, parse_record(job_id, text).token) for job_id, text in reply.jobs]


def populate(app: Scheduler) -> Population:
    """Queues ``emails`` and ``reports`` with jobs in every state, schedule
    ``nightly`` and a live worker entry; returns the job ids."""
    q = "emails"
    # Finished states first: each lease takes the best ready jobs.
    dead = [
        app.enqueue(
            "mail.send", args=[f"user{i}@example.com"], queue=q, job_id=f"dead-{i}", priority=90
        ).id
        for i in range(3)
    ]
    err = encode_error(
        "SMTPError: 550 mailbox unavailable",
        "SMTPError",
        'Traceback (most recent call last):\n  File "mail.py", line 12, in send\n'
        "SMTPError: 550 mailbox unavailable\n",
        3,
    )
    app.scripts.fail(app.queue_keys(q), [(j, t, err, -1) for j, t in _lease(app, q, 3, "dead")])
    succeeded = app.enqueue("mail.send", args=["ok@example.com"], queue=q, priority=80).id
    app.scripts.complete(
        app.queue_keys(q), [(j, t, '{"sent": true}') for j, t in _lease(app, q, 1, "ok")]
    )
    failed = app.enqueue("mail.send", args=["flaky@example.com"], queue=q, priority=70).id
    retry_err = encode_error("TimeoutError: smtp timeout", "TimeoutError", "Traceback ...\n", 1)
    app.scripts.fail(
        app.queue_keys(q), [(j, t, retry_err, 3_600_000) for j, t in _lease(app, q, 1, "f")]
    )
    leased = app.enqueue("mail.send", args=["slow@example.com"], queue=q, priority=60).id
    _lease(app, q, 1, "busy")
    cancelled = app.enqueue("mail.send", args=["gone@example.com"], queue=q).id
    app.job(cancelled, q).cancel("no longer needed")
    delayed = app.enqueue(
        "mail.digest", args=["weekly"], queue=q, delay=timedelta(hours=1), job_id="digest-1"
    ).id
    ready = [
        app.enqueue("mail.send", args=[f"r{i}@example.com"], queue=q, weight=i + 1, time=2.0).id
        for i in range(4)
    ]
    evil = app.enqueue("mail.send", args=[EVIL], kwargs={"note": EVIL}, queue=q, job_id="evil").id
    for i in range(2):
        app.enqueue("reports.build", args=[f"2024-0{i + 1}"], queue="reports")
    schedule = app.schedules.build(
        "reports.nightly", cron="0 3 * * *", id="nightly", queue="reports"
    )
    app.schedules.add(schedule)
    app.backend.publish_worker(
        "host-a:4242:ab12",
        {
            "host": "host-a",
            "pid": "4242",
            "queues": "emails,reports",
            "concurrency": "8",
            "pool": "thread",
            "inflight": "1",
            "processed": "5",
            "beat": repr(time.time()),
            "started": repr(time.time() - 3600),
        },
        time.time(),
    )
    return Population(
        ready=ready,
        delayed=delayed,
        failed=failed,
        leased=leased,
        dead=dead,
        succeeded=succeeded,
        cancelled=cancelled,
        evil=evil,
        schedule="nightly",
    )


# -- a real server and a real browser --------------------------------------------

#: Where tests/run.sh installs Debian's Chromium (``apt-get install chromium``).
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str | None:
    """The system Chromium to drive with Playwright, or None if none is installed."""
    import shutil
    from pathlib import Path

    for path in CHROMIUM_PATHS:
        if Path(path).exists():
            return path
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def serving(asgi_app: Any) -> Iterator[str]:
    """Serve ``asgi_app`` with uvicorn on a free local port in a thread;
    yields its base URL, stops it afterwards."""
    import socket

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(asgi_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
