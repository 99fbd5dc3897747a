"""The dashboard as an ASGI application: :func:`create_app`."""

from __future__ import annotations

import logging

import redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from scheduler.app import Scheduler
from scheduler.backend import Backend
from scheduler.errors import SchedulerError
from scheduler.web import routes_actions, routes_auth, routes_jobs, routes_pages, routes_schedules
from scheduler.web.rendering import render
from scheduler.web.security import AuthMiddleware, WebAuth
from scheduler.web.state import Dashboard

__all__ = ["create_app"]

log = logging.getLogger("scheduler.web")


def _error_page(request: Request, status: int, message: str) -> Response:
    if "text/html" not in request.headers.get("accept", "") and request.method != "GET":
        return JSONResponse({"error": message}, status_code=status)
    return render(request, "error.html", {"status": status, "message": message}, status=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error_page(request, exc.status_code, str(exc.detail))


async def _redis_error(request: Request, exc: Exception) -> Response:
    log.warning("Redis error serving %s: %s", request.url.path, exc)
    return _error_page(request, 503, f"Redis could not be reached or refused: {exc}")


async def _scheduler_error(request: Request, exc: Exception) -> Response:
    return _error_page(request, 400, str(exc))


def create_app(
    app_or_backend: Scheduler | Backend,
    *,
    read_only: bool = False,
    auth: WebAuth | None = None,
    refresh: float = 5.0,
    debug: bool = False,
) -> Starlette:
    """The dashboard of ``app_or_backend``'s queues, as a Starlette (ASGI) app.

    Serve it with any ASGI server, or mount it in your own service, e.g.
    ``Mount("/scheduler", app=create_app(app))`` in Starlette or
    ``fastapi_app.mount("/scheduler", create_app(app))``; every link and
    form follows the mount path.

    Args:
        app_or_backend: a :class:`scheduler.Scheduler`, or a
            :class:`scheduler.backend.Backend` (the dashboard then builds a
            scheduler on the same client and prefix: it needs no tasks).
        read_only: hide every action and refuse them with 403.
        auth: who may use it; default :meth:`WebAuth.from_env` (token and/or
            basic auth from ``SCHEDULER_WEB_*``; nobody needs to sign in
            when none is set).
        refresh: auto-refresh interval of the overview, seconds (> 0).
        debug: Starlette's debug mode (tracebacks in error pages).

    Raises:
        ValueError: ``refresh`` is not positive, or the auth environment is
            half set.
    """
    if not refresh > 0:
        raise ValueError("refresh must be > 0 seconds")
    if isinstance(app_or_backend, Scheduler):
        app = app_or_backend
    else:
        backend = app_or_backend
        app = Scheduler(backend.client, prefix=backend.prefix, events_maxlen=backend.events_maxlen)
    dash = Dashboard(
        app=app,
        read_only=read_only,
        auth=auth if auth is not None else WebAuth.from_env(),
        refresh_s=refresh,
    )
    static = StaticFiles(packages=[("scheduler.web", "static")])
    web = Starlette(
        debug=debug,
        routes=[
            *routes_pages.routes,
            *routes_jobs.routes,
            *routes_actions.routes,
            *routes_schedules.routes,
            *routes_auth.routes,
            Mount("/static", app=static, name="static"),
        ],
        middleware=[Middleware(AuthMiddleware, auth=dash.auth)],
        exception_handlers={
            HTTPException: _http_error,
            redis.RedisError: _redis_error,
            SchedulerError: _scheduler_error,
        },
    )
    web.state.dashboard = dash
    return web
