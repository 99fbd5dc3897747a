"""Signing in with the token (sets the login cookie) and signing out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler.web.rendering import render
from scheduler.web.security import AUTH_COOKIE, checked_form
from scheduler.web.state import dashboard

__all__ = ["routes"]


async def login(request: Request) -> Response:
    dash = dashboard(request)
    if request.method == "GET":
        return render(request, "login.html", {"error": ""})
    form = await checked_form(request, read_only=False)
    if not dash.auth.token_matches(str(form.get("token", ""))):
        return render(request, "login.html", {"error": "wrong token"}, status=401)
    response = RedirectResponse(str(request.url_for("overview")), status_code=303)
    root = request.scope.get("root_path", "") or "/"
    response.set_cookie(
        AUTH_COOKIE, dash.auth.cookie_value(), httponly=True, samesite="strict", path=root
    )
    return response


async def logout(request: Request) -> Response:
    await checked_form(request, read_only=False)
    response = RedirectResponse(str(request.url_for("login")), status_code=303)
    response.delete_cookie(AUTH_COOKIE, path=request.scope.get("root_path", "") or "/")
    return response


routes = [
    Route("/login", login, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
]
