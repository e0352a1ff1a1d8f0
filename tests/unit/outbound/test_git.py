"""outbound/git.py: which clone URLs are allowed (scheme, form, every resolved address against the
policy) and how git is pinned to the checked address (`http.curloptResolve` for http(s), the address
in place of the host for git:// and ssh). Names resolve through a fake resolver; the pinning itself
is shown with the real git against listeners on 127.0.0.1 under names no DNS knows."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.outbound.git import CloneRefused, CloneTarget, check, normalise
from dockyard.outbound.guard import AddressPolicy
from tests.git_server import GitServer

PUBLIC = "93.184.216.34"
PUBLIC6 = "2606:2800:220:1:248:1893:25c8:1946"
NAMES = {"git.example.com": [PUBLIC], "both.example.com": [PUBLIC, PUBLIC6], "v6.example.com": [PUBLIC6],
         "metadata.example.com": ["169.254.169.254"], "intranet.example.com": ["10.0.0.5"],
         "local.example.com": ["127.0.0.1"], "mixed.example.com": [PUBLIC, "192.168.1.9"],
         "mapped.example.com": ["::ffff:127.0.0.1"], "none.example.com": []}


def resolver(host: str, port: int) -> list[str]:
    """NAMES, and IP literals as themselves; anything else does not resolve."""
    if host in NAMES:
        return list(NAMES[host])
    if host.replace(".", "").isdigit() or ":" in host:
        return [host]
    raise OSError(f"[Errno -2] Name or service not known: {host}")


def ok(url: str, allowed: tuple[str, ...] = (), allow_file: bool = False) -> CloneTarget:
    return check(url, AddressPolicy(allowed), resolver, allow_file)


def refused(url: str, allowed: tuple[str, ...] = (), allow_file: bool = False) -> str:
    with pytest.raises(CloneRefused) as caught:
        ok(url, allowed, allow_file)
    return str(caught.value)


def config(target: CloneTarget) -> dict[str, str]:
    return dict(target.config)


# --- the URL's form ---

@pytest.mark.parametrize(("url", "expected"), [
    ("git@github.com:team/app.git", ("ssh", "github.com", 22, "ssh://git@github.com/team/app.git")),
    ("deploy@git.example.com:~/app.git", ("ssh", "git.example.com", 22, "ssh://deploy@git.example.com/~/app.git")),
    ("git@[2001:db8::1]:team/app.git", ("ssh", "2001:db8::1", 22, "ssh://git@[2001:db8::1]/team/app.git")),
    ("  https://github.com/team/app.git  ", ("https", "github.com", 443, "https://github.com/team/app.git")),
    ("HTTP://GitHub.com:8080/team/app", ("http", "github.com", 8080, "HTTP://GitHub.com:8080/team/app")),
    ("git://git.example.com/app.git", ("git", "git.example.com", 9418, "git://git.example.com/app.git")),
    ("ssh://git@git.example.com:2222/app.git", ("ssh", "git.example.com", 2222, "ssh://git@git.example.com:2222/app.git")),
    ("file:///srv/git/app.git", ("file", "", 0, "file:///srv/git/app.git")),
])
def test_normalise(url: str, expected: tuple[str, str, int, str]) -> None:
    assert normalise(url) == expected


@pytest.mark.parametrize(("url", "message"), [
    ("", "not a clone URL"),
    ("https://github.com/team/app.git\n--upload-pack=touch /tmp/x", "not a clone URL"),
    ("https://git hub.com/x", "not a clone URL"),
    ("https://github.com/\x00", "not a clone URL"),
    ("https://" + "a" * 2048, "not a clone URL"),
    ("/srv/git/app.git", "only https://"),  # no scheme: a local path
    ("github.com/team/app.git", "only https://"),
    ("github.com:team/app.git", "only https://"),  # scp-like without a user: not taken for ssh
    ("ext::sh", "only https://"),
    ("ext::ssh -oProxyCommand=touch%20x host", "not a clone URL"),
    ("fd::17", "only https://"),
    ("ftp://git.example.com/app.git", "only https://"),
    ("https://user:token@github.com/team/app.git", "token"),  # credentials in the URL
    ("https://token@github.com/team/app.git", "token"),
    ("git://user@git.example.com/app.git", "token"),
    ("https:///team/app.git", "no host"),
    ("ssh://-oProxyCommand=x/app.git", "no host"),
    ("https://github.com:99999/x", "port"),
    ("https://github.com:http/x", "port"),
])
def test_normalise_refuses(url: str, message: str) -> None:
    with pytest.raises(CloneRefused) as caught:
        normalise(url)
    assert message in str(caught.value)


# --- the addresses ---

@pytest.mark.parametrize(("url", "what"), [
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("https://metadata.example.com/x.git", "link-local"),
    ("http://127.0.0.1:8080/x.git", "loopback"),
    ("https://local.example.com/x.git", "loopback"),
    ("git://[::1]/x.git", "loopback"),
    ("https://mapped.example.com/x.git", "loopback"),  # ::ffff:127.0.0.1 is 127.0.0.1
    ("https://intranet.example.com/x.git", "private"),
    ("git@10.1.2.3:team/app.git", "private"),
    ("ssh://git@192.168.0.1/app.git", "private"),
    ("https://mixed.example.com/x.git", "private"),  # every address is checked, not only the first
    ("http://0.0.0.0/x.git", "unspecified"),
    ("http://100.64.0.1/x.git", "CGNAT"),
])
def test_non_public_addresses_are_refused(url: str, what: str) -> None:
    message = refused(url)
    assert what in message and "outbound.allowed_networks" in message


def test_a_name_that_does_not_resolve_is_refused() -> None:
    assert "does not resolve" in refused("https://nowhere.invalid/x.git")
    assert "does not resolve to any address" in refused("https://none.example.com/x.git")


def test_allowed_networks_let_those_addresses_through() -> None:
    assert ok("http://127.0.0.1:8080/x.git", ("127.0.0.0/8",)).scheme == "http"
    assert ok("https://intranet.example.com/x.git", ("10.0.0.0/16",)).host == "intranet.example.com"
    assert ok("https://mapped.example.com/x.git", ("127.0.0.0/8",)).host == "mapped.example.com"
    assert "private" in refused("https://intranet.example.com/x.git", ("127.0.0.0/8",))  # another network
    assert "link-local" in refused("http://169.254.169.254/x", ("10.0.0.0/8",))


def test_file_urls_are_for_administrators_only() -> None:
    assert "administrators" in refused("file:///srv/git/app.git")
    assert "administrators" in refused("FILE:///srv/git/app.git")
    target = ok("file:///srv/git/app.git", allow_file=True)
    assert (target.scheme, target.host, target.url) == ("file", "", "file:///srv/git/app.git")
    assert config(target)["protocol.file.allow"] == "always" and config(target)["protocol.http.allow"] == "never"


# --- what git is told ---

def test_only_the_urls_own_transport_is_allowed_and_redirects_are_off() -> None:
    cfg = config(ok("https://git.example.com/team/app.git"))
    assert cfg["protocol.allow"] == "never"
    assert cfg["protocol.https.allow"] == "always"
    assert {cfg[f"protocol.{p}.allow"] for p in ("file", "http", "git", "ssh")} == {"never"}
    assert cfg["http.followRedirects"] == "false"
    assert cfg["core.askPass"] == "/bin/false" and cfg["credential.helper"] == ""


def test_http_is_pinned_with_curlopt_resolve() -> None:
    target = ok("https://git.example.com/team/app.git")
    assert target.url == "https://git.example.com/team/app.git"  # the name stays: TLS checks it
    assert config(target)["http.curloptResolve"] == f"git.example.com:443:{PUBLIC}"
    assert config(ok("http://git.example.com:8080/app"))["http.curloptResolve"] == f"git.example.com:8080:{PUBLIC}"
    # the first of the (all checked) addresses
    assert config(ok("https://both.example.com/app"))["http.curloptResolve"] == f"both.example.com:443:{PUBLIC}"
    assert config(ok("https://v6.example.com/app"))["http.curloptResolve"] == f"v6.example.com:443:{PUBLIC6}"


def test_an_ip_literal_http_host_needs_no_pin() -> None:
    # curl cannot parse a CURLOPT_RESOLVE entry for an IPv6 host, and a literal is not looked up anyway
    target = ok(f"http://[{PUBLIC6}]:8080/app.git")
    assert target.url == f"http://[{PUBLIC6}]:8080/app.git" and "http.curloptResolve" not in config(target)


def test_git_and_ssh_get_the_checked_address_in_place_of_the_host() -> None:
    target = ok("git://git.example.com/app.git")
    assert (target.url, target.host, target.display) == (f"git://{PUBLIC}/app.git", "git.example.com",
                                                          "git://git.example.com/app.git")
    assert "http.curloptResolve" not in config(target) and config(target)["protocol.git.allow"] == "always"
    target = ok("ssh://git@git.example.com:2222/team/app.git")
    assert target.url == f"ssh://git@{PUBLIC}:2222/team/app.git"
    assert target.host == "git.example.com"  # the runner's HostKeyAlias: known_hosts by name
    target = ok("git@git.example.com:team/app.git")
    assert (target.url, target.scheme) == (f"ssh://git@{PUBLIC}/team/app.git", "ssh")


def test_ipv6_addresses_are_bracketed() -> None:
    assert ok("git://v6.example.com/app.git").url == f"git://[{PUBLIC6}]/app.git"
    assert ok("ssh://git@v6.example.com:2222/app.git").url == f"ssh://git@[{PUBLIC6}]:2222/app.git"
    assert ok("git@v6.example.com:app.git").url == f"ssh://git@[{PUBLIC6}]/app.git"


def test_an_ssh_password_is_neither_shown_nor_passed_on() -> None:
    target = ok("ssh://git:hunter2@git.example.com/app.git")
    assert "hunter2" not in target.display and "hunter2" not in target.url
    assert target.display == "ssh://git@git.example.com/app.git"


# --- the pin, with the real git ---

def _git(args: list[str], target: CloneTarget) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": str(len(target.config))}
    for i, (key, value) in enumerate(target.config):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return subprocess.run(["git", *args, target.url], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_git_reaches_the_pinned_address_of_a_name_no_dns_knows(tmp_path: Path) -> None:
    with GitServer(tmp_path) as server:
        repo = server.repository("app")
        sha = repo.commit({"README": "hi\n"}, "first")
        repo.push("main")

        def pinned(host: str, port: int) -> list[str]:
            assert host == "git.dockyard-test.invalid"
            return ["127.0.0.1"]

        target = check(f"git://git.dockyard-test.invalid:{server.port}/app.git", AddressPolicy(["127.0.0.0/8"]),
                       pinned, False)
        done = _git(["ls-remote"], target)
        assert done.returncode == 0, done.stderr
        assert f"{sha}\trefs/heads/main" in done.stdout


@pytest.fixture
def http_listener() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on 127.0.0.1 recording the Host header of each request (and answering 404)."""
    hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hosts.append(str(self.headers.get("Host")))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1]), hosts
    server.shutdown()
    server.server_close()


def test_curlopt_resolve_takes_git_over_http_to_the_checked_address(http_listener: tuple[int, list[str]]) -> None:
    port, hosts = http_listener
    target = check(f"http://git.dockyard-test.invalid:{port}/app.git", AddressPolicy(["127.0.0.0/8"]),
                   lambda host, port: ["127.0.0.1"], False)
    done = _git(["ls-remote"], target)
    assert done.returncode != 0 and "not found" in done.stderr  # the listener's 404: it was reached
    assert hosts == [f"git.dockyard-test.invalid:{port}"]
