"""Who is calling a /v2 endpoint, and the 401 challenge that tells a client where to get a token."""

from __future__ import annotations


from starlette.requests import Request

from dockyard.api.credentials import basic_credentials, client_address, request_host
from dockyard.api.threads import run_sync

from dockyard.auth.service import AuthService, Caller
from dockyard.auth.tokens import InvalidToken
from dockyard.config import AuthSettings
from dockyard.core.errors import Denied, Unauthorized
from dockyard.core.events import Origin


class AccessError(Exception):
    """Raised by `require`; the router renders it with the challenge."""

    def __init__(self, error: Unauthorized | Denied, challenge: str | None) -> None:
        self.error = error
        self.challenge = challenge


class Gate:
    def __init__(self, auth: AuthService, settings: AuthSettings, public_url: str | None, listen: str = "localhost") -> None:
        self.auth = auth
        self.settings = settings
        self.public_url = public_url.rstrip("/") if public_url else None
        self.listen = listen

    def realm(self, request: Request) -> str:
        if self.settings.realm:
            return self.settings.realm
        # Without public_url, the Host the client used, if it is one: never raw header text.
        # The scheme is https behind a TLS proxy only when the proxy is trusted (apply_forwarded).
        base = self.public_url or f"{request.url.scheme}://{request_host(request, self.listen)}"
        return f"{base}/auth/token"

    def challenge(self, request: Request, scope: str | None, error: str | None = None) -> str:
        parts = [f'Bearer realm="{self.realm(request)}"', f'service="{self.settings.service}"']
        if scope:
            parts.append(f'scope="{scope}"')
        if error:
            parts.append(f'error="{error}"')
        return ",".join(parts)

    async def caller(self, request: Request) -> Caller:
        """Identify the caller; bad credentials raise AccessError (401)."""
        header = request.headers.get("authorization")
        if not header:
            return self.auth.caller_from_principal(None)
        kind, _, value = header.partition(" ")
        kind = kind.lower()
        if kind == "bearer":
            try:
                return self.auth.caller_from_token(value.strip())
            except InvalidToken as exc:
                raise AccessError(Unauthorized(f"invalid token: {exc}"), self.challenge(request, None, "invalid_token")) from None
        if kind == "basic" and self.settings.basic_on_registry:
            credentials = basic_credentials(value)
            if credentials is None:
                raise AccessError(Unauthorized("malformed Basic credentials"), self.challenge(request, None))
            principal = await run_sync(self.auth.login, *credentials, client_address(request))
            if principal is None:
                raise AccessError(Unauthorized("invalid username or password"), self.challenge(request, None))
            return self.auth.caller_from_principal(principal)
        raise AccessError(Unauthorized("unsupported authorization scheme"), self.challenge(request, None))

    def require(self, request: Request, caller: Caller, type_: str, name: str, actions: tuple[str, ...]) -> None:
        """Raise AccessError unless the caller may do every action; 401 to get a (better) token,
        403 when a user known by password simply may not."""
        missing = [a for a in actions if not caller.may(type_, name, a)]
        if not missing:
            return
        scope = f"{type_}:{name}:{','.join(actions)}"
        if caller.principal is not None:
            raise AccessError(Denied(f"{caller.username} may not {','.join(missing)} {name}"), None)
        if caller.token is not None:
            raise AccessError(
                Unauthorized(f"the token does not allow {','.join(missing)} on {name}"),
                self.challenge(request, scope, "insufficient_scope"),
            )
        raise AccessError(Unauthorized("authentication required"), self.challenge(request, scope))


def origin_of(request: Request, caller: Caller) -> Origin:
    """Who makes a change through /v2, and from where: the services record it with the change's events."""
    return Origin(caller.username or "anonymous", client_address(request))
