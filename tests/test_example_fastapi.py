"""``examples/fastapi_app.py`` runs: enqueue from an endpoint, a worker runs
the job, the result endpoint awaits it (FastAPI's TestClient, a real server)."""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Iterator
from types import ModuleType

import pytest

from scheduler.devserver import DevServer
from scheduler.testing import run_jobs
from tests.helpers import ROOT

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient


@pytest.fixture
def example(redis_server: DevServer, real_redis: object) -> Iterator[ModuleType]:
    os.environ["REDIS_URL"] = redis_server.url
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        sys.modules.pop("fastapi_app", None)
        module = importlib.import_module("fastapi_app")
        yield module
        module.scheduler.close()
    finally:
        sys.path.remove(str(ROOT / "examples"))
        sys.modules.pop("fastapi_app", None)


def test_fastapi_example_round_trip(example: ModuleType) -> None:
    with TestClient(example.api) as client:
        body = {"path": "uploads/a.png", "width": 128}
        first = client.post("/thumbnails", json=body)
        again = client.post("/thumbnails", json=body)
        assert first.status_code == 202
        job_id = first.json()["job_id"]
        assert job_id == again.json()["job_id"] == "thumb:uploads/a.png:128"
        assert client.get(f"/jobs/{job_id}").json() == {"state": "pending", "result": None}
        assert client.get("/jobs/thumb:nope").status_code == 404
        # a request waiting on the result while a worker runs the job
        worker = threading.Thread(target=run_jobs, args=(example.scheduler,))
        worker.start()
        answer = client.get(f"/jobs/{job_id}", params={"wait": 30}).json()
        worker.join(timeout=60)
    assert answer["state"] == "succeeded"
    assert answer["result"]["path"] == "uploads/a.png"
    assert example.scheduler.job(job_id).info().attempts == 1
