"""Issue 3's "Done when", end to end: namespaces, roles, public repositories, robot accounts and
temporary passwords against a real `dockyard serve`, with real clients (skopeo, podman, buildah,
ctr; tests/e2e/clients.py) and images the tests build themselves.

The management API and CLI are not used here: namespaces, members, robots and temporary passwords
are written straight into the server's stores (see access_helpers.py). Credentials are created
before their first use, so neither the server's 5-second access cache nor its 60-second cache of
verified passwords can hide a change.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import ServerProcess, basic
from tests.e2e import access_helpers as h
from tests.e2e import clients as cl

pytestmark = pytest.mark.e2e

ROBOT_PERMISSIONS = [{"repositories": "*", "actions": ["pull", "push", "delete"]}]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> cl.Images:
    return cl.build_images(tmp_path_factory.mktemp("images"))


@pytest.fixture
def clients() -> Iterator[cl.ClientEnv]:
    with cl.client_env("dy-acc-") as env:
        yield env


def _push(clients: cl.ClientEnv, images: cl.Images, server: ServerProcess, ref: str, creds: str | None,
          src: str = "amd64") -> subprocess.CompletedProcess[str]:
    """skopeo copy of the test busybox image to SERVER/REF; creds None = anonymous."""
    cred_args = ["--dest-creds", creds] if creds is not None else ["--dest-no-creds"]
    return clients.run("skopeo", "--command-timeout", "60s", "copy", "--retry-times", "0", "--dest-tls-verify=false",
                       *cred_args, images.ref(src), f"docker://{server.address}/{ref}", timeout=120, check=False)


def _tags(server: ServerProcess, repository: str) -> list[str] | None:
    """The repository's tags as the admin sees them; None when it does not exist."""
    r = httpx.get(f"{server.url}/v2/{repository}/tags/list", headers=basic(server.user, server.password), timeout=10)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return sorted(r.json().get("tags") or [])


def _podman_login(clients: cl.ClientEnv, server: ServerProcess, user: str,
                  password: str) -> subprocess.CompletedProcess[str]:
    return clients.run("podman", "login", "--tls-verify=false", "-u", user, "--password-stdin", server.address,
                       input=password + "\n", timeout=60, check=False)


def _podman_pull(clients: cl.ClientEnv, server: ServerProcess, ref: str,
                 creds: str | None = None) -> subprocess.CompletedProcess[str]:
    cred_args = ["--creds", creds] if creds else []
    return clients.run("podman", "pull", "--tls-verify=false", *cred_args, f"{server.address}/{ref}", timeout=120,
                       check=False)


# -- (1) and (2): every client as a robot account and as a temporary password -----------------------
def test_clients_as_robot_account(server: ServerProcess, clients: cl.ClientEnv, images: cl.Images) -> None:
    h.create_namespace(server, "e2e", auto_create=True)
    user, secret = h.create_robot(server, "e2e", "ci", ROBOT_PERMISSIONS)
    assert user == "robot$e2e+ci"
    cl.round_trip(clients, images, server.url, user, secret, "e2e")


def test_clients_as_developer_with_temporary_password(server: ServerProcess, clients: cl.ClientEnv,
                                                      images: cl.Images) -> None:
    h.create_namespace(server, "e2e", auto_create=True)
    h.create_user(server, "dev", namespace="e2e", role="developer")
    _, password = h.create_temp(server, "dev")
    cl.round_trip(clients, images, server.url, "dev", password, "e2e")


