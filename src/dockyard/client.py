"""A small typed client for Dockyard's management API (`/api/v1`), used by the `dockyard` CLI.

    with Client("http://127.0.0.1:5000", "alice", "secret") as api:
        for ns in api.namespaces():
            print(ns["name"])

Authentication is HTTP Basic with the account password. Every error answer of the API has the
body `{"error": {"code": ..., "message": ...}}`; it is raised as `ClientError` with that message
(anything else that goes wrong: an unreachable server, a body that is not JSON, is raised as a
`ClientError` too, so callers have one exception to handle). Lists are paginated as
`{"items": [...], "next": cursor}`; the list methods follow `next` and yield every item.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypedDict, cast
from urllib.parse import quote, urlsplit

import httpx

DEFAULT_URL = "http://127.0.0.1:5000"
API = "/api/v1"
PAGE_SIZE = 100

# -- what the API returns (fields this client relies on; the server may send more) -----------------


class User(TypedDict, total=False):
    username: str
    kind: str  # user | robot (GET /user)
    is_admin: bool
    read_only: bool  # robots and temporary-password logins (GET /user)
    temp_password_id: str | None
    namespaces: dict[str, str]  # namespace -> role (GET /user)
    disabled: bool
    created_at: str
    has_registry_password: bool


class Namespace(TypedDict, total=False):
    name: str
    description: str | None
    public: bool
    auto_create: bool
    created_at: str
    role: str | None  # the caller's, if a member


class Member(TypedDict, total=False):
    username: str
    role: str
    created_at: str


class Repository(TypedDict, total=False):
    name: str
    namespace: str
    summary: str | None
    description: str | None
    visibility: str | None  # its own setting; None inherits the namespace's
    public: bool  # effective
    created_at: str
    last_push_at: str | None


class Tag(TypedDict, total=False):
    name: str
    digest: str
    updated_at: str
    pulls: int
    last_pulled_at: str | None


class TempPassword(TypedDict, total=False):
    id: str
    password: str  # only in the answer to its creation
    username: str
    description: str | None
    repositories: list[str] | None
    actions: list[str] | None
    created_at: str
    expires_at: str
    revoked_at: str | None
    last_used_at: str | None


class Permission(TypedDict):
    repositories: str
    actions: list[str]


class Robot(TypedDict, total=False):
    username: str
    name: str
    namespace: str
    secret: str  # only in the answers to its creation and rotation
    description: str | None
    permissions: list[Permission]
    disabled: bool
    created_at: str
    expires_at: str | None
    rotated_at: str | None
    last_used_at: str | None


class Job(TypedDict, total=False):
    id: int
    kind: str
    state: str  # queued | running | succeeded | failed | cancelled
    progress: dict[str, Any] | None  # {"done", "total"}
    attempts: int
    error: str | None
    result: Any
    created_at: str
    started_at: str | None
    finished_at: str | None


class Webhook(TypedDict, total=False):
    id: int
    namespace: str
    repository: str | None
    url: str
    events: list[str]
    format: str  # dockyard | dockerhub
    enabled: bool
    description: str | None
    secret: str  # only when created or rotated
    created_by: str
    created_at: str
    updated_at: str


class Delivery(TypedDict, total=False):
    id: str  # sent as webhook-id
    event: str
    status: str  # pending | succeeded | failed
    body: str
    created_at: str
    last_attempt_at: str | None
    attempts: list[dict[str, Any]]  # attempted_at, request_headers, response_status, …, duration_ms, error


class AuditEvent(TypedDict, total=False):
    id: int
    at: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any] | None
    remote: str | None


class ClientError(Exception):
    """The API refused a request (`status`, `code` from its error body) or could not be reached."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def seg(value: str) -> str:
    """One path segment, percent-encoded ('/' too)."""
    return quote(value, safe="")


def repo_path(name: str) -> str:
    """A repository name as a path: its '/' stay separators."""
    return quote(name, safe="/")


