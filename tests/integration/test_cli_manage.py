"""The `dockyard` commands that drive the management API (namespace, member, repo, credential, robot,
audit, whoami, user create-remote) against the real application, in-process.

Each command runs through click's CliRunner; its `dockyard.client.Client` talks to the whole ASGI app
(SQLite in tmp_path) through the Starlette TestClient's transport, so every answer, error body and
page is the real API's. `Api` records every request, so the tests check the exact method, path,
query and body sent as well as what the command prints, and it fails the test on any 5xx.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import click
import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import update
from starlette import testclient
from starlette.testclient import TestClient

from dockyard.app import Services, create_app
from dockyard.cli import main
from dockyard.cli_manage import common
from dockyard.client import Client, ClientError
from dockyard.config import Settings
from dockyard.meta.db import utcnow
from dockyard.meta.tables import temp_passwords
from tests.conftest import ADMIN, ServerProcess, _sqlite_database, basic, hashed
from tests.integration.helpers import push_image

PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "admin": ADMIN[1]}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about the command line, not the database (the API's own tests run on both)."""
    return _sqlite_database(tmp_path / "dockyard.db")


class Api(httpx.BaseTransport):
    """The application's in-process transport, recording each request and refusing 5xx answers."""

    def __init__(self, client: TestClient, services: Services) -> None:
        self.inner = client._transport  # the TestClient's ASGI transport (its portal: one event loop)
        self.registry = client
        self.services = services
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        # The TestClient may be built on httpx's successor (httpx2): hand its transport a request of
        # its own kind, bypassing the TestClient's default headers, and copy the answer back.
        inner = testclient.httpx.Request(request.method, str(request.url), headers=request.headers.raw,
                                         content=request.read())
        answer = self.inner.handle_request(inner)
        answer.read()
        assert answer.status_code < 500, (request.method, request.url, answer.status_code, answer.content)
        return httpx.Response(answer.status_code, headers=answer.headers.raw, content=answer.content)

    def calls(self, method: str | None = None) -> list[tuple[str, str, dict[str, str], Any]]:
        """(method, decoded path, query, JSON body) of every request, optionally of one method."""
        out = []
        for r in self.requests:
            if method and r.method != method:
                continue
            body = json.loads(r.content) if r.content else None
            out.append((r.method, unquote(r.url.raw_path.decode().split("?")[0]), dict(r.url.params), body))
        return out


@pytest.fixture
def api(settings: Settings, services: Services) -> Iterator[Api]:
    for name in ("alice", "bob"):
        services.users.create(name, hashed(PASSWORDS[name]))
    app = create_app(settings, services)
    with TestClient(app, base_url="http://registry.test", headers=basic(*ADMIN)) as client:
        yield Api(client, services)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DOCKYARD_"):
            monkeypatch.delenv(name)
    as_user(monkeypatch, "alice")


def as_user(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("DOCKYARD_USER", name)
    monkeypatch.setenv("DOCKYARD_PASSWORD", PASSWORDS[name])


def run(api: Api, *args: str, input: str | None = None) -> Result:
    """The command in-process against the application; stdout and stderr apart."""
    return CliRunner().invoke(main, list(args), input=input, obj={"transport": api}, catch_exceptions=False)


def ok(api: Api, *args: str, input: str | None = None) -> Result:
    result = run(api, *args, input=input)
    assert result.exit_code == 0, (result.output, result.stderr)
    return result


def fails(api: Api, *args: str, input: str | None = None, code: int = 1) -> Result:
    result = run(api, *args, input=input)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def lines(result: Result) -> list[list[str]]:
    return [line.split() for line in result.stdout.splitlines()]


def audit_actions(api: Api) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.target) for e in api.services.audit.query(limit=500)]


# -- help ---------------------------------------------------------------------------------------------

def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out.extend(_commands(command, (*prefix, name)))
    return out


REMOTE = ["namespace", "member", "repo", "credential", "robot", "audit", "whoami"]


def _leaves() -> list[tuple[str, ...]]:
    return [c for c in _commands(main) if c[0] in REMOTE and not isinstance(main.commands[c[0]], click.Group)
            or len(c) > 1 and c[0] in REMOTE]


def test_help_lists_the_remote_commands_and_every_one_has_help(api: Api) -> None:
    top = ok(api, "--help").output
    for name in REMOTE + ["serve", "user", "gc"]:
        assert f"\n  {name} " in top
    leaves = _leaves()
    assert len(leaves) == 26  # 5 namespace, 3 member, 6 repo, 4 credential, 6 robot, audit, whoami
    for path in leaves:
        text = ok(api, *path, "--help").output
        assert "--url" in text and "--user" in text, path
        assert "DOCKYARD_URL" in text
    assert api.requests == []  # --help talks to nobody
    for group, subs in {"namespace": "create list show update delete", "member": "list set remove",
                        "repo": "create list show update delete tags", "credential": "password temp list revoke",
                        "robot": "create list rotate disable enable delete"}.items():
        text = ok(api, group, "--help").output
        for sub in subs.split():
            assert f"\n  {sub} " in text, (group, sub)
    text = ok(api, "user", "--help").output
    for sub in ("add", "passwd", "list", "create-remote"):
        assert f"\n  {sub} " in text
    assert "--data" not in ok(api, "user", "create-remote", "--help").output


