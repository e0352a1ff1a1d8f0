"""Automated builds: configurations, triggers (provider webhooks, polling, by hand) and running a
build as a job.

- **Configuration** (`configure`): the clone URL is checked like a webhook URL (outbound/git.py:
  public addresses unless allowed; `file://` for administrators), the rules by core/builds.py;
  the token, SSH key and the provider webhook's secret are sealed (core/secretbox.py).
- **Provider webhooks** (`receive_hook`): the signature is verified in constant time before the
  body is parsed; a wrong or missing one starts nothing (`HookRefused`); a delivery id seen before
  starts nothing (a replay); each pushed branch or tag starts one build per matching rule.
- **Polling** (`poll`, a scheduled job): `git ls-remote` of each polled source; a ref that moved
  starts builds as a push would.
- **Running** (`run`, the `build.run` job): the build child (builder/process.py) gets the checked
  clone address, the source credentials and a push credential for this repository alone that
  expires with the build; its output is the log, appended as it comes; the end is recorded with
  its event (`build.succeeded` / `build.failed`) in one transaction.
- **Never left running**: a build whose job ended without it (the worker died during the last
  attempt) is failed by `reconcile` (a worker tick).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.builder import users
from dockyard.builder.gitenv import git_environment
from dockyard.builder.process import child_environment, run_child
from dockyard.config import Settings
from dockyard.core import builds as cb
from dockyard.core.events import BUILD_FAILED, BUILD_SUCCEEDED, NewEvent
from dockyard.core.names import is_valid_tag
from dockyard.core.secretbox import SecretBox, SecretBoxError
from dockyard.meta.builds import BUILD_RUN, Build, BuildConfig, BuildStore, NewBuild
from dockyard.meta.events import EventStore
from dockyard.outbound import git as outbound_git
from dockyard.outbound.client import resolve
from dockyard.outbound.guard import AddressPolicy

log = logging.getLogger(__name__)

TOKEN_PURPOSE = "build-source-token"
SSH_PURPOSE = "build-ssh-key"
HOOK_PURPOSE = "build-hook-secret"
MAX_HOOK_BODY = 1 << 20
# A push credential: (repository, seconds it lasts, build id) -> (username, password) for `docker login`.
PushCredential = Callable[[str, int, int], tuple[str, str]]


class BuildInvalid(ValueError):
    """A build configuration or request is refused; the message says why."""


class HookRefused(Exception):
    """A provider webhook is refused: 401 (bad signature) or 400 (a body that is not a push)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class HookResult:
    builds: list[Build]
    note: str  # what happened, for the provider's delivery log


@dataclass(frozen=True, slots=True)
class PushTarget:
    registry: str  # HOST:PORT the build pushes to
    tls_verify: bool


def job_kind(labels: Mapping[str, str] | tuple[tuple[str, str], ...]) -> str:
    """The job kind of a build that must run on workers with these labels."""
    pairs = sorted(dict(labels).items())
    return BUILD_RUN + ("@" + ",".join(f"{k}={v}" for k, v in pairs) if pairs else "")


def worker_kinds(labels: Mapping[str, str]) -> list[str]:
    """The build job kinds a worker with these labels takes: unlabelled builds, and those whose
    labels it all has."""
    items = sorted(labels.items())[:6]
    kinds = []
    for mask in range(1 << len(items)):
        kinds.append(job_kind(tuple(p for i, p in enumerate(items) if mask & (1 << i))))
    return kinds


def build_root(settings: Settings, user: users.BuildUser | None) -> Path:
    """Where builds work: builds.workdir, else DATA_DIR/builds, or with a build user (who may not
    enter the data directory) a directory of this installation in that user's home."""
    if settings.builds.workdir:
        return settings.builds.workdir.resolve()
    if user is not None:
        return user.home / "dockyard-builds" / hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:12]
    return settings.build_root


def host_platform() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}.get(machine, machine)
    return f"linux/{arch}"


def without_emulation(platforms: list[str]) -> list[str]:
    """Those of `platforms` this machine can neither run natively nor emulate (binfmt_misc)."""
    qemu = {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "386": "i386",
            "riscv64": "riscv64"}
    native = host_platform()
    missing = []
    for p in platforms:
        arch = p.split("/")[1] if "/" in p else p
        if f"linux/{arch}" == native or (native == "linux/amd64" and arch == "386"):
            continue
        if not Path(f"/proc/sys/fs/binfmt_misc/qemu-{qemu.get(arch, arch)}").exists():
            missing.append(p)
    return missing