class Client:
    def __init__(self, url: str = DEFAULT_URL, username: str | None = None, password: str | None = None, *,
                 transport: httpx.BaseTransport | None = None, timeout: float = 30.0) -> None:
        url = url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ClientError(f"invalid URL {url!r}: expected http(s)://HOST[:PORT]")
        self.url = url
        self.username = username
        auth = httpx.BasicAuth(username, password or "") if username is not None else None
        self._http = httpx.Client(base_url=url, auth=auth, transport=transport, timeout=timeout,
                                  headers={"Accept": "application/json"}, follow_redirects=False)

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def registry_host(self) -> str:
        """HOST[:PORT] as `docker login` and image references name this registry."""
        return urlsplit(self.url).netloc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None) -> Any:
        """Send one request; the decoded JSON answer (None for an empty one), or ClientError."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, API + path, params=query or None, json=json)
        except httpx.TimeoutException:
            raise ClientError(f"{self.url} did not answer in time ({method} {API}{path})") from None
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}") from None
        if response.is_success:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise ClientError(f"{method} {API}{path}: the server answered HTTP {response.status_code} "
                                  "with a body that is not JSON (is this a Dockyard server?)",
                                  response.status_code) from None
        raise _error(method, path, response)

    def paginate(self, path: str, params: Mapping[str, Any] | None = None, *, cursor: str = "after",
                 limit: int | None = None, key: str = "items") -> Iterator[Any]:
        """Every item of a paginated list, following `next` (sent back as `cursor`), up to `limit`."""
        query = dict(params or {})
        seen = 0
        after: Any = None
        while True:
            page_size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - seen)
            body = self.request("GET", path, params={**query, cursor: after, "limit": page_size})
            if isinstance(body, list):  # an unpaginated list
                items, after = body, None
            elif isinstance(body, dict):
                items, after = body.get(key) or [], body.get("next")
            else:
                raise ClientError(f"GET {API}{path}: unexpected answer {str(body)[:200]!r}")
            for item in items:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if after is None or after == "" or not items:
                return

    # -- the signed-in user ---------------------------------------------------------------------------
    def me(self) -> User:
        return cast(User, self.request("GET", "/user"))

    def create_user(self, username: str, password: str, is_admin: bool = False) -> User:
        """Administrators only."""
        return cast(User, self.request("POST", "/users", json={"username": username, "password": password,
                                                              "is_admin": is_admin}))

    def set_registry_password(self, password: str) -> None:
        self.request("PUT", "/user/registry-password", json={"password": password})

    def temp_passwords(self) -> Iterator[TempPassword]:
        return self.paginate("/user/temp-passwords")

    def create_temp_password(self, ttl_seconds: int | None = None, description: str | None = None,
                             repositories: list[str] | None = None, actions: list[str] | None = None) -> TempPassword:
        body = _compact({"ttl_seconds": ttl_seconds, "description": description,
                         "repositories": repositories or None, "actions": actions or None})
        return cast(TempPassword, self.request("POST", "/user/temp-passwords", json=body))

    def revoke_temp_password(self, id: str) -> None:
        self.request("DELETE", f"/user/temp-passwords/{seg(id)}")

    # -- namespaces and members ---------------------------------------------------------------------
    def namespaces(self) -> Iterator[Namespace]:
        return self.paginate("/namespaces")

    def namespace(self, name: str) -> Namespace:
        return cast(Namespace, self.request("GET", f"/namespaces/{seg(name)}"))

    def create_namespace(self, name: str, description: str | None = None, public: bool | None = None,
                         auto_create: bool | None = None) -> Namespace:
        body = _compact({"name": name, "description": description, "public": public, "auto_create": auto_create})
        return cast(Namespace, self.request("POST", "/namespaces", json=body))

    def update_namespace(self, name: str, **fields: Any) -> Namespace:
        """PATCH the given fields (description, public, auto_create)."""
        return cast(Namespace, self.request("PATCH", f"/namespaces/{seg(name)}", json=fields))

    def delete_namespace(self, name: str) -> None:
        self.request("DELETE", f"/namespaces/{seg(name)}")

    def members(self, namespace: str) -> Iterator[Member]:
        return self.paginate(f"/namespaces/{seg(namespace)}/members")

    def set_member(self, namespace: str, username: str, role: str) -> Member:
        return cast(Member, self.request("PUT", f"/namespaces/{seg(namespace)}/members/{seg(username)}",
                                         json={"role": role}))

    def remove_member(self, namespace: str, username: str) -> None:
        self.request("DELETE", f"/namespaces/{seg(namespace)}/members/{seg(username)}")

    # -- repositories -------------------------------------------------------------------------------
    def repositories(self, namespace: str | None = None, search: str | None = None,
                     limit: int | None = None) -> Iterator[Repository]:
        return self.paginate("/repositories", {"namespace": namespace, "q": search}, limit=limit)

    def repository(self, name: str) -> Repository:
        return cast(Repository, self.request("GET", f"/repositories/{repo_path(name)}"))

    def create_repository(self, name: str, summary: str | None = None, description: str | None = None,
                          visibility: str | None = None) -> Repository:
        body = _compact({"name": name, "summary": summary, "description": description, "visibility": visibility})
        return cast(Repository, self.request("POST", "/repositories", json=body))

    def update_repository(self, name: str, **fields: Any) -> Repository:
        """PATCH the given fields (summary, description, visibility; visibility None inherits)."""
        return cast(Repository, self.request("PATCH", f"/repositories/{repo_path(name)}", json=fields))

    def delete_repository(self, name: str) -> None:
        self.request("DELETE", f"/repositories/{repo_path(name)}")

    def tags(self, name: str) -> Iterator[Tag]:
        return self.paginate(f"/repositories/{repo_path(name)}/tags")

    # -- robots -------------------------------------------------------------------------------------
    def robots(self, namespace: str) -> Iterator[Robot]:
        return self.paginate(f"/namespaces/{seg(namespace)}/robots")

    def create_robot(self, namespace: str, name: str, permissions: list[Permission], description: str | None = None,
                     ttl_seconds: int | None = None) -> Robot:
        body = _compact({"name": name, "description": description, "permissions": permissions,
                         "ttl_seconds": ttl_seconds})
        return cast(Robot, self.request("POST", f"/namespaces/{seg(namespace)}/robots", json=body))

    def update_robot(self, namespace: str, name: str, **fields: Any) -> Robot:
        """PATCH the given fields (disabled, description, permissions)."""
        return cast(Robot, self.request("PATCH", f"/namespaces/{seg(namespace)}/robots/{seg(name)}", json=fields))

    def rotate_robot(self, namespace: str, name: str) -> Robot:
        # `{}` as JSON: the API refuses a POST that is not application/json (cross-site requests).
        return cast(Robot, self.request("POST", f"/namespaces/{seg(namespace)}/robots/{seg(name)}/rotate", json={}))

    def delete_robot(self, namespace: str, name: str) -> None:
        self.request("DELETE", f"/namespaces/{seg(namespace)}/robots/{seg(name)}")

    # -- audit --------------------------------------------------------------------------------------
    def audit(self, actor: str | None = None, action: str | None = None, target: str | None = None,
              limit: int | None = None) -> Iterator[AuditEvent]:
        """Newest first; pages go back in time with `before`."""
        return self.paginate("/audit", {"actor": actor, "action": action, "target": target},
                             cursor="before", limit=limit)

    # -- webhooks (owners of the namespace) ------------------------------------------------------------
    def webhooks(self, namespace: str) -> Iterator[Webhook]:
        return iter(self.request("GET", f"/namespaces/{seg(namespace)}/webhooks")["items"])

    def create_webhook(self, namespace: str, url: str, events: list[str], format: str | None = None,
                       repository: str | None = None, description: str | None = None,
                       enabled: bool | None = None) -> Webhook:
        body = _compact({"url": url, "events": events, "format": format, "repository": repository,
                         "description": description, "enabled": enabled})
        return cast(Webhook, self.request("POST", f"/namespaces/{seg(namespace)}/webhooks", json=body))

    def deliveries(self, namespace: str, webhook_id: int, limit: int | None = None) -> Iterator[Delivery]:
        """Newest first, each with its attempts."""
        return self.paginate(f"/namespaces/{seg(namespace)}/webhooks/{webhook_id}/deliveries", cursor="before",
                             limit=limit)

    def redeliver(self, namespace: str, webhook_id: int, delivery_id: str) -> Delivery:
        return cast(Delivery, self.request(
            "POST", f"/namespaces/{seg(namespace)}/webhooks/{webhook_id}/deliveries/{seg(delivery_id)}/redeliver",
            json={}))

    # -- builds ---------------------------------------------------------------------------------------
    def put_build_config(self, repository: str, config: dict[str, Any]) -> dict[str, Any]:
        return cast(dict[str, Any], self.request("PUT", f"/repositories/{repo_path(repository)}/build-config", json=config))

    def build_config(self, repository: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.request("GET", f"/repositories/{repo_path(repository)}/build-config"))

    def start_build(self, repository: str, ref: str, tags: list[str] | None = None) -> dict[str, Any]:
        return cast(dict[str, Any], self.request("POST", f"/repositories/{repo_path(repository)}/builds",
                                                 json=_compact({"ref": ref, "tags": tags or None})))

    def builds(self, repository: str, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first."""
        return cast(list[dict[str, Any]], self.request("GET", f"/repositories/{repo_path(repository)}/builds",
                                                       params={"limit": limit})["builds"])

    def build(self, build_id: int) -> dict[str, Any]:
        return cast(dict[str, Any], self.request("GET", f"/builds/{build_id}"))

    def cancel_build(self, build_id: int) -> dict[str, Any]:
        return cast(dict[str, Any], self.request("POST", f"/builds/{build_id}/cancel", json={}))

    def build_log(self, build_id: int, offset: int = 0) -> tuple[str, int, str]:
        """(the log from `offset`, the log's size, the build's status)."""
        path = f"/builds/{build_id}/log"
        try:
            response = self._http.get(API + path, params={"offset": offset})
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}") from None
        if not response.is_success:
            raise _error("GET", path, response)
        return response.text, int(response.headers.get("x-log-size", "0")), response.headers.get("x-build-status", "")

    # -- jobs (administrators) ------------------------------------------------------------------------
    def jobs(self, kind: str | None = None, state: str | None = None, limit: int | None = None) -> Iterator[Job]:
        """Newest first."""
        return self.paginate("/jobs", {"kind": kind, "state": state}, cursor="before", limit=limit, key="jobs")

    def job(self, job_id: int) -> Job:
        return cast(Job, self.request("GET", f"/jobs/{job_id}"))

    def cancel_job(self, job_id: int) -> Job:
        return cast(Job, self.request("POST", f"/jobs/{job_id}/cancel", json={}))

    def request_gc(self, dry_run: bool = False, delete_untagged: bool | None = None) -> int:
        """Queue a garbage collection; the job's id."""
        body = self.request("POST", "/gc", json=_compact({"dry_run": dry_run, "delete_untagged": delete_untagged}))
        return int(body["job_id"])


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _error(method: str, path: str, response: httpx.Response) -> ClientError:
    status = response.status_code
    code: str | None = None
    message: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        message = body["error"].get("message")
    elif isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]  # a /v2-style error body
        if isinstance(first, dict):
            code, message = first.get("code"), first.get("message")
    if not message:
        if status == 401:
            message = "authentication failed: check the user name and password (--user, DOCKYARD_USER, DOCKYARD_PASSWORD)"
        elif status == 404 and not response.content.strip().startswith(b"{"):
            message = f"{method} {API}{path}: not found (HTTP 404); does this server have the management API?"
        else:
            text = response.text.strip().replace("\n", " ")[:200]
            message = f"{method} {API}{path}: HTTP {status} {response.reason_phrase}" + (f": {text}" if text else "")
    return ClientError(str(message), status, str(code) if code is not None else None)
