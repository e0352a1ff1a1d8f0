"""The token endpoint (the realm of the Bearer challenge): GET with Basic credentials, and POST
with the OAuth2 password and refresh-token grants that containerd uses. `scope=management` asks
for a management token (for /api/v1) instead of a registry token."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from urllib.parse import parse_qsl

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.bodies import BodyTooLarge, media_type, read_limited
from dockyard.api.credentials import basic_credentials, client_address
from dockyard.api.threads import run_sync
from dockyard.auth.service import AuthService
from dockyard.core.scopes import parse_scopes, scope_limits_error
from dockyard.auth.policy import Principal
from dockyard.core.errors import TooManyRequests


def _json(data: dict[str, object], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data).encode(), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store", **(headers or {})})


def _unauthorized(message: str) -> Response:
    return _json({"errors": [{"code": "UNAUTHORIZED", "message": message}], "error": "invalid_grant",
                  "error_description": message}, 401, {"WWW-Authenticate": 'Basic realm="dockyard"'})


def _invalid_scope(message: str) -> Response:
    return _json({"error": "invalid_scope", "error_description": message}, 400)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# The scope that asks for a management token (for /api/v1) instead of a registry token.
MANAGEMENT_SCOPE = "management"
FORM_MAX_BYTES = 64 << 10


async def _urlencoded_form(request: Request) -> FormData:
    """The OAuth2 grants come as application/x-www-form-urlencoded. Parsed here rather than with
    request.form(), which needs the python-multipart package. Raises ValueError."""
    if media_type(request) != "application/x-www-form-urlencoded":
        raise ValueError("not a form")
    try:
        body = await read_limited(request, FORM_MAX_BYTES)
    except BodyTooLarge:
        raise ValueError("form too large") from None
    return FormData(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50))  # UnicodeDecodeError is a ValueError


def _scope_limits(scopes: list[str]) -> Response | None:
    """A 400 for too many or too long scopes, before any password check or look-up."""
    reason = scope_limits_error(scopes)
    return None if reason is None else _invalid_scope(reason)


def _throttled(exc: TooManyRequests) -> Response:
    wait = str(exc.detail.get("retry_after", 60)) if isinstance(exc.detail, dict) else "60"
    return _json({"errors": [{"code": "TOOMANYREQUESTS", "message": exc.message}], "error": "slow_down",
                  "error_description": exc.message}, 429, {"Retry-After": wait})


class TokenEndpoint:
    def __init__(self, auth: AuthService, service: str) -> None:
        self.auth = auth
        self.service = service

    async def handle(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.post(request)
        return await self.get(request)

    def _answer(self, principal: Principal | None, scopes: list[str], offline: bool) -> Response:
        token, ttl, _ = self.auth.issue(principal, parse_scopes(scopes))
        body: dict[str, object] = {"token": token, "access_token": token, "expires_in": ttl,
                                   "issued_at": _now()}
        if offline and principal is not None:
            body["refresh_token"] = self.auth.issue_refresh(principal)
        return _json(body)

    def _management(self, principal: Principal | None, scopes: list[str], by_password: bool) -> Response | None:
        """The answer to `scope=management` (a token for /api/v1 only), or None when the request
        is for registry scopes. Asked for alone and with a password (never a refresh token, which
        lives for weeks), and no refresh token comes with it: management tokens stay short-lived."""
        words = [w for value in scopes for w in value.split()]
        if MANAGEMENT_SCOPE not in words:
            return None
        if len(set(words)) > 1:
            return _invalid_scope("ask for scope=management alone, in a request of its own")
        if not by_password:
            return _invalid_scope("a management token is issued for credentials, not for a refresh token")
        if principal is None:
            return _unauthorized("a management token needs credentials")
        if principal.is_build_credential:
            return _unauthorized("a build's push credential is for the registry only")
        token, ttl = self.auth.issue_management(principal)
        return _json({"token": token, "access_token": token, "expires_in": ttl, "issued_at": _now(),
                      "scope": MANAGEMENT_SCOPE})

    async def get(self, request: Request) -> Response:
        params = request.query_params
        if (refused := _scope_limits(params.getlist("scope"))) is not None:
            return refused
        user: Principal | None = None
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            credentials = basic_credentials(header[6:])
            if credentials is None:
                return _unauthorized("malformed Basic credentials")
            try:
                user = await run_sync(self.auth.login, *credentials, client_address(request))
            except TooManyRequests as exc:
                return _throttled(exc)
            if user is None:
                return _unauthorized("invalid username or password")
        elif header.lower().startswith("bearer "):
            # A refresh token presented as a bearer credential (Docker's identity-token flow).
            if (refused := self._management(None, params.getlist("scope"), by_password=False)) is not None:
                return refused
            user = await run_sync(self.auth.principal_from_refresh, header[7:].strip())
            if user is None:
                return _unauthorized("invalid or expired refresh token")
        if (management := self._management(user, params.getlist("scope"), by_password=True)) is not None:
            return management
        return await run_sync(self._answer, user, params.getlist("scope"), params.get("offline_token") == "true")

    async def post(self, request: Request) -> Response:
        try:
            form = await _urlencoded_form(request)
        except ValueError:
            return _json({"error": "invalid_request", "error_description": "expected a form body"}, 400)
        grant = str(form.get("grant_type") or "")
        scopes = [str(s) for s in form.getlist("scope")]
        if (refused := _scope_limits(scopes)) is not None:
            return refused
        if grant == "password":
            try:
                user = await run_sync(self.auth.login, str(form.get("username") or ""), str(form.get("password") or ""),
                                      client_address(request))
            except TooManyRequests as exc:
                return _throttled(exc)
            if user is None:
                return _unauthorized("invalid username or password")
        elif grant == "refresh_token":
            if (refused := self._management(None, scopes, by_password=False)) is not None:
                return refused
            user = await run_sync(self.auth.principal_from_refresh, str(form.get("refresh_token") or ""))
            if user is None:
                return _unauthorized("invalid or expired refresh token")
        else:
            return _json({"error": "unsupported_grant_type", "error_description": f"grant_type {grant[:40]!r} is not supported"}, 400)
        if (management := self._management(user, scopes, by_password=True)) is not None:
            return management
        offline = str(form.get("access_type") or "") == "offline" or grant == "password"
        return await run_sync(self._answer, user, scopes, offline)
