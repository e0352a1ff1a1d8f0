"""Security: an image version's scan (status, severity counts, vulnerabilities with filters, JSON
and CSV exports, SBOMs, packages, "Scan now"), a namespace's scan policy and allowlist, and for
administrators the system-wide allowlist and the advisory database's status.

The use-cases are ScansService's (management/scans.py); this module only reads the query, filters
the rows a page shows and shapes the downloads.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from starlette.responses import JSONResponse, Response

from dockyard.core.access import namespace_of
from dockyard.management.errors import Forbidden, Invalid, NotFound
from dockyard.management.images import Version
from dockyard.management.scans import BLOCK_SEVERITIES, Report, ScansService, combined_status
from dockyard.meta.db import aware, utcnow
from dockyard.meta.scans import STATUSES
from dockyard.scan.codec import decode_inventory
from dockyard.scan.model import SEVERITIES, Finding, LayerInfo, Package
from dockyard.web.framework import Console, Ctx, repo_url, url

MAX_QUERY = 200
CSV_FIELDS = ("platform", "id", "aliases", "severity", "cvss_score", "package", "source_package", "type",
              "installed_version", "fixed_version", "fix_status", "layer", "layer_created_by", "new_since_last_scan",
              "allowlisted", "advisory", "title")


@dataclass(frozen=True, slots=True)
class Filters:
    """What the vulnerability table shows: one severity (or all), only those with a fix, and a
    text found in the id, an alias or the package's name."""

    severity: str = ""
    fixed: bool = False
    q: str = ""

    @classmethod
    def of(cls, ctx: Ctx) -> Filters:
        severity = ctx.arg("severity")
        return cls(severity if severity in SEVERITIES else "", ctx.arg("fixed") in ("1", "on", "true"),
                   ctx.arg("q").strip()[:MAX_QUERY])

    @property
    def active(self) -> bool:
        return bool(self.severity or self.fixed or self.q)

    def params(self) -> dict[str, str]:
        return {"severity": self.severity, "fixed": "1" if self.fixed else "", "q": self.q}

    def match(self, finding: Finding) -> bool:
        if self.severity and finding.severity != self.severity:
            return False
        if self.fixed and not finding.fixed_version:
            return False
        if self.q:
            needle = self.q.casefold()
            haystack = (finding.id, *finding.aliases, finding.package, finding.source_package or "")
            if not any(needle in text.casefold() for text in haystack):
                return False
        return True


@dataclass(frozen=True, slots=True)
class FindingRow:
    finding: Finding
    new: bool
    allowlisted: bool
    layer: LayerInfo | None
    layer_number: int | None  # 1-based, as the version page numbers its layers
    link: str  # the advisory's page


@dataclass(frozen=True, slots=True)
class PackageRow:
    package: Package
    layer: LayerInfo | None
    layer_number: int | None


@dataclass(frozen=True, slots=True)
class Section:
    """One image manifest's scan as the Security tab shows it (an index has one per platform)."""

    report: Report
    status: str  # not_scanned | queued | running | done | failed | unsupported
    rows: list[FindingRow]  # after the filters
    total: int  # before them
    packages: list[PackageRow]
    os: str | None
    has_results: bool  # findings stored (for a queued or running scan: the previous one's)

    @property
    def digest(self) -> str:
        return self.report.digest

    @property
    def platform(self) -> str | None:
        return self.report.platform

    @property
    def row(self) -> Any:
        return self.report.row

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def allowlisted(self) -> int:
        return sum(1 for _, _, allowlisted in self.report.findings if allowlisted)


def advisory_link(finding: Finding) -> str:
    """NVD for CVE ids, else the advisory's own page (http(s) only), else OSV."""
    if finding.id.upper().startswith("CVE-"):
        return f"https://nvd.nist.gov/vuln/detail/{finding.id}"
    if finding.url and finding.url.startswith(("https://", "http://")):
        return finding.url
    return f"https://osv.dev/vulnerability/{finding.id}"


def _layer(layers: tuple[LayerInfo, ...], index: int) -> tuple[LayerInfo | None, int | None]:
    return (layers[index], index + 1) if 0 <= index < len(layers) else (None, None)


