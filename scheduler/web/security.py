"""Authentication, CSRF protection and the read-only switch.

* **Authentication** (optional, :class:`WebAuth`): a bearer token
  (``SCHEDULER_WEB_TOKEN``) and/or HTTP basic auth (``SCHEDULER_WEB_USER``
  and ``SCHEDULER_WEB_PASSWORD``). A browser signs in with the token once on
  the ``login`` page, which sets an HttpOnly cookie holding an HMAC of the
  token (never the token itself); scripts send ``Authorization: Bearer
  <token>``. Basic auth is answered with a ``401`` challenge, so browsers
  prompt for it. With neither configured, everyone who can reach the port
  is let in -- which is why the server binds ``127.0.0.1`` by default.
* **CSRF**: every state change is a ``POST`` whose form field ``csrf`` (or
  header ``X-CSRF-Token``) must equal the ``scheduler_csrf`` cookie
  (double-submit; the cookie is random per browser, ``SameSite=Strict``), and
  whose ``Origin`` header, when sent, must name this host. Another site can
  make a browser send a form, but can neither read nor set that cookie.
* **Read-only**: every action is hidden by the templates and refused here
  with ``403``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "AUTH_COOKIE",
    "CSRF_COOKIE",
    "AuthMiddleware",
    "WebAuth",
    "checked_form",
    "csrf_token",
]

#: Cookie holding the browser's CSRF token (double-submit).
CSRF_COOKIE = "scheduler_csrf"
#: Cookie set by the login page: an HMAC of the token, not the token.
AUTH_COOKIE = "scheduler_auth"

#: Environment variables :meth:`WebAuth.from_env` reads.
ENV_TOKEN = "SCHEDULER_WEB_TOKEN"
ENV_USER = "SCHEDULER_WEB_USER"
ENV_PASSWORD = "SCHEDULER_WEB_PASSWORD"

#: Paths (below the dashboard's root) served without authentication.
_OPEN_PATHS = ("/login", "/static/")


@attrs.frozen(repr=False)
class WebAuth:
    """Who may use the dashboard.

    Attributes:
        token: bearer token (``Authorization: Bearer``, or the login page),
            or None.
        username, password: HTTP basic auth credentials, or None.
    """

    token: str | None = None
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never print secrets
        return f"WebAuth(token={'***' if self.token else None}, basic={self.basic})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebAuth:
        """Read ``SCHEDULER_WEB_TOKEN``, ``SCHEDULER_WEB_USER`` and
        ``SCHEDULER_WEB_PASSWORD`` (empty values count as unset).

        Raises:
            ValueError: only one of user and password is set.
        """
        env = os.environ if environ is None else environ
        token = env.get(ENV_TOKEN) or None
        user = env.get(ENV_USER) or None
        password = env.get(ENV_PASSWORD) or None
        if (user is None) != (password is None):
            raise ValueError(f"set both {ENV_USER} and {ENV_PASSWORD}, or neither")
        return cls(token=token, username=user, password=password)

    @property
    def enabled(self) -> bool:
        """Whether any credential is required."""
        return self.token is not None or self.basic

    @property
    def basic(self) -> bool:
        """Whether basic auth is configured."""
        return self.username is not None and self.password is not None

    def cookie_value(self) -> str:
        """The login cookie's value: HMAC-SHA256 of the token (hex)."""
        if self.token is None:
            return ""
        return hmac.new(self.token.encode(), b"scheduler-web-login", hashlib.sha256).hexdigest()

    def token_matches(self, given: str) -> bool:
        """Constant-time comparison of ``given`` with the token."""
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def allows(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
        """Whether a request with these headers and cookies is signed in."""
        if not self.enabled:
            return True
        header = headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if self.token is not None:
            if scheme == "bearer" and self.token_matches(value.strip()):
                return True
            cookie = cookies.get(AUTH_COOKIE, "")
            if cookie and hmac.compare_digest(cookie.encode(), self.cookie_value().encode()):
                return True
        if self.basic and scheme == "basic":
            return self._basic_matches(value.strip())
        return False

    def _basic_matches(self, value: str) -> bool:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        assert self.username is not None and self.password is not None
        return bool(sep) and (
            hmac.compare_digest(user.encode(), self.username.encode())
            & hmac.compare_digest(password.encode(), self.password.encode())
        )


class AuthMiddleware:
    """Refuse requests that are not signed in (see :class:`WebAuth`).

    Browsers asking for a page are sent to the login page when a token is
    configured, or challenged for basic auth; other clients get ``401``.
    """

    def __init__(self, app: ASGIApp, auth: WebAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.auth.enabled:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):  # Starlette keeps the mount prefix in path
            path = path[len(root) :] or "/"
        if path.startswith(_OPEN_PATHS) or self.auth.allows(request.headers, request.cookies):
            await self.app(scope, receive, send)
            return
        await self._refuse(request)(scope, receive, send)

    def _refuse(self, request: Request) -> Response:
        wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if self.auth.token is not None and wants_page:
            login = str(request.url_for("login"))
            return RedirectResponse(login, status_code=303)
        headers = {"WWW-Authenticate": 'Basic realm="scheduler"'} if self.auth.basic else {}
        return PlainTextResponse("authentication required", status_code=401, headers=headers)


def csrf_token(request: Request) -> str:
    """This browser's CSRF token: its cookie, or a new one (set on the response
    by :func:`scheduler.web.rendering.render`)."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    if len(existing) >= 32:
        return existing
    token: str | None = request.scope.get("scheduler_new_csrf")
    if token is None:
        token = secrets.token_urlsafe(32)
        request.scope["scheduler_new_csrf"] = token
    return token


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", request.url.netloc)


async def checked_form(request: Request, read_only: bool) -> FormData:
    """The form of a state-changing ``POST``, after the read-only, origin and
    CSRF checks.

    Raises:
        HTTPException: 403 in read-only mode, on a foreign ``Origin``, or
            when the CSRF token is missing or wrong.
    """
    if read_only:
        raise HTTPException(403, "the dashboard is read-only")
    if not _same_origin(request):
        raise HTTPException(403, "cross-origin request refused")
    form = await request.form()
    given: Any = form.get("csrf") or request.headers.get("x-csrf-token", "")
    expected = request.cookies.get(CSRF_COOKIE, "")
    if not (
        isinstance(given, str)
        and expected
        and hmac.compare_digest(given.encode(), expected.encode())
    ):
        raise HTTPException(403, "missing or invalid CSRF token; reload the page and try again")
    return form
