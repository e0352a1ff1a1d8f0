"""Bodies of the scan API (pydantic models; the OpenAPI document is generated from them)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from dockyard.api.management.schemas import Request, Response, ts
from dockyard.meta.scans import Allowed, Policy

Status = Literal["queued", "running", "done", "failed", "unsupported", "not_scanned"]
Severity = Literal["critical", "high", "medium", "low", "unknown"]


class Summary(Response):
    critical: int
    high: int
    medium: int
    low: int
    unknown: int


class OsOut(Response):
    id: str
    version: str | None


class VulnerabilityOut(Response):
    id: str = Field(description="The CVE id when any source names one, else the advisory's (GHSA-…, PYSEC-…).")
    aliases: list[str] = Field(description="The other ids of the same vulnerability (GHSA, PYSEC, DSA, ALSA…).")
    package: str = Field(description="The installed (binary) package.")
    source_package: str | None = Field(description="Its source package (dpkg Source, apk origin, source RPM).")
    ecosystem: str = Field(description="The package's type: deb, apk, rpm, pypi, npm, golang, maven, cargo.")
    installed_version: str
    fixed_version: str | None = Field(description="Exactly the advisory's fixed version (epoch included); null: no fix.")
    severity: Severity
    layer: str | None = Field(description="Digest of the layer blob that brought the package in, as the manifest lists it.")
    layer_created_by: str | None = Field(description="That layer's command from the image config's history.")
    allowlisted: bool = Field(description="Accepted by an allowlist entry in force (not counted in summary or policy).")
    new_since_last_scan: bool = Field(description="Not in the previous evaluation (a re-scan or a new advisory database).")
    fix_status: str = Field(description="fixed, affected (no fix yet), will_not_fix, fix_deferred.")
    cvss_score: float | None
    title: str | None
    url: str | None


class ReportOut(Response):
    digest: str
    status: Status = Field(description="not_scanned: no scan was ever queued for this manifest.")
    error: str | None = Field(description="Why a scan failed or is unsupported.")
    scanned_at: datetime | None = Field(description="When the layers were last read.")
    evaluated_at: datetime | None = Field(description="When the findings were last computed (a new advisory database re-evaluates).")
    db_updated_at: datetime | None = Field(description="The advisory database the findings come from.")
    os: OsOut | None
    summary: Summary = Field(description="Counts per severity, allowlisted vulnerabilities left out.")
    vulnerabilities: list[VulnerabilityOut]
    notes: list[str] = Field(description="What the scan could not read (files over scan.max_file_bytes…).")


class PlatformReportOut(ReportOut):
    platform: str | None = Field(description="os/architecture[/variant] of this platform manifest.")


class VulnerabilitiesOut(Response):
    """One image's report; for an index, a combined status and summary and one report per platform."""

    digest: str
    status: Status
    error: str | None = None
    scanned_at: datetime | None = None
    evaluated_at: datetime | None = None
    db_updated_at: datetime | None = None
    os: OsOut | None = None
    summary: Summary
    vulnerabilities: list[VulnerabilityOut] | None = None
    notes: list[str] | None = None
    platforms: list[PlatformReportOut] | None = None


class PackageOut(Response):
    name: str
    version: str
    ecosystem: str
    source_package: str | None
    purl: str
    layer: str | None
    path: str = Field(description="The file the package was read from.")


class PlatformPackagesOut(Response):
    platform: str | None
    digest: str
    packages: list[PackageOut]


class PackagesOut(Response):
    digest: str
    packages: list[PackageOut] | None = None
    platforms: list[PlatformPackagesOut] | None = None


class ScanQueued(Response):
    digest: str
    status: Literal["queued"]


class SbomQuery(Request):
    format: Literal["cyclonedx", "spdx"] = Field("cyclonedx", description="CycloneDX 1.6 JSON or SPDX 2.3 JSON.")


class PolicyOut(Response):
    scan_on_push: bool = Field(description="Scan each image pushed to the namespace.")
    block_severity: Literal["critical", "high", "medium", "low"] | None = Field(
        description="Block pulls (manifest GETs) of images with a vulnerability of this severity or higher.")
    block_unscanned: bool = Field(description="Block pulls of images not scanned yet.")

    @classmethod
    def of(cls, p: Policy) -> PolicyOut:
        return cls(scan_on_push=p.scan_on_push, block_severity=p.block_severity,  # type: ignore[arg-type]
                   block_unscanned=p.block_unscanned)


class PolicyUpdate(Request):
    scan_on_push: bool | None = None
    block_severity: Literal["critical", "high", "medium", "low"] | None = Field(
        None, description="null (given explicitly) blocks nothing by severity.")
    block_unscanned: bool | None = None


class AllowedOut(Response):
    id: int
    namespace: str | None = Field(description="null: system-wide.")
    vulnerability: str
    reason: str
    expires_at: datetime | None
    active: bool = Field(description="False once expires_at has passed: the entry no longer applies.")
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, a: Allowed, now: datetime) -> AllowedOut:
        return cls(id=a.id, namespace=a.namespace, vulnerability=a.vulnerability, reason=a.reason,
                   expires_at=ts(a.expires_at), active=a.active(now), created_by=a.created_by,
                   created_at=ts(a.created_at))  # type: ignore[arg-type]


class AllowedList(Response):
    items: list[AllowedOut]


class AllowCreate(Request):
    vulnerability: str = Field(max_length=64, description="CVE-…, GHSA-…: matches a finding's id or any of its aliases.")
    reason: str = Field(max_length=1000)
    expires_at: datetime | None = Field(None, description="After this the entry stops applying (kept, shown as expired).")


class VulnDbSource(Response):
    name: str
    kind: str
    records: int
    imported_at: datetime | None
    newest: str | None = Field(description="The newest record's date, where the source dates them.")


class VulnDbOut(Response):
    path: str
    present: bool
    db_id: str | None
    updated_at: datetime | None
    sources: list[VulnDbSource]
    scans: dict[str, int] = Field(description="Stored scans per status.")