def test_docs_cli_md_covers_every_remote_command() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    for path in _leaves() + [("user", "create-remote")]:
        assert f"dockyard {' '.join(path)} " in text or f"dockyard {' '.join(path)}\n" in text, path
        command = main.commands[path[0]]
        params = command.commands[path[1]].params if len(path) > 1 else command.params  # type: ignore[attr-defined]
        for param in params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt not in ("--url", "--user", "--json", "--help"):
                    assert opt in text, (path, opt)


# -- users and whoami ---------------------------------------------------------------------------------

def test_user_create_remote(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    denied = fails(api, "user", "create-remote", "carol", "--password-stdin", input="carol password\n")
    assert denied.stderr == "Error: administrators only\n"
    as_user(monkeypatch, "admin")
    result = ok(api, "user", "create-remote", "carol", "--password-stdin", input="carol password\n")
    assert result.stdout == "created user carol\n"
    assert api.calls("POST")[-1] == ("POST", "/api/v1/users", {},
                                     {"username": "carol", "password": "carol password", "is_admin": False})
    prompted = ok(api, "user", "create-remote", "dan", "--admin", "--json", input="dan password\ndan password\n")
    assert json.loads(prompted.stdout)["is_admin"] is True
    assert "dan password" not in prompted.output
    assert api.registry.get("/v2/", headers=basic("dan", "dan password")).status_code == 200
    assert fails(api, "user", "create-remote", "dan", "--password-stdin", input="x" * 9 + "\n").stderr == (
        "Error: user 'dan' exists already\n")
    short = fails(api, "user", "create-remote", "erin", "--password-stdin", input="short\n")
    assert short.stderr == "Error: password: String should have at least 8 characters\n"
    assert ("admin", "user.create", "user:carol") in audit_actions(api)


def test_whoami_lists_roles(api: Api) -> None:
    ok(api, "namespace", "create", "acme")
    ok(api, "namespace", "create", "tools")
    result = lines(ok(api, "whoami"))
    assert ["username:", "alice"] in result and ["administrator:", "no"] in result
    assert ["namespaces:", "acme:owner", "tools:owner"] in result


# -- connection and credentials ---------------------------------------------------------------------

def test_basic_auth_from_the_environment_and_default_url(api: Api) -> None:
    ok(api, "whoami")
    request = api.requests[-1]
    assert str(request.url) == "http://127.0.0.1:5000/api/v1/user"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"alice:alice-password").decode()
    assert request.headers["accept"] == "application/json"