def section_of(report: Report, filters: Filters) -> Section:
    row = report.row
    inventory = decode_inventory(row.inventory) if row is not None else None
    layers = inventory.layers if inventory is not None else ()
    rows = []
    for finding, new, allowlisted in report.findings:
        if filters.match(finding):
            layer, number = _layer(layers, finding.layer)
            rows.append(FindingRow(finding, new, allowlisted, layer, number, advisory_link(finding)))
    packages = [PackageRow(p, *_layer(layers, p.layer))
                for p in sorted(inventory.packages if inventory else (), key=lambda p: (p.type, p.name.casefold()))]
    os_name = None
    if inventory is not None and inventory.os is not None:
        os_name = inventory.os.pretty_name or f"{inventory.os.id} {inventory.os.version}".strip()
    elif row is not None and row.os_id:
        os_name = f"{row.os_id} {row.os_version or ''}".strip()
    return Section(report, row.status if row is not None else "not_scanned", rows, len(report.findings), packages,
                   os_name, row is not None and row.findings is not None)


def overall_status(sections: list[Section]) -> str:
    return combined_status([s.status for s in sections])


def _file_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(parts)).strip("-")[:150] or "image"


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _when(value: Any) -> datetime | None:
    """A time from the advisory database's status (a datetime, or ISO 8601 text)."""
    if isinstance(value, datetime):
        return aware(value)
    if isinstance(value, str) and value:
        try:
            return aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _expiry(ctx: Ctx) -> datetime | None:
    """The allowlist form's expiry date: the entry applies through that day (UTC)."""
    value = ctx.field("expires").strip()
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Invalid(ctx._("The expiry must be a date such as 2030-12-31.")) from None
    expires = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
    if expires <= utcnow():
        raise Invalid(ctx._("The expiry date is in the past."))
    return expires


def _entry_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound("allowlist entry not found")
    return int(raw)


