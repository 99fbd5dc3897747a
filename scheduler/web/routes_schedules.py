"""Schedules: the list (rule, status, next/last fire, last job) and the
pause/resume/run-now/remove actions, through the schedule store's scripts."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scheduler.cli.schedules import enqueue_schedule_now
from scheduler.cron import ScheduleInfo
from scheduler.cron.errors import ScheduleNotFoundError
from scheduler.errors import ValidationError
from scheduler.timeutil import ms_to_datetime
from scheduler.web.common import action_form, confirm_first, known_queue, see_other
from scheduler.web.rendering import render
from scheduler.web.state import Dashboard, dashboard

__all__ = ["routes"]

_ACTIONS = ("pause", "resume", "run-now", "remove")


def schedules_page(request: Request) -> Response:
    dash = dashboard(request)
    infos = dash.app.schedules.list()
    return render(
        request,
        "schedules.html",
        {
            "schedules": infos,
            "now": ms_to_datetime(dash.app.backend.server_time_ms()),
            "flash": request.query_params.get("flash", ""),
        },
    )


def _lookup(dash: Dashboard, queue: str, schedule_id: str) -> ScheduleInfo:
    known_queue(dash, queue)
    try:
        return dash.app.schedules.get(schedule_id, queue)
    except (ScheduleNotFoundError, ValidationError):
        raise HTTPException(404, f"no schedule {schedule_id!r} in queue {queue!r}") from None


def _apply(dash: Dashboard, info: ScheduleInfo, action: str) -> str:
    store = dash.app.schedules
    if action == "pause":
        return "paused" if store.pause(info.id, info.queue) else "was already paused"
    if action == "resume":
        return "resumed" if store.resume(info.id, info.queue) else "was not paused"
    if action == "remove":
        return "removed" if store.remove(info.id, info.queue) else "was already gone"
    job = enqueue_schedule_now(dash.app, info)
    return f"enqueued job {job.id}"


async def schedule_action(request: Request) -> Response:
    dash = dashboard(request)
    form = await action_form(request)
    queue, schedule_id = request.path_params["queue"], request.path_params["schedule_id"]
    action = request.path_params["action"]
    if action not in _ACTIONS:
        raise HTTPException(404, f"no action {action!r}")
    info = await run_in_threadpool(_lookup, dash, queue, schedule_id)
    asked = confirm_first(request, form, f"{action.replace('-', ' ')} schedule {schedule_id}?")
    if asked is not None:
        return asked
    outcome = await run_in_threadpool(_apply, dash, info, action)
    return see_other(request, "schedules", f"schedule {schedule_id}: {outcome}")


routes = [
    Route("/schedules", schedules_page, name="schedules"),
    Route(
        "/schedules/{queue}/{schedule_id}/{action}",
        schedule_action,
        methods=["POST"],
        name="schedule_action",
    ),
]
