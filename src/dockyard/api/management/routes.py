"""The JSON REST API under /api/v1: authentication, the route table, and the mapping from the
management use-cases' errors to HTTP answers.

One table of `Endpoint`s builds both the Starlette routes and the OpenAPI document. Each request
runs its authentication (argon2 for Basic), validation and use-case in one worker thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route

from dockyard.api.bodies import BodyTooLarge, media_type, read_limited
from dockyard.api.management import schemas as s
from dockyard.api.management.builds import BuildEndpoints
from dockyard.api.management.docs import render_docs
from dockyard.api.management.openapi import Endpoint, build_openapi, path_id
from dockyard.api.management.scans import ScanEndpoints
from dockyard.api.management.webhooks import WebhookEndpoints
from dockyard.api.credentials import basic_credentials, client_address
from dockyard.api.search import StarEndpoints
from dockyard.api.threads import run_sync
from dockyard.auth.policy import Principal
from dockyard.auth.service import AuthService
from dockyard.auth.tokens import InvalidToken
from dockyard.core.errors import TooManyRequests
from dockyard.management.errors import ManagementError, NotFound, Unauthenticated
from dockyard.management.jobs import JobsService
from dockyard.management.service import Actor, ManagementService

STATUS = {"not_found": 404, "forbidden": 403, "conflict": 409, "invalid": 422, "unauthenticated": 401}
BODY_MAX_BYTES = 1 << 20
CHALLENGE = 'Bearer realm="dockyard", scope="management"'


class TooManyAttempts(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


class InvalidInput(Exception):
    pass


@dataclass
class Call:
    actor: Actor
    path: dict[str, str]
    body: Any = None
    query: Any = None
    fields: dict[str, Any] = field(default_factory=dict)  # the body fields given explicitly


class ManagementAPI:
    def __init__(self, service: ManagementService, auth: AuthService, jobs: JobsService | None = None,
                 scans: ScanEndpoints | None = None, webhooks: WebhookEndpoints | None = None,
                 builds: BuildEndpoints | None = None, stars: StarEndpoints | None = None) -> None:
        self.service = service
        self.builds = builds
        self.stars = stars
        self.auth = auth
        self.jobs = jobs
        self.scans = scans
        self.webhooks = webhooks
        # Shared with /auth/token and /v2: failed guesses anywhere count against the same account.
        self.endpoints = self._table()
        self._openapi: dict[str, Any] | None = None  # built when first asked for (~0.1 s of pydantic)
        self._docs: str | None = None

    @property
    def openapi(self) -> dict[str, Any]:
        if self._openapi is None:
            self._openapi = build_openapi(self.endpoints)
        return self._openapi

    # -- authentication -----------------------------------------------------------------------------
    def authenticate(self, header: str, remote: str | None, account_only: bool = True) -> Principal:
        """The caller of these credentials; raises Unauthenticated or TooManyAttempts."""
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            credentials = basic_credentials(value)
            if credentials is None:
                raise Unauthenticated("malformed Basic credentials")
            try:
                principal = self.auth.login(*credentials, remote, account_only=account_only)
            except TooManyRequests as exc:
                raise TooManyAttempts(int(exc.detail["retry_after"])) from None
            if principal is None:
                raise Unauthenticated("invalid username or password")
            return principal
        if scheme == "bearer":
            # Only a management token: a registry token (from `docker login`, a CI log, a proxy) is
            # refused whatever it grants, so leaking one never hands over the account.
            try:
                principal = self.auth.principal_from_management_token(value.strip())
            except InvalidToken:
                raise Unauthenticated("invalid or expired token: this API takes a management token "
                                      "(/auth/token with scope=management), not a registry token") from None
            if principal is None:
                raise Unauthenticated("the credentials this token was issued for are no longer valid")
            return principal
        raise Unauthenticated("authentication required: Basic (account password) or Bearer (a token asked for at "
                              "/auth/token with scope=management)")

    # -- request handling ---------------------------------------------------------------------------
    def _run(self, e: Endpoint, header: str, remote: str | None, path: dict[str, str], body: bytes,
             query: dict[str, str]) -> Any:
        actor = Actor(self.authenticate(header, remote, not e.registry_credentials) if e.auth else None, remote)
        call = Call(actor=actor, path=path)
        try:
            if e.query is not None:
                call.query = e.query.model_validate(query)
            if e.body is not None or body.strip():
                try:
                    data = json.loads(body) if body.strip() else {}
                except (ValueError, UnicodeDecodeError):
                    raise InvalidInput("the body is not valid JSON") from None
                if not isinstance(data, dict):
                    raise InvalidInput("the body must be a JSON object")
                if e.body is None:
                    if data:
                        raise InvalidInput("this request takes no body (or {})")
                else:
                    call.body = e.body.model_validate(data)
                    call.fields = call.body.model_dump(exclude_unset=True)
        except ValidationError as exc:
            raise InvalidInput(_validation_message(exc)) from None
        return e.handler(call)

    def _route(self, e: Endpoint) -> Route:
        takes_json = e.takes_json

        async def endpoint(request: Request) -> Response:
            remote = client_address(request)
            body = b""
            # A web page can make a browser POST text/plain or a form anywhere without asking
            # (CORS preflights only other types): requiring application/json for every request
            # that changes something keeps other sites from driving this API with a user's
            # browser, even one that holds credentials for it.
            if takes_json and media_type(request) != "application/json":  # charset and the like allowed
                return _error(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json"
                              + ("" if e.body is not None else " (an empty body or {})"))
            if takes_json:
                try:
                    body = await read_limited(request, BODY_MAX_BYTES)
                except BodyTooLarge:
                    return _error(422, "invalid", f"the body is larger than {BODY_MAX_BYTES} bytes")
            query = {k: v for k, v in request.query_params.items()}
            try:
                result = await run_sync(self._run, e, request.headers.get("authorization", ""), remote,
                                        dict(request.path_params), body, query)
            except TooManyAttempts as exc:
                return _error(429, "too_many_requests", str(exc), {"Retry-After": str(exc.retry_after)})
            except Unauthenticated as exc:
                # A Bearer challenge: a Basic one makes browsers ask for and then cache the password,
                # and send it along with other sites' requests to this API.
                return _error(401, exc.code, exc.message, {"WWW-Authenticate": CHALLENGE})
            except ManagementError as exc:
                return _error(STATUS.get(exc.code, 400), exc.code, exc.message)
            except InvalidInput as exc:
                return _error(422, "invalid", str(exc))
            if isinstance(result, Response):
                return result
            if result is None:
                return Response(status_code=204)
            assert isinstance(result, BaseModel)
            return Response(result.model_dump_json().encode(), e.status, media_type="application/json",
                            headers={"Cache-Control": "no-store"})

        endpoint.__name__ = e.operation_id
        return Route(e.path, endpoint, methods=[e.method])

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [e.route if e.route is not None else self._route(e) for e in self.endpoints]

        async def fallback(request: Request) -> Response:
            allowed = set()
            for r in routes:
                match, _ = r.matches(request.scope)
                if match == Match.PARTIAL and isinstance(r, Route) and r.methods:
                    allowed |= r.methods
            if allowed:
                return _error(405, "method_not_allowed", f"{request.method} is not allowed here",
                              {"Allow": ", ".join(sorted(allowed))})
            return _error(404, "not_found", f"no such API path: {request.url.path}")

        return [*routes, Route("/{rest:path}", fallback, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])]

    # -- handlers -------------------------------------------------------------------------------------
    # Each takes the Call and returns a response model, None (204) or a Starlette Response.
    def openapi_json(self, call: Call) -> Response:
        """The OpenAPI 3.1 document of this API."""
        return JSONResponse(self.openapi)

    def docs(self, call: Call) -> Response:
        """A browsable reference of this API, rendered from the OpenAPI document."""
        if self._docs is None:
            self._docs = render_docs(self.openapi)
        return HTMLResponse(self._docs)

    def whoami(self, c: Call) -> s.WhoAmIOut:
        """Who the credentials stand for, and their role in each namespace. The one call that robots
        and temporary passwords limited to some repositories or actions may make."""
        return s.WhoAmIOut.of(self.service.whoami(c.actor))

    def list_namespaces(self, c: Call) -> s.NamespaceList:
        """Namespaces the caller may see: those they belong to and the public ones (administrators: all)."""
        q = c.query
        return s.NamespaceList.of(self.service.list_namespaces(c.actor, q.after, q.limit))

    def create_namespace(self, c: Call) -> s.NamespaceOut:
        """Any user may create a namespace and becomes its owner."""
        b = c.body
        return s.NamespaceOut.of(self.service.create_namespace(c.actor, b.name, b.description, b.public, b.auto_create))

    def get_namespace(self, c: Call) -> s.NamespaceOut:
        """Members, administrators, and anyone for a public namespace."""
        return s.NamespaceOut.of(self.service.get_namespace(c.actor, c.path["ns"]))

    def update_namespace(self, c: Call) -> s.NamespaceOut:
        """Owners and administrators. Only the fields given change."""
        fields = {k: v for k, v in c.fields.items() if v is not None or k == "description"}
        return s.NamespaceOut.of(self.service.update_namespace(c.actor, c.path["ns"], **fields))

    def delete_namespace(self, c: Call) -> None:
        """Owners and administrators. Deletes its repositories (tags and manifests) and robots;
        blobs go with the next garbage collection."""
        self.service.delete_namespace(c.actor, c.path["ns"])

    def list_members(self, c: Call) -> s.MemberList:
        """Members and administrators."""
        return s.MemberList(items=[s.MemberOut.of(m) for m in self.service.list_members(c.actor, c.path["ns"])])

    def set_member(self, c: Call) -> s.MemberOut:
        """Owners and administrators: add a user or change their role. The last owner stays an owner."""
        return s.MemberOut.of(self.service.set_member(c.actor, c.path["ns"], c.path["username"], c.body.role))

    def remove_member(self, c: Call) -> None:
        """Owners and administrators. The last owner cannot be removed (409)."""
        self.service.remove_member(c.actor, c.path["ns"], c.path["username"])

    def list_repositories(self, c: Call) -> s.RepositoryList:
        """Repositories the caller may pull."""
        q = c.query
        return s.RepositoryList.of(self.service.list_repositories(c.actor, q.namespace, q.q, q.after, q.limit))

    def create_repository(self, c: Call) -> s.RepositoryOut:
        """Owners and developers of the namespace, and administrators. The namespace must exist."""
        b = c.body
        return s.RepositoryOut.of(self.service.create_repository(c.actor, b.name, b.summary, b.description, b.visibility))

    def get_repository(self, c: Call) -> s.RepositoryOut:
        """Anyone who may pull it."""
        return s.RepositoryOut.of(self.service.get_repository(c.actor, c.path["name"]))

    def update_repository(self, c: Call) -> s.RepositoryOut:
        """Owners and developers of the namespace, and administrators. Only the fields given change;
        `visibility: null` inherits the namespace's."""
        return s.RepositoryOut.of(self.service.update_repository(c.actor, c.path["name"], **c.fields))

    def delete_repository(self, c: Call) -> None:
        """Owners and administrators. Its tags and manifests go at once; blobs only through garbage
        collection (those shared with other repositories stay)."""
        self.service.delete_repository(c.actor, c.path["name"])

    def list_tags(self, c: Call) -> s.TagList:
        """Tags with their digests and pull counts. (A path ending in /tags names this list.)"""
        q = c.query
        page = self.service.list_tags(c.actor, c.path["name"], q.after, q.limit)
        return s.TagList(items=[s.TagOut.of(t) for t in page.items], next=page.next)

    def set_registry_password(self, c: Call) -> None:
        """The caller's fixed password for `docker login` (separate from the account password)."""
        self.service.set_registry_password(c.actor, c.body.password)

    def list_temp_passwords(self, c: Call) -> s.TempPasswordList:
        """The caller's temporary passwords (never the passwords themselves)."""
        return s.TempPasswordList(items=[s.TempPasswordOut.of(t) for t in self.service.list_temp_passwords(c.actor)])

    def create_temp_password(self, c: Call) -> s.TempPasswordCreated:
        """A generated password for `docker login` with the caller's username, shown only in this
        answer; it expires, and may be limited to some repositories and actions."""
        b = c.body
        new = self.service.create_temp_password(c.actor, b.ttl_seconds, b.description, b.repositories, b.actions)
        return s.TempPasswordCreated(**s.TempPasswordOut.fields_of(new.temp), password=new.password)

    def revoke_temp_password(self, c: Call) -> None:
        """Revoke one of the caller's temporary passwords (administrators: anyone's). Logins with it
        fail at once; tokens issued before stay valid until they expire (minutes)."""
        self.service.revoke_temp_password(c.actor, c.path["id"])

    def list_robots(self, c: Call) -> s.RobotList:
        """Owners and administrators."""
        return s.RobotList(items=[s.RobotOut.of(r) for r in self.service.list_robots(c.actor, c.path["ns"])])

    def create_robot(self, c: Call) -> s.RobotCreated:
        """Owners and administrators. The secret is shown only in this answer."""
        b = c.body
        new = self.service.create_robot(c.actor, c.path["ns"], b.name, [p.model_dump() for p in b.permissions],
                                        b.description, b.ttl_seconds, b.expires_at)
        return s.RobotCreated(**s.RobotOut.fields_of(new.robot), secret=new.secret)

    def get_robot(self, c: Call) -> s.RobotOut:
        """Owners and administrators."""
        return s.RobotOut.of(self.service.get_robot(c.actor, c.path["ns"], c.path["name"]))

    def update_robot(self, c: Call) -> s.RobotOut:
        """Owners and administrators: disable, describe, change permissions or expiry."""
        fields = dict(c.fields)
        for key in ("permissions", "disabled"):
            if key in fields and fields[key] is None:
                del fields[key]
        if "permissions" in fields:
            fields["permissions"] = [p.model_dump() for p in c.body.permissions]
        return s.RobotOut.of(self.service.update_robot(c.actor, c.path["ns"], c.path["name"], **fields))

    def rotate_robot(self, c: Call) -> s.RobotSecret:
        """A new secret, shown only in this answer; the old one stops working at once."""
        new = self.service.rotate_robot(c.actor, c.path["ns"], c.path["name"])
        return s.RobotSecret(username=new.robot.username, secret=new.secret)

    def delete_robot(self, c: Call) -> None:
        """Owners and administrators."""
        self.service.delete_robot(c.actor, c.path["ns"], c.path["name"])

    def list_users(self, c: Call) -> s.UserList:
        """Administrators."""
        page = self.service.list_users(c.actor, c.query.after, c.query.limit)
        return s.UserList(items=[s.UserOut.of(u) for u in page.items], next=page.next)

    def create_user(self, c: Call) -> s.UserOut:
        """Administrators."""
        b = c.body
        return s.UserOut.of(self.service.create_user(c.actor, b.username, b.password, b.is_admin))

    def update_user(self, c: Call) -> s.UserOut:
        """Administrators: disable, make administrator, set the account password. The last active
        administrator stays one."""
        fields = {k: v for k, v in c.fields.items() if v is not None}
        return s.UserOut.of(self.service.update_user(c.actor, c.path["username"], **fields))

    def query_audit(self, c: Call) -> s.AuditList:
        """Administrators see everything; others their own actions and the events of the namespaces
        they own."""
        q = c.query
        page = self.service.query_audit(c.actor, q.actor, q.action, q.target, q.before, q.limit)
        return s.AuditList(items=[s.AuditEventOut.of(e) for e in page.items], next=page.next)

    # -- jobs -----------------------------------------------------------------------------------------------
    def _jobs(self) -> JobsService:
        if self.jobs is None:
            raise NotFound("jobs are not available here")
        return self.jobs

    @staticmethod
    def _job_id(c: Call) -> int:
        return path_id(c.path["id"], "job")

    def list_jobs(self, c: Call) -> s.JobList:
        """Administrators. Every state, newest first, unless filtered."""
        q = c.query
        page, nxt = self._jobs().list(c.actor, q.kind, q.state, q.before, q.limit)
        return s.JobList(jobs=[s.JobOut.of(j) for j in page], next=nxt)

    def get_job(self, c: Call) -> s.JobOut:
        """Administrators."""
        return s.JobOut.of(self._jobs().get(c.actor, self._job_id(c)))

    def cancel_job(self, c: Call) -> s.JobOut:
        """Administrators: a queued job is cancelled at once, a running one is asked to stop (its state
        becomes `cancelled` when it does); a finished job is left as it is."""
        return s.JobOut.of(self._jobs().cancel(c.actor, self._job_id(c)))

    def request_gc(self, c: Call) -> s.GcQueued:
        """Administrators: queue a garbage collection (what `dockyard gc` does against a server). Its
        progress and result are the job's; when a GC is queued or running already, that job's id."""
        b = c.body
        return s.GcQueued(job_id=self._jobs().request_gc(c.actor, b.dry_run, b.delete_untagged))

    # -- the table --------------------------------------------------------------------------------------
    def _table(self) -> list[Endpoint]:
        E = Endpoint
        ns = (("ns", "Namespace name."),)
        repo = (("name", "Repository name, slashes included."),)
        robot = (("ns", "Namespace name."), ("name", "Robot name (without robot$NS+)."))
        return [
            E("GET", "/openapi.json", self.openapi_json, "OpenAPI document", "reference", auth=False),
            E("GET", "/docs", self.docs, "API reference (HTML)", "reference", auth=False, content_type="text/html"),
            E("GET", "/user", self.whoami, "Who am I", "users", response=s.WhoAmIOut),
            E("PUT", "/user/registry-password", self.set_registry_password, "Set my registry password", "credentials",
              body=s.RegistryPasswordSet, status=204),
            E("GET", "/user/temp-passwords", self.list_temp_passwords, "List my temporary passwords", "credentials",
              response=s.TempPasswordList),
            E("POST", "/user/temp-passwords", self.create_temp_password, "Create a temporary password", "credentials",
              body=s.TempPasswordCreate, response=s.TempPasswordCreated, status=201),
            E("DELETE", "/user/temp-passwords/{id}", self.revoke_temp_password, "Revoke a temporary password",
              "credentials", status=204, params=(("id", "Temporary password id."),)),
            E("GET", "/users", self.list_users, "List users", "users", query=s.PageQuery, response=s.UserList),
            E("POST", "/users", self.create_user, "Create a user", "users", body=s.UserCreate, response=s.UserOut,
              status=201),
            E("PATCH", "/users/{username}", self.update_user, "Change a user", "users", body=s.UserUpdate,
              response=s.UserOut),
            E("GET", "/namespaces", self.list_namespaces, "List namespaces", "namespaces", query=s.PageQuery,
              response=s.NamespaceList),
            E("POST", "/namespaces", self.create_namespace, "Create a namespace", "namespaces", body=s.NamespaceCreate,
              response=s.NamespaceOut, status=201),
            E("GET", "/namespaces/{ns}", self.get_namespace, "Get a namespace", "namespaces", response=s.NamespaceOut,
              params=ns),
            E("PATCH", "/namespaces/{ns}", self.update_namespace, "Change a namespace", "namespaces",
              body=s.NamespaceUpdate, response=s.NamespaceOut, params=ns),
            E("DELETE", "/namespaces/{ns}", self.delete_namespace, "Delete a namespace", "namespaces", status=204,
              params=ns),
            E("GET", "/namespaces/{ns}/members", self.list_members, "List members", "namespaces",
              response=s.MemberList, params=ns),
            E("PUT", "/namespaces/{ns}/members/{username}", self.set_member, "Add a member or change their role",
              "namespaces", body=s.MemberSet, response=s.MemberOut, params=ns),
            E("DELETE", "/namespaces/{ns}/members/{username}", self.remove_member, "Remove a member", "namespaces",
              status=204, params=ns),
            E("GET", "/namespaces/{ns}/robots", self.list_robots, "List robot accounts", "robots",
              response=s.RobotList, params=ns),
            E("POST", "/namespaces/{ns}/robots", self.create_robot, "Create a robot account", "robots",
              body=s.RobotCreate, response=s.RobotCreated, status=201, params=ns),
            E("GET", "/namespaces/{ns}/robots/{name}", self.get_robot, "Get a robot account", "robots",
              response=s.RobotOut, params=robot),
            E("PATCH", "/namespaces/{ns}/robots/{name}", self.update_robot, "Change a robot account", "robots",
              body=s.RobotUpdate, response=s.RobotOut, params=robot),
            E("POST", "/namespaces/{ns}/robots/{name}/rotate", self.rotate_robot, "Rotate a robot's secret", "robots",
              response=s.RobotSecret, params=robot),
            E("DELETE", "/namespaces/{ns}/robots/{name}", self.delete_robot, "Delete a robot account", "robots",
              status=204, params=robot),
            E("GET", "/repositories", self.list_repositories, "List repositories", "repositories",
              query=s.RepositoryQuery, response=s.RepositoryList),
            E("POST", "/repositories", self.create_repository, "Create a repository", "repositories",
              body=s.RepositoryCreate, response=s.RepositoryOut, status=201),
            # before /repositories/{name:path}, which would swallow the /tags suffix
            E("GET", "/repositories/{name:path}/tags", self.list_tags, "List a repository's tags", "repositories",
              query=s.PageQuery, response=s.TagList, params=repo),
            *(self.scans.repository_endpoints() if self.scans else []),
            *(self.builds.repository_endpoints() if self.builds else []),
            *(self.stars.repository_endpoints() if self.stars else []),
            E("GET", "/repositories/{name:path}", self.get_repository, "Get a repository", "repositories",
              response=s.RepositoryOut, params=repo),
            E("PATCH", "/repositories/{name:path}", self.update_repository, "Change a repository", "repositories",
              body=s.RepositoryUpdate, response=s.RepositoryOut, params=repo),
            E("DELETE", "/repositories/{name:path}", self.delete_repository, "Delete a repository", "repositories",
              status=204, params=repo),
            E("GET", "/audit", self.query_audit, "Query the audit log", "audit", query=s.AuditQuery,
              response=s.AuditList),
            E("GET", "/jobs", self.list_jobs, "List background jobs", "jobs", query=s.JobQuery, response=s.JobList),
            E("GET", "/jobs/{id}", self.get_job, "Get a job", "jobs", response=s.JobOut, params=(("id", "Job id."),)),
            E("POST", "/jobs/{id}/cancel", self.cancel_job, "Cancel a job", "jobs", response=s.JobOut,
              params=(("id", "Job id."),)),
            E("POST", "/gc", self.request_gc, "Start a garbage collection", "jobs", body=s.GcRequest,
              response=s.GcQueued, status=202),
            *(self.scans.other_endpoints() if self.scans else []),
            *(self.webhooks.endpoints() if self.webhooks else []),
            *(self.builds.other_endpoints() if self.builds else []),
        ]
