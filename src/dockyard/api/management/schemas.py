"""Request and response bodies of the management API (pydantic models). The OpenAPI document is
generated from these, so field descriptions here are the reference documentation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dockyard.core.access import namespace_of
from dockyard.management.service import NamespaceInfo, Page, TagInfo, WhoAmI
from dockyard.meta.audit import AuditEvent
from dockyard.meta.credentials import Robot, TempPassword
from dockyard.meta.namespaces import Member, Repository
from dockyard.meta.users import User

Role = Literal["owner", "developer", "guest"]
Action = Literal["pull", "push", "delete"]
Visibility = Literal["public", "private"]

Text = Field(None, max_length=4096)


def ts(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes (stored as UTC); answer with aware ones everywhere."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors -------------------------------------------------------------------------------------------
class ErrorDetail(Response):
    code: Literal["not_found", "forbidden", "conflict", "invalid", "unauthenticated", "too_many_requests",
                  "method_not_allowed"] = Field(description="Stable, machine-readable kind of error.")
    message: str = Field(description="What went wrong, for people.")


class ErrorBody(Response):
    """Every error answer has this body."""

    error: ErrorDetail


# -- query parameters ---------------------------------------------------------------------------------
class PageQuery(Request):
    after: str | None = Field(None, description="Cursor: the `next` value of the previous page.")
    limit: int = Field(100, ge=1, le=500, description="Items per page (at most 500).")


class RepositoryQuery(PageQuery):
    namespace: str | None = Field(None, description="Only repositories of this namespace.")
    q: str | None = Field(None, max_length=255, description="Only names containing this text.")


class AuditQuery(Request):
    actor: str | None = Field(None, description="Only events of this actor (user or robot name).")
    action: str | None = Field(None, description="Only actions starting with this, e.g. `robot.` or `namespace.create`.")
    target: str | None = Field(None, description="Only targets starting with this, e.g. a namespace or repository name.")
    before: int | None = Field(None, ge=1, le=2**31 - 1, description="Cursor: the `next` value of the previous page (an event id).")
    limit: int = Field(100, ge=1, le=500, description="Events per page (at most 500), newest first.")


# -- namespaces ---------------------------------------------------------------------------------------
class NamespaceCreate(Request):
    name: str = Field(max_length=253, description="One repository path component, e.g. `team`.")
    description: str | None = Text
    public: bool = Field(False, description="Default visibility of its repositories: anyone may pull public ones.")
    auto_create: bool = Field(True, description="May a push create a repository that does not exist yet?")


class NamespaceUpdate(Request):
    description: str | None = Text
    public: bool | None = None
    auto_create: bool | None = None


class NamespaceOut(Response):
    name: str
    description: str | None
    public: bool
    auto_create: bool
    created_at: datetime
    role: Role | None = Field(description="The caller's role in it, if a member.")

    @classmethod
    def of(cls, info: NamespaceInfo) -> NamespaceOut:
        ns = info.namespace
        return cls(name=ns.name, description=ns.description, public=ns.public, auto_create=ns.auto_create,
                   created_at=ts(ns.created_at), role=info.role)  # type: ignore[arg-type]


class NamespaceList(Response):
    items: list[NamespaceOut]
    next: str | None

    @classmethod
    def of(cls, page: Page[NamespaceInfo]) -> NamespaceList:
        return cls(items=[NamespaceOut.of(i) for i in page.items], next=page.next)


# -- members ------------------------------------------------------------------------------------------
class MemberSet(Request):
    role: Role


class MemberOut(Response):
    username: str
    role: Role
    created_at: datetime

    @classmethod
    def of(cls, m: Member) -> MemberOut:
        return cls(username=m.username, role=m.role, created_at=ts(m.created_at))  # type: ignore[arg-type]


class MemberList(Response):
    items: list[MemberOut]
    next: str | None = Field(None, description="Always null: members come in one page.")


# -- repositories -------------------------------------------------------------------------------------
class RepositoryCreate(Request):
    name: str = Field(max_length=255, description="Full name, `namespace/name` (deeper paths allowed).")
    summary: str | None = Field(None, max_length=255)
    description: str | None = Text
    visibility: Visibility | None = Field(None, description="null inherits the namespace's default.")


class RepositoryUpdate(Request):
    summary: str | None = Field(None, max_length=255)
    description: str | None = Text
    visibility: Visibility | None = Field(None, description="null inherits the namespace's default.")


class RepositoryOut(Response):
    name: str
    namespace: str
    summary: str | None
    description: str | None
    visibility: Visibility | None = Field(description="Its own setting; null inherits the namespace's.")
    public: bool = Field(description="Effective visibility.")
    created_at: datetime
    last_push_at: datetime | None

    @classmethod
    def of(cls, r: Repository) -> RepositoryOut:
        return cls(name=r.name, namespace=namespace_of(r.name), summary=r.summary, description=r.description,
                   visibility=r.visibility, public=r.public, created_at=ts(r.created_at),  # type: ignore[arg-type]
                   last_push_at=ts(r.last_push_at))


class RepositoryList(Response):
    items: list[RepositoryOut]
    next: str | None

    @classmethod
    def of(cls, page: Page[Repository]) -> RepositoryList:
        return cls(items=[RepositoryOut.of(r) for r in page.items], next=page.next)


class TagOut(Response):
    name: str
    digest: str
    updated_at: datetime
    pulls: int
    last_pulled_at: datetime | None

    @classmethod
    def of(cls, t: TagInfo) -> TagOut:
        return cls(name=t.name, digest=t.digest, updated_at=ts(t.updated_at), pulls=t.pulls,  # type: ignore[arg-type]
                   last_pulled_at=ts(t.last_pulled_at))


class TagList(Response):
    items: list[TagOut]
    next: str | None


# -- credentials ----------------------------------------------------------------------------------------
class RegistryPasswordSet(Request):
    password: str = Field(min_length=8, max_length=1024, description="The fixed password for `docker login`.")


class TempPasswordCreate(Request):
    ttl_seconds: int | None = Field(None, ge=60, description="Lifetime; default `auth.temp_password_ttl_seconds` (1 hour).")
    description: str | None = Field(None, max_length=255)
    repositories: list[str] | None = Field(None, max_length=100,
                                           description="Limit to these repository patterns (globs, e.g. `team/app-*`).")
    actions: list[Action] | None = Field(None, description="Limit to these actions.")


class TempPasswordOut(Response):
    id: str
    username: str = Field(description="The `docker login` user name to use it with.")
    description: str | None
    repositories: list[str] | None
    actions: list[Action] | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def fields_of(cls, t: TempPassword) -> dict[str, Any]:
        return dict(id=t.id, username=t.username, description=t.description, repositories=t.repositories, actions=t.actions,
                    created_at=ts(t.created_at), expires_at=ts(t.expires_at), revoked_at=ts(t.revoked_at),
                    last_used_at=ts(t.last_used_at))

    @classmethod
    def of(cls, t: TempPassword) -> TempPasswordOut:
        return cls(**cls.fields_of(t))


class TempPasswordCreated(TempPasswordOut):
    password: str = Field(description="Use it with `docker login` as your username. Shown only this once.")


class TempPasswordList(Response):
    items: list[TempPasswordOut]
    next: str | None = None


# -- robots ---------------------------------------------------------------------------------------------
class RobotPermission(Request):
    repositories: str = Field(max_length=255, description="Pattern: `app-*` (in the namespace) or `team/app-*`.")
    actions: list[Action] = Field(min_length=1)


class RobotCreate(Request):
    name: str = Field(max_length=64, description="Logs in as `robot$NAMESPACE+NAME`.")
    description: str | None = Field(None, max_length=255)
    permissions: list[RobotPermission] = Field(max_length=100)
    ttl_seconds: int | None = Field(None, ge=60, description="Expires after this long (or give expires_at).")
    expires_at: datetime | None = None


class RobotUpdate(Request):
    disabled: bool | None = None
    description: str | None = Field(None, max_length=255)
    permissions: list[RobotPermission] | None = Field(None, max_length=100)
    expires_at: datetime | None = Field(None, description="null: never expires.")


class RobotPermissionOut(Response):
    repositories: str
    actions: list[Action]


class RobotOut(Response):
    username: str = Field(description="The `docker login` user name.")
    namespace: str
    name: str
    description: str | None
    permissions: list[RobotPermissionOut]
    disabled: bool
    created_at: datetime
    expires_at: datetime | None
    rotated_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def fields_of(cls, r: Robot) -> dict[str, Any]:
        return dict(username=r.username, namespace=r.namespace, name=r.name, description=r.description,
                    permissions=[RobotPermissionOut(**p) for p in r.permissions], disabled=r.disabled,
                    created_at=ts(r.created_at), expires_at=ts(r.expires_at), rotated_at=ts(r.rotated_at),
                    last_used_at=ts(r.last_used_at))

    @classmethod
    def of(cls, r: Robot) -> RobotOut:
        return cls(**cls.fields_of(r))


class RobotCreated(RobotOut):
    secret: str = Field(description="The robot's password. Shown only this once.")


class RobotSecret(Response):
    username: str
    secret: str = Field(description="The new password. Shown only this once; the old one stops working now.")


class RobotList(Response):
    items: list[RobotOut]
    next: str | None = None


# -- users ----------------------------------------------------------------------------------------------
class UserCreate(Request):
    username: str = Field(max_length=64)
    password: str = Field(min_length=8, max_length=1024)
    is_admin: bool = False


class UserUpdate(Request):
    disabled: bool | None = None
    is_admin: bool | None = None
    password: str | None = Field(None, min_length=8, max_length=1024)


class UserOut(Response):
    username: str
    is_admin: bool
    disabled: bool
    created_at: datetime
    has_registry_password: bool

    @classmethod
    def of(cls, u: User) -> UserOut:
        return cls(username=u.username, is_admin=u.is_admin, disabled=u.disabled, created_at=ts(u.created_at),  # type: ignore[arg-type]
                   has_registry_password=u.registry_password_hash is not None)


class UserList(Response):
    items: list[UserOut]
    next: str | None


class WhoAmIOut(Response):
    username: str
    kind: Literal["user", "robot"]
    is_admin: bool
    read_only: bool = Field(description="Robots and temporary-password tokens may only read.")
    temp_password_id: str | None
    namespaces: dict[str, str] = Field(description="Namespace -> the caller's role.")

    @classmethod
    def of(cls, w: WhoAmI) -> WhoAmIOut:
        return cls(username=w.username, kind=w.kind, is_admin=w.is_admin, read_only=w.read_only,  # type: ignore[arg-type]
                   temp_password_id=w.temp_password_id, namespaces=w.namespaces)


# -- audit ----------------------------------------------------------------------------------------------
class AuditEventOut(Response):
    id: int
    at: datetime
    actor: str
    action: str = Field(description="e.g. namespace.create, member.set, robot.rotate, manifest.push.")
    target: str = Field(description="A namespace, a repository (with :tag or @digest), robot$NS+NAME or user:NAME.")
    detail: dict[str, Any] | None
    remote: str | None = Field(description="The caller's address.")

    @classmethod
    def of(cls, e: AuditEvent) -> AuditEventOut:
        return cls(id=e.id, at=ts(e.at), actor=e.actor, action=e.action, target=e.target,  # type: ignore[arg-type]
                   detail=e.detail, remote=e.remote)


class AuditList(Response):
    items: list[AuditEventOut]
    next: str | None


# -- jobs -----------------------------------------------------------------------------------------------
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobQuery(Request):
    kind: str | None = Field(None, max_length=64, description="Only jobs of this kind, e.g. `gc`.")
    state: JobState | None = Field(None, description="Only jobs in this state.")
    before: int | None = Field(None, ge=1, le=2**62, description="Cursor: the `next` value of the previous page (a job id).")
    limit: int = Field(100, ge=1, le=500, description="Jobs per page (at most 500), newest first.")


class JobProgress(Response):
    done: int
    total: int | None = Field(description="Unknown (null) while the job cannot tell yet.")


class JobOut(Response):
    id: int
    kind: str = Field(description="gc, uploads.purge, sessions.purge, images.backfill…")
    state: JobState
    progress: JobProgress | None
    attempts: int = Field(description="Attempts started so far (a failed attempt is retried with backoff).")
    max_attempts: int
    error: str | None = Field(description="The last failed attempt's error.")
    result: Any = Field(description="What the job reported when it succeeded (e.g. GC's counts).")
    args: dict[str, Any]
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None = Field(description="Start of the last attempt.")
    finished_at: datetime | None
    run_at: datetime = Field(description="Not before this (scheduled, or waiting to be retried).")
    worker: str | None = Field(description="The worker of the last attempt: HOST:PID:RANDOM.")

    @classmethod
    def of(cls, j: Any) -> JobOut:
        progress = None
        if j.progress_done is not None or j.progress_total is not None:
            progress = JobProgress(done=j.progress_done or 0, total=j.progress_total)
        return cls(id=j.id, kind=j.kind, state=j.state, progress=progress, attempts=j.attempts, max_attempts=j.max_attempts,
                   error=j.error, result=j.result, args=j.args, cancel_requested=j.cancel_requested,
                   created_at=j.created_at, started_at=j.started_at, finished_at=j.finished_at, run_at=j.run_at,
                   worker=j.worker)


class JobList(Response):
    jobs: list[JobOut]
    next: int | None = Field(description="Cursor of the next page (`before`), null on the last.")


class GcRequest(Request):
    dry_run: bool = Field(False, description="Report what would be removed; change nothing.")
    delete_untagged: bool | None = Field(None, description="Also remove manifests nothing keeps. Default: gc.delete_untagged.")


class GcQueued(Response):
    job_id: int = Field(description="The GC job (the one already queued or running, if any).")
