"""Repository names and tags (OCI distribution spec grammar)."""

from __future__ import annotations

import pytest

from dockyard.core.errors import ManifestInvalid, NameInvalid
from dockyard.core.names import MAX_NAME_LENGTH, is_valid_tag, validate_name, validate_tag


@pytest.mark.parametrize("name", [
    "a", "library/ubuntu", "a/b/c/d/e", "my-app", "my--app", "my_app", "my__app", "my.app", "a1/b2.c3_d4-e5",
    "0", "registry.example.com/team/app", "a" * MAX_NAME_LENGTH, "/".join(["ab"] * 85),
])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", [
    "", "A", "Library/ubuntu", "a..b", "a/../b", "..", ".", "./a", "a/.", "a//b", "/a", "a/", "-a", "a-", "_a", "a_",
    "a___b", "a.-b", "a._b", "a_.b", "a b", "a\tb", "a\nb", "a\n", "\na", "a\x00b", "é", "a:b", "a@b", "a+b", "a%2fb",
    "a\\b", "a" * (MAX_NAME_LENGTH + 1), "a/" * 200 + "a", "ａ",
])
def test_invalid_names(name: str) -> None:
    with pytest.raises(NameInvalid) as exc:
        validate_name(name)
    assert exc.value.code == "NAME_INVALID"


def test_name_limit_message() -> None:
    with pytest.raises(NameInvalid, match="limit is 255"):
        validate_name("a" * 300)


def test_name_error_detail_is_bounded() -> None:
    with pytest.raises(NameInvalid) as exc:
        validate_name("A" * 250)
    assert len(exc.value.message) < 400


@pytest.mark.parametrize("tag", ["latest", "v1.0", "1", "_x", "A_b-c.d", "a" * 128, "UPPER", "0.0.0-rc1", "x--y"])
def test_valid_tags(tag: str) -> None:
    assert validate_tag(tag) == tag
    assert is_valid_tag(tag)


@pytest.mark.parametrize("tag", ["", ".x", "-x", "a" * 129, "a/b", "a:b", "a b", "a\n", "\na", "é", "a@sha256",
                                 "a+b", "a*", "a\x00"])
def test_invalid_tags(tag: str) -> None:
    assert not is_valid_tag(tag)
    with pytest.raises(ManifestInvalid) as exc:
        validate_tag(tag)
    assert exc.value.code == "MANIFEST_INVALID"
