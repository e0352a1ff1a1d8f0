"""Bodies and answers of the build API (api/management/builds.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from dockyard.api.management.schemas import Request, Response, ts
from dockyard.management.builds import ConfigView
from dockyard.meta.builds import Build

Provider = Literal["github", "gitlab", "gitea", "bitbucket", "git"]
MASK = "********"


class ProviderEvent(Request):
    """The provider's JSON push event, as the provider sends it."""

    model_config = ConfigDict(extra="allow")


class HookAnswer(Response):
    note: str = Field(description="What happened, for the provider's delivery log.")
    builds: list[int] = Field(description="Ids of the builds started.")


class SourceIn(Request):
    provider: Provider = Field("git", description="Who signs the webhooks: github (X-Hub-Signature-256), gitlab "
                               "(X-Gitlab-Token), gitea/forgejo (X-Gitea-Signature), bitbucket (X-Hub-Signature), git "
                               "(plain git: polling, or X-Hub-Signature-256).")
    url: str = Field(max_length=2048, description="Clone URL: https://, http://, git://, ssh:// or user@host:path, to a "
                     "public address unless an administrator allowed its network (outbound.allowed_networks); "
                     "file:// for administrators.")
    token: str | None = Field(None, max_length=16384, description="Access token for http(s) clones, sent as Basic "
                              "credentials (x-access-token, oauth2, x-token-auth by provider). Absent: kept as it was "
                              "while the URL stays the same; null or \"\": none. Stored encrypted, never shown again.")
    ssh_key: str | None = Field(None, max_length=16384, description="SSH deploy key (private, OpenSSH format) for "
                                "ssh clones; same rules as token.")


class RuleIn(Request):
    kind: Literal["branch", "tag"] = Field(description="Which pushes the rule applies to.")
    match: str = Field(max_length=500, description="A regular expression the whole branch or tag name must match, "
                       "e.g. `main` or `release-v(.*)`.")
    tags: list[str] = Field(min_length=1, max_length=10, description="Image tag templates: `${1}`, `${name}` (groups "
                            "of the match), `${branch}` / `${tag}`, `${sha}`, `${sha7}`; `release-v(.*)` with `${1}` "
                            "builds tag release-v1.2 as 1.2.")
    dockerfile: str = Field("Dockerfile", max_length=255, description="Path of the Dockerfile in the repository.")
    context: str = Field(".", max_length=255, description="Build context directory in the repository.")
    build_args: dict[str, str] = Field(default_factory=dict, description="--build-arg KEY=VALUE.")
    platforms: list[str] = Field(default_factory=list, max_length=8, description="Target platforms, e.g. "
                                 "[linux/amd64, linux/arm64]: several make an image index (RUN steps of a foreign "
                                 "platform need an emulator on the worker). Empty: the worker's own.")
    worker_labels: dict[str, str] = Field(default_factory=dict, description="Only workers with these labels build it "
                                          "(`dockyard worker --labels region=overseas`).")


class BuildConfigIn(Request):
    source: SourceIn
    rules: list[RuleIn] = Field(min_length=1, max_length=50)
    auto_build: bool = Field(True, description="Build on provider webhooks and polling (by hand always).")
    timeout_seconds: int | None = Field(None, description="Time limit of a build, at most builds.timeout_seconds "
                                        "(the default).")
    cancel_superseded: bool = Field(True, description="A newer push cancels a queued build of the same rule and ref.")
    poll_interval_seconds: int | None = Field(None, description="Poll the source with git ls-remote every so many "
                                              "seconds (60 to 86400); null: no polling.")
    rotate_webhook_secret: bool = Field(False, description="Make a new provider webhook secret.")


class SourceOut(Response):
    provider: Provider
    url: str
    token: str | None = Field(description=f"{MASK} when one is set.")
    ssh_key: str | None = Field(description=f"{MASK} when one is set.")


class BuildConfigOut(Response):
    repository: str
    source: SourceOut
    rules: list[dict[str, Any]]
    auto_build: bool
    timeout_seconds: int | None
    cancel_superseded: bool
    poll_interval_seconds: int | None
    webhook_url: str = Field(description="Paste into the provider's webhook settings (content type JSON).")
    webhook_secret: str = Field(description="The secret to paste with it: in clear only in the answer to PUT, "
                                f"{MASK} otherwise.")
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, v: ConfigView) -> BuildConfigOut:
        c = v.config
        return cls(repository=c.repository, source=SourceOut(provider=c.provider, url=c.url,  # type: ignore[arg-type]
                   token=MASK if v.has_token else None, ssh_key=MASK if v.has_ssh_key else None), rules=c.rules,
                   auto_build=c.auto_build, timeout_seconds=c.timeout_seconds, cancel_superseded=c.cancel_superseded,
                   poll_interval_seconds=c.poll_interval_seconds, webhook_url=v.webhook_url,
                   webhook_secret=v.webhook_secret or MASK, created_by=c.created_by, created_at=ts(c.created_at),  # type: ignore[arg-type]
                   updated_at=ts(c.updated_at))  # type: ignore[arg-type]


class BuildStart(Request):
    ref: str = Field(max_length=400, description="refs/heads/BRANCH, refs/tags/TAG or a commit id.")
    tags: list[str] | None = Field(None, max_length=10, description="Image tags instead of the rule's (a commit "
                                   "without them is tagged sha-<12 hex>).")
    rule: int | None = Field(None, ge=0, description="Only this rule (its index); a commit: the first by default.")


class BuildOut(Response):
    id: int
    repository: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    ref: str
    revision: str | None
    tags: list[str]
    digest: str | None
    rule: int | None
    trigger: str = Field(description="webhook, poll or manual.")
    triggered_by: str
    error: str | None
    worker: str | None
    log_size: int
    duration_seconds: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, b: Build) -> BuildOut:
        duration = (b.finished_at - b.started_at).total_seconds() if b.finished_at and b.started_at else None
        return cls(id=b.id, repository=b.repository, status=b.status, ref=b.ref, revision=b.revision,  # type: ignore[arg-type]
                   tags=b.tags, digest=b.digest, rule=b.rule, trigger=b.trigger, triggered_by=b.triggered_by,
                   error=b.error, worker=b.worker, log_size=b.log_size, duration_seconds=duration,
                   created_at=ts(b.created_at), started_at=ts(b.started_at), finished_at=ts(b.finished_at))  # type: ignore[arg-type]


class BuildsStarted(Response):
    id: int = Field(description="The first build started (a push matching several rules starts one per rule).")
    builds: list[BuildOut]


class BuildList(Response):
    builds: list[BuildOut] = Field(description="Newest first.")


class BuildQuery(Request):
    limit: int = Field(50, ge=1, le=200)
    before: int | None = Field(None, description="Only builds with a smaller id (the next page).")


class LogQuery(Request):
    offset: int = Field(0, ge=0, description="Characters of the log already read: the answer is the rest. The "
                        "X-Log-Size and X-Build-Status headers say where the log ends and whether more may come.")
