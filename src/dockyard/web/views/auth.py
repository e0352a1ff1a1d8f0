"""Logging in and out, and the language switch."""

from __future__ import annotations

import secrets

from starlette.responses import Response

from dockyard.core.errors import TooManyRequests
from dockyard.web.framework import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Console,
    Ctx,
    safe_next,
    url,
)
from dockyard.web.i18n import LANGUAGES


class AuthViews:
    def __init__(self, console: Console) -> None:
        self.c = console

    def root(self, ctx: Ctx) -> Response:
        return self.c.redirect(url("/repositories") if ctx.session else url("/login"))

    def login_page(self, ctx: Ctx, error: str | None = None, status: int = 200) -> Response:
        if ctx.session is not None and ctx.request.method == "GET":
            return self.c.redirect(safe_next(ctx.arg("next")))
        token = ctx.request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        ctx.cookies.append((LOGIN_CSRF_COOKIE, token, {"max_age": 3600}))
        return self.c.render(ctx, "login.html", status, login_csrf=token, error=error,
                             next=ctx.arg("next") or ctx.field("next"), username=ctx.field("username"))

    def login(self, ctx: Ctx) -> Response:
        username = ctx.field("username").strip()[:128]
        password = ctx.field("password")[:1024]
        try:
            principal = self.c.auth.login(username, password, ctx.actor.remote, account_only=True) if username else None
        except TooManyRequests:
            return self.login_page(ctx, ctx._("Too many failed logins. Wait a minute and try again."), 429)
        if principal is None or principal.user is None:
            return self.login_page(ctx, ctx._("Wrong user name or password."), 401)
        token, _session = self.c.sessions.create(principal.user.username, self.c.settings.console.session_ttl_seconds,
                                                 ctx.actor.remote)
        ctx.cookies.append((SESSION_COOKIE, token, {"max_age": self.c.settings.console.session_ttl_seconds}))
        ctx.cookies.append((LOGIN_CSRF_COOKIE, "", {}))
        return self.c.redirect(safe_next(ctx.field("next")))

    def logout(self, ctx: Ctx) -> Response:
        self.c.sessions.end(ctx.request.cookies.get(SESSION_COOKIE, ""))
        ctx.cookies.append((SESSION_COOKIE, "", {}))
        return self.c.redirect(url("/login"))

    def language(self, ctx: Ctx) -> Response:
        """GET /console/lang/CODE?next=…: a preference, harmless to set from a link."""
        code = ctx.request.path_params["code"]
        if code in LANGUAGES:
            ctx.cookies.append((LANG_COOKIE, code, {"max_age": 365 * 86400, "httponly": False}))
        return self.c.redirect(safe_next(ctx.arg("next")))
