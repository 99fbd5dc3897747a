"""A FastAPI producer: enqueue from an endpoint, await the result in another
-- without blocking the event loop (``app.aenqueue``, ``job.aresult`` on
``redis.asyncio``).

Run it (with a worker for the same app in another terminal)::

    pip install fastapi uvicorn
    uvicorn fastapi_app:api                        # from examples/
    scheduler worker fastapi_app:scheduler         # from examples/
    curl -X POST localhost:8000/thumbnails -H 'content-type: application/json' \\
         -d '{"path": "uploads/a.png", "width": 128}'
    curl 'localhost:8000/jobs/thumb:uploads/a.png:128?wait=5'

The job id is a natural key (``thumb:<path>:<width>``): posting the same
request twice enqueues one job. Redis: ``$REDIS_URL`` (default local).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from scheduler import (
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    ResultTimeoutError,
    Scheduler,
)

scheduler = Scheduler.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


@scheduler.task(name="thumbs:make", queue="thumbnails")
def make_thumbnail(path: str, width: int) -> dict[str, Any]:
    """Stand-in for real image work: a digest of the request."""
    digest = hashlib.sha256(f"{path}@{width}".encode()).hexdigest()[:16]
    return {"path": path, "width": width, "thumbnail": f"{path}.{width}.{digest}.webp"}


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await scheduler.aclose()  # the async client belongs to this event loop


api = FastAPI(lifespan=lifespan)


class ThumbnailRequest(BaseModel):
    path: str
    width: int = 256
    priority: float | None = None


@api.post("/thumbnails", status_code=202)
async def create_thumbnail(req: ThumbnailRequest) -> dict[str, str]:
    """Enqueue (idempotently) and answer at once with the job id."""
    job = await scheduler.aenqueue(
        make_thumbnail,
        [req.path, req.width],
        job_id=f"thumb:{req.path}:{req.width}",
        priority=req.priority,
    )
    return {"job_id": job.id}


@api.get("/jobs/{job_id:path}")
async def job_result(job_id: str, wait: float = 0.0) -> dict[str, Any]:
    """The job's result, waiting up to ``wait`` seconds (pub/sub, no polling)."""
    try:
        job = await scheduler.ajob(job_id, "thumbnails")
        return {"state": "succeeded", "result": await job.aresult(timeout=wait)}
    except JobNotFoundError:
        raise HTTPException(404, f"no job {job_id!r}") from None
    except ResultTimeoutError:
        return {"state": "pending", "result": None}
    except (JobFailedError, JobCancelledError) as exc:
        return {"state": "failed", "error": str(exc)}