# -- (3) anonymous pull of public repositories -------------------------------------------------------
def test_anonymous_podman_pull_of_public_repositories(server: ServerProcess,
                                                      clients: cl.ClientEnv, images: cl.Images) -> None:
    admin = f"{server.user}:{server.password}"
    h.create_namespace(server, "pub", public=False)
    h.create_namespace(server, "priv", public=False)
    for ref in ("pub/busybox:1", "priv/open:1", "priv/closed:1"):
        out = _push(clients, images, server, ref, admin)
        assert out.returncode == 0, out.stdout + out.stderr
    # public by the namespace default, and by the repository's own visibility
    with h.stores(server) as svc:
        assert svc.namespaces.update("pub", public=True)
        assert svc.namespaces.update_repository("priv/open", visibility="public")

    config = images.configs["amd64"]
    for ref in ("pub/busybox:1", "priv/open:1"):
        out = _podman_pull(clients, server, ref)
        assert out.returncode == 0, f"anonymous pull of {ref} failed:\n{out.stdout}{out.stderr}"
        assert out.stdout.strip().splitlines()[-1] == config.removeprefix("sha256:"), out.stdout

    # the private repository next door stays private
    out = _podman_pull(clients, server, "priv/closed:1")
    assert out.returncode != 0, out.stdout
    assert any(w in out.stderr.lower() for w in ("unauthorized", "authentication required", "denied")), out.stderr

    # and the anonymous catalog lists only the public repositories
    r = httpx.get(f"{server.url}/v2/_catalog", timeout=10)
    if r.status_code == 401:  # Bearer challenge: the anonymous token flow
        challenge = r.headers["www-authenticate"]
        realm = challenge.split('realm="')[1].split('"')[0]
        service = challenge.split('service="')[1].split('"')[0]
        token = httpx.get(realm, params={"service": service, "scope": "registry:catalog:*"}, timeout=10).json()["token"]
        r = httpx.get(f"{server.url}/v2/_catalog", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert sorted(r.json()["repositories"]) == ["priv/open", "pub/busybox"]


# -- (4) pushes that must fail -----------------------------------------------------------------------
def test_anonymous_push_is_refused(server: ServerProcess, clients: cl.ClientEnv, images: cl.Images) -> None:
    h.create_namespace(server, "pub", public=True, auto_create=True)
    out = _push(clients, images, server, "pub/busybox:1", f"{server.user}:{server.password}")
    assert out.returncode == 0, out.stdout + out.stderr

    # into an existing public repository, and into a new one of a namespace that allows creation
    for ref in ("pub/busybox:anon", "pub/new:anon"):
        out = _push(clients, images, server, ref, None)
        assert out.returncode != 0, f"anonymous push to {ref} succeeded:\n{out.stdout}"
        assert "unauthorized" in out.stderr.lower() or "denied" in out.stderr.lower(), out.stderr
    assert _tags(server, "pub/busybox") == ["1"]
    assert _tags(server, "pub/new") is None


def test_guest_push_is_refused(server: ServerProcess, clients: cl.ClientEnv, images: cl.Images) -> None:
    h.create_namespace(server, "team", public=False, auto_create=True)
    out = _push(clients, images, server, "team/app:1", f"{server.user}:{server.password}")
    assert out.returncode == 0, out.stdout + out.stderr
    password = h.create_user(server, "visitor", namespace="team", role="guest")
    _, temp = h.create_temp(server, "visitor")

    config = images.configs["amd64"]
    # the guest may pull ...
    out = _podman_pull(clients, server, "team/app:1", f"visitor:{password}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == config.removeprefix("sha256:")
    # ... but not push: neither a new tag, nor a changed one, nor a new repository, with either password
    for creds in (f"visitor:{password}", f"visitor:{temp}"):
        for ref, src in (("team/app:guest", "amd64"), ("team/app:1", "arm64"), ("team/other:1", "amd64")):
            out = _push(clients, images, server, ref, creds, src)
            assert out.returncode != 0, f"guest push to {ref} succeeded:\n{out.stdout}"
            assert "denied" in out.stderr.lower() or "unauthorized" in out.stderr.lower(), out.stderr
    assert _tags(server, "team/app") == ["1"]
    assert _tags(server, "team/other") is None
    r = httpx.get(f"{server.url}/v2/team/app/manifests/1", headers={**basic(server.user, server.password),
                  "Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=10)
    assert r.status_code == 200 and r.json()["config"]["digest"] == config  # still the amd64 image

    # a developer of another namespace is a stranger here: no push either
    other = h.create_user(server, "stranger")
    h.create_namespace(server, "elsewhere")
    with h.stores(server) as svc:
        assert svc.namespaces.set_member("elsewhere", "stranger", "developer")
    out = _push(clients, images, server, "team/app:stranger", f"stranger:{other}")
    assert out.returncode != 0, out.stdout
    assert "denied" in out.stderr.lower() or "unauthorized" in out.stderr.lower(), out.stderr
    assert _tags(server, "team/app") == ["1"]


# -- (5) revoked, expired and disabled credentials ---------------------------------------------------
def test_revoked_temporary_password_stops_working_at_once(server: ServerProcess,
                                                          clients: cl.ClientEnv, images: cl.Images) -> None:
    h.create_namespace(server, "team")
    h.create_user(server, "dev", namespace="team", role="developer")
    temp_id, password = h.create_temp(server, "dev")

    out = _podman_login(clients, server, "dev", password)
    assert out.returncode == 0, out.stdout + out.stderr
    # a refresh token, as containerd's OAuth2 password grant gets one
    r = httpx.post(f"{server.url}/auth/token", data={"grant_type": "password", "username": "dev", "password": password,
                   "service": "dockyard", "scope": "repository:team/app:pull"}, timeout=10)
    assert r.status_code == 200, r.text
    refresh = r.json().get("refresh_token")
    assert httpx.get(f"{server.url}/v2/", headers=basic("dev", password), timeout=10).status_code == 200

    h.revoke_temp(server, temp_id)  # no waiting: temporary passwords are not cached
    out = _podman_login(clients, server, "dev", password)
    assert out.returncode != 0, f"login with a revoked temporary password succeeded:\n{out.stdout}"
    assert httpx.get(f"{server.url}/v2/", headers=basic("dev", password), timeout=10).status_code == 401
    r = httpx.get(f"{server.url}/auth/token", params={"service": "dockyard", "scope": "repository:team/app:pull"},
                  headers=basic("dev", password), timeout=10)
    assert r.status_code == 401, r.text
    if refresh:
        r = httpx.post(f"{server.url}/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh,
                       "service": "dockyard"}, timeout=10)
        assert r.status_code == 401, r.text


def test_expired_temporary_password_is_refused(server: ServerProcess, clients: cl.ClientEnv, images: cl.Images) -> None:
    h.create_namespace(server, "team")
    h.create_user(server, "dev", namespace="team", role="developer")
    _, expired = h.create_temp(server, "dev", expires_in=timedelta(seconds=-1))
    _, valid = h.create_temp(server, "dev")

    out = _podman_login(clients, server, "dev", expired)
    assert out.returncode != 0, f"login with an expired temporary password succeeded:\n{out.stdout}"
    assert httpx.get(f"{server.url}/v2/", headers=basic("dev", expired), timeout=10).status_code == 401
    # the same user's other, valid temporary password still works (the refusal is about the password)
    out = _podman_login(clients, server, "dev", valid)
    assert out.returncode == 0, out.stdout + out.stderr
    # another user cannot use dev's temporary password
    h.create_user(server, "mallory", namespace="team", role="developer")
    assert httpx.get(f"{server.url}/v2/", headers=basic("mallory", valid), timeout=10).status_code == 401


def test_disabled_and_expired_robots_are_refused(server: ServerProcess,
                                                 clients: cl.ClientEnv, images: cl.Images) -> None:
    h.create_namespace(server, "team", auto_create=True)
    user, secret = h.create_robot(server, "team", "ci", ROBOT_PERMISSIONS)
    old_user, old_secret = h.create_robot(server, "team", "old", ROBOT_PERMISSIONS)
    with h.stores(server) as svc:  # expired a second ago
        assert svc.credentials.update_robot("team", "old", expires_at=datetime.now(UTC) - timedelta(seconds=1))

    out = _podman_login(clients, server, user, secret)
    assert out.returncode == 0, out.stdout + out.stderr
    out = _push(clients, images, server, "team/app:1", f"{user}:{secret}")
    assert out.returncode == 0, out.stdout + out.stderr

    h.disable_robot(server, "team", "ci")
    out = _podman_login(clients, server, user, secret)
    assert out.returncode != 0, f"login as a disabled robot succeeded:\n{out.stdout}"
    assert httpx.get(f"{server.url}/v2/", headers=basic(user, secret), timeout=10).status_code == 401
    out = _push(clients, images, server, "team/app:2", f"{user}:{secret}")
    assert out.returncode != 0, out.stdout
    assert "unauthorized" in out.stderr.lower() or "denied" in out.stderr.lower(), out.stderr

    out = _podman_login(clients, server, old_user, old_secret)
    assert out.returncode != 0, f"login as an expired robot succeeded:\n{out.stdout}"
    assert httpx.get(f"{server.url}/v2/", headers=basic(old_user, old_secret), timeout=10).status_code == 401
    assert _tags(server, "team/app") == ["1"]


def test_robot_acts_only_within_its_namespace_and_patterns(server: ServerProcess,
                                                           clients: cl.ClientEnv, images: cl.Images) -> None:
    h.create_namespace(server, "team", auto_create=True)
    h.create_namespace(server, "other", auto_create=True)
    user, secret = h.create_robot(server, "team", "apps",
                                  [{"repositories": "app-*", "actions": ["pull", "push"]}])
    creds = f"{user}:{secret}"
    out = _push(clients, images, server, "team/app-web:1", creds)
    assert out.returncode == 0, out.stdout + out.stderr
    for ref in ("team/db:1", "other/app-web:1"):
        out = _push(clients, images, server, ref, creds)
        assert out.returncode != 0, f"robot push to {ref} succeeded:\n{out.stdout}"
        assert "denied" in out.stderr.lower() or "unauthorized" in out.stderr.lower(), out.stderr
    assert _tags(server, "team/app-web") == ["1"]
    assert _tags(server, "team/db") is None
    assert _tags(server, "other/app-web") is None
