"""Actions on jobs and queues: every one a confirmed, CSRF-checked POST that
goes through the existing scripts (:class:`scheduler.Job` handles,
:meth:`scheduler.Scheduler.pause`/``resume``, the ``purge`` script), then
redirects back (post/redirect/get)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scheduler.app import Scheduler
from scheduler.errors import JobNotFoundError, ValidationError
from scheduler.job import Job
from scheduler.web.bulk import BULK_ACTIONS
from scheduler.web.common import action_form, actor_of, confirm_first, known_queue, see_other
from scheduler.web.listing import STATE_VIEWS, matching_ids
from scheduler.web.rendering import render
from scheduler.web.state import dashboard

__all__ = ["PURGE_BATCH", "PURGE_SETS", "routes"]

#: Jobs deleted per ``purge`` script call.
PURGE_BATCH = 500

#: Sets ``purge`` empties (``done`` = succeeded and cancelled records).
PURGE_SETS = ("ready", "delayed", "leased", "dead", "done")

_JOB_ACTIONS = ("retry", "cancel", "reprioritize", "run-now")


def _float(value: object, name: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(str(value))
    except ValueError:
        raise HTTPException(400, f"{name} must be a number") from None


def _job_change(job: Job, action: str, form: dict[str, object], actor: str) -> Callable[[], bool]:
    """The call that applies ``action`` to ``job`` (through its script),
    naming ``actor`` in its audit event."""
    if action == "retry":
        return lambda: job.retry(actor=actor)
    if action == "cancel":
        return lambda: job.cancel("cancelled from the dashboard", actor=actor)
    if action == "run-now":
        return lambda: job.run_now(actor=actor)
    priority = _float(form.get("priority"), "priority")
    inputs = {k: _float(form.get(k), k) for k in ("weight", "time", "resource")}
    given = {k: v for k, v in inputs.items() if v is not None}
    if priority is None and not given:
        raise HTTPException(400, "give a priority, or weight/time/resource")
    if priority is not None and given:
        raise HTTPException(400, "give either a priority or weight/time/resource, not both")
    return lambda: job.reprioritize(
        priority,
        weight=given.get("weight", 1.0),
        time=given.get("time", 1.0),
        resource=given.get("resource", 1.0),
        actor=actor,
    )


async def job_action(request: Request) -> Response:
    dash = dashboard(request)
    form = await action_form(request)
    queue = await run_in_threadpool(known_queue, dash, request.path_params["queue"])
    job_id = request.path_params["job_id"]
    action = request.path_params["action"]
    if action not in _JOB_ACTIONS:
        raise HTTPException(404, f"no action {action!r}")
    job = Job(dash.app.backend, job_id, queue)
    if not await run_in_threadpool(dash.app.backend.has_job, queue, job_id):
        raise HTTPException(404, f"no job {job_id!r} in queue {queue!r}")
    change = _job_change(job, action, dict(form), actor_of(request))
    asked = confirm_first(request, form, f"{action.replace('-', ' ')} job {job_id}?")
    if asked is not None:
        return asked
    try:
        done = await run_in_threadpool(change)
    except JobNotFoundError:
        raise HTTPException(404, f"no job {job_id!r} in queue {queue!r}") from None
    except ValidationError as exc:
        raise HTTPException(400, str(exc)) from None
    flash = (
        f"{action}: done" if done else f"{action}: nothing to do (the job's state did not allow it)"
    )
    return see_other(request, "job", flash, queue=queue, job_id=job_id)


def _purge(app: Scheduler, queue: str, which: str, actor: str) -> int:
    """Empty one set of ``queue`` with the ``purge`` script, a batch per call."""
    return app.purge(queue, which, actor=actor)


async def queue_action(request: Request) -> Response:
    dash = dashboard(request)
    form = await action_form(request)
    queue = await run_in_threadpool(known_queue, dash, request.path_params["queue"])
    action = request.path_params["action"]
    if action in ("pause", "resume"):
        asked = confirm_first(request, form, f"{action} queue {queue}?")
        if asked is not None:
            return asked
        changed = await run_in_threadpool(getattr(dash.app, action), queue, actor=actor_of(request))
        flash = f"queue {queue}: {action}d" if changed else f"queue {queue}: already {action}d"
        if form.get("back") == "overview":
            return see_other(request, "overview", flash)
        return see_other(request, "queue", flash, queue=queue)
    if action == "purge":
        which = str(form.get("set", ""))
        if which not in PURGE_SETS:
            raise HTTPException(400, f"purge which jobs? one of {', '.join(PURGE_SETS)}")
        total = await run_in_threadpool(dash.app.backend.job_set_size, queue, which)
        asked = confirm_first(
            request,
            form,
            f"delete all {total} {which} job(s) of queue {queue}? This cannot be undone.",
        )
        if asked is not None:
            return asked
        deleted = await run_in_threadpool(_purge, dash.app, queue, which, actor_of(request))
        return see_other(request, "queue", f"purged {deleted} {which} job(s)", queue=queue)
    raise HTTPException(404, f"no action {action!r}")


async def bulk_start(request: Request) -> Response:
    dash = dashboard(request)
    form = await action_form(request)
    queue = await run_in_threadpool(known_queue, dash, request.path_params["queue"])
    action, state = str(form.get("action", "")), str(form.get("state", ""))
    query = str(form.get("q", ""))
    if action not in BULK_ACTIONS or state not in STATE_VIEWS:
        raise HTTPException(400, "bulk action needs action=retry|cancel and a job state")
    ids = await run_in_threadpool(matching_ids, dash.app.backend, queue, state, query)
    what = f"{len(ids)} {state} job(s) of queue {queue}" + (f" matching {query!r}" if query else "")
    asked = confirm_first(request, form, f"{action} {what}?")
    if asked is not None:
        return asked
    op = dash.bulk.start(
        dash.app.backend, action, queue, state, query, ids, actor=actor_of(request)
    )
    return see_other(request, "bulk", op_id=op.id)


def bulk_page(request: Request) -> Response:
    op = dashboard(request).bulk.get(request.path_params["op_id"])
    if op is None:
        raise HTTPException(404, "no such bulk operation")
    name = "_bulk.html" if request.query_params.get("fragment") else "bulk.html"
    return render(request, name, {"op": op})


routes = [
    Route(
        "/queues/{queue}/jobs/{job_id:path}/{action}",
        job_action,
        methods=["POST"],
        name="job_action",
    ),
    Route("/queues/{queue}/bulk", bulk_start, methods=["POST"], name="bulk_start"),
    Route("/queues/{queue}/{action}", queue_action, methods=["POST"], name="queue_action"),
    Route("/bulk/{op_id:int}", bulk_page, name="bulk"),
]
