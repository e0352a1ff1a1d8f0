"""The distribution, from os-release(5): ID, VERSION_ID, VERSION_CODENAME, PRETTY_NAME.

`etc/os-release` is often a symlink to `../usr/lib/os-release` (Debian, Ubuntu), which the
inventory does not follow: both paths are read where they are regular files, and the inventory
prefers etc/os-release when both survive, as os-release(5) says readers should.
"""

from __future__ import annotations

from dockyard.scan.analyzers import Findings, Read, Want
from dockyard.scan.model import OsInfo

PATHS = ("etc/os-release", "usr/lib/os-release")
_ESCAPABLE = '"\\$`'


def want(path: str) -> Want | None:
    return _WANT if path in PATHS else None


def parse_fields(text: str) -> dict[str, str]:
    """KEY=VALUE lines in shell syntax (quotes and backslash escapes); comments and junk skipped."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        fields[key.strip()] = _unquote(raw.strip())
    return fields


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        quote, body = raw[0], raw[1:-1]
        if quote == "'":
            return body
        out, i = [], 0
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in _ESCAPABLE:
                i += 1
            out.append(body[i])
            i += 1
        return "".join(out)
    return raw


def parse(path: str, data: bytes) -> Findings:
    """The OsInfo of an os-release file; none when it has no ID. Debian testing and sid have no
    VERSION_ID: the version is then "" and the codename says which release it is."""
    fields = parse_fields(data.decode("utf-8", "replace"))
    os_id = fields.get("ID", "").strip().lower()
    if not os_id:
        return Findings(notes=(f"{path}: no ID, distribution unknown",))
    return Findings(os=OsInfo(id=os_id, version=fields.get("VERSION_ID", "").strip(),
                              codename=fields.get("VERSION_CODENAME") or None,
                              pretty_name=fields.get("PRETTY_NAME") or None))


_WANT = Want("os-release", Read.BYTES, parse)
