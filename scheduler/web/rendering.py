"""Templates: the Jinja2 environment (autoescaped) and the page renderer.

Every value reaches the page through Jinja2 with autoescaping on, so user
data (arguments, errors, metadata, names) always shows as text: a job whose
arguments hold ``<script>`` shows those characters, it does not run them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from scheduler.cli.formats import format_age, format_time
from scheduler.web.security import CSRF_COOKIE, csrf_token
from scheduler.web.state import dashboard

__all__ = ["render", "templates"]


def _pretty(value: Any) -> str:
    """Indented JSON of ``value`` (text if it is not JSON-serializable)."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _compact(value: Any, limit: int = 80) -> str:
    """One-line JSON of ``value``, cut to ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ago(when: datetime | None, now: datetime) -> str:
    """``"4m05s ago"`` / ``"in 12.0s"``; ``-`` for None."""
    if when is None:
        return "-"
    delta = (when - now).total_seconds()
    return f"in {format_age(delta)}" if delta >= 0 else f"{format_age(-delta)} ago"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("scheduler.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        age=format_age,
        time=format_time,
        ago=_ago,
        pretty=_pretty,
        compact=_compact,
        percent=_percent,
    )
    return env


templates = Jinja2Templates(env=_environment())


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """Render template ``name`` with ``context`` plus the common names
    (``dash``, ``csrf``, ``read_only``), setting the CSRF cookie when new."""
    dash = dashboard(request)
    token = csrf_token(request)
    full = {"dash": dash, "csrf": token, "read_only": dash.read_only, **context}
    response = templates.TemplateResponse(request, name, full, status_code=status)
    if request.cookies.get(CSRF_COOKIE) != token:
        root = request.scope.get("root_path", "") or "/"
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path=root)
    return response
