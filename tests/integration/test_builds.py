"""Automated builds through the application (api/management/builds.py, management/builds.py,
registry/builds.py, meta/builds.py) on SQLite and PostgreSQL, builds kept from running: no worker
takes them here (the embedded worker is off, and so are builds), so a queued build stays queued.

- the configuration: the provider webhook's secret shown once, secrets masked, a token kept while
  the URL stays, rotation; validation with clear messages; who may do what;
- the provider webhook for GitHub, GitLab, Gitea and Bitbucket Cloud, each signed as the provider
  documents it; refusals, replays, pings, deletions, manual-only, oversized bodies;
- superseded pushes, cancelling (with its build.failed delivery), stranded builds, polling of a
  real `git daemon` repository (tests/git_server.py), worker labels, and the build's push
  credential (one repository, expiring).

A real build (buildah, pushing to a listening registry) is in tests/e2e/test_builds_e2e.py and
tests/integration/test_cli_builds.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from dockyard.app import Services, build_services, create_app, job_services
from dockyard.config import Settings, load_settings
from dockyard.jobs.kinds import build_kinds
from dockyard.meta.db import utcnow
from dockyard.meta.tables import build_configs, build_log_chunks, events
from dockyard.meta.tables import builds as builds_table
from dockyard.meta.webhooks import WEBHOOK_DELIVER
from dockyard.registry.builds import MAX_HOOK_BODY, job_kind, worker_kinds
from tests.conftest import ADMIN, basic
from tests.git_server import GitServer, Repository, encode, git, github_headers, github_push
from tests.integration.helpers import run_jobs
from tests.webhook_receiver import Receiver

API = "/api/v1"
PUBLIC_URL = "https://registry.example.com"
PASSWORD = "a-long-password"
MASK = "********"
ZERO = "0" * 40
RULES = [{"kind": "branch", "match": "main", "tags": ["latest", "main-${sha7}"]},
         {"kind": "tag", "match": "release-v(.*)", "tags": ["${1}"]}]


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return load_settings(data_dir=tmp_path / "data", database={"url": db_url}, gc={"interval_seconds": 0},
                         uploads={"purge_interval_seconds": 0}, jobs={"embedded_worker": False},
                         scan={"enabled": False}, builds={"enabled": False}, server={"public_url": PUBLIC_URL},
                         outbound={"allowed_networks": ["127.0.0.0/8"]})


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Repository]:
    """A repository on a real `git daemon` (127.0.0.1), with a commit on main."""
    with GitServer(tmp_path) as server:
        repo = server.repository("app")
        repo.commit({"Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\n", "hello.txt": "hello\n"}, "first")
        repo.push("main")
        yield repo


def sha(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


def make_user(c: TestClient, name: str, admin: bool = False) -> dict[str, str]:
    r = c.post(f"{API}/users", json={"username": name, "password": PASSWORD, "is_admin": admin})
    assert r.status_code == 201, r.text
    return basic(name, PASSWORD)


def namespace(c: TestClient, name: str = "team", who: dict[str, str] | None = None, **extra: Any) -> None:
    r = c.post(f"{API}/namespaces", json={"name": name, **extra}, headers=who or {})
    assert r.status_code == 201, r.text


def put_config(c: TestClient, url: str, name: str = "team/app", headers: dict[str, str] | None = None,
               provider: str = "github", rules: list[dict[str, Any]] | None = None, **fields: Any) -> Any:
    source = {"provider": provider, "url": url, **fields.pop("source", {})}
    return c.put(f"{API}/repositories/{name}/build-config", json={"source": source, "rules": rules or RULES, **fields},
                 headers=headers or {})


def configure(c: TestClient, url: str = "git://127.0.0.1:9/app.git", **kwargs: Any) -> dict[str, Any]:
    r = put_config(c, url, **kwargs)
    assert r.status_code == 200, r.text
    return dict(r.json())


def err(r: Any, status: int, code: str, message: str = "") -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code and message in body["error"]["message"], body


def builds(c: TestClient, name: str = "team/app") -> list[dict[str, Any]]:
    r = c.get(f"{API}/repositories/{name}/builds")
    assert r.status_code == 200, r.text
    return list(r.json()["builds"])


def hook(c: TestClient, body: bytes, headers: dict[str, str], name: str = "team/app") -> Any:
    """A provider's delivery: no credentials (the client's own are taken off), its signature instead."""
    request = c.build_request("POST", f"{API}/repositories/{name}/build-hook", content=body, headers=headers)
    del request.headers["authorization"]
    return c.send(request)


# --- provider deliveries, as each provider makes them ---

def signed(provider: str, secret: str, payload: dict[str, Any], *, tag: bool = False, event: str | None = None,
           delivery: str | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a delivery signed as `provider` documents it."""
    body = encode(payload)
    delivery = delivery or str(uuid.uuid4())
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    common = {"Content-Type": "application/json"}
    if provider == "github":  # X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>
        return body, github_headers(secret, body, event or "push", delivery)
    if provider == "gitlab":  # the secret token itself, in X-Gitlab-Token
        return body, {**common, "X-Gitlab-Event": event or ("Tag Push Hook" if tag else "Push Hook"),
                      "X-Gitlab-Token": secret, "X-Gitlab-Event-UUID": delivery,
                      "X-Gitlab-Instance": "https://gitlab.example.com", "User-Agent": "GitLab/16.11.0"}
    if provider == "gitea":  # X-Gitea-Signature: the bare hex HMAC-SHA256
        return body, {**common, "X-Gitea-Event": event or "push", "X-Gitea-Event-Type": event or "push",
                      "X-Gitea-Delivery": delivery, "X-Gitea-Signature": digest, "User-Agent": "Go-http-client/1.1"}
    assert provider == "bitbucket"  # Bitbucket Cloud: X-Hub-Signature: sha256=<hex>
    return body, {**common, "X-Event-Key": event or "repo:push", "X-Hub-Signature": "sha256=" + digest,
                  "X-Request-UUID": delivery, "X-Hook-UUID": str(uuid.uuid4()), "X-Attempt-Number": "1",
                  "User-Agent": "Bitbucket-Webhooks/2.0"}


