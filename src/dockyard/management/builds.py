"""Automated builds of a repository: who may configure, start, see and cancel them.

- The **configuration** holds source credentials and decides what code runs on the workers:
  owners of the namespace and administrators set it; `file://` clone URLs are for administrators
  only. Members who may push (owners, developers) read it, with its secrets masked.
- **Builds** are started and cancelled by those who may push; their history and logs are read by
  members of the namespace (any role) and administrators.
- Audit records: `build.configure` (the URL and rules, never a secret), `build.config_delete`,
  `build.start`, `build.cancel`, on the repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.core.access import namespace_of
from dockyard.core.builds import is_commit
from dockyard.core.names import validate_name
from dockyard.management.base import Actor, _ServiceBase
from dockyard.management.errors import Forbidden, Invalid, NotFound
from dockyard.meta.builds import DONE, Build, BuildConfig
from dockyard.registry.builds import BuildInvalid, BuildService

PUSHERS = ("owner", "developer")


@dataclass(frozen=True, slots=True)
class ConfigView:
    config: BuildConfig
    webhook_url: str
    webhook_secret: str | None  # in clear only in the answer that set it
    has_token: bool
    has_ssh_key: bool


class BuildUseCases(_ServiceBase):
    def _build_service(self) -> BuildService:
        if self.builds is None:
            raise NotFound("builds are not available on this server")
        return self.builds

    def _build_access(self, actor: Actor, repository: str, roles: tuple[str, ...] | None, what: str) -> BuildService:
        """The service, once the actor may `what` (roles None: any member)."""
        service = self._build_service()
        try:
            validate_name(repository)
        except Exception:
            raise Invalid(f"invalid repository name {repository[:80]!r}") from None
        namespace = namespace_of(repository)
        self._authenticated(actor)
        ns = self._namespace(namespace)
        user = actor.user
        if user is not None and user.is_admin and not actor.read_only:
            return service
        role = self._role(actor, namespace)
        if role is None:
            if not ns.public:
                raise NotFound(f"namespace {namespace!r} not found")
            raise Forbidden(f"only members of {namespace!r} may {what}")
        if roles is not None and role not in roles:
            raise Forbidden(f"your role in {namespace!r} ({role}) may not {what}")
        if roles is not None:
            self._writer(actor)
        return service

    def _view(self, service: BuildService, config: BuildConfig, secret: str | None) -> ConfigView:
        return ConfigView(config, service.webhook_url(config.repository), secret, bool(config.sealed_token),
                          bool(config.sealed_ssh_key))

    def put_build_config(self, actor: Actor, repository: str, body: dict[str, Any]) -> ConfigView:
        service = self._build_access(actor, repository, ("owner",), "configure builds")
        user = self._writer(actor)
        namespace = namespace_of(repository)
        previous = service.store.config(repository)
        try:
            config, secret = service.configure(namespace, repository, body, actor=actor.name,
                                               may_use_files=user.is_admin, previous=previous)
        except BuildInvalid as exc:
            raise Invalid(str(exc)) from None
        if config is None:
            raise NotFound(f"namespace {namespace!r} not found")
        if self.queries.repository(repository) is None:  # once the configuration is accepted: a refusal changes nothing
            self.namespaces.create_repository(repository, None, None, None, actor.origin)
            self.auth.forget_access()
        self._record(actor, "build.configure", repository, {
            "provider": config.provider, "url": config.url, "rules": config.rules, "auto_build": config.auto_build,
            "token": "set" if config.sealed_token else None, "ssh_key": "set" if config.sealed_ssh_key else None})
        return self._view(service, config, secret)

    def get_build_config(self, actor: Actor, repository: str) -> ConfigView:
        service = self._build_access(actor, repository, PUSHERS, "read the build configuration")
        config = service.store.config(repository)
        if config is None:
            raise NotFound(f"{repository!r} has no build configuration")
        return self._view(service, config, None)

    def delete_build_config(self, actor: Actor, repository: str) -> None:
        service = self._build_access(actor, repository, ("owner",), "configure builds")
        if not service.store.delete_config(repository):
            raise NotFound(f"{repository!r} has no build configuration")
        self._record(actor, "build.config_delete", repository)

    def start_build(self, actor: Actor, repository: str, ref: str, tags: list[str] | None = None,
                    rule: int | None = None) -> list[Build]:
        service = self._build_access(actor, repository, PUSHERS, "start builds")
        config = service.store.config(repository)
        if config is None:
            raise NotFound(f"{repository!r} has no build configuration")
        ref = ref.strip()
        if not ref.startswith(("refs/heads/", "refs/tags/")) and not is_commit(ref):
            raise Invalid("ref: refs/heads/BRANCH, refs/tags/TAG or a commit id (7 to 64 hex digits)")
        try:
            started = service.start(config, ref, None, trigger="manual", actor=actor.name, tags=tags, rule_index=rule)
        except BuildInvalid as exc:
            raise Invalid(str(exc)) from None
        if not started:
            raise Invalid(f"no build rule of {repository!r} matches {ref}")
        self._record(actor, "build.start", repository, {"ref": ref, "builds": [b.id for b in started]})
        return started

    def list_builds(self, actor: Actor, repository: str, limit: int = 50, before: int | None = None) -> list[Build]:
        service = self._build_access(actor, repository, None, "see builds")
        if not 1 <= limit <= 200:
            raise Invalid("limit must be between 1 and 200")
        return service.store.list(repository, limit, before)

    def _build(self, actor: Actor, build_id: int, roles: tuple[str, ...] | None, what: str) -> tuple[BuildService, Build]:
        service = self._build_service()
        build = service.store.get(build_id)
        if build is None:
            raise NotFound(f"build {build_id} not found")
        try:
            self._build_access(actor, build.repository, roles, what)
        except NotFound:
            raise NotFound(f"build {build_id} not found") from None
        return service, build

    def get_build(self, actor: Actor, build_id: int) -> Build:
        return self._build(actor, build_id, None, "see builds")[1]

    def build_log(self, actor: Actor, build_id: int, offset: int = 0) -> tuple[Build, str, int]:
        service, build = self._build(actor, build_id, None, "see builds")
        text, size = service.store.log(build_id, max(0, offset))
        return build, text, size

    def cancel_build(self, actor: Actor, build_id: int) -> Build:
        service, build = self._build(actor, build_id, PUSHERS, "cancel builds")
        if build.status not in DONE and build.job_id is not None:
            service.cancel(build)
            self._record(actor, "build.cancel", build.repository, {"build": build_id})
        found = service.store.get(build_id)
        assert found is not None
        return found
