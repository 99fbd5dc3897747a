"""Helpers the route modules share: lookups that answer 404, redirects and
the confirmation step of every action."""

from __future__ import annotations

import base64
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from scheduler.errors import ValidationError
from scheduler.validation import validate_queue_name
from scheduler.web.rendering import render
from scheduler.web.security import checked_form
from scheduler.web.state import Dashboard, dashboard

__all__ = ["action_form", "actor_of", "confirm_first", "known_queue", "see_other"]


def actor_of(request: Request) -> str:
    """Who runs a dashboard action, for its audit event: ``web:<user>`` under
    HTTP basic auth (the user checked by the auth middleware), else
    ``web@<client address>`` (token or no authentication)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and dashboard(request).auth.basic:
        try:
            user = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            user = ""
        cleaned = "".join(c for c in user if c.isprintable())[:100]
        if cleaned:
            return f"web:{cleaned}"
    host = request.client.host if request.client is not None else "unknown"
    return f"web@{host}"


def known_queue(dash: Dashboard, name: str) -> str:
    """``name`` if it is a registered queue.

    Raises:
        HTTPException: 404 for a malformed or unknown queue name.
    """
    try:
        validate_queue_name(name)
    except ValidationError:
        raise HTTPException(404, f"no queue {name!r}") from None
    if name not in dash.app.backend.queue_names():
        raise HTTPException(404, f"no queue {name!r}")
    return name


def see_other(request: Request, route: str, flash: str = "", **params: Any) -> Response:
    """Redirect (303, post/redirect/get) to the page named ``route``, with a
    message to show there."""
    url = request.url_for(route, **params)
    if flash:
        url = url.include_query_params(flash=flash)
    return RedirectResponse(str(url), status_code=303)


async def action_form(request: Request) -> FormData:
    """The form of an action, after the read-only, origin and CSRF checks
    (:func:`scheduler.web.security.checked_form`)."""
    return await checked_form(request, dashboard(request).read_only)


def confirm_first(request: Request, form: FormData, question: str) -> Response | None:
    """None if the form says ``confirmed=yes``; else a page asking ``question``
    whose button posts the same form again, confirmed.

    In a browser with JavaScript the question is asked with ``confirm()``
    before the form is sent, which then carries ``confirmed=yes``; this page
    is the fallback, so no action ever runs unconfirmed.
    """
    if form.get("confirmed") == "yes":
        return None
    fields = [(k, v) for k, v in form.multi_items() if k not in ("csrf", "confirmed")]
    return render(
        request,
        "confirm.html",
        {"question": question, "action": str(request.url), "fields": fields},
    )