def push_payload(provider: str, ref: str, commit: str, *, tag_object: str | None = None,
                 deleted: bool = False) -> dict[str, Any]:
    """A push event of `provider` for one ref (an annotated tag: `tag_object` is the tag's own id)."""
    after = ZERO if deleted else (tag_object or commit)
    if provider == "github":
        payload = github_push(ref, after, before=commit if deleted else ZERO)
        payload["deleted"] = deleted
        payload["head_commit"] = None if deleted else {"id": commit, "message": "change"}
        return payload
    if provider == "gitlab":
        kind = "tag_push" if ref.startswith("refs/tags/") else "push"
        return {"object_kind": kind, "event_name": kind, "before": commit if deleted else ZERO, "after": after,
                "ref": ref, "checkout_sha": None if deleted else commit, "user_username": "alice",
                "project": {"path_with_namespace": "team/app"}, "commits": [], "total_commits_count": 0}
    if provider == "gitea":
        return {"ref": ref, "before": commit if deleted else ZERO, "after": after, "compare_url": "",
                "commits": [], "head_commit": None if deleted else {"id": commit, "message": "change"},
                "repository": {"full_name": "team/app"}, "pusher": {"login": "alice"}, "sender": {"login": "alice"}}
    assert provider == "bitbucket"
    kind, _, name = ref.removeprefix("refs/").partition("/")
    state = {"type": "branch" if kind == "heads" else "tag", "name": name,
             "target": {"type": "commit", "hash": commit}}
    change = {"old": state, "new": None, "closed": True} if deleted else {"old": None, "new": state, "created": True}
    return {"push": {"changes": [change]}, "actor": {"display_name": "Alice"},
            "repository": {"full_name": "team/app", "type": "repository"}}


# --- the configuration ---------------------------------------------------------------------------------

def test_the_secret_is_shown_once_and_secrets_are_masked_kept_and_dropped(
        app_client: TestClient, services: Services) -> None:
    c = app_client
    namespace(c)
    url, other_url = "git://127.0.0.1:9/app.git", "git://127.0.0.1:9/other.git"
    assert c.get(f"{API}/repositories/team/app/build-config").status_code == 404
    first = configure(c, url, source={"token": "ghp_source_token"}, timeout_seconds=600)
    secret = first["webhook_secret"]
    assert secret.startswith("dkh_") and len(secret) > 40
    assert first["webhook_url"] == f"{PUBLIC_URL}/api/v1/repositories/team/app/build-hook"
    assert first["source"] == {"provider": "github", "url": url, "token": MASK, "ssh_key": None}
    assert first["rules"][0] == {**RULES[0], "dockerfile": "Dockerfile", "context": ".", "build_args": {},
                                 "platforms": [], "worker_labels": {}}
    assert (first["auto_build"], first["cancel_superseded"], first["timeout_seconds"]) == (True, True, 600)
    assert first["created_by"] == "admin"
    assert c.get(f"{API}/repositories/team/app").status_code == 200  # configuring creates the repository

    shown = c.get(f"{API}/repositories/team/app/build-config").json()
    assert shown["webhook_secret"] == MASK and shown["source"]["token"] == MASK
    assert "ghp_source_token" not in json.dumps(shown) and secret not in json.dumps(shown)

    # again without a token, same URL: the token and the webhook secret are kept
    again = configure(c, url)
    assert again["source"]["token"] == MASK and again["webhook_secret"] == secret
    stored = services.builds.store.config("team/app")
    assert stored is not None and services.builds._open(stored.sealed_token, "build-source-token") == "ghp_source_token"
    assert "ghp_source_token" not in (stored.sealed_token or "")  # sealed
    # another URL: the token is not sent where it was not given for
    moved = configure(c, other_url)
    assert moved["source"]["token"] is None and moved["webhook_secret"] == secret
    # "" or null: none
    assert configure(c, other_url, source={"token": "t2"})["source"]["token"] == MASK
    assert configure(c, other_url, source={"token": None})["source"]["token"] is None

    # rotating: a new secret, and the old one no longer verifies
    body, headers = signed("github", secret, push_payload("github", "refs/heads/main", sha("a")))
    assert hook(c, body, headers).status_code == 202
    rotated = configure(c, other_url, rotate_webhook_secret=True)["webhook_secret"]
    assert rotated != secret and rotated.startswith("dkh_")
    body, headers = signed("github", secret, push_payload("github", "refs/heads/main", sha("b")))
    err(hook(c, body, headers), 401, "unauthenticated", "signature")
    body, headers = signed("github", rotated, push_payload("github", "refs/heads/main", sha("b")))
    assert hook(c, body, headers).status_code == 202
    # the audit log records the change, never a secret
    audit = c.get(f"{API}/audit", params={"action": "build.configure"}).text
    assert "build.configure" in audit and "ghp_source_token" not in audit and secret not in audit
    assert c.delete(f"{API}/repositories/team/app/build-config").status_code == 204
    assert c.get(f"{API}/repositories/team/app/build-config").status_code == 404