class SecurityViews:
    def __init__(self, console: Console, scans: ScansService, vulndb_status: Callable[[], dict[str, Any]]) -> None:
        self.c = console
        self.scans = scans
        self.vulndb_status = vulndb_status

    @property
    def enabled(self) -> bool:
        return self.c.settings.scan.enabled

    # -- summaries for the versions list and the version page ----------------------------------------
    def summaries(self, name: str, versions: list[Version]) -> dict[str, dict[str, Any]]:
        """{digest: {"status", "summary"}} of the listed image versions (artifacts left out), in one batch."""
        wanted = {}
        for v in versions:
            if v.artifact_type:
                continue
            children = [p.digest for p in v.platforms if p.platform] if v.is_index else [v.digest]
            if children:
                wanted[v.digest] = children
        return self.scans.summaries(name, wanted) if wanted else {}

    def summary_of(self, name: str, digest: str, is_index: bool, children: list[Any]) -> dict[str, Any] | None:
        wanted = [c.digest for c in children if c.platform] if is_index else [digest]
        return self.scans.summaries(name, {digest: wanted}).get(digest) if wanted else None

    # -- /console/repo/NAME/-/versions/REF/security… ---------------------------------------------------
    def _sections(self, ctx: Ctx, name: str, reference: str, filters: Filters) -> tuple[str, bool, list[Section]]:
        digest, is_index, reports = self.scans.reports(ctx.actor, name, reference)
        return digest, is_index, [section_of(r, filters) for r in reports]

    def show(self, ctx: Ctx, name: str, reference: str) -> Response:
        filters = Filters.of(ctx)
        digest, is_index, sections = self._sections(ctx, name, reference, filters)
        values = {"repo_name": name, "namespace": namespace_of(name), "reference": reference, "digest": digest,
                  "is_index": is_index, "sections": sections, "filters": filters, "overall": overall_status(sections),
                  "active": any(s.active for s in sections), "severities": SEVERITIES, "tab": "versions",
                  "scan_enabled": self.enabled,
                  "can_scan": self.enabled and not ctx.actor.read_only and self.scans.can_request(ctx.actor, name)}
        if ctx.htmx and ctx.request.headers.get("hx-target") == "security-results":
            return self.c.render(ctx, "_security_table.html", **values)
        return self.c.render(ctx, "security.html", **values)

    def scan(self, ctx: Ctx, name: str, reference: str) -> Response:
        self.scans.request(ctx.actor, name, reference)
        ctx.flash("ok", ctx._("Scan of %(reference)s queued.", reference=reference))
        return self.c.redirect(repo_url(name, "versions", reference, "security"))

    def export_json(self, ctx: Ctx, name: str, reference: str) -> Response:
        doc = self.scans.vulnerabilities(ctx.actor, name, reference)
        return JSONResponse(doc, headers={
            "Content-Disposition": f'attachment; filename="vulnerabilities-{_file_name(name, reference)}.json"'})

    def export_csv(self, ctx: Ctx, name: str, reference: str) -> Response:
        _, _, sections = self._sections(ctx, name, reference, Filters.of(ctx))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_FIELDS)
        for section in sections:
            for r in section.rows:
                f = r.finding
                writer.writerow([_cell(v) for v in (
                    section.platform or "", f.id, " ".join(f.aliases), f.severity, f.cvss_score, f.package,
                    f.source_package, f.type, f.installed_version, f.fixed_version, f.fix_status,
                    r.layer.digest if r.layer else None, r.layer.created_by if r.layer else None,
                    "yes" if r.new else "no", "yes" if r.allowlisted else "no", r.link, f.title)])
        return Response(out.getvalue().encode("utf-8-sig"), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="vulnerabilities-{_file_name(name, reference)}.csv"'})

    def sbom(self, ctx: Ctx, name: str, reference: str, fmt: str) -> Response:
        data, media_type = self.scans.sbom(ctx.actor, name, reference, fmt)
        ext = "cdx.json" if fmt == "cyclonedx" else "spdx.json"
        return Response(data, media_type=media_type, headers={
            "Content-Disposition": f'attachment; filename="sbom-{_file_name(name, reference)}.{ext}"'})

    # -- a namespace's policy and allowlist ----------------------------------------------------------
    def namespace_values(self, ctx: Ctx, name: str) -> dict[str, Any]:
        """What the namespace page's Security card shows."""
        now = utcnow()
        return {"scan_policy": self.scans.policy(ctx.actor, name), "block_severities": BLOCK_SEVERITIES,
                "allowlist": [(e, e.active(now)) for e in self.scans.allowlist(ctx.actor, name)],
                "scan_enabled": self.enabled}

    def set_policy(self, ctx: Ctx) -> Response:
        name = ctx.request.path_params["name"]
        severity = ctx.field("block_severity").strip()
        self.scans.set_policy(ctx.actor, name, scan_on_push=ctx.field("scan_on_push") == "on",
                              block_severity=severity or None, block_unscanned=ctx.field("block_unscanned") == "on")
        ctx.flash("ok", ctx._("Security settings of %(name)s saved.", name=name))
        return self.c.redirect(url(f"/namespaces/{name}") + "#security")

    def _allow(self, ctx: Ctx, namespace: str | None) -> None:
        entry = self.scans.allow(ctx.actor, namespace, ctx.field("vulnerability"), ctx.field("reason"), _expiry(ctx))
        ctx.flash("ok", ctx._("%(id)s allowlisted.", id=entry.vulnerability))

    def _disallow(self, ctx: Ctx, namespace: str | None) -> None:
        self.scans.disallow(ctx.actor, namespace, _entry_id(ctx.request.path_params["id"]))
        ctx.flash("ok", ctx._("Allowlist entry removed."))

    def allow(self, ctx: Ctx) -> Response:
        name = ctx.request.path_params["name"]
        self._allow(ctx, name)
        return self.c.redirect(url(f"/namespaces/{name}") + "#allowlist")

    def disallow(self, ctx: Ctx) -> Response:
        name = ctx.request.path_params["name"]
        self._disallow(ctx, name)
        return self.c.redirect(url(f"/namespaces/{name}") + "#allowlist")

    # -- administrators ------------------------------------------------------------------------------
    def _admin(self, ctx: Ctx) -> None:
        if not ctx.actor.is_admin:
            raise Forbidden(ctx._("Only administrators may see this page."))

    def admin(self, ctx: Ctx) -> Response:
        self._admin(ctx)
        now = utcnow()
        report = self.vulndb_status()
        sources = [{**s, "imported_at": _when(s.get("imported_at")), "newest": s.get("newest")}
                   for s in report.get("sources", [])]
        counts = report.get("scans") or {}
        return self.c.render(ctx, "admin_security.html", vulndb=report, sources=sources,
                             present=bool(report.get("present")),
                             updated_at=_when(report.get("updated_at")),
                             scan_counts=[(s, int(counts.get(s, 0))) for s in STATUSES], scan_enabled=self.enabled,
                             allowlist=[(e, e.active(now)) for e in self.scans.allowlist(ctx.actor, None)])

    def admin_allow(self, ctx: Ctx) -> Response:
        self._admin(ctx)
        self._allow(ctx, None)
        return self.c.redirect(url("/security") + "#allowlist")

    def admin_disallow(self, ctx: Ctx) -> Response:
        self._admin(ctx)
        self._disallow(ctx, None)
        return self.c.redirect(url("/security") + "#allowlist")
