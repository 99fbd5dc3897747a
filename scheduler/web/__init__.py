"""The web dashboard: overview, jobs, workers and schedules in a browser.

``scheduler web`` serves it (``pip install 'redis-priority-scheduler[web]'``),
and :func:`create_app` returns it as an ASGI application to mount inside a
Starlette or FastAPI service::

    from starlette.routing import Mount
    from scheduler.web import create_app

    routes = [Mount("/jobs-dashboard", app=create_app(my_scheduler))]

Server-rendered pages (Starlette + Jinja2, every value escaped), static
assets shipped in the package, a few lines of plain JavaScript for
auto-refresh and confirmations. It reads through the storage layer and the
admin queries (:mod:`scheduler.admin`) and changes state only through the
same Lua scripts as the library and the command line (:class:`scheduler.Job`
handles, :class:`scheduler.Scheduler` queue control, the schedule store).

Modules: :mod:`~scheduler.web.factory` (the app), :mod:`~scheduler.web.security`
(authentication, CSRF, read-only), :mod:`~scheduler.web.rendering`
(templates), :mod:`~scheduler.web.listing` (job search and keyset paging),
:mod:`~scheduler.web.history` and :mod:`~scheduler.web.charts` (rates and
their SVG chart), :mod:`~scheduler.web.bulk` (bulk actions with progress),
and one ``routes_*`` module per area.
"""

from scheduler.web.factory import create_app
from scheduler.web.security import WebAuth

__all__ = ["WebAuth", "create_app"]
