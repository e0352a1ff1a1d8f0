"""OSV records (ossf.github.io/osv-schema): PyPA's PYSEC YAML, the Go vulndb, GitHub's GHSA
database, AlmaLinux's ALSA/ALBA errata, and the per-ecosystem zips osv.dev publishes.

One record becomes one Advisory. What matters for matching:
- `withdrawn` records are dropped (the caller counts them as skipped), and so are bug-fix and
  enhancement errata (ALBA-, RHBA-, …): they fix no vulnerability.
- `affected[].package.ecosystem` picks the ecosystem key; ecosystems the scanner has no
  inventory for (RubyGems, NuGet, …) are left out. Distro ecosystems carry their release:
  `AlmaLinux:9` → ("almalinux", "9"), `Alpine:v3.20` → ("alpine", "3.20"), `Debian:12` →
  ("debian", "bookworm", as a DSA-tier line), `Ubuntu:22.04:LTS` → ("ubuntu", "jammy").
- Ranges of type SEMVER and ECOSYSTEM are kept with their ordered events; GIT ranges say
  nothing about released versions and are dropped; `versions` (explicit affected versions) is
  kept as is.
- Severity: GHSA's `database_specific.severity`; AlmaLinux/Rocky's rating at the front of the
  summary ("Important: openssl security update"); Ubuntu's priority (`severity[]` of type
  "Ubuntu"); CVSS v3/v4 vectors from `severity[]`.
- Distro errata (ALSA-, RLSA-, DSA-…) fix several CVEs at once, listed in `related`: they are
  bundles (see records.py), with those CVEs as aliases.
- The Go vulndb repository stamps `modified`/`published` 0001-01-01 (real dates are set only
  when served): such dates are treated as absent.
"""

from __future__ import annotations

from typing import Any

from dockyard.scan.vulndb.records import (
    ALMALINUX,
    ALPINE,
    CARGO,
    CVE_RE,
    DEBIAN,
    GHSA,
    GO,
    MAVEN,
    NPM,
    PYPI,
    ROCKY,
    UBUNTU,
    VENDOR,
    WOLFI,
    Advisory,
    Affected,
    Range,
    best_cvss,
    iso,
    normalise_name,
    rating,
)

LANGUAGE_ECOSYSTEMS = {"PyPI": PYPI, "npm": NPM, "Go": GO, "Maven": MAVEN, "crates.io": CARGO}
DISTRO_ECOSYSTEMS = {"AlmaLinux": ALMALINUX, "Rocky Linux": ROCKY, "Alpine": ALPINE, "Debian": DEBIAN, "Wolfi": WOLFI,
                     "Ubuntu": UBUNTU}
UBUNTU_CODENAMES = {"14.04": "trusty", "16.04": "xenial", "18.04": "bionic", "20.04": "focal", "22.04": "jammy",
                    "24.04": "noble", "24.10": "oracular", "25.04": "plucky", "25.10": "questing"}
DEBIAN_CODENAMES = {"7": "wheezy", "8": "jessie", "9": "stretch", "10": "buster", "11": "bullseye",
                    "12": "bookworm", "13": "trixie", "14": "forky", "15": "duke"}
BUNDLE_PREFIXES = ("ALSA-", "ALBA-", "ALEA-", "RLSA-", "RLBA-", "RHSA-", "RHBA-", "DSA-", "DLA-", "DTSA-", "USN-",
                   "ELSA-")
NON_SECURITY_PREFIXES = ("ALBA-", "ALEA-", "RLBA-", "RLEA-", "RHBA-", "RHEA-")  # bug-fix and enhancement errata
_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


def ecosystem_key(name: str) -> tuple[str, str, int] | None:
    """(ecosystem key, release, Debian tier) of an OSV ecosystem name, None when unsupported."""
    if name in LANGUAGE_ECOSYSTEMS:
        return LANGUAGE_ECOSYSTEMS[name], "", 0
    base, _, release = name.partition(":")
    eco = DISTRO_ECOSYSTEMS.get(base)
    if eco is None:
        return None
    if eco == UBUNTU:  # "Ubuntu:22.04:LTS"; Pro/FIPS streams are not what an image's apt sources carry
        parts = release.split(":")
        codename = UBUNTU_CODENAMES.get(parts[0])
        return (eco, codename, 0) if codename else None
    release = release.split(":")[0]
    if eco == ALPINE:
        release = ".".join(release.removeprefix("v").split(".")[:2])
    elif eco == DEBIAN:
        return eco, DEBIAN_CODENAMES.get(release.split(".")[0], release), 1
    elif eco in (ALMALINUX, ROCKY):
        release = release.split(".")[0]
    elif eco == WOLFI:
        release = ""
    return eco, release, 0


