"""OSV range semantics and the other rule kinds (scan/vulndb/rules.py), on hand-made entries."""

from __future__ import annotations

import pytest

from dockyard.scan.vulndb.records import (
    AFFECTED,
    CARGO,
    DEBIAN,
    FIXED,
    GO,
    NOT_AFFECTED,
    NPM,
    PYPI,
    WILL_NOT_FIX,
    Affected,
    Range,
)
from dockyard.scan.vulndb.rules import Verdict, evaluate


def osv(eco: str, *events: tuple[str, str], type_: str = "ECOSYSTEM", versions: tuple[str, ...] = ()) -> Affected:
    return Affected(eco, "p", ranges=(Range(type_, events),), versions=versions)


@pytest.mark.parametrize(("version", "verdict"), [
    ("2.2.0", None),
    ("2.3.0", Verdict(FIXED, "2.31.0")),  # introduced is inclusive
    ("2.30.9", Verdict(FIXED, "2.31.0")),
    ("2.31.0", None),  # fixed is exclusive
    ("3.0", None),
])
def test_introduced_fixed(version: str, verdict: Verdict | None) -> None:
    assert evaluate(osv(PYPI, ("introduced", "2.3.0"), ("fixed", "2.31.0")), version) == verdict


def test_several_intervals_in_one_range() -> None:
    entry = osv(GO, ("introduced", "0"), ("fixed", "1.23.7"), ("introduced", "1.24.0-0"), ("fixed", "1.24.1"),
                type_="SEMVER")
    assert evaluate(entry, "v1.23.6") == Verdict(FIXED, "1.23.7")
    assert evaluate(entry, "v1.23.7") is None
    assert evaluate(entry, "v1.24.0") == Verdict(FIXED, "1.24.1")
    assert evaluate(entry, "v1.24.1") is None
    assert evaluate(entry, "devel") is None  # unparsable: no finding, never an error


def test_last_affected_is_inclusive_and_open_ranges_stay_open() -> None:
    entry = osv(NPM, ("introduced", "1.0.0"), ("last_affected", "1.4.2"))
    assert evaluate(entry, "1.4.2") == Verdict(AFFECTED)
    assert evaluate(entry, "1.4.3") is None
    open_ended = osv(NPM, ("introduced", "2.0.0"))
    assert evaluate(open_ended, "9.9.9") == Verdict(AFFECTED)
    assert evaluate(open_ended, "1.9.9") is None


def test_several_ranges_give_the_fix_of_the_branch() -> None:
    entry = Affected(PYPI, "urllib3", ranges=(
        Range("ECOSYSTEM", (("introduced", "2.0.0"), ("fixed", "2.0.6"))),
        Range("ECOSYSTEM", (("introduced", "0"), ("fixed", "1.26.17"))),
    ))
    assert evaluate(entry, "1.26.5") == Verdict(FIXED, "1.26.17")
    assert evaluate(entry, "2.0.5") == Verdict(FIXED, "2.0.6")
    assert evaluate(entry, "1.26.17") is None


def test_explicit_versions() -> None:
    entry = Affected(PYPI, "p", versions=("0.12.01", "1.0"))
    assert evaluate(entry, "0.12.1") == Verdict(AFFECTED)  # PEP 440: 0.12.01 == 0.12.1
    assert evaluate(entry, "1.0.0") == Verdict(AFFECTED)
    assert evaluate(entry, "1.1") is None
    with_fix = Affected(PYPI, "p", ranges=(Range("ECOSYSTEM", (("introduced", "5"), ("fixed", "2.0"))),),
                        versions=("1.0",))
    assert evaluate(with_fix, "1.0") == Verdict(FIXED, "2.0")


def test_distro_statuses() -> None:
    assert evaluate(Affected(DEBIAN, "p", status=WILL_NOT_FIX), "1.0") == Verdict(WILL_NOT_FIX)
    assert evaluate(Affected(DEBIAN, "p", status=AFFECTED), "anything") == Verdict(AFFECTED)
    assert evaluate(Affected(DEBIAN, "p", status=NOT_AFFECTED), "1.0") is None
    unimportant = Affected(DEBIAN, "p", ranges=(Range("ECOSYSTEM", (("introduced", "0"), ("fixed", "2.0"))),),
                           severity="unimportant")
    assert evaluate(unimportant, "1.0") is None


def test_npm_legacy_ranges() -> None:
    entry = Affected(NPM, "lodash", npm="<4.17.5", npm_patched=">=4.17.5")
    assert evaluate(entry, "4.17.4") == Verdict(FIXED, "4.17.5")
    assert evaluate(entry, "4.17.5") is None
    assert evaluate(entry, "not-semver") is None
    no_fix = Affected(NPM, "x", npm=">=0.0.0", npm_patched="<0.0.0")
    assert evaluate(no_fix, "1.2.3") == Verdict(AFFECTED)


def test_cargo_patched_and_unaffected() -> None:
    entry = Affected(CARGO, "tokio-rustls", patched=(">= 0.12.3, < 0.13.0", ">= 0.13.1"), unaffected=("< 0.12",))
    assert evaluate(entry, "0.11.0") is None
    assert evaluate(entry, "0.12.2") == Verdict(FIXED, "0.12.3")
    assert evaluate(entry, "0.13.0") == Verdict(FIXED, "0.13.1")
    assert evaluate(entry, "0.13.1") is None
    assert evaluate(Affected(CARGO, "x"), "1.0.0") == Verdict(AFFECTED)  # patched = []: no fixed release
