"""Which system user a build runs as.

Run as root, Dockyard hands a build's git and buildah to an unprivileged user that has a
subordinate id range (/etc/subuid, /etc/subgid): buildah then runs rootless, and a Dockerfile's RUN
steps run as root inside a user namespace, which is an unprivileged user (100000 and up) on the
host. Without such a user the build runs as Dockyard's own user (chroot isolation only).
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

DEFAULT_USER = "dockyard-builder"


@dataclass(frozen=True, slots=True)
class BuildUser:
    name: str
    uid: int
    gid: int
    home: Path


def _has_range(name: str, uid: int, path: str) -> bool:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return False
    return any(line.split(":", 1)[0] in (name, str(uid)) for line in lines if ":" in line)


def resolve(setting: str) -> BuildUser | None:
    """The user builds run as for `builds.run_as` (None: Dockyard's own). Raises ValueError when
    a named user does not exist or has no subordinate ids."""
    if setting == "self":
        return None
    name = DEFAULT_USER if setting == "auto" else setting
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if setting == "auto":
            return None
        raise ValueError(f"builds.run_as: there is no system user {name!r}") from None
    usable = _has_range(name, entry.pw_uid, "/etc/subuid") and _has_range(name, entry.pw_uid, "/etc/subgid")
    if os.geteuid() != 0 or entry.pw_uid == os.geteuid() or not usable:
        if setting == "auto":
            return None
        raise ValueError(f"builds.run_as: {name!r} needs ranges in /etc/subuid and /etc/subgid, and Dockyard must run "
                         "as root to start builds as another user")
    return BuildUser(name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))
