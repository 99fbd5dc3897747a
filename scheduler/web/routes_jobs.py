"""The jobs of a queue (per state, searchable, paged) and one job's detail."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scheduler.admin import queue_status
from scheduler.errors import JobNotFoundError, ValidationError
from scheduler.job import Job
from scheduler.timeutil import ms_to_datetime
from scheduler.web.bulk import BULK_ACTIONS
from scheduler.web.common import known_queue
from scheduler.web.events import job_events, lease_starts
from scheduler.web.listing import STATE_VIEWS, find_jobs
from scheduler.web.rendering import render
from scheduler.web.state import dashboard

__all__ = ["PAGE_SIZE", "routes"]

#: Jobs per page of a listing.
PAGE_SIZE = 25

#: Which bulk actions apply to the jobs of a state.
_BULK_BY_STATE = {
    "ready": ("cancel",),
    "delayed": ("cancel",),
    "failed": ("retry", "cancel"),
    "leased": ("cancel",),
    "dead": ("retry",),
    "succeeded": ("retry",),
    "cancelled": ("retry",),
}
assert all(a in BULK_ACTIONS for acts in _BULK_BY_STATE.values() for a in acts)


def queue_page(request: Request) -> Response:
    dash = dashboard(request)
    backend = dash.app.backend
    queue = known_queue(dash, request.path_params["queue"])
    state = request.query_params.get("state", "ready")
    if state not in STATE_VIEWS:
        raise HTTPException(404, f"no state {state!r}")
    query = request.query_params.get("q", "")
    cursor = request.query_params.get("cursor") or None
    try:
        page = find_jobs(backend, queue, state, query=query, cursor=cursor, limit=PAGE_SIZE)
    except ValidationError as exc:
        raise HTTPException(400, str(exc)) from None
    now_ms = backend.server_time_ms()
    status = queue_status(backend, [queue], now_ms=now_ms)[0]
    started = lease_starts(backend, queue, [j.id for j in page.jobs]) if state == "leased" else {}
    return render(
        request,
        "queue.html",
        {
            "queue": queue,
            "status": status,
            "state": state,
            "states": list(STATE_VIEWS),
            "query": query,
            "cursor": cursor,
            "page": page,
            "started": {job_id: e.time for job_id, e in started.items()},
            "bulk_actions": _BULK_BY_STATE[state],
            "now": ms_to_datetime(now_ms),
            "flash": request.query_params.get("flash", ""),
        },
    )


def job_page(request: Request) -> Response:
    dash = dashboard(request)
    backend = dash.app.backend
    queue = known_queue(dash, request.path_params["queue"])
    job_id = request.path_params["job_id"]
    try:
        info = Job(backend, job_id, queue).info()
    except (JobNotFoundError, ValidationError):
        raise HTTPException(404, f"no job {job_id!r} in queue {queue!r}") from None
    return render(
        request,
        "job.html",
        {
            "queue": queue,
            "job": info,
            "record": info.record,
            "events": job_events(backend, queue, job_id),
            "progress": backend.progress(queue, job_id),
            "now": ms_to_datetime(backend.server_time_ms()),
            "flash": request.query_params.get("flash", ""),
        },
    )


routes = [
    Route("/queues/{queue}", queue_page, name="queue"),
    # ``path``: natural job ids may hold "/" (e.g. ``thumb:uploads/a.png``).
    Route("/queues/{queue}/jobs/{job_id:path}", job_page, name="job"),
]
