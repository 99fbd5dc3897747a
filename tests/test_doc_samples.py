"""The code samples of the user documentation run as written: each test takes
a ```python block out of README.md or docs/testing.md (found by a line it
holds, so an edit to the sample is what runs), fills in only what the sample
leaves to the reader (`...` bodies' results, helper functions) and runs it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import redis

from scheduler import Backoff, JobState, Scheduler
from scheduler.devserver import DevServer
from scheduler.testing import fake_app, run_jobs

ROOT = Path(__file__).resolve().parent.parent


def sample(doc: str, holding: str) -> str:
    """The ```python block of ``doc`` (a path under the repository) holding ``holding``."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / doc).read_text(), re.S)
    found = [b for b in blocks if holding in b]
    assert len(found) == 1, f"{doc}: {len(found)} python blocks hold {holding!r}"
    return str(found[0])


def test_readme_usage_sample(
    redis_server: DevServer, real_redis: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    code = sample("README.md", "job = resize.enqueue(")
    assert code.count('"redis://localhost:6379/0"') == 1
    code = code.replace('"redis://localhost:6379/0"', repr(redis_server.url))
    enqueueing, waiting = code.split("print(job.status)")
    # The module the sample is (its by-name enqueue says media.tasks) and what it
    # leaves to the reader: the task's output path and the names of the batch.
    ns: dict[str, Any] = {"__name__": "media.tasks", "out_path": "a-640.png"}
    ns["names"] = ["e.png", "f.png"]
    exec(compile(enqueueing, "README.md", "exec"), ns)
    app: Scheduler = ns["app"]
    assert app.job("order-42").info().priority == 100
    assert run_jobs(app, timeout=120)  # what a worker would do; the 5 min delay waits
    exec(compile("print(job.status)" + waiting, "README.md", "exec"), ns)
    assert capsys.readouterr().out.splitlines() == ["succeeded", "a-640.png"]
    counts = app.backend.job_set_size
    assert counts("media", "done") == 3 + 10_000 + 2 and counts("media", "delayed") == 1


def test_readme_inside_a_task_sample() -> None:
    code = sample("README.md", "raise Retry(delay=60)")
    app = fake_app()

    class TemporaryFailure(Exception):  # noqa: N818 (the README's name)
        pass

    def smtp_send(to: str) -> None:
        if to.startswith("busy"):
            raise TemporaryFailure(to)

    ns: dict[str, Any] = {"__name__": "mail.tasks", "app": app}
    ns.update(TemporaryFailure=TemporaryFailure, smtp_send=smtp_send)
    exec(compile(code, "README.md", "exec"), ns)
    send_email = ns["send_email"]
    sent, bad, busy = (send_email.enqueue(to) for to in ("a@b.c", "nobody", "busy@b.c"))
    assert run_jobs(app)
    assert sent.status is JobState.SUCCEEDED and sent.progress is not None
    assert sent.progress.message == "sent"
    assert bad.status is JobState.DEAD and "bad address nobody" in str(bad.info().error)
    assert busy.status is JobState.FAILED  # retried in 60 s
    assert busy.info().attempts == 1


def test_testing_doc_sample() -> None:
    ns: dict[str, Any] = {"__name__": "test_thumbs"}
    exec(compile(sample("docs/testing.md", "def test_thumbnail("), "testing.md", "exec"), ns)
    ns["test_thumbnail"](fake_app())
    assert Backoff(base=0, jitter=0).delay(3, None) == 0  # the doc's advice for retries


def test_cron_doc_declaring_sample(redis_server: DevServer, real_redis: redis.Redis) -> None:
    code = sample("docs/cron.md", "# Declared in code: upserted when a cron process starts.")
    assert code.count('"redis://localhost:6379/0"') == 1
    code = code.replace('"redis://localhost:6379/0"', repr(redis_server.url))
    ns: dict[str, Any] = {"__name__": "reports.tasks"}
    exec(compile(code, "cron.md", "exec"), ns)
    app: Scheduler = ns["app"]
    assert app.schedules.sync() == {"created": 4, "updated": 0, "unchanged": 0, "replaced": 0}
    listed = {(i.queue, i.id) for i in app.schedules.list()}
    assert listed == {
        ("reports", "daily-report"),
        ("reports", "fast"),
        ("reports", "hourly"),
        ("reports", "poll"),
        ("default", "vacuum"),  # added at run time; a task this app does not declare
    }
    info = app.schedules.get("daily-report", queue=None)
    assert info.next_fire is not None and info.status == "active"
    assert app.schedules.pause("daily-report") and app.schedules.resume("daily-report")
    assert app.schedules.remove("vacuum", "default")