@pytest.mark.parametrize(("change", "message"), [
    ({"rules": [{"kind": "branch", "match": "(", "tags": ["x"]}]}, "rules: rule 1: match '(' is not a valid regular expression"),
    ({"rules": [RULES[0], {"kind": "branch", "match": "main", "tags": ["${1}"]}]},
     "rules: rule 2: tag template '${1}': ${1} but match has 0 group(s)"),
    ({"rules": [{"kind": "branch", "match": "(?P<v>.*)", "tags": ["${version}"]}]}, "unknown variable ${version}"),
    ({"rules": [{"kind": "branch", "match": "main", "tags": ["${tag}"]}]}, "${tag} is for tag rules"),
    ({"rules": [{"kind": "branch", "match": "main", "tags": ["latest"], "dockerfile": "../x"}]},
     "dockerfile '../x' must be relative to the repository, without '..'"),
    ({"rules": [{"kind": "branch", "match": "main", "tags": ["latest"], "context": "/etc"}]}, "context '/etc'"),
    ({"rules": [{"kind": "branch", "match": "main", "tags": ["latest"], "platforms": ["amd64"]}]}, "os/arch"),
    ({"rules": [{"kind": "branch", "match": "main", "tags": ["latest"], "worker_labels": {"Region": "x"}}]},
     "worker label 'Region'"),
    ({"rules": [{"kind": "branch", "match": "main", "tags": ["bad tag"]}]}, "is not a valid tag"),
    ({"rules": [{"kind": "commit", "match": "main", "tags": ["latest"]}]}, "kind"),
    ({"rules": []}, "rules"),
    ({"source": {"provider": "svn", "url": "git://127.0.0.1:9/app.git"}}, "provider"),
    ({"source": {"provider": "github", "url": "http://169.254.169.254/x"}},
     "source.url: 169.254.169.254 resolves to 169.254.169.254, which is link-local"),
    ({"source": {"provider": "github", "url": "http://10.0.0.5/x.git"}}, "which is private"),
    ({"source": {"provider": "github", "url": "ext::sh -c touch% /tmp/pwned"}}, "source.url: not a clone URL"),
    ({"source": {"provider": "github", "url": "https://user:ghp_x@127.0.0.1/x.git"}}, "not in the URL"),
    ({"source": {"provider": "github", "url": "/srv/git/app.git"}}, "only https://"),
    ({"timeout_seconds": 5}, "timeout_seconds: 10 to 3600 (builds.timeout_seconds)"),
    ({"timeout_seconds": 3601}, "timeout_seconds: 10 to 3600"),
    ({"poll_interval_seconds": 10}, "poll_interval_seconds: 60 to 86400"),
    ({"source": {"provider": "github", "url": "git://127.0.0.1:9/app.git", "token": "x" * 16385}}, "token"),
])
def test_invalid_configurations_are_refused_with_clear_messages(app_client: TestClient, change: dict[str, Any],
                                                               message: str) -> None:
    namespace(app_client)
    body = {"source": {"provider": "github", "url": "git://127.0.0.1:9/app.git"}, "rules": RULES, **change}
    r = app_client.put(f"{API}/repositories/team/app/build-config", json=body)
    err(r, 422, "invalid", message)
    assert app_client.get(f"{API}/repositories/team/app/build-config").status_code == 404
    assert app_client.get(f"{API}/repositories/team/app").status_code == 404  # a refusal changes nothing


def test_loopback_is_refused_unless_allowed(app_client: TestClient, settings: Settings) -> None:
    namespace(app_client)
    strict = settings.model_copy(update={"outbound": settings.outbound.model_copy(update={"allowed_networks": []})})
    other = build_services(strict)  # a node of the same registry without the allowance (the default)
    try:
        with TestClient(create_app(strict, other), base_url="http://registry.test", headers=basic(*ADMIN)) as client:
            for url in ("http://127.0.0.1:8080/app.git", "git://localhost/app.git", "git@127.0.0.1:team/app.git"):
                err(put_config(client, url), 422, "invalid", "which is loopback")
            assert put_config(client, "file:///srv/git/app.git").status_code == 200  # not an address: administrators
    finally:
        other.db.dispose()
    assert configure(app_client, "http://127.0.0.1:8080/app.git")["source"]["url"] == "http://127.0.0.1:8080/app.git"


def test_file_urls_are_for_administrators_only(app_client: TestClient) -> None:
    c = app_client
    alice = make_user(c, "alice")
    namespace(c, "team", alice)
    err(put_config(c, "file:///srv/git/app.git", headers=alice), 422, "invalid", "file:// clone URLs are for administrators only")
    err(put_config(c, "FILE:///srv/git/app.git", headers=alice), 422, "invalid", "administrators only")
    assert c.get(f"{API}/repositories/team/app/build-config", headers=alice).status_code == 404
    assert configure(c, "file:///srv/git/app.git")["source"]["url"] == "file:///srv/git/app.git"  # an administrator
    # the owner may not keep it by changing something else: the URL is checked for whoever sends it
    err(put_config(c, "file:///srv/git/app.git", headers=alice, auto_build=False), 422, "invalid", "administrators")


# --- who may do what ---------------------------------------------------------------------------------------

