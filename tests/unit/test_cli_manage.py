"""The `dockyard` commands that drive the management API (namespace, member, repo, credential, robot,
audit, whoami) and the client under them (dockyard.client).

They run through click's CliRunner against `FakeApi`: an httpx.MockTransport that implements the
/api/v1 endpoints the CLI calls, in memory, with the API's error bodies and pagination (pages of two
items, so every list is followed across pages). It records every request, so the tests check the
exact method, path, query and body sent as well as what the command prints.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import click
import httpx
import pytest
from click.testing import CliRunner, Result

from dockyard.cli import main
from dockyard.cli_manage import common, params
from dockyard.client import Client, ClientError

PAGE = 2


def _now() -> str:
    return datetime.now(UTC).isoformat()


class FakeApi:
    """/api/v1 in memory. Users: alice (password 'alice-pw'), admin ('admin-pw', an administrator)."""

    def __init__(self) -> None:
        self.users = {"alice": "alice-pw", "admin": "admin-pw", "bob": "bob-pw"}
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, dict[str, Any]]] = {}
        self.repos: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, list[dict[str, Any]]] = {}
        self.registry_passwords: dict[str, str] = {}
        self.temps: dict[str, dict[str, Any]] = {}
        self.robots: dict[str, dict[str, dict[str, Any]]] = {}
        self.audit: list[dict[str, Any]] = []
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self.handle)

    # -- helpers --------------------------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[tuple[str, str, dict[str, str], Any]]:
        """(method, decoded path, query, JSON body) of every /api/v1 request, optionally of one method."""
        out = []
        for r in self.requests:
            if method and r.method != method:
                continue
            body = json.loads(r.content) if r.content else None
            out.append((r.method, unquote(r.url.raw_path.decode().split("?")[0]), dict(r.url.params), body))
        return out

    def record(self, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
        self.audit.append({"id": len(self.audit) + 1, "at": _now(), "actor": actor, "action": action,
                           "target": target, "detail": detail, "remote": "127.0.0.1"})

    @staticmethod
    def error(status: int, code: str, message: str) -> httpx.Response:
        return httpx.Response(status, json={"error": {"code": code, "message": message}})

    @staticmethod
    def page(items: list[dict[str, Any]], key: str, params: httpx.QueryParams) -> httpx.Response:
        after = params.get("after")
        limit = min(int(params.get("limit", "100")), PAGE)
        rest = [i for i in items if after is None or str(i[key]) > after]
        chunk = rest[:limit]
        nxt = str(chunk[-1][key]) if len(rest) > limit else None
        return httpx.Response(200, json={"items": chunk, "next": nxt})

    def who(self, request: httpx.Request) -> str | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if self.users.get(user) == password else ""

    # -- the API --------------------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = unquote(request.url.raw_path.decode().split("?")[0])
        if not path.startswith("/api/v1/"):
            return httpx.Response(404, text="404 page not found")
        user = self.who(request)
        if not user:
            return self.error(401, "UNAUTHORIZED", "authentication required" if user is None else "invalid credentials")
        parts = path[len("/api/v1/"):].split("/")
        body = json.loads(request.content) if request.content else {}
        m, p = request.method, request.url.params
        if parts == ["user"] and m == "GET":
            roles = {ns: ms[user]["role"] for ns, ms in self.members.items() if user in ms}
            return httpx.Response(200, json={"username": user, "kind": "user", "is_admin": user == "admin",
                                             "read_only": False, "temp_password_id": None, "namespaces": roles})
        if parts == ["users"] and m == "POST":
            if user != "admin":
                return self.error(403, "forbidden", "administrators only")
            if body["username"] in self.users:
                return self.error(409, "conflict", f"user {body['username']!r} exists already")
            self.users[body["username"]] = body["password"]
            return httpx.Response(201, json={"username": body["username"], "is_admin": body["is_admin"], "disabled": False,
                                             "created_at": _now(), "has_registry_password": False})
        if parts == ["user", "registry-password"] and m == "PUT":
            if len(body.get("password", "")) < 8:
                return self.error(400, "INVALID", "passwords need at least 8 characters")
            self.registry_passwords[user] = body["password"]
            self.record(user, "user.registry_password", user)
            return httpx.Response(204)
        if parts[:2] == ["user", "temp-passwords"]:
            return self.temp(user, m, parts[2:], body)
        if parts[0] == "namespaces":
            return self.namespace(user, m, parts[1:], body, p)
        if parts[0] == "repositories":
            return self.repository(user, m, "/".join(parts[1:]), body, p)
        if parts == ["audit"] and m == "GET":
            events = [e for e in reversed(self.audit)
                      if (not p.get("actor") or e["actor"] == p["actor"])
                      and (not p.get("action") or e["action"].startswith(p["action"]))
                      and (not p.get("target") or e["target"].startswith(p["target"]))
                      and (not p.get("before") or e["id"] < int(p["before"]))]
            limit = min(int(p.get("limit", "100")), PAGE)
            chunk = events[:limit]
            return httpx.Response(200, json={"items": chunk, "next": chunk[-1]["id"] if len(events) > limit else None})
        return self.error(404, "NOT_FOUND", f"no such endpoint {m} {path}")

    def temp(self, user: str, m: str, rest: list[str], body: dict[str, Any]) -> httpx.Response:
        if not rest and m == "GET":
            mine = [{k: v for k, v in t.items() if k != "password"} for t in self.temps.values() if t["username"] == user]
            return httpx.Response(200, json={"items": mine, "next": None})
        if not rest and m == "POST":
            ttl = body.get("ttl_seconds", 3600)
            tid = f"tp{len(self.temps) + 1}"
            t = {"id": tid, "username": user, "password": secrets.token_urlsafe(16), "description": body.get("description"),
                 "repositories": body.get("repositories"), "actions": body.get("actions"), "created_at": _now(),
                 "expires_at": (datetime.now(UTC) + timedelta(seconds=ttl)).isoformat(), "revoked_at": None,
                 "last_used_at": None}
            self.temps[tid] = t
            self.record(user, "credential.temp.create", user, {"id": tid})
            return httpx.Response(201, json=t)
        if len(rest) == 1 and m == "DELETE":
            t = self.temps.get(rest[0])
            if t is None or t["username"] != user:
                return self.error(404, "NOT_FOUND", f"no temporary password {rest[0]!r}")
            t["revoked_at"] = _now()
            return httpx.Response(204)
        return self.error(405, "METHOD_NOT_ALLOWED", "method not allowed")

    def namespace(self, user: str, m: str, rest: list[str], body: dict[str, Any], p: httpx.QueryParams) -> httpx.Response:
        if not rest:
            if m == "GET":
                mine = [{**n, "role": self.members[n["name"]].get(user, {}).get("role")} for n in self.namespaces.values()]
                return self.page(sorted(mine, key=lambda n: n["name"]), "name", p)
            if m == "POST":
                name = body.get("name", "")
                if not name or not name.islower() or "/" in name:
                    return self.error(400, "NAME_INVALID", f"invalid namespace name {name!r}")
                if name in self.namespaces:
                    return self.error(409, "CONFLICT", f"namespace {name!r} already exists")
                ns = {"name": name, "description": body.get("description"), "public": body.get("public", False),
                      "auto_create": body.get("auto_create", True), "created_at": _now()}
                self.namespaces[name] = ns
                self.members[name] = {user: {"username": user, "role": "owner", "created_at": _now()}}
                self.robots[name] = {}
                self.record(user, "namespace.create", name)
                return httpx.Response(201, json=ns)
        name = rest[0]
        ns = self.namespaces.get(name)
        if ns is None:
            return self.error(404, "NOT_FOUND", f"no namespace {name!r}")
        if len(rest) == 1:
            if m == "GET":
                return httpx.Response(200, json=ns)
            if m == "PATCH":
                ns.update({k: v for k, v in body.items() if k in ("description", "public", "auto_create")})
                self.record(user, "namespace.update", name, body)
                return httpx.Response(200, json=ns)
            if m == "DELETE":
                if self.members[name].get(user, {}).get("role") != "owner" and user != "admin":
                    return self.error(403, "DENIED", f"only owners may delete namespace {name!r}")
                del self.namespaces[name]
                for r in [r for r in self.repos if r.startswith(name + "/")]:
                    del self.repos[r]
                self.record(user, "namespace.delete", name)
                return httpx.Response(204)
        if rest[1] == "members":
            if len(rest) == 2 and m == "GET":
                return httpx.Response(200, json={"items": sorted(self.members[name].values(), key=lambda x: x["username"]),
                                                 "next": None})
            who = rest[2]
            if m == "PUT":
                if who not in self.users:
                    return self.error(404, "NOT_FOUND", f"no user {who!r}")
                if body.get("role") not in ("owner", "developer", "guest"):
                    return self.error(400, "INVALID", "bad role")
                self.members[name][who] = {"username": who, "role": body["role"], "created_at": _now()}
                return httpx.Response(200, json=self.members[name][who])
            if m == "DELETE":
                if self.members[name].pop(who, None) is None:
                    return self.error(404, "NOT_FOUND", f"{who!r} is not a member of {name!r}")
                return httpx.Response(204)
        if rest[1] == "robots":
            robots = self.robots[name]
            if len(rest) == 2 and m == "GET":
                return self.page([{k: v for k, v in r.items() if k != "secret"} for _, r in sorted(robots.items())], "name", p)
            if len(rest) == 2 and m == "POST":
                rname = body["name"]
                if rname in robots:
                    return self.error(409, "CONFLICT", f"robot {rname!r} exists")
                ttl = body.get("ttl_seconds")
                r = {"name": rname, "namespace": name, "username": f"robot${name}+{rname}", "secret": secrets.token_hex(16),
                     "description": body.get("description"), "permissions": body["permissions"], "disabled": False,
                     "created_at": _now(), "last_used_at": None,
                     "expires_at": (datetime.now(UTC) + timedelta(seconds=ttl)).isoformat() if ttl else None}
                robots[rname] = r
                return httpx.Response(201, json=r)
            r = robots.get(rest[2])
            if r is None:
                return self.error(404, "NOT_FOUND", f"no robot {rest[2]!r} in {name!r}")
            if len(rest) == 4 and rest[3] == "rotate" and m == "POST":
                r["secret"] = secrets.token_hex(16)
                return httpx.Response(200, json={"username": r["username"], "secret": r["secret"]})
            if len(rest) == 3 and m == "PATCH":
                r.update({k: v for k, v in body.items() if k in ("disabled", "description", "permissions")})
                return httpx.Response(200, json={k: v for k, v in r.items() if k != "secret"})
            if len(rest) == 3 and m == "DELETE":
                del robots[rest[2]]
                return httpx.Response(204)
        return self.error(405, "METHOD_NOT_ALLOWED", "method not allowed")

    def repository(self, user: str, m: str, name: str, body: dict[str, Any], p: httpx.QueryParams) -> httpx.Response:
        if not name:
            if m == "GET":
                items = [r for _, r in sorted(self.repos.items())
                         if (not p.get("namespace") or r["name"].startswith(p["namespace"] + "/"))
                         and (not p.get("q") or p["q"] in r["name"] or p["q"] in (r["summary"] or ""))]
                return self.page(items, "name", p)
            if m == "POST":
                rname = body["name"]
                ns = self.namespaces.get(rname.split("/")[0])
                if ns is None or "/" not in rname:
                    return self.error(404, "NOT_FOUND", f"no namespace for {rname!r}")
                if rname in self.repos:
                    return self.error(409, "CONFLICT", f"repository {rname!r} already exists")
                vis = body.get("visibility")
                r = {"name": rname, "summary": body.get("summary"), "description": body.get("description"),
                     "visibility": vis, "public": vis == "public" if vis else ns["public"], "created_at": _now(),
                     "last_push_at": None}
                self.repos[rname] = r
                self.tags[rname] = []
                return httpx.Response(201, json=r)
        tags = name.endswith("/tags")
        base = name[: -len("/tags")] if tags else name
        r = self.repos.get(base)
        if r is None:
            return self.error(404, "NAME_UNKNOWN", f"repository {base!r} not found")
        if tags and m == "GET":
            return self.page(self.tags[base], "name", p)
        if m == "GET":
            return httpx.Response(200, json=r)
        if m == "PATCH":
            r.update({k: v for k, v in body.items() if k in ("summary", "description", "visibility")})
            if "visibility" in body:
                vis = body["visibility"]
                r["public"] = vis == "public" if vis else self.namespaces[base.split("/")[0]]["public"]
            return httpx.Response(200, json=r)
        if m == "DELETE":
            del self.repos[base]
            return httpx.Response(204)
        return self.error(405, "METHOD_NOT_ALLOWED", "method not allowed")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DOCKYARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOCKYARD_USER", "alice")
    monkeypatch.setenv("DOCKYARD_PASSWORD", "alice-pw")


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


def run(api: FakeApi, *args: str, input: str | None = None) -> Result:
    """The command in-process against the fake API; stdout and stderr apart."""
    return CliRunner().invoke(main, list(args), input=input, obj={"transport": api.transport}, catch_exceptions=False)


def ok(api: FakeApi, *args: str, input: str | None = None) -> Result:
    result = run(api, *args, input=input)
    assert result.exit_code == 0, (result.output, result.stderr)
    return result


def fails(api: FakeApi, *args: str, input: str | None = None, code: int = 1) -> Result:
    result = run(api, *args, input=input)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def lines(result: Result) -> list[list[str]]:
    return [line.split() for line in result.stdout.splitlines()]


# -- help ---------------------------------------------------------------------------------------------

def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out.extend(_commands(command, (*prefix, name)))
    return out


REMOTE = ["namespace", "member", "repo", "credential", "robot", "audit", "whoami"]


def test_help_lists_the_remote_commands_and_every_one_has_help(api: FakeApi) -> None:
    top = ok(api, "--help").output
    for name in REMOTE + ["serve", "user", "gc"]:
        assert f"\n  {name} " in top
    leaves = [c for c in _commands(main) if c[0] in REMOTE and not isinstance(main.commands[c[0]], click.Group)
              or len(c) > 1 and c[0] in REMOTE]
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


def test_docs_cli_md_covers_every_remote_command() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    leaves = [c for c in _commands(main) if c[0] in REMOTE and not isinstance(main.commands[c[0]], click.Group)
              or len(c) > 1 and c[0] in REMOTE] + [("user", "create-remote")]
    for path in leaves:
        assert f"dockyard {' '.join(path)} " in text or f"dockyard {' '.join(path)}\n" in text, path
        for param in main.commands[path[0]].commands[path[1]].params if len(path) > 1 else main.commands[path[0]].params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt not in ("--url", "--user", "--json", "--help"):
                    assert opt in text, (path, opt)


def test_the_local_user_commands_are_still_there(api: FakeApi) -> None:
    text = ok(api, "user", "--help").output
    for sub in ("add", "passwd", "list", "create-remote"):
        assert f"\n  {sub} " in text
    assert "--data" not in ok(api, "user", "create-remote", "--help").output


def test_user_create_remote(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    denied = fails(api, "user", "create-remote", "carol", "--password-stdin", input="carol password\n")
    assert denied.stderr == "Error: administrators only\n"
    monkeypatch.setenv("DOCKYARD_USER", "admin")
    monkeypatch.setenv("DOCKYARD_PASSWORD", "admin-pw")
    result = ok(api, "user", "create-remote", "carol", "--password-stdin", input="carol password\n")
    assert result.stdout == "created user carol\n"
    assert api.calls("POST")[-1] == ("POST", "/api/v1/users", {},
                                     {"username": "carol", "password": "carol password", "is_admin": False})
    prompted = ok(api, "user", "create-remote", "dan", "--admin", "--json", input="dan password\ndan password\n")
    assert json.loads(prompted.stdout)["is_admin"] is True and api.users["dan"] == "dan password"
    assert "dan password" not in prompted.output
    assert fails(api, "user", "create-remote", "dan", "--password-stdin", input="x" * 9 + "\n").stderr == (
        "Error: user 'dan' exists already\n")


def test_whoami_lists_roles(api: FakeApi) -> None:
    ok(api, "namespace", "create", "acme")
    ok(api, "namespace", "create", "tools")
    assert ["namespaces:", "acme:owner", "tools:owner"] in lines(ok(api, "whoami"))


# -- connection and credentials ---------------------------------------------------------------------

def test_basic_auth_from_the_environment_and_default_url(api: FakeApi) -> None:
    ok(api, "whoami")
    request = api.requests[-1]
    assert str(request.url) == "http://127.0.0.1:5000/api/v1/user"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"alice:alice-pw").decode()
    assert request.headers["accept"] == "application/json"


def test_url_and_user_options_and_environment(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_URL", "https://registry.example.com/")
    result = ok(api, "whoami", "--json")
    assert json.loads(result.stdout)["username"] == "alice"
    assert str(api.requests[-1].url) == "https://registry.example.com/api/v1/user"

    monkeypatch.setenv("DOCKYARD_PASSWORD", "admin-pw")
    result = ok(api, "whoami", "--url", "http://10.0.0.5:5001", "--user", "admin")
    assert str(api.requests[-1].url) == "http://10.0.0.5:5001/api/v1/user"
    assert ["administrator:", "yes"] in lines(result) and ["kind:", "user"] in lines(result)
    monkeypatch.setenv("DOCKYARD_USER", "admin")
    assert json.loads(ok(api, "whoami", "--json").stdout)["is_admin"] is True


def test_a_url_with_a_path_prefix_keeps_it(api: FakeApi) -> None:
    result = fails(api, "namespace", "list", "--url", "https://example.com/registry/")  # the fake is not there
    assert str(api.requests[-1].url).startswith("https://example.com/registry/api/v1/namespaces?")
    assert "does this server have the management API?" in result.stderr


def test_wrong_password_is_a_clear_error(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_PASSWORD", "wrong")
    result = fails(api, "namespace", "list")
    assert result.stderr == "Error: invalid credentials\n"
    assert result.stdout == ""


def test_missing_password_without_a_terminal_fails_before_any_request(api: FakeApi,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_PASSWORD")
    result = fails(api, "namespace", "list")
    assert "no password for 'alice'" in result.stderr and "DOCKYARD_PASSWORD" in result.stderr
    assert api.requests == []


def test_missing_credentials_are_asked_for_on_a_terminal(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_PASSWORD")
    monkeypatch.delenv("DOCKYARD_USER")
    monkeypatch.setattr(common, "_interactive", lambda: True)
    result = ok(api, "whoami", "--json", input="bob\nbob-pw\n")
    assert json.loads(result.stdout)["username"] == "bob"  # prompts go to stderr: stdout stays JSON
    assert "Username at http://127.0.0.1:5000" in result.stderr and "Password for bob" in result.stderr
    assert "bob-pw" not in result.output
    # with --user only the password is asked for
    result = ok(api, "whoami", "--user", "alice", input="alice-pw\n")
    assert "Username" not in result.stderr and "Password for alice" in result.stderr


def test_anonymous_without_user_and_terminal(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_USER")
    monkeypatch.delenv("DOCKYARD_PASSWORD")
    result = fails(api, "repo", "list")
    assert result.stderr == "Error: authentication required (no user given: use --user or DOCKYARD_USER)\n"
    assert "authorization" not in api.requests[-1].headers


def test_errors_without_an_api_error_body(api: FakeApi) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/namespaces"):
            return httpx.Response(404, text="404 page not found")
        if request.url.path.endswith("/user"):
            return httpx.Response(502, text="<html>Bad Gateway</html>")
        return httpx.Response(200, text="not json")

    transport = httpx.MockTransport(handler)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), obj={"transport": transport})

    result = invoke("namespace", "list")
    assert result.exit_code == 1 and "does this server have the management API?" in result.stderr
    result = invoke("whoami")
    assert result.exit_code == 1 and "HTTP 502 Bad Gateway: <html>Bad Gateway</html>" in result.stderr
    result = invoke("repo", "show", "a/b")
    assert result.exit_code == 1 and "not JSON" in result.stderr
    result = invoke("whoami", "--url", "ftp://x")
    assert result.exit_code == 1 and "invalid URL 'ftp://x'" in result.stderr


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

def test_namespace_create_show_list_update_delete(api: FakeApi) -> None:
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
    assert "acme" in api.namespaces and not api.calls("DELETE")
    ok(api, "namespace", "delete", "acme", input="y\n")
    assert "acme" not in api.namespaces
    assert ok(api, "namespace", "delete", "tools", "--yes").stdout == "deleted namespace tools\n"
    assert ok(api, "namespace", "list").stdout == "no namespaces\n"
    assert json.loads(ok(api, "namespace", "list", "--json").stdout) == []


def test_namespace_list_follows_pagination(api: FakeApi) -> None:
    for i in range(5):
        ok(api, "namespace", "create", f"ns{i}")
    api.requests.clear()
    names = [n["name"] for n in json.loads(ok(api, "namespace", "list", "--json").stdout)]
    assert names == [f"ns{i}" for i in range(5)]
    assert [c[2].get("after") for c in api.calls("GET")] == [None, "ns1", "ns3"]


def test_api_errors_are_shown_with_their_message(api: FakeApi) -> None:
    ok(api, "namespace", "create", "acme")
    assert fails(api, "namespace", "create", "acme").stderr == "Error: namespace 'acme' already exists\n"
    assert fails(api, "namespace", "create", "Bad").stderr == "Error: invalid namespace name 'Bad'\n"
    assert fails(api, "namespace", "show", "nope").stderr == "Error: no namespace 'nope'\n"
    with Client(transport=api.transport, username="alice", password="alice-pw") as client:
        with pytest.raises(ClientError) as info:
            client.namespace("nope")
    assert (info.value.status, info.value.code, info.value.message) == (404, "NOT_FOUND", "no namespace 'nope'")


def test_names_are_escaped_in_paths(api: FakeApi) -> None:
    fails(api, "namespace", "show", "a b/../c")
    assert api.requests[-1].url.raw_path == b"/api/v1/namespaces/a%20b%2F..%2Fc"
    fails(api, "repo", "show", "acme/team/app")
    assert api.requests[-1].url.raw_path == b"/api/v1/repositories/acme/team/app"


# -- members ------------------------------------------------------------------------------------------

def test_member_set_list_remove(api: FakeApi) -> None:
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
    assert fails(api, "member", "set", "acme", "zed", "guest").stderr == "Error: no user 'zed'\n"
    assert ok(api, "member", "remove", "acme", "bob").stdout == "removed bob from acme\n"
    assert api.calls("DELETE")[-1][:2] == ("DELETE", "/api/v1/namespaces/acme/members/bob")
    assert "bob" not in api.members["acme"]


# -- repositories -----------------------------------------------------------------------------------

def test_repo_create_show_update_delete(api: FakeApi) -> None:
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
    assert "acme/web/api" in api.repos
    assert ok(api, "repo", "delete", "acme/web/api", "-y").stdout == "deleted repository acme/web/api\n"
    assert api.calls("DELETE")[-1][1] == "/api/v1/repositories/acme/web/api"
    assert fails(api, "repo", "show", "acme/web/api").stderr == "Error: repository 'acme/web/api' not found\n"


def test_repo_list_filters_and_pages(api: FakeApi) -> None:
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


def test_repo_tags(api: FakeApi) -> None:
    ok(api, "namespace", "create", "acme")
    ok(api, "repo", "create", "acme/app")
    digest = "sha256:" + "ab" * 32
    api.tags["acme/app"] = [{"name": t, "digest": digest, "pulls": n, "last_pulled_at": "2025-03-01T10:00:00+00:00" if n else None}
                            for t, n in (("1.0", 3), ("1.1", 0), ("latest", 12))]
    table = lines(ok(api, "repo", "tags", "acme/app"))
    assert table[0] == ["TAG", "DIGEST", "PULLS", "LAST", "PULLED"]
    assert table[1] == ["1.0", digest, "3", "2025-03-01", "10:00:00Z"]
    assert table[2] == ["1.1", digest, "0", "-"]
    assert table[3][0] == "latest"
    assert [t["name"] for t in json.loads(ok(api, "repo", "tags", "acme/app", "--json").stdout)] == ["1.0", "1.1", "latest"]
    assert api.calls("GET")[-1][1] == "/api/v1/repositories/acme/app/tags"
    api.tags["acme/app"] = []
    assert ok(api, "repo", "tags", "acme/app").stdout == "no tags in acme/app\n"


# -- credentials --------------------------------------------------------------------------------------

def test_credential_password_from_stdin_and_prompt(api: FakeApi) -> None:
    result = ok(api, "credential", "password", "--password-stdin", input="fixed secret 1\n")
    assert api.registry_passwords["alice"] == "fixed secret 1"
    assert api.calls("PUT")[-1] == ("PUT", "/api/v1/user/registry-password", {}, {"password": "fixed secret 1"})
    assert "fixed secret" not in result.output
    assert "docker login -u alice --password-stdin 127.0.0.1:5000" in result.stdout

    prompted = ok(api, "credential", "password", input="fixed secret 2\nfixed secret 2\n")
    assert api.registry_passwords["alice"] == "fixed secret 2"
    assert "fixed secret" not in prompted.output  # hidden input
    short = fails(api, "credential", "password", "--password-stdin", input="short\n")
    assert short.stderr == "Error: passwords need at least 8 characters\n"
    assert fails(api, "credential", "password", "--password-stdin", input="\n").stderr == "Error: the password is empty\n"


def test_credential_temp_prints_the_password_once_with_the_login_line(api: FakeApi) -> None:
    result = ok(api, "credential", "temp", "--url", "http://registry.lan:5000", "--ttl", "2h", "-r", "acme/*",
                "-r", "tools/curl", "--action", "pull", "--description", "CI job 42")
    body = api.calls("POST")[-1][3]
    assert body == {"ttl_seconds": 7200, "description": "CI job 42", "repositories": ["acme/*", "tools/curl"],
                    "actions": ["pull"]}
    password = api.temps["tp1"]["password"]
    out = result.stdout.splitlines()
    assert out[0].startswith("temporary password tp1 for alice, expires ")
    assert "(repositories acme/*, tools/curl; actions pull)" in out[0]
    assert out.count(f"  {password}") == 1
    assert out[-1] == "  docker login -u alice --password-stdin registry.lan:5000"

    ok(api, "credential", "temp")
    assert api.calls("POST")[-1][3] == {}  # the server's defaults
    as_json = json.loads(ok(api, "credential", "temp", "--ttl", "600", "--json").stdout)
    assert as_json["password"] == api.temps["tp3"]["password"] and as_json["id"] == "tp3"
    assert fails(api, "credential", "temp", "--ttl", "soon", code=2).stderr.count("not a duration") == 1
    assert "positive" in fails(api, "credential", "temp", "--ttl", "0", code=2).stderr
    assert "'fetch' is not one of" in fails(api, "credential", "temp", "--action", "fetch", code=2).stderr


def test_credential_list_and_revoke(api: FakeApi) -> None:
    ok(api, "credential", "temp", "--description", "laptop")
    ok(api, "credential", "temp", "-r", "acme/app", "-a", "pull", "-a", "push")
    api.temps["tp2"]["expires_at"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert ok(api, "credential", "revoke", "tp1").stdout == "revoked temporary password tp1\n"
    assert api.calls("DELETE")[-1][1] == "/api/v1/user/temp-passwords/tp1"
    table = lines(ok(api, "credential", "list"))
    assert table[0] == ["ID", "STATUS", "EXPIRES", "REPOSITORIES", "ACTIONS", "LAST", "USED", "DESCRIPTION"]
    assert table[1][:2] == ["tp1", "revoked"] and table[1][-1] == "laptop"
    assert table[2][:2] == ["tp2", "expired"] and table[2][4:6] == ["acme/app", "pull,push"]
    listed = ok(api, "credential", "list", "--json")
    assert [t["id"] for t in json.loads(listed.stdout)] == ["tp1", "tp2"]
    for t in api.temps.values():
        assert t["password"] not in listed.stdout
    assert fails(api, "credential", "revoke", "tp9").stderr == "Error: no temporary password 'tp9'\n"


# -- robots ---------------------------------------------------------------------------------------------

def test_robot_create_prints_the_secret_once_with_a_quoted_login(api: FakeApi) -> None:
    ok(api, "namespace", "create", "acme")
    result = ok(api, "robot", "create", "acme", "ci", "--permission", "app-*:pull,push", "-p", "acme/base/*:pull",
                "--ttl", "90d", "--description", "GitLab CI")
    assert api.calls("POST")[-1] == ("POST", "/api/v1/namespaces/acme/robots", {}, {
        "name": "ci", "description": "GitLab CI", "ttl_seconds": 90 * 86400,
        "permissions": [{"repositories": "app-*", "actions": ["pull", "push"]},
                        {"repositories": "acme/base/*", "actions": ["pull"]}]})
    secret = api.robots["acme"]["ci"]["secret"]
    out = result.stdout.splitlines()
    assert out[0].startswith("created robot robot$acme+ci (app-*:pull,push acme/base/*:pull; expires 20")
    assert "  username: robot$acme+ci" in out and f"  secret:   {secret}" in out
    assert result.stdout.count(secret) == 1
    assert out[-1] == "  docker login -u 'robot$acme+ci' --password-stdin 127.0.0.1:5000"

    as_json = json.loads(ok(api, "robot", "create", "acme", "deploy", "-p", "*:*", "--json").stdout)
    assert as_json["username"] == "robot$acme+deploy" and as_json["secret"] == api.robots["acme"]["deploy"]["secret"]
    assert api.calls("POST")[-1][3] == {"name": "deploy", "permissions": [{"repositories": "*", "actions": ["pull", "push", "delete"]}]}


@pytest.mark.parametrize("bad", ["app", ":pull", "app:", "app:fetch", "app:pull,rm"])
def test_robot_create_rejects_bad_permissions_before_any_request(api: FakeApi, bad: str) -> None:
    result = fails(api, "robot", "create", "acme", "ci", "--permission", bad, code=2)
    assert "Invalid value for '--permission'" in result.stderr
    assert api.requests == []


def test_robot_create_needs_a_permission(api: FakeApi) -> None:
    assert "Missing option '--permission'" in fails(api, "robot", "create", "acme", "ci", code=2).stderr


def test_robot_list_rotate_disable_enable_delete(api: FakeApi) -> None:
    ok(api, "namespace", "create", "acme")
    for name in ("a", "b", "c"):
        ok(api, "robot", "create", "acme", name, "-p", "*:pull")
    old = api.robots["acme"]["b"]["secret"]
    rotated = ok(api, "robot", "rotate", "acme", "b")
    new = api.robots["acme"]["b"]["secret"]
    assert new != old and f"  {new}" in rotated.stdout.splitlines() and "robot$acme+b" in rotated.stdout
    assert api.calls("POST")[-1][1] == "/api/v1/namespaces/acme/robots/b/rotate"
    assert json.loads(ok(api, "robot", "rotate", "acme", "b", "--json").stdout)["secret"] == api.robots["acme"]["b"]["secret"]

    assert ok(api, "robot", "disable", "acme", "a").stdout == "disabled robot$acme+a\n"
    assert api.calls("PATCH")[-1] == ("PATCH", "/api/v1/namespaces/acme/robots/a", {}, {"disabled": True})
    table = lines(ok(api, "robot", "list", "acme"))  # three robots: two pages
    assert table[0] == ["USERNAME", "STATUS", "PERMISSIONS", "EXPIRES", "LAST", "USED", "DESCRIPTION"]
    assert [row[:4] for row in table[1:]] == [["robot$acme+a", "disabled", "*:pull", "never"],
                                              ["robot$acme+b", "active", "*:pull", "never"],
                                              ["robot$acme+c", "active", "*:pull", "never"]]
    ok(api, "robot", "enable", "acme", "a")
    assert api.calls("PATCH")[-1][3] == {"disabled": False}
    listed = ok(api, "robot", "list", "acme", "--json")
    assert [r["disabled"] for r in json.loads(listed.stdout)] == [False, False, False]
    assert api.robots["acme"]["c"]["secret"] not in listed.stdout

    assert ok(api, "robot", "delete", "acme", "c").stdout == "deleted robot$acme+c\n"
    assert api.calls("DELETE")[-1][1] == "/api/v1/namespaces/acme/robots/c"
    assert fails(api, "robot", "rotate", "acme", "c").stderr == "Error: no robot 'c' in 'acme'\n"


# -- audit ----------------------------------------------------------------------------------------------

def test_audit_filters_limit_and_before_pagination(api: FakeApi) -> None:
    for i in range(4):
        ok(api, "namespace", "create", f"ns{i}")
    ok(api, "namespace", "update", "ns1", "--public")
    api.record("bob", "repository.push", "ns1/app:1.0", {"digest": "sha256:" + "0" * 64})
    api.requests.clear()

    events = json.loads(ok(api, "audit", "--json").stdout)
    assert [e["id"] for e in events] == [6, 5, 4, 3, 2, 1]  # newest first, across three pages
    assert [c[2].get("before") for c in api.calls("GET")] == [None, "5", "3"]

    table = lines(ok(api, "audit", "--limit", "3"))
    assert table[0] == ["ID", "AT", "ACTOR", "ACTION", "TARGET", "FROM", "DETAIL"]
    assert [row[0] for row in table[1:]] == ["6", "5", "4"]
    assert table[1][3:7] == ["bob", "repository.push", "ns1/app:1.0", "127.0.0.1"]
    assert table[1][7].startswith('{"digest":"sha256:000') and table[1][7].endswith("…")

    api.requests.clear()
    filtered = json.loads(ok(api, "audit", "--actor", "alice", "--action", "namespace.", "--target", "ns1", "--json").stdout)
    assert [(e["action"], e["target"]) for e in filtered] == [("namespace.update", "ns1"), ("namespace.create", "ns1")]
    query = api.calls("GET")[0][2]
    assert (query["actor"], query["action"], query["target"]) == ("alice", "namespace.", "ns1")
    assert ok(api, "audit", "--actor", "nobody").stdout == "no audit events\n"
    assert "Invalid value for '--limit'" in fails(api, "audit", "--limit", "0", code=2).stderr


# -- the client on its own ----------------------------------------------------------------------------

def test_client_paginate_stops_at_the_limit_and_accepts_plain_lists() -> None:
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        if request.url.path.endswith("/plain"):
            return httpx.Response(200, json=[{"n": 1}, {"n": 2}])
        start = int(request.url.params.get("after", "0"))
        return httpx.Response(200, json={"items": [{"n": start + 1}, {"n": start + 2}], "next": str(start + 2)})

    with Client("http://x", transport=httpx.MockTransport(handler)) as client:
        assert [i["n"] for i in client.paginate("/endless", limit=5)] == [1, 2, 3, 4, 5]
        assert [s.get("limit") for s in seen] == ["5", "3", "1"]
        assert [i["n"] for i in client.paginate("/plain")] == [1, 2]
        assert client.registry_host == "x"
    assert "authorization" not in {k.lower() for k in seen[0]}


def test_duration_parsing() -> None:
    duration = params.Duration()
    assert [duration.convert(v, None, None) for v in ("3600", "90s", "30m", "12h", "7d", "2w", " 5 M ")] == [
        3600, 90, 1800, 43200, 604800, 1209600, 300]
    for bad in ("", "1.5h", "-3", "h", "3y"):
        with pytest.raises(click.BadParameter):
            duration.convert(bad, None, None)


# -- against a real `dockyard serve` ----------------------------------------------------------------------

@pytest.mark.e2e
def test_the_walk_through_against_a_real_server(server: Any) -> None:
    """Real processes both sides: `python -m dockyard ...` against `dockyard serve` (skipped while the
    server has no management API)."""
    if httpx.get(f"{server.url}/api/v1/user", auth=(server.user, server.password), timeout=10).status_code == 404:
        pytest.skip("this server has no /api/v1 yet")
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
    assert refused.stderr.startswith("Error: invalid namespace name 'BAD'")
    wrong = subprocess.run([sys.executable, "-m", "dockyard", "whoami"], capture_output=True, text=True, timeout=60,
                           env={**env, "DOCKYARD_PASSWORD": "wrong"}, stdin=subprocess.DEVNULL)
    assert wrong.returncode == 1 and wrong.stderr.startswith("Error: invalid username or password")
    cli("repo", "delete", "acme/web/app", "--yes")
    cli("namespace", "delete", "acme", "--yes")
    assert cli("namespace", "list").stdout == "no namespaces\n"