def _url(doc: dict[str, Any]) -> str | None:
    specific = doc.get("database_specific")
    if isinstance(specific, dict) and isinstance(specific.get("url"), str):
        return specific["url"]
    ident = str(doc.get("id", ""))
    if ident.startswith("GHSA-"):
        return f"https://github.com/advisories/{ident}"
    for ref in doc.get("references") or ():
        if (isinstance(ref, dict) and ref.get("type") == "ADVISORY" and ref.get("url")
                and (ident in str(ref["url"]) or ident.startswith(("ALSA-", "RLSA-")))):
            return str(ref["url"])
    return f"https://osv.dev/vulnerability/{ident}"


def _ranges(entry: dict[str, Any]) -> tuple[Range, ...]:
    out = []
    for rng in entry.get("ranges") or ():
        if not isinstance(rng, dict) or rng.get("type") not in ("SEMVER", "ECOSYSTEM"):
            continue
        events = []
        for event in rng.get("events") or ():
            if not isinstance(event, dict):
                continue
            for kind in _EVENT_KINDS:
                if kind in event and event[kind] is not None:
                    events.append((kind, str(event[kind])))
        if events:
            out.append(Range(rng["type"], tuple(events)))
    return tuple(out)


def parse(doc: Any) -> Advisory | None:
    """The Advisory of one OSV document; None for a withdrawn one or a non-security erratum.
    Raises ValueError when the document is not OSV."""
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not isinstance(doc.get("affected"), list):
        raise ValueError("not an OSV record")  # noqa: TRY004  callers treat every unreadable file alike
    ident = doc["id"]
    if doc.get("withdrawn") or ident.startswith(NON_SECURITY_PREFIXES):
        return None
    aliases = [str(a) for a in doc.get("aliases") or () if a and a != ident]
    bundle = ident.startswith(BUNDLE_PREFIXES)
    upstream = [str(u) for u in doc.get("upstream") or ()]
    if bundle:  # errata list the CVEs they fix under `related` (USNs under `upstream`)
        named = [str(r) for r in doc.get("related") or ()] + upstream
        aliases += [r for r in named if CVE_RE.match(r) and r not in aliases]
    else:  # UBUNTU-CVE-2024-1234 is the distro's record of CVE-2024-1234 itself
        aliases += [u for u in upstream if CVE_RE.match(u) and ident.endswith(u) and u not in aliases]
    summary = str(doc.get("summary") or "").strip()
    details = str(doc.get("details") or "").strip()
    severity, kind = None, None
    specific = doc.get("database_specific")
    if isinstance(specific, dict) and rating(str(specific.get("severity") or "")):
        severity, kind = rating(str(specific["severity"])), GHSA
    elif bundle and ":" in summary:
        severity = rating(summary.split(":", 1)[0])
        kind = VENDOR if severity else None
    for item in doc.get("severity") or ():  # Ubuntu's OSV export carries its priority this way
        if isinstance(item, dict) and item.get("type") == "Ubuntu" and rating(str(item.get("score") or "")):
            severity, kind = rating(str(item["score"])), VENDOR
    vectors = [str(s.get("score")) for s in doc.get("severity") or ()
               if isinstance(s, dict) and s.get("type") in ("CVSS_V3", "CVSS_V4")]
    vector, score = best_cvss(vectors)
    advisory = Advisory(
        id=ident, aliases=tuple(dict.fromkeys(aliases)),
        title=summary or (details.split("\n", 1)[0][:200] if details else None),
        description=details or None, url=_url(doc), severity=severity, severity_kind=kind,
        cvss_vector=vector, cvss_score=score, published=iso(doc.get("published")),
        modified=iso(doc.get("modified")), bundle=bundle,
    )
    for entry in doc["affected"]:
        package = entry.get("package") if isinstance(entry, dict) else None
        if not isinstance(package, dict) or not package.get("name"):
            continue
        key = ecosystem_key(str(package.get("ecosystem", "")))
        if key is None:
            continue
        eco, release, tier = key
        ranges = _ranges(entry)
        versions = tuple(str(v) for v in entry.get("versions") or ())
        if not ranges and not versions:
            continue
        advisory.affected.append(Affected(
            ecosystem=eco, package=normalise_name(eco, str(package["name"])), release=release,
            ranges=ranges, versions=versions, tier=tier,
        ))
    return advisory
