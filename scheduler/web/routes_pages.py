"""Read-only pages: the overview (and its refresh fragment), workers, the
job finder and the JSON overview."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from scheduler.admin import overview
from scheduler.errors import JobNotFoundError, ValidationError
from scheduler.web.charts import rate_chart, sparkline
from scheduler.web.history import throughput_bins
from scheduler.web.rendering import render
from scheduler.web.state import Dashboard, dashboard

__all__ = ["routes"]


def overview_context(dash: Dashboard) -> dict[str, Any]:
    """Everything the overview shows, read in a few round trips; also records
    a sample of the counters for the rate chart."""
    backend = dash.app.backend
    view = overview(backend)
    now_ms = int(view.server_time.timestamp() * 1000)
    dash.history.record(view.queues, now_ms)
    snaps = {s.queue: s for s in backend.queue_snapshots([q.queue for q in view.queues])}
    rows = []
    for status in view.queues:
        bins = throughput_bins(snaps[status.queue].stats, now_ms)
        rows.append(
            {
                "status": status,
                "spark": sparkline(bins, title=f"jobs/s of {status.queue}, last 2 minutes"),
                "failure_rate": dash.history.failure_rate(status.queue),
            }
        )
    return {
        "now": view.server_time,
        "rows": rows,
        "workers": view.workers,
        "chart": rate_chart(dash.history.points()),
        "failure_rate": dash.history.failure_rate(),
        "jobs_per_s": sum(q.jobs_per_s for q in view.queues),
    }


def overview_page(request: Request) -> Response:
    dash = dashboard(request)
    flash = request.query_params.get("flash", "")
    return render(request, "overview.html", {**overview_context(dash), "flash": flash})


def overview_fragment(request: Request) -> Response:
    dash = dashboard(request)
    return render(request, "_overview.html", overview_context(dash))


def overview_json(request: Request) -> Response:
    return JSONResponse(overview(dashboard(request).app.backend).to_dict())


def workers_page(request: Request) -> Response:
    dash = dashboard(request)
    view = overview(dash.app.backend)
    return render(request, "workers.html", {"now": view.server_time, "workers": view.workers})


def find_job(request: Request) -> Response:
    """Go to the job whose id is given, in whichever queue holds it."""
    job_id = request.query_params.get("id", "").strip()
    try:
        job = dashboard(request).app.job(job_id)
    except (JobNotFoundError, ValidationError):
        raise HTTPException(404, f"no job {job_id!r}") from None
    url = request.url_for("job", queue=job.queue, job_id=job.id)
    return RedirectResponse(str(url), status_code=303)


routes = [
    Route("/", overview_page, name="overview"),
    Route("/fragments/overview", overview_fragment, name="overview_fragment"),
    Route("/api/overview", overview_json, name="overview_json"),
    Route("/workers", workers_page, name="workers"),
    Route("/find", find_job, name="find_job"),
]