def test_owners_configure_developers_build_guests_look_strangers_see_nothing(
        app_client: TestClient, source: Repository) -> None:
    c = app_client
    alice, dave, gus, sam = (make_user(c, n) for n in ("alice", "dave", "gus", "sam"))
    namespace(c, "team", alice)
    for user, role in (("dave", "developer"), ("gus", "guest")):
        assert c.put(f"{API}/namespaces/team/members/{user}", json={"role": role}, headers=alice).status_code == 200
    assert put_config(c, source.url, headers=alice).status_code == 200
    err(put_config(c, source.url, headers=dave), 403, "forbidden", "developer")
    err(put_config(c, source.url, headers=gus), 403, "forbidden")
    err(c.delete(f"{API}/repositories/team/app/build-config", headers=dave), 403, "forbidden")

    shown = c.get(f"{API}/repositories/team/app/build-config", headers=dave)
    assert shown.status_code == 200 and shown.json()["webhook_secret"] == MASK
    err(c.get(f"{API}/repositories/team/app/build-config", headers=gus), 403, "forbidden")

    started = c.post(f"{API}/repositories/team/app/builds", json={"ref": "refs/heads/main"}, headers=dave)
    assert started.status_code == 202, started.text
    build = started.json()["builds"][0]
    assert (build["status"], build["trigger"], build["triggered_by"]) == ("queued", "manual", "dave")
    err(c.post(f"{API}/repositories/team/app/builds", json={"ref": "refs/heads/main"}, headers=gus), 403, "forbidden")

    assert [b["id"] for b in builds(c)] == [build["id"]]
    assert c.get(f"{API}/repositories/team/app/builds", headers=gus).json()["builds"][0]["id"] == build["id"]
    assert c.get(f"{API}/builds/{build['id']}", headers=gus).status_code == 200
    log = c.get(f"{API}/builds/{build['id']}/log", headers=gus)
    assert log.status_code == 200 and log.headers["x-build-status"] == "queued" and log.headers["x-log-size"] == "0"
    err(c.post(f"{API}/builds/{build['id']}/cancel", json={}, headers=gus), 403, "forbidden")

    for path in ("/repositories/team/app/builds", "/repositories/team/app/build-config", f"/builds/{build['id']}",
                 f"/builds/{build['id']}/log"):
        err(c.get(API + path, headers=sam), 404, "not_found")
    err(c.post(f"{API}/repositories/team/app/builds", json={"ref": "refs/heads/main"}, headers=sam), 404, "not_found")
    err(c.post(f"{API}/builds/{build['id']}/cancel", json={}, headers=sam), 404, "not_found")
    err(put_config(c, source.url, headers=sam), 404, "not_found")

    cancelled = c.post(f"{API}/builds/{build['id']}/cancel", json={}, headers=dave)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    actions = [(e["action"], e["actor"]) for e in c.get(f"{API}/audit", params={"target": "team/app"}).json()["items"]]
    assert {("build.configure", "alice"), ("build.start", "dave"), ("build.cancel", "dave")} <= set(actions)


def test_a_public_namespace_shows_builds_to_members_only(app_client: TestClient, anon_client: TestClient) -> None:
    c = app_client
    alice, sam = make_user(c, "alice"), make_user(c, "sam")
    namespace(c, "team", alice, public=True)
    configure(c, headers=alice)
    err(c.get(f"{API}/repositories/team/app/builds", headers=sam), 403, "forbidden", "only members of 'team'")
    err(c.get(f"{API}/repositories/team/app/build-config", headers=sam), 403, "forbidden")
    err(anon_client.get(f"{API}/repositories/team/app/builds"), 401, "unauthenticated")
    assert c.get(f"{API}/repositories/team/app/builds", headers=alice).status_code == 200


def _management_token(c: TestClient, user: str, password: str) -> dict[str, str]:
    r = c.get("/auth/token", params={"service": "dockyard", "scope": ["management"]}, headers=basic(user, password))
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_robots_and_temporary_passwords_change_nothing(app_client: TestClient) -> None:
    c = app_client
    alice = make_user(c, "alice")
    namespace(c, "team", alice)
    configure(c, headers=alice)
    build_id = c.post(f"{API}/repositories/team/app/builds", json={"ref": sha("c")}).json()["id"]
    robot = c.post(f"{API}/namespaces/team/robots", headers=alice, json={
        "name": "ci", "permissions": [{"repositories": "*", "actions": ["pull", "push"]}]}).json()
    temp = c.post(f"{API}/user/temp-passwords", json={}, headers=alice).json()  # unlimited: reads as alice
    limited = c.post(f"{API}/user/temp-passwords", json={"repositories": ["team/app"]}, headers=alice).json()
    for who, credentials in (("robot", (robot["username"], robot["secret"])), ("temp", ("alice", temp["password"])),
                             ("limited", ("alice", limited["password"]))):
        t = _management_token(c, *credentials)
        err(put_config(c, "git://127.0.0.1:9/app.git", headers=t), 403, "forbidden")
        err(c.delete(f"{API}/repositories/team/app/build-config", headers=t), 403, "forbidden")
        err(c.post(f"{API}/repositories/team/app/builds", json={"ref": sha("d")}, headers=t), 403, "forbidden")
        err(c.post(f"{API}/builds/{build_id}/cancel", json={}, headers=t), 403, "forbidden")
        listed = c.get(f"{API}/repositories/team/app/builds", headers=t)
        assert listed.status_code == (200 if who == "temp" else 403), (who, listed.text)
        # nor as Basic credentials on this API
        assert c.get(f"{API}/repositories/team/app/builds", headers=basic(*credentials)).status_code == 401
    assert [b["status"] for b in builds(c)] == ["queued"]


# --- manual builds --------------------------------------------------------------------------------------------