class BuildService:
    def __init__(self, settings: Settings, store: BuildStore, events: EventStore, box: SecretBox,
                 push_credential: PushCredential, push_target: PushTarget, holder: str = "") -> None:
        self.settings = settings
        self.store = store
        self.events = events
        self.box = box
        self.push_credential = push_credential
        self.push_target = push_target
        self.policy = AddressPolicy(settings.outbound.allowed_networks)
        self.user = users.resolve(settings.builds.run_as)  # None: Dockyard's own user
        self.root = build_root(settings, self.user)
        self.jobs = store.jobs
        self.holder = holder
        self.resolver: Callable[[str, int], list[str]] | None = None  # None: outbound.client.resolve

    # -- configuration ----------------------------------------------------------------------------
    def check_source(self, url: str, allow_file: bool) -> outbound_git.CloneTarget:
        try:
            return outbound_git.check(url, self.policy, self.resolver or resolve, allow_file)
        except outbound_git.CloneRefused as exc:
            raise BuildInvalid(f"source.url: {exc}") from None

    def configure(self, namespace: str, repository: str, body: dict[str, Any], *, actor: str, may_use_files: bool,
                  previous: BuildConfig | None) -> tuple[BuildConfig | None, str]:
        """Create or replace the configuration; returns it and the provider webhook's secret in
        clear (kept from `previous`, or new)."""
        source = body.get("source") or {}
        provider = str(source.get("provider", "git"))
        if provider not in cb.PROVIDERS:
            raise BuildInvalid(f"source.provider: one of {', '.join(cb.PROVIDERS)}")
        url = str(source.get("url", "")).strip()
        self.check_source(url, may_use_files)
        try:
            rules = [r.to_json() for r in cb.parse_rules(body.get("rules") or [])]
        except ValueError as exc:
            raise BuildInvalid(f"rules: {exc}") from None
        timeout = body.get("timeout_seconds")
        if timeout is not None and not (isinstance(timeout, int) and 10 <= timeout <= self.settings.builds.timeout_seconds):
            raise BuildInvalid(f"timeout_seconds: 10 to {self.settings.builds.timeout_seconds} (builds.timeout_seconds)")
        poll = body.get("poll_interval_seconds")
        if poll is not None and not (isinstance(poll, int) and 60 <= poll <= 86400):
            raise BuildInvalid("poll_interval_seconds: 60 to 86400, or null for no polling")
        secret = self._open(previous.sealed_webhook_secret, HOOK_PURPOSE) if previous else None
        if body.get("rotate_webhook_secret") or not secret:
            secret = "dkh_" + os.urandom(24).hex()
        values = {
            "provider": provider, "url": url, "rules": rules, "auto_build": bool(body.get("auto_build", True)),
            "timeout_seconds": timeout, "cancel_superseded": bool(body.get("cancel_superseded", True)),
            "poll_interval_seconds": poll, "webhook_secret": self.box.seal(secret, HOOK_PURPOSE),
            "token": self._seal_kept(source, "token", TOKEN_PURPOSE, previous.sealed_token if previous else None,
                                     previous is not None and previous.url == url),
            "ssh_key": self._seal_kept(source, "ssh_key", SSH_PURPOSE, previous.sealed_ssh_key if previous else None,
                                       previous is not None and previous.url == url),
        }
        return self.store.put_config(namespace, repository, values, actor), secret

    def _seal_kept(self, source: dict[str, Any], key: str, purpose: str, kept: str | None, same_url: bool) -> str | None:
        """A new secret sealed; absent: the previous one, while the URL stays the same (a token is
        never sent to a URL it was not given for); "" or null: none."""
        if key in source:
            value = source[key]
            if value is None or value == "":
                return None
            if not isinstance(value, str) or len(value) > 16384:
                raise BuildInvalid(f"source.{key}: a string of at most 16384 characters")
            return self.box.seal(value, purpose)
        return kept if same_url else None

    def _open(self, sealed: str | None, purpose: str) -> str | None:
        if not sealed:
            return None
        try:
            return self.box.open(sealed, purpose)
        except SecretBoxError:
            return None

    def webhook_secret(self, config: BuildConfig) -> str | None:
        return self._open(config.sealed_webhook_secret, HOOK_PURPOSE)

    def webhook_url(self, repository: str) -> str:
        return f"{self.settings.base_url}/api/v1/repositories/{repository}/build-hook"

    # -- triggers ---------------------------------------------------------------------------------
    def start(self, config: BuildConfig, ref: str, revision: str | None, *, trigger: str, actor: str,
              tags: list[str] | None = None, rule_index: int | None = None) -> list[Build]:
        """Queue the builds `ref` calls for: one per matching rule (a commit: the rule chosen, by
        default the first, tagged sha-<commit> unless `tags` are given)."""
        rules = [cb.parse_rule(r) for r in config.rules]
        if cb.is_commit(ref):
            index = rule_index or 0
            if not rules or index >= len(rules):
                raise BuildInvalid("rule: no such rule")
            chosen = [(index, rules[index], tags or [f"sha-{ref[:12]}"])]
            revision = ref
        else:
            if revision is None:  # by hand: the ref's commit now (and a ref that does not exist is refused here)
                revision = self.ls_remote(config).get(ref)
                if revision is None:
                    raise BuildInvalid(f"ref: {ref} is not in {config.url}")
            chosen = [(i, r, tags or t) for i, r, t in cb.matching(rules, ref, revision)
                      if rule_index is None or i == rule_index]
        started = []
        for index, rule, rendered in chosen:
            if not rendered:
                continue
            for tag in rendered:
                if not is_valid_tag(tag):
                    raise BuildInvalid(f"tag {tag[:130]!r} is not a valid image tag")
            started.append(self.store.queue(NewBuild(
                repository=config.repository, rule=index, ref=ref, revision=revision, tags=rendered, spec=rule.to_json(),
                trigger=trigger, triggered_by=actor, job_kind=job_kind(rule.worker_labels),
                supersede=config.cancel_superseded and trigger != "manual")))
        return started

    def receive_hook(self, config: BuildConfig, headers: Mapping[str, str], body: bytes) -> HookResult:
        """A provider's webhook: verified, then acted on (see the module's docstring)."""
        secret = self.webhook_secret(config)
        if not secret or not cb.verify(config.provider, secret, headers, body):
            raise HookRefused("the signature is missing or wrong")
        kind = cb.event_kind(config.provider, headers)
        if kind == "ping":
            return HookResult([], "pong")
        if kind != "push":
            return HookResult([], "ignored: not a push or tag event")
        delivery = cb.delivery_id(config.provider, headers) or "body:" + hashlib.sha256(body).hexdigest()
        try:
            pushes = cb.parse_push(config.provider, body)
        except ValueError as exc:
            raise HookRefused(f"not a push event: {exc}", 400) from None
        if not self.store.first_delivery(config.id, delivery):
            return HookResult([], f"delivery {delivery[:80]} was received before: nothing started")
        if not config.auto_build:
            return HookResult([], "automatic builds are off for this repository")
        started: list[Build] = []
        for push in pushes:
            if not push.deleted:
                started += self.start(config, push.ref, push.revision, trigger="webhook", actor=f"{config.provider} webhook")
        return HookResult(started, f"{len(started)} build(s) queued" if started else "no rule matches")

    def poll(self, check: Callable[[], None]) -> dict[str, int]:
        """Look at every polled source whose interval has passed; start builds for moved refs."""
        started = looked = 0
        for config in self.store.polled():
            check()
            interval = config.poll_interval_seconds or 0
            if config.polled_at is not None and time.time() - config.polled_at.timestamp() < interval:
                continue
            looked += 1
            try:
                refs = self.ls_remote(config)
            except BuildInvalid:
                self.store.set_poll_state(config.id, config.poll_state)  # tried: the interval starts again
                continue
            seen = config.poll_state
            for ref, sha in refs.items():
                if seen is not None and seen.get(ref) != sha:  # the first look only records the refs
                    try:
                        started += len(self.start(config, ref, sha, trigger="poll", actor="polling"))
                    except BuildInvalid as exc:  # one ref that cannot be built does not stop the others
                        log.warning("polling %s: %s: %s", config.repository, ref, exc)
            self.store.set_poll_state(config.id, refs)
        return {"looked": looked, "started": started}

    def ls_remote(self, config: BuildConfig) -> dict[str, str]:
        target = self.check_source(config.url, allow_file=config.url.startswith("file:"))
        # A private directory per look (a deploy key may be written there), removed afterwards.
        (self.root / "poll").mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=self.root / "poll"))
        source = {"provider": config.provider, "config": target.config, "host": target.host,
                  "token": self._open(config.sealed_token, TOKEN_PURPOSE),
                  "ssh_key": self._open(config.sealed_ssh_key, SSH_PURPOSE)}
        env = git_environment(source, work, child_environment(work, work))
        try:
            out = subprocess.run(["git", "ls-remote", "--heads", "--tags", target.url], env=env, capture_output=True,
                                 text=True, timeout=self.settings.outbound.timeout_seconds * 3, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise BuildInvalid("git ls-remote timed out") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if out.returncode != 0:
            raise BuildInvalid(f"git ls-remote failed: {out.stderr.strip()[:500]}")
        refs = {}
        for line in out.stdout.splitlines():
            sha, _, ref = line.partition("\t")
            if ref.endswith("^{}"):
                refs[ref[:-3]] = sha  # a tag's commit, not the tag object
            elif ref not in refs:
                refs[ref] = sha
        return refs

    # -- running ----------------------------------------------------------------------------------
    def run(self, build_id: int, attempt: int, holder: str, stop: Callable[[], str | None]) -> dict[str, Any]:
        """The `build.run` job: run the build to its end; returns the job's result. Raises
        BuildHandBack when the worker is stopping (the job goes back to the queue)."""
        build = self.store.start(build_id, holder, attempt)
        if build is None:
            return {"skipped": "the build had ended"}
        config = self.store.config(build.repository)
        settings = self.settings.builds
        log = LogWriter(self.store, build_id, settings.max_log_bytes)
        if attempt > 1:
            log.write(f"[dockyard] attempt {attempt}: the worker of the previous attempt stopped answering\n")
        if config is None:
            return self._end(build, "failed", error="the repository's build configuration was deleted", log=log)
        try:
            target = self.check_source(config.url, allow_file=config.url.startswith("file:"))
        except BuildInvalid as exc:
            return self._end(build, "failed", error=str(exc), log=log)
        timeout = min(config.timeout_seconds or settings.timeout_seconds, settings.timeout_seconds)
        username, password = self.push_credential(build.repository, timeout + 600, build_id)
        platforms = list(build.spec.get("platforms") or [])
        work = self.root / "work" / f"build-{build_id}"
        cache = self.root / "cache" / hashlib.sha256(build.repository.encode()).hexdigest()[:24]
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        cache.mkdir(parents=True, exist_ok=True)
        spec = {
            "build_id": build_id, "ref": build.ref, "revision": build.revision, "ref_is_commit": cb.is_commit(build.ref),
            "source": {"url": target.url, "display": target.display, "provider": config.provider, "host": target.host,
                       "config": target.config, "token": self._open(config.sealed_token, TOKEN_PURPOSE),
                       "ssh_key": self._open(config.sealed_ssh_key, SSH_PURPOSE)},
            "build": {"dockerfile": build.spec.get("dockerfile", "Dockerfile"), "context": build.spec.get("context", "."),
                      "build_args": build.spec.get("build_args", {}), "platforms": platforms,
                      "isolation": settings.isolation,
                      "labels": {"org.opencontainers.image.source": target.display}},
            "no_emulation": without_emulation(platforms) if len(platforms) > 1 else [],
            "push": {"registry": self.push_target.registry, "tls_verify": self.push_target.tls_verify,
                     "repository": build.repository, "tags": build.tags, "username": username, "password": password},
            "buildah": settings.buildah, "run_as": {"uid": self.user.uid, "gid": self.user.gid} if self.user else None,
            # a layer cache per repository and per user (a rootless cache is owned by the build user's ids)
            "storage": {"root": str(cache / f"storage-{self.user.uid if self.user else os.geteuid()}"),
                        "runroot": str(work / "run")},
            "limits": {"file_bytes": int(settings.max_file_gib * (1 << 30))},
        }
        log.write(f"[dockyard] build {build_id} of {build.repository} from {target.display} {build.ref}"
                  f"{' at ' + build.revision[:12] if build.revision else ''}, tags {', '.join(build.tags)}, on {holder}, "
                  + (f"as {self.user.name} (rootless: RUN steps in a user namespace)" if self.user
                     else f"as uid {os.geteuid()} ({settings.isolation} isolation)") + "\n")
        started = time.monotonic()
        looked = [started]

        def should_stop() -> str | None:
            log.flush()
            if time.monotonic() - looked[0] >= 1.0 and build.job_id is not None:  # a cancel, without waiting for the lease renewal
                looked[0] = time.monotonic()
                if self.store.cancel_requested(build.job_id):
                    return "cancelled"
            return stop()

        try:
            outcome = run_child(spec, work, deadline=started + timeout, should_stop=should_stop, on_output=log.write,
                                on_revision=lambda rev: self.store.set_revision(build_id, rev),
                                memory_bytes=settings.memory_mib << 20, cpus=settings.cpus or None,
                                max_workspace_bytes=int(settings.max_workspace_gib * (1 << 30)),
                                storage=cache, min_free_bytes=int(settings.min_free_gib * (1 << 30)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if outcome.status == "stopped":
            log.write("[dockyard] the worker is stopping: the build goes back to the queue\n")
            log.flush()
            self.store.requeue(build_id)
            raise BuildHandBack(f"build {build_id} handed back")
        duration = round(time.monotonic() - started, 3)
        if outcome.revision:
            self.store.set_revision(build_id, outcome.revision)
        return self._end(build, outcome.status, digest=outcome.digest, error=outcome.error, log=log,
                         duration=duration, revision=outcome.revision)

    def _end(self, build: Build, status: str, *, log: LogWriter, digest: str | None = None, error: str | None = None,
             duration: float | None = None, revision: str | None = None) -> dict[str, Any]:
        log.write(f"[dockyard] {status}" + (f": {error}" if error else "") + (f" in {duration:.1f} s" if duration else "") + "\n")
        log.flush()
        detail = {"build": build.id, "ref": build.ref, "revision": revision or build.revision, "tags": build.tags,
                  "digest": digest, "status": status, "error": error, "duration_seconds": duration}
        event = NewEvent(BUILD_SUCCEEDED if status == "succeeded" else BUILD_FAILED, build.repository,
                         f"{build.repository}#build-{build.id}", detail)
        self.store.finish(build.id, status, digest=digest, error=error, event=event, events=self.events)
        return {"status": status, "digest": digest, "error": error}

    def cancel(self, build: Build) -> None:
        """A queued build ends now; a running one is stopped by its worker within a second or so."""
        assert build.job_id is not None
        job = self.jobs.cancel(build.job_id)
        if job is not None and job.state == "cancelled":
            self._end(build, "cancelled", error="the build was cancelled", log=LogWriter(self.store, build.id, 10_000))

    def fail_stranded(self) -> int:
        """End builds whose job ended without them (see the module's docstring)."""
        ended = 0
        for build, job_state in self.store.stranded():
            status, error = (("cancelled", "the build was cancelled") if job_state == "cancelled" else
                             ("failed", "the worker running it stopped answering"))
            event = NewEvent(BUILD_FAILED, build.repository, f"{build.repository}#build-{build.id}", {
                "build": build.id, "ref": build.ref, "revision": build.revision, "tags": build.tags, "digest": None,
                "status": status, "error": error, "duration_seconds": None})
            if self.store.finish(build.id, status, error=error, event=event, events=self.events):
                self.store.append_log(build.id, f"[dockyard] {status}: {error}\n")
                ended += 1
        return ended


class BuildHandBack(Exception):
    """The worker stops before the build ended: the job is handed back (jobs/kinds.py)."""


class LogWriter:
    """The build's output into its log: buffered, written at most every half second (`flush`),
    cut at `limit` characters."""

    def __init__(self, store: BuildStore, build_id: int, limit: int) -> None:
        self.store = store
        self.build_id = build_id
        self.limit = limit
        self.size = 0
        self.cut = False
        self.buffer: list[str] = []
        self.lock = threading.Lock()
        self.last = 0.0

    def write(self, text: str) -> None:
        with self.lock:
            if self.cut:
                return
            if self.size + len(text) > self.limit:
                text = text[:max(0, self.limit - self.size)] + "\n[dockyard] the log is cut here (builds.max_log_bytes)\n"
                self.cut = True
            self.size += len(text)
            self.buffer.append(text)
        if time.monotonic() - self.last > 0.5:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            text = "".join(self.buffer)
            self.buffer.clear()
            self.last = time.monotonic()
            if text:
                self.store.append_log(self.build_id, text)
