"""RustSec advisories (scan/vulndb/rustsec.py) and the legacy npm advisories (npm_legacy.py)."""

from __future__ import annotations

import pytest

from dockyard.scan.vulndb import npm_legacy, rustsec
from tests.unit.scan.vulndb.vendored import load


def test_rustsec_front_matter() -> None:
    adv = rustsec.parse(load("rustsec/crates/tokio-rustls/RUSTSEC-2020-0019.md"))
    assert adv.id == "RUSTSEC-2020-0019"
    assert adv.aliases == ("CVE-2020-35875", "GHSA-2jfv-g3fh-xq3v")
    assert adv.title == "tokio-rustls reads may cause excessive memory usage"
    assert adv.cvss_score == 7.5 and adv.published == "2020-05-19"
    (entry,) = adv.affected
    assert (entry.ecosystem, entry.package) == ("cargo", "tokio-rustls")
    assert entry.patched == (">= 0.12.3, < 0.13.0", ">= 0.13.1") and entry.unaffected == ("< 0.12",)


@pytest.mark.parametrize("path", ["rustsec/crates/markdown/RUSTSEC-2022-0044.md",  # withdrawn
                                  "rustsec/crates/abomonation/RUSTSEC-2021-0120.md"])  # informational: unsound
def test_rustsec_skipped(path: str) -> None:
    with pytest.raises(rustsec.Skipped):
        rustsec.parse(load(path))


def test_rustsec_not_an_advisory() -> None:
    with pytest.raises(ValueError):
        rustsec.parse("# just markdown\n")


def test_npm_legacy() -> None:
    doc = load("npm-nodejs-security-wg/vuln/npm/368.json")
    assert npm_legacy.looks_like(doc)
    adv = npm_legacy.parse(doc)
    assert adv is not None
    assert adv.id == "NSWG-ECO-368" and adv.aliases == ("CVE-2018-3721",)
    # the score is the vector's (1.8): the record's own cvss_score (2.5) does not match its vector
    assert adv.cvss_score == 1.8 and adv.title == "lodash prototype pollution"
    (entry,) = adv.affected
    assert (entry.package, entry.npm, entry.npm_patched) == ("lodash", "<4.17.5", ">=4.17.5")
    assert not npm_legacy.looks_like(load("npm-nodejs-security-wg/vuln/core/1.json"))