def test_manual_builds_of_a_branch_a_tag_and_a_commit(app_client: TestClient, source: Repository) -> None:
    c = app_client
    namespace(c)
    configure(c, source.url)
    head = git("rev-parse", "HEAD", cwd=source.work)
    r = c.post(f"{API}/repositories/team/app/builds", json={"ref": "refs/heads/main"})
    assert r.status_code == 202, r.text
    [main] = r.json()["builds"]
    assert r.json()["id"] == main["id"]
    assert (main["ref"], main["revision"], main["tags"]) == ("refs/heads/main", head, ["latest", f"main-{head[:7]}"])
    commit = source.tag("release-v1.2")  # annotated: ls-remote's peeled ^{} is the commit
    [tagged] = c.post(f"{API}/repositories/team/app/builds", json={"ref": "refs/tags/release-v1.2"}).json()["builds"]
    assert (tagged["revision"], tagged["tags"], tagged["rule"]) == (commit, ["1.2"], 1)
    [pinned] = c.post(f"{API}/repositories/team/app/builds", json={"ref": head}).json()["builds"]
    assert (pinned["revision"], pinned["tags"], pinned["rule"]) == (head, [f"sha-{head[:12]}"], 0)
    [custom] = c.post(f"{API}/repositories/team/app/builds", json={"ref": "refs/heads/main", "tags": ["hotfix"]}).json()["builds"]
    assert custom["tags"] == ["hotfix"]
    # manual builds supersede nothing
    assert [b["status"] for b in builds(c)] == ["queued"] * 4

    err(c.post(f"{API}/repositories/team/app/builds", json={"ref": "refs/heads/nope"}), 422, "invalid",
        f"ref: refs/heads/nope is not in {source.url}")
    err(c.post(f"{API}/repositories/team/app/builds", json={"ref": "main"}), 422, "invalid", "refs/heads/BRANCH")
    err(c.post(f"{API}/repositories/team/app/builds", json={"ref": "refs/heads/main", "tags": ["bad tag"]}), 422,
        "invalid", "not a valid image tag")
    source.commit({"x": "1"}, "other branch")
    source.push("feature")
    err(c.post(f"{API}/repositories/team/app/builds", json={"ref": "refs/heads/feature"}), 422, "invalid",
        "no build rule of 'team/app' matches refs/heads/feature")
    err(c.post(f"{API}/repositories/team/app/builds", json={"ref": head, "rule": 5}), 422, "invalid", "no such rule")
    err(c.post(f"{API}/repositories/team/other/builds", json={"ref": head}), 404, "not_found", "no build configuration")
    assert len(builds(c)) == 4


# --- the provider webhook ------------------------------------------------------------------------------------

@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea", "bitbucket"])
def test_signed_pushes_of_each_provider_queue_builds(app_client: TestClient, provider: str) -> None:
    c = app_client
    namespace(c)
    secret = configure(c, provider=provider)["webhook_secret"]
    commit, tag_object = sha("main"), sha("tag object")

    body, headers = signed(provider, secret, push_payload(provider, "refs/heads/main", commit))
    r = hook(c, body, headers)
    assert r.status_code == 202, r.text
    assert r.json()["note"] == "1 build(s) queued"
    [main] = builds(c)
    assert r.json()["builds"] == [main["id"]]
    assert (main["status"], main["ref"], main["revision"], main["tags"], main["trigger"], main["triggered_by"]) == (
        "queued", "refs/heads/main", commit, ["latest", f"main-{commit[:7]}"], "webhook", f"{provider} webhook")

    # a tag: the commit it points at, not the annotated tag's own object
    tagged = push_payload(provider, "refs/tags/release-v1.2", commit, tag_object=tag_object)
    body, headers = signed(provider, secret, tagged, tag=True)
    r = hook(c, body, headers)
    assert r.status_code == 202, r.text
    new = builds(c)[0]
    assert (new["ref"], new["revision"], new["tags"], new["rule"]) == ("refs/tags/release-v1.2", commit, ["1.2"], 1)

    # the same delivery again (its id): nothing more
    replay = hook(c, body, headers)
    assert replay.status_code == 200 and replay.json()["builds"] == [] and "received before" in replay.json()["note"]

    # a wrong secret, no signature at all, a signature of another body: 401, nothing queued
    body, headers = signed(provider, "dkh_not-the-secret", push_payload(provider, "refs/heads/main", sha("x")))
    err(hook(c, body, headers), 401, "unauthenticated", "the signature is missing or wrong")
    unsigned = {k: v for k, v in headers.items() if k not in ("X-Hub-Signature-256", "X-Gitlab-Token",
                                                             "X-Gitea-Signature", "X-Hub-Signature")}
    err(hook(c, body, unsigned), 401, "unauthenticated")
    body, headers = signed(provider, secret, push_payload(provider, "refs/heads/main", sha("y")))
    if provider != "gitlab":  # GitLab signs nothing: its token is the same for any body
        err(hook(c, body.replace(sha("y").encode(), sha("z").encode()), headers), 401, "unauthenticated")
    assert len(builds(c)) == 2

    # a deleted branch starts nothing
    body, headers = signed(provider, secret, push_payload(provider, "refs/heads/main", commit, deleted=True))
    r = hook(c, body, headers)
    assert r.status_code == 200 and r.json() == {"note": "no rule matches", "builds": []}
    # a branch no rule matches neither
    body, headers = signed(provider, secret, push_payload(provider, "refs/heads/feature", sha("f")))
    assert hook(c, body, headers).json() == {"note": "no rule matches", "builds": []}
    assert len(builds(c)) == 2


def test_one_bitbucket_delivery_may_carry_several_changes(app_client: TestClient) -> None:
    namespace(app_client)
    secret = configure(app_client, provider="bitbucket")["webhook_secret"]
    payload = push_payload("bitbucket", "refs/heads/main", sha("1"))
    payload["push"]["changes"] += push_payload("bitbucket", "refs/tags/release-v2.0", sha("2"))["push"]["changes"]
    payload["push"]["changes"] += push_payload("bitbucket", "refs/heads/old", sha("3"), deleted=True)["push"]["changes"]
    body, headers = signed("bitbucket", secret, payload)
    r = hook(app_client, body, headers)
    assert r.status_code == 202 and len(r.json()["builds"]) == 2
    assert sorted((b["ref"], tuple(b["tags"])) for b in builds(app_client)) == [
        ("refs/heads/main", ("latest", f"main-{sha('1')[:7]}")), ("refs/tags/release-v2.0", ("2.0",))]


