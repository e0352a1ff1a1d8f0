"""Repository names and tags, with the grammar of the OCI Distribution Spec."""

from __future__ import annotations

import re

from dockyard.core.errors import ManifestInvalid, NameInvalid

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_COMPONENT_RE = re.compile(_COMPONENT)
_TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
# distribution's limit: the whole name, host part excluded.
MAX_NAME_LENGTH = 255


def validate_name(name: str) -> str:
    """Return the name unchanged or raise NameInvalid saying why."""
    if not name:
        raise NameInvalid("repository name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise NameInvalid(f"repository name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}")
    if not _NAME_RE.fullmatch(name):  # fullmatch: `$` alone lets a trailing newline through
        raise NameInvalid(
            f"invalid repository name {name[:100]!r}: use lowercase letters, digits and separators (. _ __ -) "
            "in path components joined by '/'",
            {"name": name[:300]},
        )
    return name


def validate_namespace(name: str) -> str:
    """A namespace name is one repository path component; return it unchanged or raise NameInvalid."""
    if not name:
        raise NameInvalid("namespace name is empty")
    if len(name) > MAX_NAME_LENGTH - 2:
        raise NameInvalid(f"namespace name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH - 2}")
    if not _COMPONENT_RE.fullmatch(name):
        raise NameInvalid(
            f"invalid namespace name {name[:100]!r}: use lowercase letters, digits and separators (. _ __ -), "
            "starting and ending with a letter or digit, without '/'",
            {"name": name[:300]},
        )
    return name


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG_RE.fullmatch(tag))


def validate_tag(tag: str) -> str:
    if not _TAG_RE.fullmatch(tag):
        raise ManifestInvalid(
            f"invalid tag {tag[:140]!r}: up to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'",
            {"tag": tag[:300]},
        )
    return tag
