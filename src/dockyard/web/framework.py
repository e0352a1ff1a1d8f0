"""The console's plumbing: one request context per page, the session cookie, CSRF checks,
flash messages, rendering and the mapping of use-case errors to pages.

Each view is a plain synchronous function `view(ctx) -> Response`, run in a worker thread (it
calls the database and the blob store); `Console.route` wraps it for Starlette. Rules kept here
so no view can forget them:

- Pages need a live session (else a redirect to the login page); `public=True` views do not.
- Every POST carries the session's CSRF token (form field `csrf` or header `X-CSRF-Token`) and, when
  the browser sends an Origin, comes from this origin; otherwise 403 and nothing changes.
- Session cookie: HttpOnly, SameSite=Lax, Path=/, Secure on HTTPS (console.secure_cookies).
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dockyard import __version__
from dockyard.api.bodies import BodyTooLarge, media_type, read_limited
from dockyard.api.credentials import client_address
from dockyard.api.threads import run_sync
from dockyard.auth.service import AuthService
from dockyard.config import Settings
from dockyard.core.errors import RegistryError
from dockyard.management.errors import ManagementError
from dockyard.management.service import Actor
from dockyard.meta.db import aware, utcnow
from dockyard.meta.sessions import ConsoleSession, SessionStore
from dockyard.web.addresses import NETWORK_LABELS
from dockyard.web.i18n import LANGUAGES, Translator, human_size, negotiate

SESSION_COOKIE = "dockyard_session"
LANG_COOKIE = "dockyard_lang"
FLASH_COOKIE = "dockyard_flash"
LOGIN_CSRF_COOKIE = "dockyard_login_csrf"
PREFIX = "/console"
FORM_MAX_BYTES = 64 * 1024
FORM_MAX_FIELDS = 200
STATUS = {"not_found": 404, "forbidden": 403, "conflict": 409, "invalid": 422, "unauthenticated": 401}


class Forbidden403(Exception):
    """A request the console refuses outright (bad CSRF token, foreign Origin)."""


@dataclass
class Ctx:
    """What a view sees of its request, and what it adds to the response."""

    request: Request
    settings: Settings
    t: Translator
    session: ConsoleSession | None
    actor: Actor
    form: dict[str, str] = field(default_factory=dict)
    flashes: list[tuple[str, str]] = field(default_factory=list)  # (kind, message) shown on this page
    next_flashes: list[tuple[str, str]] = field(default_factory=list)  # carried over a redirect
    cookies: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    @property
    def query(self) -> Any:
        return self.request.query_params

    def arg(self, name: str, default: str = "") -> str:
        return str(self.query.get(name, default))[:1024]

    def field(self, name: str, default: str = "") -> str:
        return self.form.get(name, default)

    def flash(self, kind: str, message: str) -> None:
        self.next_flashes.append((kind, message))

    def _(self, message: str, **values: object) -> str:
        return self.t.gettext(message, **values)

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    @property
    def username(self) -> str:
        return self.session.username if self.session else ""


def url(path: str, **params: Any) -> str:
    """A console URL: `url("repo", name, "-", "versions", sort="name")`-style paths are joined
    by the views; this adds the prefix and a query string without empty values."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{PREFIX}{path}" + (f"?{query}" if query else "")


def repo_url(name: str, *suffix: str, **params: Any) -> str:
    path = "/repo/" + quote(name)
    if suffix:
        path += "/-/" + "/".join(quote(s, safe="") for s in suffix)
    return url(path, **params)


def safe_next(target: str | None) -> str:
    """Only same-site console paths may be redirect targets (no open redirects)."""
    if not target or not target.startswith(PREFIX + "/") or target.startswith("//") or "\\" in target:
        return url("/repositories")
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else url("/repositories")