def test_pings_other_events_unknown_repositories_bad_bodies_and_manual_only(app_client: TestClient) -> None:
    c = app_client
    namespace(c)
    secret = configure(c)["webhook_secret"]
    body, headers = signed("github", secret, {"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    r = hook(c, body, headers)
    assert r.status_code == 200 and r.json() == {"note": "pong", "builds": []}
    body, headers = signed("github", secret, {"action": "opened"}, event="issues")
    assert hook(c, body, headers).json()["note"] == "ignored: not a push or tag event"
    # a ping signed wrongly is refused like anything else
    body, headers = signed("github", "dkh_wrong", {"zen": "x"}, event="ping")
    err(hook(c, body, headers), 401, "unauthenticated")

    # a repository without a configuration, or none at all: the same answer as a wrong signature
    body, headers = signed("github", secret, push_payload("github", "refs/heads/main", sha("a")))
    for name in ("team/other", "nobody/nothing"):
        err(hook(c, body, headers, name=name), 401, "unauthenticated", "the signature is missing or wrong")

    # signed, but not a push
    for bad in (b"not json", b"[]", json.dumps({"ref": "refs/heads/main", "after": "nope"}).encode()):
        digest = "sha256=" + hmac.new(secret.encode(), bad, hashlib.sha256).hexdigest()
        r = hook(c, bad, {**headers, "X-Hub-Signature-256": digest, "X-GitHub-Delivery": str(uuid.uuid4())})
        err(r, 400, "invalid", "not a push event")

    # more than 1 MiB: refused before anything else
    big = b"{" + b" " * MAX_HOOK_BODY + b"}"
    r = hook(c, big, {**headers, "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), big, hashlib.sha256).hexdigest()})
    err(r, 413, "invalid", "larger than")

    # manual only: a signed push starts nothing
    configure(c, auto_build=False)
    body, headers = signed("github", secret, push_payload("github", "refs/heads/main", sha("b")))
    r = hook(c, body, headers)
    assert r.status_code == 200 and r.json() == {"note": "automatic builds are off for this repository", "builds": []}
    assert builds(c) == []


# --- superseded, cancelled, stranded ------------------------------------------------------------------------

def test_a_newer_push_supersedes_a_queued_build_of_the_same_rule_and_ref(app_client: TestClient,
                                                                        services: Services) -> None:
    c = app_client
    namespace(c)
    secret = configure(c)["webhook_secret"]

    def push(ref: str, commit: str) -> int:
        body, headers = signed("github", secret, push_payload("github", ref, commit))
        r = hook(c, body, headers)
        assert r.status_code == 202, r.text
        return int(r.json()["builds"][0])

    first = push("refs/heads/main", sha("1"))
    tag = push("refs/tags/release-v1.0", sha("1"))
    second = push("refs/heads/main", sha("2"))
    by_id = {b["id"]: b for b in builds(c)}
    assert by_id[first]["status"] == "cancelled" and by_id[first]["error"] == "superseded by a newer push"
    assert by_id[first]["finished_at"] is not None
    assert by_id[second]["status"] == "queued" and by_id[tag]["status"] == "queued"  # another ref
    first_build = services.builds.store.get(first)
    assert first_build is not None and first_build.job_id is not None
    job = services.jobs.get(first_build.job_id)
    assert job is not None and job.state == "cancelled"
    assert services.jobs.claim("test", ["build.run"], 60).args == {"build": tag}  # type: ignore[union-attr]

    # without cancel_superseded both stay queued
    configure(c, cancel_superseded=False)
    third = push("refs/heads/main", sha("3"))
    by_id = {b["id"]: b for b in builds(c)}
    assert by_id[second]["status"] == "queued" and by_id[third]["status"] == "queued"


def test_cancelling_a_queued_build_ends_it_and_tells_the_webhooks(app_client: TestClient, services: Services) -> None:
    c = app_client
    namespace(c)
    configure(c)
    with Receiver() as receiver:
        r = c.post(f"{API}/namespaces/team/webhooks", json={"url": receiver.url, "events": ["build.failed"]})
        assert r.status_code == 201, r.text
        webhook = r.json()
        build = c.post(f"{API}/repositories/team/app/builds", json={"ref": sha("c")}).json()["builds"][0]
        r = c.post(f"{API}/builds/{build['id']}/cancel", json={})
        assert r.status_code == 200, r.text
        cancelled = r.json()
        assert (cancelled["status"], cancelled["error"]) == ("cancelled", "the build was cancelled")
        stored = services.builds.store.get(build["id"])
        assert stored is not None and stored.job_id is not None
        assert services.jobs.get(stored.job_id).state == "cancelled"  # type: ignore[union-attr]
        assert "[dockyard] cancelled: the build was cancelled" in c.get(f"{API}/builds/{build['id']}/log").text
        # cancelling again changes nothing
        again = c.post(f"{API}/builds/{build['id']}/cancel", json={})
        assert again.status_code == 200 and again.json()["finished_at"] == cancelled["finished_at"]

        run_jobs(services, (WEBHOOK_DELIVER,))
        [request] = receiver.requests
    assert Receiver.verify(webhook["secret"], request)
    payload = request.json()
    assert payload["type"] == "build.failed"
    assert payload["data"]["build"] == build["id"] and payload["data"]["status"] == "cancelled"
    assert payload["data"]["repository"] == "team/app" and payload["data"]["tags"] == [f"sha-{sha('c')[:12]}"]
    [delivery] = c.get(f"{API}/namespaces/team/webhooks/{webhook['id']}/deliveries").json()["items"]
    assert delivery["event"] == "build.failed" and delivery["status"] == "succeeded"


def test_a_build_whose_job_ended_without_it_is_failed_never_left_running(app_client: TestClient,
                                                                       services: Services) -> None:
    c = app_client
    namespace(c)
    configure(c)
    queued = c.post(f"{API}/repositories/team/app/builds", json={"ref": sha("q")}).json()["id"]
    running = c.post(f"{API}/repositories/team/app/builds", json={"ref": sha("r")}).json()["id"]
    waiting = c.post(f"{API}/repositories/team/app/builds", json={"ref": sha("w")}).json()["id"]
    store = services.builds.store
    assert services.builds.fail_stranded() == 0  # their jobs are queued
    # the worker of `running` died during its last attempt; `queued`'s job failed before it started
    for build_id in (queued, running):
        job = services.jobs.claim("dead-worker", ["build.run"], 60)
        assert job is not None and job.args == {"build": build_id}
        if build_id == running:
            assert store.start(build_id, "dead-worker", job.attempts) is not None
            store.append_log(build_id, "STEP 1/2: FROM scratch\n")
        services.jobs.fail(job.id, "dead-worker", "the worker's lease ran out", None)
    assert services.builds.fail_stranded() == 2
    assert services.builds.fail_stranded() == 0
    for build_id in (queued, running):
        build = c.get(f"{API}/builds/{build_id}").json()
        assert (build["status"], build["error"]) == ("failed", "the worker running it stopped answering")
        assert build["finished_at"] is not None
        assert c.get(f"{API}/builds/{build_id}/log").text.endswith(
            "[dockyard] failed: the worker running it stopped answering\n")
    assert c.get(f"{API}/builds/{waiting}").json()["status"] == "queued"
    with services.db.read() as conn:
        details = [json.loads(d) for d in conn.execute(select(events.c.detail).where(events.c.kind == "build.failed"))
                   .scalars()]
    assert sorted((d["build"], d["status"], d["error"]) for d in details) == [
        (queued, "failed", "the worker running it stopped answering"),
        (running, "failed", "the worker running it stopped answering")]


def test_finished_builds_are_forgotten_after_their_retention(app_client: TestClient, services: Services) -> None:
    c = app_client
    namespace(c)
    configure(c)
    old, recent, waiting = (c.post(f"{API}/repositories/team/app/builds", json={"ref": sha(x)}).json()["id"]
                            for x in ("o", "n", "w"))
    store = services.builds.store
    for build_id in (old, recent):
        store.append_log(build_id, "a line\n")
        assert store.finish(build_id, "succeeded", digest="sha256:" + "0" * 64) is not None
    with services.db.write() as conn:
        conn.execute(update(builds_table).where(builds_table.c.id == old)
                     .values(finished_at=utcnow() - timedelta(days=91)))
    assert store.purge(90 * 86400) == 1
    assert c.get(f"{API}/builds/{old}").status_code == 404
    assert store.log(old) == ("", 0)
    assert c.get(f"{API}/builds/{recent}").json()["status"] == "succeeded"
    assert c.get(f"{API}/builds/{waiting}").json()["status"] == "queued"  # not finished: kept
    with services.db.read() as conn:
        assert conn.execute(select(build_log_chunks.c.build_id).where(build_log_chunks.c.build_id == old)).first() is None


# --- polling ---------------------------------------------------------------------------------------------------

def test_polling_records_refs_first_then_builds_what_moved(app_client: TestClient, services: Services,
                                                          source: Repository) -> None:
    c = app_client
    namespace(c)
    configure(c, source.url, provider="git", poll_interval_seconds=60)
    configure(c, source.url, name="team/manual", provider="git", poll_interval_seconds=60, auto_build=False)
    service = services.builds

    def due() -> None:
        with services.db.write() as conn:
            conn.execute(update(build_configs).values(polled_at=utcnow() - timedelta(seconds=61)))

    head = git("rev-parse", "HEAD", cwd=source.work)
    assert service.poll(lambda: None) == {"looked": 1, "started": 0}  # the first look: what is there now
    config = service.store.config("team/app")
    assert config is not None and config.poll_state == {"refs/heads/main": head} and config.polled_at is not None
    assert builds(c) == []

    newer = source.commit({"hello.txt": "newer\n"}, "second")
    source.push("main")
    assert service.poll(lambda: None) == {"looked": 0, "started": 0}  # the interval has not passed
    due()
    assert service.poll(lambda: None) == {"looked": 1, "started": 1}
    [built] = builds(c)
    assert (built["ref"], built["revision"], built["tags"], built["trigger"], built["triggered_by"]) == (
        "refs/heads/main", newer, ["latest", f"main-{newer[:7]}"], "poll", "polling")
    due()
    assert service.poll(lambda: None) == {"looked": 1, "started": 0}  # nothing moved

    commit = source.tag("release-v2.0")
    source.commit({"x": "y"}, "a branch no rule builds")
    source.push("feature")
    due()
    assert service.poll(lambda: None) == {"looked": 1, "started": 1}
    assert (builds(c)[0]["ref"], builds(c)[0]["revision"], builds(c)[0]["tags"]) == ("refs/tags/release-v2.0",
                                                                                    commit, ["2.0"])
    assert builds(c, "team/manual") == []

    # another source (one that does not answer): its refs are new to polling, so the state starts
    # over; a failed look starts nothing and keeps the (empty) state, and is tried again later
    configure(c, "git://127.0.0.1:9/gone.git", provider="git", poll_interval_seconds=60)
    assert service.store.config("team/app").poll_state is None  # type: ignore[union-attr]
    due()
    assert service.poll(lambda: None) == {"looked": 1, "started": 0}
    assert service.store.config("team/app").poll_state is None  # type: ignore[union-attr]
    # and the poll checks the job between sources (a cancel stops it)
    due()

    class Stop(Exception):
        pass

    def check() -> None:
        raise Stop

    with pytest.raises(Stop):
        service.poll(check)


# --- worker labels ----------------------------------------------------------------------------------------------

def test_worker_labels_pick_the_workers_that_take_a_build(app_client: TestClient, services: Services) -> None:
    assert worker_kinds({}) == ["build.run"]
    assert worker_kinds({"region": "overseas"}) == ["build.run", "build.run@region=overseas"]
    assert sorted(worker_kinds({"region": "overseas", "gpu": "yes"})) == [
        "build.run", "build.run@gpu=yes", "build.run@gpu=yes,region=overseas", "build.run@region=overseas"]
    assert job_kind({"region": "overseas", "gpu": "yes"}) == "build.run@gpu=yes,region=overseas"
    wired = job_services(services)
    assert [k.name for k in build_kinds(wired, {"region": "overseas"})] == [
        "build.run", "build.run@region=overseas", "build.poll"]

    c = app_client
    namespace(c)
    configure(c, rules=[{"kind": "branch", "match": "main", "tags": ["latest"], "worker_labels": {"region": "overseas"}},
                        {"kind": "branch", "match": "ma.*", "tags": ["anywhere"]}])
    ids = c.post(f"{API}/repositories/team/app/builds", json={"ref": sha("l"), "rule": 0}).json()["builds"]
    labelled = services.builds.store.get(ids[0]["id"])
    assert labelled is not None and labelled.job_id is not None
    assert services.jobs.get(labelled.job_id).kind == "build.run@region=overseas"  # type: ignore[union-attr]
    # an unlabelled worker, or one with other labels, does not take it; a worker with the label does
    assert services.jobs.claim("plain", worker_kinds({}), 60) is None
    assert services.jobs.claim("home", worker_kinds({"region": "home", "gpu": "yes"}), 60) is None
    job = services.jobs.claim("overseas", worker_kinds({"region": "overseas", "gpu": "yes"}), 60)
    assert job is not None and job.args == {"build": labelled.id}
    unlabelled = c.post(f"{API}/repositories/team/app/builds", json={"ref": sha("u"), "rule": 1}).json()["id"]
    job = services.jobs.claim("plain", worker_kinds({}), 60)
    assert job is not None and job.kind == "build.run" and job.args == {"build": unlabelled}


# --- the build's push credential ---------------------------------------------------------------------------

def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_the_push_credential_is_for_one_repository_and_expires(app_client: TestClient, anon_client: TestClient,
                                                              services: Services) -> None:
    c = app_client
    namespace(c)
    namespace(c, "other-ns")
    user, password = services.auth.build_credential("team/app", 60)
    assert user == "dockyard-build"
    scopes = ["repository:team/app:pull,push", "repository:team/other:pull,push", "repository:other-ns/app:pull,push"]
    r = anon_client.get("/auth/token", params={"service": "dockyard", "scope": scopes}, headers=basic(user, password))
    assert r.status_code == 200, r.text
    access = _claims(r.json()["token"])["access"]
    assert [(a["name"], sorted(a["actions"])) for a in access] == [("team/app", ["pull", "push"])]
    bearer = {"Authorization": f"Bearer {r.json()['token']}"}
    assert anon_client.post("/v2/team/app/blobs/uploads/", headers=bearer).status_code == 202
    assert anon_client.post("/v2/team/other/blobs/uploads/", headers=bearer).status_code in (401, 403)
    assert anon_client.post("/v2/other-ns/app/blobs/uploads/", headers=bearer).status_code in (401, 403)
    # Basic credentials on /v2 directly: the same limits
    assert anon_client.post("/v2/team/app/blobs/uploads/", headers=basic(user, password)).status_code == 202
    assert anon_client.post("/v2/team/other/blobs/uploads/", headers=basic(user, password)).status_code in (401, 403)
    # the management API is not for it
    assert anon_client.get(f"{API}/repositories/team/app/builds", headers=basic(user, password)).status_code == 401
    r = anon_client.get("/auth/token", params={"service": "dockyard", "scope": ["management"]},
                        headers=basic(user, password))
    assert r.status_code == 401, r.text  # no management token for it

    # expired, tampered with, or another kind of token: refused
    _, expired = services.auth.build_credential("team/app", -10)
    header, payload, signature = password.split(".")
    forged = ".".join([header, payload, signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")])
    admin_token = anon_client.get("/auth/token", params={"service": "dockyard", "scope": scopes[0]},
                                  headers=basic(*ADMIN)).json()["token"]
    for bad in (expired, forged, admin_token, "", "not-a-jwt"):
        r = anon_client.get("/auth/token", params={"service": "dockyard", "scope": scopes[0]}, headers=basic(user, bad))
        assert r.status_code == 401, (bad[:20], r.text)


def test_one_builds_credential_never_gets_what_another_builds_was_granted(
        anon_client: TestClient, services: Services) -> None:
    # Each credential is a principal of its own (robot build-…), so the single-process access
    # cache (AuthService.allowed, on with SQLite) never hands one build's decision to another.
    namespace(anon_client, "team", basic(*ADMIN))
    _, app = services.auth.build_credential("team/app", 60)
    _, other = services.auth.build_credential("team/other", 60)
    scope = {"service": "dockyard", "scope": "repository:team/other:pull,push"}
    r = anon_client.get("/auth/token", params=scope, headers=basic("dockyard-build", other))
    assert _claims(r.json()["token"])["access"][0]["actions"] == ["pull", "push"]
    r = anon_client.get("/auth/token", params=scope, headers=basic("dockyard-build", app))
    assert r.status_code == 200 and _claims(r.json()["token"])["access"] == []


def test_a_user_named_dockyard_build_cannot_log_in_to_the_registry(app_client: TestClient,
                                                                  anon_client: TestClient) -> None:
    c = app_client
    r = c.post(f"{API}/users", json={"username": "dockyard-build", "password": PASSWORD})
    if r.status_code != 201:  # the name is reserved
        assert r.status_code in (409, 422), r.text
        return
    # created (the name is not reserved): its password never works at the registry, which reads
    # dockyard-build's password as a build credential
    r = anon_client.get("/auth/token", params={"service": "dockyard", "scope": "repository:dockyard-build/x:pull,push"},
                        headers=basic("dockyard-build", PASSWORD))
    assert r.status_code == 401
    assert anon_client.get("/v2/", headers=basic("dockyard-build", PASSWORD)).status_code == 401

