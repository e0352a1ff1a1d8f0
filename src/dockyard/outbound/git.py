"""Clone URLs: which are allowed, and how git is told to reach exactly the checked address.

A clone URL is a request the registry makes for a user, like a webhook: its host is resolved
here, every address checked against the policy (outbound/guard.py), and git is pinned to the
address that was checked (`http.curloptResolve` for http(s), the address itself for git:// and
ssh), with redirects off, so DNS cannot answer differently between the check and the fetch.
Only the http(s), git and ssh transports are allowed (`protocol.allow=never` for the others,
submodules included); `file://` only when the configuration allows it (administrators).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from dockyard.outbound.guard import AddressPolicy

Resolver = Callable[[str, int], list[str]]
SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<path>[^/].*)$")
DEFAULT_PORTS = {"http": 80, "https": 443, "git": 9418, "ssh": 22}


class CloneRefused(Exception):
    """The clone URL is not allowed (scheme, form or address)."""


@dataclass(frozen=True, slots=True)
class CloneTarget:
    """A checked clone URL: what git fetches from, and the configuration that pins it."""

    url: str  # what git is given (for git:// and ssh: the checked address in place of the host)
    display: str  # the URL as configured, for logs and labels (never with credentials)
    scheme: str
    host: str
    config: list[tuple[str, str]] = field(default_factory=list)  # git -c KEY=VALUE


def normalise(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, url) of a clone URL; `user@host:path` is ssh. Raises CloneRefused."""
    url = url.strip()
    if not url or len(url) > 2048 or any(c in url for c in "\0\n\r\t "):
        raise CloneRefused("not a clone URL")
    scp = SCP_LIKE.match(url)
    if scp:
        url = f"ssh://{scp['user']}@{scp['host']}/{scp['path']}"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return scheme, "", 0, url
    if scheme not in DEFAULT_PORTS:
        raise CloneRefused("only https://, http://, git://, ssh:// (or user@host:path) and, for administrators, "
                           "file:// clone URLs are allowed")
    if scheme != "ssh" and (parts.username or parts.password):
        raise CloneRefused("put the token in the build configuration's token, not in the URL")
    host = parts.hostname or ""
    if not host or host.startswith("-"):
        raise CloneRefused("the clone URL has no host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise CloneRefused("the clone URL's port is not a number") from None
    return scheme, host, port, url


def check(url: str, policy: AddressPolicy, resolver: Resolver, allow_file: bool) -> CloneTarget:
    """Check `url` now (resolving its host) and return how to fetch from it; raises CloneRefused."""
    scheme, host, port, url = normalise(url)
    display = _without_password(url)
    config = [("protocol.allow", "never"), ("protocol.file.allow", "always" if scheme == "file" else "never"),
              ("protocol.http.allow", "always" if scheme == "http" else "never"),
              ("protocol.https.allow", "always" if scheme == "https" else "never"),
              ("protocol.git.allow", "always" if scheme == "git" else "never"),
              ("protocol.ssh.allow", "always" if scheme == "ssh" else "never"),
              ("http.followRedirects", "false"), ("core.askPass", "/bin/false"), ("credential.helper", "")]
    if scheme == "file":
        if not allow_file:
            raise CloneRefused("file:// clone URLs are for administrators only")
        # a local repository belongs to someone else than the build user: git must not refuse it
        return CloneTarget(url, display, scheme, "", [*config, ("safe.directory", "*")])
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise CloneRefused(f"{host} does not resolve: {exc}") from None
    if not addresses:
        raise CloneRefused(f"{host} does not resolve to any address")
    for address in addresses:
        reason = policy.refusal(address)
        if reason is not None:
            raise CloneRefused(f"{host} resolves to {address}, which is {reason}: the registry does not fetch from "
                               "there (an administrator may allow a network with outbound.allowed_networks)")
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    if scheme in ("http", "https"):
        if ":" not in host:  # an IPv6 literal is not looked up (and curl cannot parse an entry for one)
            config.append(("http.curloptResolve", f"{host}:{port}:{address}"))
        return CloneTarget(url, display, scheme, host, config)
    parts = urlsplit(url)
    netloc = (f"{parts.username}@" if parts.username else "") + literal + (f":{parts.port}" if parts.port else "")
    return CloneTarget(urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), display, scheme, host, config)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
