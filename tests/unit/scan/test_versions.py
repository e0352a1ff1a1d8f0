"""Version ordering per ecosystem (scan/versions.py): the orderings the matcher depends on, the
spellings each ecosystem uses, and that nothing unparsable ever raises."""

from __future__ import annotations

import pytest

from dockyard.scan import versions as v


@pytest.mark.parametrize(("scheme", "lower", "higher"), [
    (v.DEB, "1:9.2p1-2+deb12u2", "1:9.2p1-2+deb12u3"),
    (v.DEB, "9.9", "1:1.0"),  # the epoch wins
    (v.DEB, "3.0.11-1~deb12u1", "3.0.11-1~deb12u2"),
    (v.DEB, "3.0.11-1~deb12u2", "3.0.11-1"),  # ~ sorts before everything, even the end
    (v.DEB, "1.0~rc1", "1.0"),
    (v.DEB, "2.36-9+deb12u3", "2.36-9+deb12u10"),
    (v.DEB, "5.4.1-0.2", "5.6.1+really5.4.5-1"),
    (v.APK, "1.36.1-r29", "1.36.1-r31"),
    (v.APK, "1.1.1k-r0", "1.1.1l-r0"),
    (v.APK, "3.3.1-r0", "3.3.1-r3"),
    (v.RPM, "1:3.0.7-6.el9", "1:3.0.7-16.el9_2"),
    (v.RPM, "3.9.9-99.el9", "1:3.0.7-16.el9_2"),  # the epoch wins
    (v.RPM, "1:3.5.1-4.el10_1", "1:3.5.1-4.el10_1.alma.1"),
    (v.PEP440, "2.3.0", "2.31.0"),
    (v.PEP440, "2.31.0rc1", "2.31.0"),
    (v.PEP440, "1.26.16", "1.26.17"),
    (v.SEMVER, "5.0.0-alpha.1", "5.0.0-beta.3"),
    (v.SEMVER, "5.0.0-beta.3", "5.0.0"),
    (v.SEMVER, "4.17.4", "4.17.11"),
    (v.GO, "v0.17.0", "0.23.0"),
    (v.GO, "1.24.0-0", "v1.24.0"),  # "-0": the first prerelease, the start of a release line
    (v.GO, "v0.0.0-20210226172049-e18ecbb05110", "v0.1.0"),  # a pseudo-version
    (v.GO, "go1.21.3", "1.21.9"),
    (v.GO, "go1.21", "1.21.1"),
    (v.GO, "v1.2.3+incompatible", "v1.2.4"),
    (v.MAVEN, "5.2.19.RELEASE", "5.2.20.RELEASE"),
    (v.MAVEN, "4.1.99.Final", "4.1.100.Final"),
    (v.MAVEN, "2.13.2", "2.13.2.1"),
    (v.MAVEN, "2.12.1", "2.12.2"),
])
def test_orderings(scheme: str, lower: str, higher: str) -> None:
    assert v.compare(scheme, lower, higher) == -1
    assert v.compare(scheme, higher, lower) == 1
    assert v.compare(scheme, lower, lower) == 0


@pytest.mark.parametrize(("scheme", "a", "b"), [
    (v.DEB, "1.0", "0:1.0"),
    (v.RPM, "3.0.7-16.el9_2", "0:3.0.7-16.el9_2"),
    (v.GO, "v1.21.3", "1.21.3"),
    (v.GO, "go1.21.0", "1.21"),
    (v.PEP440, "2.3", "2.3.0"),
])
def test_equal_spellings(scheme: str, a: str, b: str) -> None:
    assert v.compare(scheme, a, b) == 0


@pytest.mark.parametrize("scheme", [v.DEB, v.APK, v.RPM, v.PEP440, v.SEMVER, v.GO, v.MAVEN, "unknown-scheme"])
@pytest.mark.parametrize("garbage", ["", "   ", "not a version!", "devel", "\x00", "1..2..", "(none)"])
def test_unparsable_never_raises(scheme: str, garbage: str) -> None:
    if v.parse(scheme, garbage) is None:
        assert v.compare(scheme, garbage, "1.0") is None
    assert v.cargo_matches(garbage, "1.0.0") in (None, False, True)
    assert v.in_npm_range(garbage, "1.0.0") in (None, False, True)


def test_go_devel_is_unparsable() -> None:
    assert v.parse(v.GO, "devel") is None
    assert v.parse(v.GO, "(devel)") is None


def test_lowest() -> None:
    assert v.lowest(v.DEB, ["1:9.2p1-2+deb12u3", "1:9.2p1-2+deb12u2"]) == "1:9.2p1-2+deb12u2"
    assert v.lowest(v.MAVEN, ["2.15.0", "2.12.2", "2.3.1"]) == "2.3.1"
    assert v.lowest(v.PEP440, []) is None
    assert v.lowest(v.PEP440, ["garbage", "1.0"]) == "1.0"


@pytest.mark.parametrize(("spec", "version", "inside"), [
    ("<4.17.5", "4.17.4", True),
    ("<4.17.5", "4.17.5", False),
    (">=2.0.0 <2.0.3 || >=3.0.0 <3.1.1", "3.1.0", True),
    (">=2.0.0 <2.0.3 || >=3.0.0 <3.1.1", "2.5.0", False),
    ("<=1.5.1", "1.5.1", True),
    (">=1.5.2", "1.5.1", False),
])
def test_npm_ranges(spec: str, version: str, inside: bool) -> None:
    assert v.in_npm_range(spec, version) is inside


@pytest.mark.parametrize(("req", "version", "matches"), [
    (">= 0.14.10", "0.14.10", True),
    (">= 0.14.10", "0.14.9", False),
    (">= 0.12.3, < 0.13.0", "0.12.5", True),
    (">= 0.12.3, < 0.13.0", "0.13.0", False),
    ("< 0.12", "0.11.9", True),
    ("< 0.12", "0.12.0", False),
    ("^1.2.3", "1.9.0", True),  # caret: the leftmost non-zero part stays
    ("^1.2.3", "2.0.0", False),
    ("^0.3", "0.3.9", True),
    ("^0.3", "0.4.0", False),
    ("^0.0.3", "0.0.4", False),
    ("1.2", "1.5.0", True),  # no operator = caret
    ("~1.2", "1.2.9", True),
    ("~1.2", "1.3.0", False),
    ("=1.0.0", "1.0.0", True),
    ("=1.0", "1.0.7", True),
    ("1.*", "1.9.9", True),
    ("1.*", "2.0.0", False),
    (">1.2", "1.2.9", False),
    (">1.2", "1.3.0", True),
    ("<=1.2", "1.2.9", True),
    ("<=1.2", "1.3.0", False),
])
def test_cargo_requirements(req: str, version: str, matches: bool) -> None:
    assert v.cargo_matches(req, version) is matches


def test_range_lower_bounds() -> None:
    assert v.range_lower_bounds(">= 0.12.3, < 0.13.0") == ["0.12.3"]
    assert v.range_lower_bounds(">=4.17.5") == ["4.17.5"]
    assert v.range_lower_bounds("<0.0.0") == []