def test_url_and_user_options_and_environment(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_URL", "https://registry.example.com/")
    result = ok(api, "whoami", "--json")
    assert json.loads(result.stdout)["username"] == "alice"
    assert str(api.requests[-1].url) == "https://registry.example.com/api/v1/user"

    monkeypatch.setenv("DOCKYARD_PASSWORD", ADMIN[1])
    result = ok(api, "whoami", "--url", "http://10.0.0.5:5001", "--user", "admin")
    assert str(api.requests[-1].url) == "http://10.0.0.5:5001/api/v1/user"
    assert ["administrator:", "yes"] in lines(result) and ["kind:", "user"] in lines(result)
    monkeypatch.setenv("DOCKYARD_USER", "admin")
    assert json.loads(ok(api, "whoami", "--json").stdout)["is_admin"] is True


def test_a_url_with_a_path_prefix_keeps_it(api: Api) -> None:
    result = fails(api, "namespace", "list", "--url", "https://example.com/registry/")  # the app is not there
    assert str(api.requests[-1].url).startswith("https://example.com/registry/api/v1/namespaces?")
    assert "does this server have the management API?" in result.stderr or "not found" in result.stderr


def test_wrong_password_is_a_clear_error(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_PASSWORD", "wrong password")
    result = fails(api, "namespace", "list")
    assert result.stderr == "Error: invalid username or password\n"
    assert result.stdout == ""
    with Client(transport=api, username="alice", password="wrong password") as client:
        with pytest.raises(ClientError) as info:
            client.me()
    assert (info.value.status, info.value.code) == (401, "unauthenticated")


def test_missing_password_without_a_terminal_fails_before_any_request(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_PASSWORD")
    result = fails(api, "namespace", "list")
    assert "no password for 'alice'" in result.stderr and "DOCKYARD_PASSWORD" in result.stderr
    assert api.requests == []


def test_missing_credentials_are_asked_for_on_a_terminal(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_PASSWORD")
    monkeypatch.delenv("DOCKYARD_USER")
    monkeypatch.setattr(common, "_interactive", lambda: True)
    result = ok(api, "whoami", "--json", input="bob\nbob-password\n")
    assert json.loads(result.stdout)["username"] == "bob"  # prompts go to stderr: stdout stays JSON
    assert "Username at http://127.0.0.1:5000" in result.stderr and "Password for bob" in result.stderr
    assert "bob-password" not in result.output
    # with --user only the password is asked for
    result = ok(api, "whoami", "--user", "alice", input="alice-password\n")
    assert "Username" not in result.stderr and "Password for alice" in result.stderr


def test_anonymous_without_user_and_terminal(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_USER")
    monkeypatch.delenv("DOCKYARD_PASSWORD")
    result = fails(api, "repo", "list")
    assert result.stderr.startswith("Error: authentication required")
    assert result.stderr.endswith(" (no user given: use --user or DOCKYARD_USER)\n")
    assert "authorization" not in api.requests[-1].headers


def test_an_unreachable_server_through_a_real_process() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
           "DOCKYARD_URL": f"http://127.0.0.1:{port}", "DOCKYARD_USER": "alice", "DOCKYARD_PASSWORD": "pw"}
    proc = subprocess.run([sys.executable, "-m", "dockyard", "namespace", "list"], capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"Error: cannot reach http://127.0.0.1:{port}")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


# -- namespaces -------------------------------------------------------------------------------------

def test_namespace_create_show_list_update_delete(api: Api) -> None:
    result = ok(api, "namespace", "create", "acme", "--description", "Acme images", "--public", "--no-auto-create")
    assert result.stdout == "created namespace acme (public)\n"
    assert api.calls("POST")[-1] == ("POST", "/api/v1/namespaces", {},
                                     {"name": "acme", "description": "Acme images", "public": True, "auto_create": False})
    ok(api, "namespace", "create", "tools")
    assert api.calls("POST")[-1][3] == {"name": "tools"}  # options not given are left to the server

    shown = ok(api, "namespace", "show", "acme")
    assert ["visibility:", "public"] in lines(shown)
    assert ["description:", "Acme", "images"] in lines(shown)
    assert json.loads(ok(api, "namespace", "show", "acme", "--json").stdout)["auto_create"] is False

    table = lines(ok(api, "namespace", "list"))
    assert table[0] == ["NAME", "VISIBILITY", "AUTO-CREATE", "YOUR", "ROLE", "CREATED", "DESCRIPTION"]
    assert [row[:4] for row in table[1:]] == [["acme", "public", "no", "owner"], ["tools", "private", "yes", "owner"]]
    assert [n["name"] for n in json.loads(ok(api, "namespace", "list", "--json").stdout)] == ["acme", "tools"]

    updated = ok(api, "namespace", "update", "acme", "--private", "--description", "")
    assert api.calls("PATCH")[-1] == ("PATCH", "/api/v1/namespaces/acme", {}, {"description": "", "public": False})
    assert ["visibility:", "private"] in lines(updated)
    nothing = fails(api, "namespace", "update", "acme", code=2)
    assert "nothing to change" in nothing.stderr

    refused = fails(api, "namespace", "delete", "acme", input="n\n")
    assert "Delete namespace acme" in refused.stderr and "Aborted" in refused.stderr
    assert not api.calls("DELETE") and api.services.namespaces.get("acme") is not None
    ok(api, "namespace", "delete", "acme", input="y\n")
    assert api.services.namespaces.get("acme") is None
    assert ok(api, "namespace", "delete", "tools", "--yes").stdout == "deleted namespace tools\n"
    assert ok(api, "namespace", "list").stdout == "no namespaces\n"
    assert json.loads(ok(api, "namespace", "list", "--json").stdout) == []
    assert [a for a in audit_actions(api) if a[2] == "acme"] == [
        ("alice", "namespace.delete", "acme"), ("alice", "namespace.update", "acme"), ("alice", "namespace.create", "acme")]


def test_namespace_list_follows_pagination(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dockyard.client.PAGE_SIZE", 2)
    for i in range(5):
        ok(api, "namespace", "create", f"ns{i}")
    api.requests.clear()
    names = [n["name"] for n in json.loads(ok(api, "namespace", "list", "--json").stdout)]
    assert names == [f"ns{i}" for i in range(5)]
    assert [c[2].get("after") for c in api.calls("GET")] == [None, "ns1", "ns3"]


def test_api_errors_are_shown_with_their_message(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    ok(api, "namespace", "create", "acme")
    assert fails(api, "namespace", "create", "acme").stderr == "Error: namespace 'acme' exists already\n"
    bad = fails(api, "namespace", "create", "Bad").stderr
    assert bad.startswith("Error: ") and "Bad" in bad and "\n" == bad[-1]
    assert fails(api, "namespace", "show", "nope").stderr == "Error: namespace 'nope' not found\n"
    as_user(monkeypatch, "bob")
    assert fails(api, "namespace", "delete", "acme", "--yes").stderr.startswith("Error: ")
    with Client(transport=api, username="alice", password=PASSWORDS["alice"]) as client:
        with pytest.raises(ClientError) as info:
            client.namespace("nope")
        assert (info.value.status, info.value.code) == (404, "not_found")
        with pytest.raises(ClientError) as info:
            client.create_namespace("Bad")
        assert (info.value.status, info.value.code) == (422, "invalid")


def test_names_are_escaped_in_paths(api: Api) -> None:
    fails(api, "namespace", "show", "a b/../c")
    assert api.requests[-1].url.raw_path == b"/api/v1/namespaces/a%20b%2F..%2Fc"
    fails(api, "repo", "show", "acme/team/app")
    assert api.requests[-1].url.raw_path == b"/api/v1/repositories/acme/team/app"


# -- members ------------------------------------------------------------------------------------------

def test_member_set_list_remove(api: Api) -> None:
    ok(api, "namespace", "create", "acme")
    assert ok(api, "member", "set", "acme", "bob", "developer").stdout == "bob is now developer of acme\n"
    assert api.calls("PUT")[-1] == ("PUT", "/api/v1/namespaces/acme/members/bob", {}, {"role": "developer"})
    table = lines(ok(api, "member", "list", "acme"))
    assert table[0] == ["USERNAME", "ROLE", "SINCE"]
    assert [row[:2] for row in table[1:]] == [["alice", "owner"], ["bob", "developer"]]
    assert {m["username"]: m["role"] for m in json.loads(ok(api, "member", "list", "acme", "--json").stdout)} == {
        "alice": "owner", "bob": "developer"}
    bad = fails(api, "member", "set", "acme", "bob", "king", code=2)
    assert "'king' is not one of 'owner', 'developer', 'guest'" in bad.stderr
    assert fails(api, "member", "set", "acme", "zed", "guest").stderr == "Error: user 'zed' not found\n"
    assert ok(api, "member", "remove", "acme", "bob").stdout == "removed bob from acme\n"
    assert api.calls("DELETE")[-1][:2] == ("DELETE", "/api/v1/namespaces/acme/members/bob")
    assert api.services.namespaces.roles_of("bob") == {}


# -- repositories -----------------------------------------------------------------------------------

def test_repo_create_show_update_delete(api: Api) -> None:
    ok(api, "namespace", "create", "acme")
    created = ok(api, "repo", "create", "acme/web/api", "--summary", "The API", "--visibility", "public")
    assert created.stdout.splitlines() == ["created repository acme/web/api (public)",
                                           "push to it with: docker push 127.0.0.1:5000/acme/web/api:TAG"]
    assert api.calls("POST")[-1][3] == {"name": "acme/web/api", "summary": "The API", "visibility": "public"}
    shown = lines(ok(api, "repo", "show", "acme/web/api"))
    assert ["summary:", "The", "API"] in shown and ["visibility:", "public"] in shown

    updated = ok(api, "repo", "update", "acme/web/api", "--visibility", "inherit", "--description", "# API")
    assert api.calls("PATCH")[-1] == ("PATCH", "/api/v1/repositories/acme/web/api", {},
                                      {"description": "# API", "visibility": None})
    assert ["visibility:", "private,", "the", "namespace's", "default"] in lines(updated)
    assert json.loads(ok(api, "repo", "show", "acme/web/api", "--json").stdout)["visibility"] is None

    fails(api, "repo", "delete", "acme/web/api", input="\n")  # the default answer is no
    assert not api.calls("DELETE")
    assert ok(api, "repo", "delete", "acme/web/api", "-y").stdout == "deleted repository acme/web/api\n"
    assert api.calls("DELETE")[-1][1] == "/api/v1/repositories/acme/web/api"
    assert fails(api, "repo", "show", "acme/web/api").stderr == "Error: repository 'acme/web/api' not found\n"


def test_repo_list_filters_and_pages(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dockyard.client.PAGE_SIZE", 2)
    ok(api, "namespace", "create", "acme")
    ok(api, "namespace", "create", "tools")
    for name in ("acme/api", "acme/web", "acme/worker", "tools/busybox", "tools/curl"):
        ok(api, "repo", "create", name, "--summary", f"about {name}")
    api.requests.clear()
    table = lines(ok(api, "repo", "list"))
    assert table[0] == ["NAME", "VISIBILITY", "LAST", "PUSH", "SUMMARY"]
    assert [row[0] for row in table[1:]] == ["acme/api", "acme/web", "acme/worker", "tools/busybox", "tools/curl"]
    assert len(api.requests) == 3

    listed = json.loads(ok(api, "repo", "list", "--namespace", "acme", "--search", "w", "--json").stdout)
    assert [r["name"] for r in listed] == ["acme/web", "acme/worker"]
    assert api.calls("GET")[-1][2]["namespace"] == "acme" and api.calls("GET")[-1][2]["q"] == "w"
    assert len(json.loads(ok(api, "repo", "list", "--limit", "3", "--json").stdout)) == 3
    assert ok(api, "repo", "list", "-n", "nobody").stdout == "no repositories\n"


def test_repo_tags(api: Api) -> None:
    ok(api, "namespace", "create", "acme")
    ok(api, "repo", "create", "acme/app")
    assert ok(api, "repo", "tags", "acme/app").stdout == "no tags in acme/app\n"
    digest, _ = push_image(api.registry, "acme/app", "1.0")
    for tag in ("1.1", "latest"):
        push_image(api.registry, "acme/app", tag, layer=b"layer of 1.0", config=None)
    for _ in range(3):
        assert api.registry.get("/v2/acme/app/manifests/1.0").status_code == 200
    api.services.activity.flush()
    table = lines(ok(api, "repo", "tags", "acme/app"))
    assert table[0] == ["TAG", "DIGEST", "PULLS", "LAST", "PULLED"]
    assert table[1][:3] == ["1.0", digest, "3"] and table[1][4].endswith("Z")
    assert table[2][0] == "1.1" and table[2][2:] == ["0", "-"]
    assert table[3][0] == "latest"
    assert [t["name"] for t in json.loads(ok(api, "repo", "tags", "acme/app", "--json").stdout)] == ["1.0", "1.1", "latest"]
    assert api.calls("GET")[-1][1] == "/api/v1/repositories/acme/app/tags"
    assert fails(api, "repo", "tags", "acme/none").stderr == "Error: repository 'acme/none' not found\n"


# -- credentials --------------------------------------------------------------------------------------

def test_credential_password_from_stdin_and_prompt(api: Api) -> None:
    result = ok(api, "credential", "password", "--password-stdin", input="fixed secret 1\n")
    assert api.calls("PUT")[-1] == ("PUT", "/api/v1/user/registry-password", {}, {"password": "fixed secret 1"})
    assert "fixed secret" not in result.output
    assert "docker login -u alice --password-stdin 127.0.0.1:5000" in result.stdout
    assert api.registry.get("/v2/", headers=basic("alice", "fixed secret 1")).status_code == 200

    prompted = ok(api, "credential", "password", input="fixed secret 2\nfixed secret 2\n")
    assert "fixed secret" not in prompted.output  # hidden input
    assert api.registry.get("/v2/", headers=basic("alice", "fixed secret 2")).status_code == 200
    short = fails(api, "credential", "password", "--password-stdin", input="short\n")
    assert short.stderr == "Error: password: String should have at least 8 characters\n"
    assert fails(api, "credential", "password", "--password-stdin", input="\n").stderr == "Error: the password is empty\n"


def test_credential_temp_prints_the_password_once_with_the_login_line(api: Api) -> None:
    ok(api, "namespace", "create", "acme")
    result = ok(api, "credential", "temp", "--url", "http://registry.lan:5000", "--ttl", "2h", "-r", "acme/*",
                "-r", "acme/curl", "--action", "pull", "--description", "CI job 42")
    body = api.calls("POST")[-1][3]
    assert body == {"ttl_seconds": 7200, "description": "CI job 42", "repositories": ["acme/*", "acme/curl"],
                    "actions": ["pull"]}
    out = result.stdout.splitlines()
    assert out[0].startswith("temporary password ") and " for alice, expires " in out[0]
    assert "(repositories acme/*, acme/curl; actions pull)" in out[0]
    assert out[1] == ""
    password = out[2].strip()
    assert out.count(f"  {password}") == 1
    assert out[-1] == "  docker login -u alice --password-stdin registry.lan:5000"
    token = api.registry.get("/auth/token", params={"scope": "repository:acme/app:pull"},
                             headers=basic("alice", password))
    assert token.status_code == 200, token.text

    ok(api, "credential", "temp")
    assert api.calls("POST")[-1][3] == {}  # the server's defaults
    as_json = json.loads(ok(api, "credential", "temp", "--ttl", "600", "--json").stdout)
    assert as_json["password"] and as_json["id"]
    assert fails(api, "credential", "temp", "--ttl", "soon", code=2).stderr.count("not a duration") == 1
    assert "positive" in fails(api, "credential", "temp", "--ttl", "0", code=2).stderr
    assert "'fetch' is not one of" in fails(api, "credential", "temp", "--action", "fetch", code=2).stderr


def test_credential_list_and_revoke(api: Api) -> None:
    first = json.loads(ok(api, "credential", "temp", "--description", "laptop", "--json").stdout)
    second = json.loads(ok(api, "credential", "temp", "-r", "acme/app", "-a", "pull", "-a", "push", "--json").stdout)
    with api.services.db.write() as conn:
        conn.execute(update(temp_passwords).where(temp_passwords.c.id == second["id"])
                     .values(expires_at=utcnow() - timedelta(minutes=1)))
    assert ok(api, "credential", "revoke", first["id"]).stdout == f"revoked temporary password {first['id']}\n"
    assert api.calls("DELETE")[-1][1] == f"/api/v1/user/temp-passwords/{first['id']}"
    table = lines(ok(api, "credential", "list"))
    assert table[0] == ["ID", "STATUS", "EXPIRES", "REPOSITORIES", "ACTIONS", "LAST", "USED", "DESCRIPTION"]
    rows = {row[0]: row for row in table[1:]}
    assert rows[first["id"]][1] == "revoked" and rows[first["id"]][-1] == "laptop"
    assert rows[second["id"]][1] == "expired" and rows[second["id"]][4:6] == ["acme/app", "pull,push"]
    listed = ok(api, "credential", "list", "--json")
    assert {t["id"] for t in json.loads(listed.stdout)} == {first["id"], second["id"]}
    assert first["password"] not in listed.stdout and second["password"] not in listed.stdout
    missing = fails(api, "credential", "revoke", "tp9").stderr
    assert missing.startswith("Error: ") and "tp9" in missing


# -- robots ---------------------------------------------------------------------------------------------

def test_robot_create_prints_the_secret_once_with_a_quoted_login(api: Api) -> None:
    ok(api, "namespace", "create", "acme")
    result = ok(api, "robot", "create", "acme", "ci", "--permission", "app-*:pull,push", "-p", "acme/base/*:pull",
                "--ttl", "90d", "--description", "GitLab CI")
    assert api.calls("POST")[-1] == ("POST", "/api/v1/namespaces/acme/robots", {}, {
        "name": "ci", "description": "GitLab CI", "ttl_seconds": 90 * 86400,
        "permissions": [{"repositories": "app-*", "actions": ["pull", "push"]},
                        {"repositories": "acme/base/*", "actions": ["pull"]}]})
    out = result.stdout.splitlines()
    assert out[0].startswith("created robot robot$acme+ci (app-*:pull,push acme/base/*:pull; expires 20")
    assert "  username: robot$acme+ci" in out
    secret = next(line for line in out if line.startswith("  secret:")).split()[-1]
    assert result.stdout.count(secret) == 1
    assert out[-1] == "  docker login -u 'robot$acme+ci' --password-stdin 127.0.0.1:5000"
    token = api.registry.get("/auth/token", params={"scope": "repository:acme/app-1:pull"},
                             headers=basic("robot$acme+ci", secret))
    assert token.status_code == 200, token.text

    as_json = json.loads(ok(api, "robot", "create", "acme", "deploy", "-p", "*:*", "--json").stdout)
    assert as_json["username"] == "robot$acme+deploy" and as_json["secret"]
    assert api.calls("POST")[-1][3] == {"name": "deploy", "permissions": [{"repositories": "*", "actions": ["pull", "push", "delete"]}]}


@pytest.mark.parametrize("bad", ["app", ":pull", "app:", "app:fetch", "app:pull,rm"])
def test_robot_create_rejects_bad_permissions_before_any_request(api: Api, bad: str) -> None:
    result = fails(api, "robot", "create", "acme", "ci", "--permission", bad, code=2)
    assert "Invalid value for '--permission'" in result.stderr
    assert api.requests == []


def test_robot_create_needs_a_permission(api: Api) -> None:
    assert "Missing option '--permission'" in fails(api, "robot", "create", "acme", "ci", code=2).stderr


def test_robot_list_rotate_disable_enable_delete(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dockyard.client.PAGE_SIZE", 2)
    ok(api, "namespace", "create", "acme")
    secrets = {name: json.loads(ok(api, "robot", "create", "acme", name, "-p", "*:pull", "--json").stdout)["secret"]
               for name in ("a", "b", "c")}
    rotated = ok(api, "robot", "rotate", "acme", "b")
    assert "robot$acme+b" in rotated.stdout and secrets["b"] not in rotated.stdout
    new = next(line.strip() for line in rotated.stdout.splitlines() if line.startswith("  ") and "$" not in line)
    assert api.registry.get("/v2/", headers=basic("robot$acme+b", new)).status_code == 200
    assert api.calls("POST")[-1][1] == "/api/v1/namespaces/acme/robots/b/rotate"
    again = json.loads(ok(api, "robot", "rotate", "acme", "b", "--json").stdout)["secret"]
    assert again and again not in rotated.stdout

    assert ok(api, "robot", "disable", "acme", "a").stdout == "disabled robot$acme+a\n"
    assert api.calls("PATCH")[-1] == ("PATCH", "/api/v1/namespaces/acme/robots/a", {}, {"disabled": True})
    api.requests.clear()
    table = lines(ok(api, "robot", "list", "acme"))
    assert len(api.requests) == 1  # a namespace's robots come in one answer, whatever the limit
    assert table[0] == ["USERNAME", "STATUS", "PERMISSIONS", "EXPIRES", "LAST", "USED", "DESCRIPTION"]
    assert [row[:4] for row in table[1:]] == [["robot$acme+a", "disabled", "*:pull", "never"],
                                              ["robot$acme+b", "active", "*:pull", "never"],
                                              ["robot$acme+c", "active", "*:pull", "never"]]
    ok(api, "robot", "enable", "acme", "a")
    assert api.calls("PATCH")[-1][3] == {"disabled": False}
    listed = ok(api, "robot", "list", "acme", "--json")
    assert [r["disabled"] for r in json.loads(listed.stdout)] == [False, False, False]
    assert all(secret not in listed.stdout for secret in secrets.values())

    assert ok(api, "robot", "delete", "acme", "c").stdout == "deleted robot$acme+c\n"
    assert api.calls("DELETE")[-1][1] == "/api/v1/namespaces/acme/robots/c"
    gone = fails(api, "robot", "rotate", "acme", "c").stderr
    assert gone.startswith("Error: ") and "'c'" in gone and "not found" in gone


# -- audit ----------------------------------------------------------------------------------------------

def test_audit_filters_limit_and_before_pagination(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dockyard.client.PAGE_SIZE", 2)
    for i in range(4):
        ok(api, "namespace", "create", f"ns{i}")
    ok(api, "namespace", "update", "ns1", "--public")
    api.services.audit.record("bob", "repository.push", "ns1/app:1.0", {"digest": "sha256:" + "0" * 64}, "10.0.0.7")
    ids = [e.id for e in api.services.audit.query(limit=500)]
    api.requests.clear()

    events = json.loads(ok(api, "audit", "--json").stdout)
    assert [e["id"] for e in events] == ids[:6]  # newest first, across three pages
    assert [c[2].get("before") for c in api.calls("GET")] == [None, str(ids[1]), str(ids[3])]

    table = lines(ok(api, "audit", "--limit", "3"))
    assert table[0] == ["ID", "AT", "ACTOR", "ACTION", "TARGET", "FROM", "DETAIL"]
    assert [row[0] for row in table[1:]] == [str(i) for i in ids[:3]]
    assert table[1][3:7] == ["bob", "repository.push", "ns1/app:1.0", "10.0.0.7"]
    assert table[1][7].startswith('{"digest":"sha256:000') and table[1][7].endswith("…")

    api.requests.clear()
    filtered = json.loads(ok(api, "audit", "--actor", "alice", "--action", "namespace.", "--target", "ns1", "--json").stdout)
    assert [(e["action"], e["target"]) for e in filtered] == [("namespace.update", "ns1"), ("namespace.create", "ns1")]
    query = api.calls("GET")[0][2]
    assert (query["actor"], query["action"], query["target"]) == ("alice", "namespace.", "ns1")
    assert ok(api, "audit", "--actor", "nobody").stdout == "no audit events\n"
    assert "Invalid value for '--limit'" in fails(api, "audit", "--limit", "0", code=2).stderr


# -- against a real `dockyard serve` ----------------------------------------------------------------------

@pytest.mark.e2e
def test_the_walk_through_against_a_real_server(server: ServerProcess) -> None:
    """Real processes both sides: `python -m dockyard ...` against `dockyard serve`."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
           "DOCKYARD_URL": server.url, "DOCKYARD_USER": server.user, "DOCKYARD_PASSWORD": server.password}

    def cli(*args: str, input: str | None = None, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "dockyard", *args], input=input, capture_output=True, text=True,
                              timeout=60, env=env, stdin=None if input is not None else subprocess.DEVNULL)
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        return proc

    cli("namespace", "create", "acme", "--description", "Acme images")
    assert [n["name"] for n in json.loads(cli("namespace", "list", "--json").stdout)] == ["acme"]
    cli("user", "create-remote", "alice", "--password-stdin", input="alice password\n")
    cli("member", "set", "acme", "alice", "developer")
    assert {m["username"]: m["role"] for m in json.loads(cli("member", "list", "acme", "--json").stdout)} == {
        "admin": "owner", "alice": "developer"}
    cli("repo", "create", "acme/web/app", "--summary", "the app", "--visibility", "public")
    assert json.loads(cli("repo", "show", "acme/web/app", "--json").stdout)["public"] is True
    assert [r["name"] for r in json.loads(cli("repo", "list", "-n", "acme", "--json").stdout)] == ["acme/web/app"]
    assert cli("repo", "tags", "acme/web/app").stdout == "no tags in acme/web/app\n"
    cli("credential", "password", "--password-stdin", input="fixed password 1\n")
    temp = json.loads(cli("credential", "temp", "--ttl", "10m", "-a", "pull", "--json").stdout)
    assert temp["password"] and temp["actions"] == ["pull"]
    robot = json.loads(cli("robot", "create", "acme", "ci", "-p", "acme/web/*:pull,push", "--json").stdout)
    assert robot["username"] == "robot$acme+ci" and robot["secret"]
    # the new credentials work for `docker login`'s token request
    for user, password in (("admin", "fixed password 1"), ("admin", temp["password"]), (robot["username"], robot["secret"])):
        answer = httpx.get(f"{server.url}/auth/token", params={"service": server.address,
                                                                "scope": "repository:acme/web/app:pull"},
                           auth=(user, password), timeout=10)
        assert answer.status_code == 200, (user, answer.text)
    cli("robot", "disable", "acme", "ci")
    assert json.loads(cli("robot", "list", "acme", "--json").stdout)[0]["disabled"] is True
    cli("credential", "revoke", temp["id"])
    assert [t["revoked_at"] is not None for t in json.loads(cli("credential", "list", "--json").stdout)] == [True]
    events = json.loads(cli("audit", "--target", "acme", "--json").stdout)
    assert {"namespace.create", "repository.create"} <= {e["action"] for e in events}
    refused = cli("namespace", "create", "BAD", code=1)
    assert refused.stderr.startswith("Error: ") and "BAD" in refused.stderr
    wrong = subprocess.run([sys.executable, "-m", "dockyard", "whoami"], capture_output=True, text=True, timeout=60,
                           env={**env, "DOCKYARD_PASSWORD": "wrong"}, stdin=subprocess.DEVNULL)
    assert wrong.returncode == 1 and wrong.stderr.startswith("Error: invalid username or password")
    cli("repo", "delete", "acme/web/app", "--yes")
    cli("namespace", "delete", "acme", "--yes")
    assert cli("namespace", "list").stdout == "no namespaces\n"


# -- jobs and remote gc -----------------------------------------------------------------------------------

def test_jobs_list_show_cancel_and_gc_through_the_api(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    as_user(monkeypatch, "admin")
    gc = ok(api, "gc", "--url", "http://registry.test", "--dry-run")
    assert json.loads(gc.stdout.strip().splitlines()[-1])["dry_run"] is True
    assert "garbage collection: job " in gc.stderr and "succeeded" in gc.stderr
    assert ("POST", "/api/v1/gc", {}, {"dry_run": True}) in api.calls("POST")
    gc_job = api.services.jobs.list(kind="gc")[0]
    later = api.services.jobs.submit("uploads.purge", delay_seconds=3600)

    table = lines(ok(api, "jobs", "list", "--kind", "gc"))
    assert table[0] == ["ID", "KIND", "STATE", "PROGRESS", "ATTEMPTS", "CREATED", "FINISHED", "ERROR"]
    assert [row[:3] for row in table[1:]] == [[str(gc_job.id), "gc", "succeeded"]]
    listed = json.loads(ok(api, "jobs", "list", "--state", "queued", "--json").stdout)
    assert [j["id"] for j in listed] == [later]
    shown = ok(api, "jobs", "show", str(gc_job.id)).stdout
    assert "kind:" in shown and "succeeded" in shown and '"dry_run":true' in shown.replace(" ", "")
    cancelled = ok(api, "jobs", "cancel", str(later))
    assert f"job {later}: cancelled" in cancelled.stdout
    assert f"job {later}: cancelled" in ok(api, "jobs", "cancel", str(later)).stdout  # idempotent
    assert f"job {gc_job.id}: already succeeded" in ok(api, "jobs", "cancel", str(gc_job.id)).stdout
    assert "not found" in fails(api, "jobs", "show", "999999").stderr
    queued = ok(api, "gc", "--url", "http://registry.test", "--no-wait")
    assert queued.stdout == "" and "garbage collection: job " in queued.stderr

    as_user(monkeypatch, "alice")
    assert "administrators only" in fails(api, "jobs", "list").stderr
