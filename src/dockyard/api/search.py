"""`docker search`: GET /v1/search?q=&n=&page= in Docker Hub's answer format, and a repository's
stars under /api/v1 (management/search.py decides who sees what).

The search takes the same credentials as /v2: none (public repositories only), Basic (a user's
password, registry password, temporary password or a robot), or a registry Bearer token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.api.credentials import basic_credentials, client_address
from dockyard.api.management.openapi import Endpoint
from dockyard.api.management.schemas import Response as ResponseModel
from dockyard.api.threads import run_sync
from dockyard.auth.policy import Principal
from dockyard.auth.service import AuthService
from dockyard.auth.tokens import InvalidToken
from dockyard.core.errors import TooManyRequests
from dockyard.management.base import Actor
from dockyard.management.errors import ManagementError
from dockyard.management.search import is_official
from dockyard.management.service import ManagementService

if TYPE_CHECKING:
    from dockyard.api.management.routes import Call

REPO = (("name", "Repository name (namespace/repository)."),)


class Unauthorized(Exception):
    pass


def _principal(auth: AuthService, header: str, remote: str | None) -> Principal | None:
    """Who the /v2-style credentials are (None: anonymous); raises Unauthorized or TooManyRequests."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        credentials = basic_credentials(value)
        principal = auth.login(*credentials, remote) if credentials else None
        if principal is None:
            raise Unauthorized("invalid username or password")
        return principal
    if scheme.lower() == "bearer":
        try:
            token = auth.tokens.verify(value.strip())
        except InvalidToken as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        principal = auth.principal_from_subject(token.subject, token.temp_id)
        if principal is None and token.subject:
            raise Unauthorized("the credentials this token was issued for are no longer valid")
        return principal
    raise Unauthorized("credentials: Basic or Bearer")


def search_route(service: ManagementService, auth: AuthService) -> Route:
    async def search(request: Request) -> Response:
        params = request.query_params
        try:
            page_size = int(params.get("n") or 25)
            page = int(params.get("page") or 1)
        except ValueError:
            return _error(400, "n and page are numbers")
        remote = client_address(request)

        def answer() -> Response:
            try:
                actor = Actor(_principal(auth, request.headers.get("authorization", ""), remote), remote)
                found = service.search(actor, params.get("q") or "", page_size, page)
            except Unauthorized as exc:
                return _error(401, str(exc), {"WWW-Authenticate": 'Basic realm="dockyard"'})
            except TooManyRequests as exc:
                return _error(429, exc.message)
            except ManagementError as exc:
                return _error(404 if exc.code == "not_found" else 400, exc.message)
            return JSONResponse({
                "num_results": found.total, "num_pages": found.pages, "page": found.page, "page_size": found.page_size,
                "query": found.query,
                "results": [{"name": f.name, "description": f.description or "", "star_count": f.stars,
                             "is_official": is_official(f.name), "is_automated": f.automated} for f in found.results]})

        return await run_sync(answer)

    return Route("/v1/search", search, methods=["GET"])


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"errors": [{"code": "UNAUTHORIZED" if status == 401 else "INVALID", "message": message}]},
                        status_code=status, headers=headers)


class StarsOut(ResponseModel):
    star_count: int = Field(description="How many users starred the repository (docker search's star_count).")
    starred: bool = Field(description="Whether the caller did.")


class StarEndpoints:
    def __init__(self, service: ManagementService) -> None:
        self.service = service

    def get_stars(self, c: Call) -> StarsOut:
        count, mine = self.service.stars(c.actor, c.path["name"])
        return StarsOut(star_count=count, starred=mine)

    def star(self, c: Call) -> StarsOut:
        """Star the repository (any signed-in user who may see it); starring twice is one star."""
        count, mine = self.service.star(c.actor, c.path["name"], True)
        return StarsOut(star_count=count, starred=mine)

    def unstar(self, c: Call) -> StarsOut:
        count, mine = self.service.star(c.actor, c.path["name"], False)
        return StarsOut(star_count=count, starred=mine)

    def repository_endpoints(self) -> list[Endpoint]:
        """Before /repositories/{name:path}, which would swallow this suffix."""
        E = Endpoint
        path = "/repositories/{name:path}/star"
        return [
            E("GET", path, self.get_stars, "Get a repository's stars", "repositories", response=StarsOut, params=REPO),
            E("PUT", path, self.star, "Star a repository", "repositories", response=StarsOut, params=REPO),
            E("DELETE", path, self.unstar, "Unstar a repository", "repositories", response=StarsOut, params=REPO),
        ]