class Console:
    def __init__(self, settings: Settings, auth: AuthService, sessions: SessionStore) -> None:
        self.settings = settings
        self.auth = auth
        self.sessions = sessions
        self.env = Environment(loader=PackageLoader("dockyard.web", "templates"),
                               autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
        self.env.filters["size"] = human_size
        self.env.filters["short_digest"] = lambda d: (d.split(":", 1)[-1][:12] if d else "")
        self.env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False, sort_keys=True)
        self.env.globals.update(url=url, repo_url=repo_url, languages=LANGUAGES, version=__version__, past=_past,
                                network_labels=NETWORK_LABELS)

    # -- responses ------------------------------------------------------------------------------
    def render(self, ctx: Ctx, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        page = self.env.get_template(template).render(
            _=ctx.t.gettext, t=ctx.t, lang=ctx.t.language, ctx=ctx, user=ctx.session.username if ctx.session else None,
            is_admin=ctx.actor.is_admin, csrf=ctx.session.csrf if ctx.session else "", flashes=ctx.flashes,
            path=ctx.request.url.path, full_path=str(ctx.request.url.path) + (
                f"?{ctx.request.url.query}" if ctx.request.url.query else ""), **values)
        return HTMLResponse(page, status)

    @staticmethod
    def redirect(target: str) -> RedirectResponse:
        return RedirectResponse(target, status_code=303)

    def _cookie_flags(self, request: Request) -> dict[str, Any]:
        mode = self.settings.console.secure_cookies
        secure = mode == "always" or (mode == "auto" and request.url.scheme == "https")
        return {"httponly": True, "samesite": "lax", "secure": secure, "path": "/"}

    # -- the request cycle ----------------------------------------------------------------------
    def route(self, view: Callable[[Ctx], Response], public: bool = False) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            form: dict[str, str] = {}
            if request.method == "POST":
                try:
                    form = await _read_form(request)
                except BodyTooLarge:
                    return HTMLResponse("Form too large", 413)
                except ValueError:
                    return HTMLResponse("Malformed form", 400)
            response = await run_sync(self._handle, view, request, form, public)
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "same-origin"
            return response

        return endpoint

    def _handle(self, view: Callable[[Ctx], Response], request: Request, form: dict[str, str], public: bool) -> Response:
        t = Translator(negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"),
                                 self.settings.console.default_language))
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE, ""))
        principal = self.auth.principal_from_subject(session.username, account_login=True) if session else None
        if principal is None:
            session = None
        ctx = Ctx(request, self.settings, t, session, Actor(principal, client_address(request)), form)
        if not ctx.htmx:  # partial pages do not show flashes: leave them for the next whole page
            ctx.flashes = _read_flashes(request.cookies.get(FLASH_COOKIE))
        if session is None and not public:
            target = url("/login", next=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))
            if ctx.htmx:  # a partial page cannot show the login form: make htmx load the whole page
                return Response(status_code=204, headers={"HX-Redirect": target})
            return self.redirect(target)
        response = self._respond(ctx, view)
        for name, value, flags in ctx.cookies:
            if value:
                response.set_cookie(name, value, **{**self._cookie_flags(request), **flags})
            else:
                response.delete_cookie(name, path="/", httponly=True, samesite="lax")
        if ctx.next_flashes:
            response.set_cookie(FLASH_COOKIE, _write_flashes(ctx.next_flashes), max_age=60,
                                **self._cookie_flags(request))
        elif request.cookies.get(FLASH_COOKIE) and not ctx.htmx:  # shown on this page (or garbage): gone
            response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="lax")
        return response

    def _respond(self, ctx: Ctx, view: Callable[[Ctx], Response]) -> Response:
        """The view's response, or the page that says why there is none."""
        request = ctx.request
        if _has_nul(request, ctx.form):  # no database text column can hold one (PostgreSQL refuses it)
            return self._error(ctx, 400, ctx._("The request contains a NUL character."))
        try:
            if request.method == "POST":
                self._check_post(ctx)
            return view(ctx)
        except Forbidden403 as exc:
            return self._error(ctx, 403, str(exc))
        except RegistryError as exc:  # a name, tag or digest the registry layer refused
            return self._error(ctx, 404 if exc.code.endswith("_UNKNOWN") else 400, exc.message)
        except ManagementError as exc:
            if request.method != "POST":
                return self._error(ctx, STATUS.get(exc.code, 400), exc.message)
            # Back to the page of the form, with the reason.
            ctx.flash("error", exc.message)
            return self.redirect(safe_next(ctx.form.get("back") or _same_origin_referer(request)))

    def _error(self, ctx: Ctx, status: int, message: str) -> Response:
        return self.render(ctx, "error.html", status, title=_error_title(ctx, status), message=message)

    def _check_post(self, ctx: Ctx) -> None:
        request = ctx.request
        origin = request.headers.get("origin")
        if origin and origin != "null":
            if urlsplit(origin).netloc != request.headers.get("host", ""):
                raise Forbidden403(ctx._("This form was sent from another site."))
        if ctx.session is None:  # the login form: a double-submit token
            expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        else:
            expected = ctx.session.csrf
        given = ctx.form.get("csrf") or request.headers.get("x-csrf-token", "")
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
            raise Forbidden403(ctx._("The form has expired or did not come from this console. Reload the page and try again."))


async def _read_form(request: Request) -> dict[str, str]:
    """The fields of a POSTed form (application/x-www-form-urlencoded: the console's forms and
    htmx send nothing else; any other body counts as no fields), read within FORM_MAX_BYTES
    (api/bodies.py). Raises BodyTooLarge, or ValueError when malformed."""
    body = await read_limited(request, FORM_MAX_BYTES)
    if media_type(request) != "application/x-www-form-urlencoded":
        return {}
    # UnicodeDecodeError is a ValueError, as is going over max_num_fields.
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=FORM_MAX_FIELDS))


def _has_nul(request: Request, form: dict[str, str]) -> bool:
    return ("\x00" in request.url.path or "\x00" in str(request.query_params) or "%00" in request.url.query
            or any("\x00" in k or "\x00" in v for k, v in form.items()))


def _error_title(ctx: Ctx, status: int) -> str:
    if status == 404:
        return ctx._("Not found")
    if status in (401, 403):
        return ctx._("Not allowed")
    return ctx._("The request could not be completed")


def _past(value: datetime) -> bool:
    return aware(value) <= utcnow()


def _same_origin_referer(request: Request) -> str | None:
    referer = request.headers.get("referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    if parts.netloc != request.headers.get("host"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _write_flashes(flashes: list[tuple[str, str]]) -> str:
    return base64.urlsafe_b64encode(json.dumps(flashes[:5]).encode()).decode()


def _read_flashes(value: str | None) -> list[tuple[str, str]]:
    if not value or len(value) > 4096:
        return []
    try:
        items = json.loads(base64.urlsafe_b64decode(value.encode()))
        return [(str(k), str(m)[:500]) for k, m in items if k in ("ok", "error", "info")][:5]
    except (ValueError, TypeError, RecursionError):
        return []
