"""The use-cases behind the scan API, the console's Security tab and `dockyard scan`: reports per
image (vulnerabilities, packages, SBOMs), requesting a scan, namespace scan settings and policy,
and the allowlist.

Reading a report needs the right to pull the repository (anyone who may pull an image may know
what is in it); requesting a scan needs push; policy and namespace allowlists need a namespace
owner; the system-wide allowlist needs an administrator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dockyard.auth.service import AuthService
from dockyard.core.access import namespace_of
from dockyard.core.digest import Digest, is_digest
from dockyard.core.errors import RegistryError
from dockyard.core.manifest import parse_manifest
from dockyard.core.names import validate_name, validate_namespace, validate_tag
from dockyard.core.scopes import Scope
from dockyard.management.base import Actor, checked, writer_of
from dockyard.management.errors import Forbidden, Invalid, NotFound, Unauthenticated
from dockyard.meta.audit import AuditStore
from dockyard.meta.content import ContentStore
from dockyard.meta.namespaces import NamespaceStore
from dockyard.meta.scans import Allowed, Policy, ScanRow, ScanStore
from dockyard.registry.manifests import ManifestService
from dockyard.registry.scans import PullGuard, active_ids, is_allowed, summarize
from dockyard.scan.codec import decode_findings, decode_inventory, finding_dict
from dockyard.scan.model import SEVERITIES, Finding
from dockyard.scan.purls import purl_of

VULN_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9.:_]+)+$")  # CVE-2024-3094, GHSA-xxxx-…, RUSTSEC-…
MAX_REASON = 1000
BLOCK_SEVERITIES = ("critical", "high", "medium", "low")


@dataclass(frozen=True, slots=True)
class Report:
    """One image manifest's scan, the allowlist applied."""

    digest: str
    platform: str | None
    row: ScanRow | None
    findings: list[tuple[Finding, bool, bool]]  # (finding, new since last scan, allowlisted)
    summary: dict[str, int]


class ScansService:
    def __init__(self, *, store: ScanStore, content: ContentStore, manifests: ManifestService, auth: AuthService,
                 namespaces: NamespaceStore, guard: PullGuard, audit: AuditStore | None = None) -> None:
        self.store = store
        self.content = content
        self.manifests = manifests
        self.auth = auth
        self.namespaces = namespaces
        self.guard = guard
        self.audit = audit

    def _record(self, actor: Actor, action: str, target: str, detail: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.record(actor.name, action, target, detail, actor.remote)

    # -- access ------------------------------------------------------------------------------------------
    def _may(self, actor: Actor, repository: str, action: str) -> None:
        checked(validate_name, repository)
        if actor.is_admin:
            return
        allowed = self.auth.allowed(actor.principal, Scope("repository", repository, (action,)))
        if "pull" not in allowed and "pull" not in self.auth.allowed(actor.principal, Scope("repository", repository, ("pull",))):
            raise NotFound(f"repository {repository!r} not found")
        if action not in allowed:
            raise Forbidden(f"you may not {action} {repository}")

    def _owner(self, actor: Actor, namespace: str | None) -> None:
        user = writer_of(actor)
        if user.is_admin:
            return
        if namespace is None:
            raise Forbidden("administrators only")
        if self.namespaces.roles_of(user.username).get(namespace) != "owner":
            raise Forbidden(f"only an owner of {namespace!r} or an administrator may do that")

    def _resolve(self, repository: str, reference: str) -> tuple[str, str]:
        """(digest, media type) of a tag or digest in the repository."""
        if is_digest(reference):
            checked(Digest.parse, reference)
            digest = reference
        else:
            checked(validate_tag, reference)
            found = self.content.resolve_tag(repository, reference)
            if found is None:
                raise NotFound(f"{repository}:{reference} not found")
            digest = found
        record = self.content.get_manifest(repository, digest)
        if record is None:
            raise NotFound(f"{repository}@{digest} not found")
        return digest, record.media_type

    def _platforms(self, digest: str, media_type: str) -> list[tuple[str, str | None]] | None:
        """The platform manifests of an index as (digest, "os/arch[/variant]"); None for an image."""
        try:
            parsed = parse_manifest(self.manifests.content_of(digest), media_type)
        except (FileNotFoundError, RegistryError):
            return None
        if not parsed.is_index:
            return None
        out = []
        for child in parsed.manifests:
            p = child.platform or {}
            if p.get("os") == "unknown":
                continue
            text = "/".join(str(p[k]) for k in ("os", "architecture", "variant") if p.get(k)) or None
            out.append((child.digest, text))
        return out

    # -- reports -----------------------------------------------------------------------------------------
    def report(self, digest: str, platform: str | None, allowed: set[str], row: ScanRow | None = None) -> Report:
        row = row if row is not None else self.store.get(digest, heavy=True)
        findings: list[tuple[Finding, bool, bool]] = []
        if row is not None and row.findings is not None:
            for finding, new in decode_findings(row.findings) or []:
                findings.append((finding, new, is_allowed(finding, allowed)))
        findings.sort(key=lambda t: (SEVERITIES.index(t[0].severity) if t[0].severity in SEVERITIES else 9,
                                     t[0].package, t[0].id))
        summary = summarize([f for f, _, _ in findings], allowed)
        return Report(digest, platform, row, findings, summary)

    def reports(self, actor: Actor, repository: str, reference: str) -> tuple[str, bool, list[Report]]:
        """(digest, is an index, reports: one, or one per platform)."""
        self._may(actor, repository, "pull")
        digest, media_type = self._resolve(repository, reference)
        allowed = active_ids(self.store.allowlist(namespace_of(repository)))
        platforms = self._platforms(digest, media_type)
        if platforms is None:
            return digest, False, [self.report(digest, None, allowed)]
        return digest, True, [self.report(d, p, allowed) for d, p in platforms]

    def vulnerabilities(self, actor: Actor, repository: str, reference: str) -> dict[str, Any]:
        digest, is_index, reports = self.reports(actor, repository, reference)
        if not is_index:
            return {"digest": digest, **report_json(reports[0])}
        combined = dict.fromkeys(SEVERITIES, 0)
        for r in reports:
            for k, v in r.summary.items():
                combined[k] += v
        platforms = [{"platform": r.platform, **report_json(r)} for r in reports]
        statuses = [p["status"] for p in platforms]
        # The same rule as the console's versions list and Security tab: a platform never scanned
        # makes the index "not_scanned", not "done".
        status = combined_status(statuses) if statuses else "unsupported"
        row = self.store.get(digest)
        return {"digest": digest, "status": status, "summary": combined,
                "scanned_at": row.scanned_at.isoformat() if row and row.scanned_at else None,
                "platforms": platforms}

    def packages(self, actor: Actor, repository: str, reference: str) -> dict[str, Any]:
        digest, is_index, reports = self.reports(actor, repository, reference)
        out = [{"platform": r.platform, "digest": r.digest, "packages": packages_json(r.row)} for r in reports]
        if not is_index:
            return {"digest": digest, "packages": out[0]["packages"]}
        return {"digest": digest, "platforms": out}

    def sbom(self, actor: Actor, repository: str, reference: str, fmt: str) -> tuple[bytes, str]:
        """An SBOM (cyclonedx or spdx) of a scanned image, made from its stored inventory."""
        if fmt not in ("cyclonedx", "spdx"):
            raise Invalid("format is cyclonedx or spdx")
        digest, is_index, reports = self.reports(actor, repository, reference)
        if is_index:
            raise Invalid(f"{repository}@{digest} is an index: ask for the SBOM of one of its platforms")
        row = reports[0].row
        inventory = decode_inventory(row.inventory) if row is not None else None
        if row is None or inventory is None:
            raise NotFound(f"{repository}@{digest} has not been scanned")
        record = self.content.get_manifest(repository, digest)
        if record is None:
            raise NotFound(f"{repository}@{digest} not found")
        from dockyard.scan import sbom  # CycloneDX's library: loaded with the first SBOM

        subject = sbom.Subject(repository, digest, record.media_type, record.size)
        created = row.scanned_at or datetime.now(timezone.utc)
        if fmt == "cyclonedx":
            return sbom.cyclonedx(subject, inventory, created), sbom.CYCLONEDX
        return sbom.spdx(subject, inventory, created), sbom.SPDX

    def summaries(self, repository: str, digests: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
        """Severity summary per manifest for the versions list: {digest: {"status", "summary"}},
        where `digests` maps each listed manifest to its platform manifests (itself for an image).
        The caller has checked that `repository` is visible."""
        rows = self.store.get_many(d for children in digests.values() for d in children)
        allowed = active_ids(self.store.allowlist(namespace_of(repository)))
        out: dict[str, dict[str, Any]] = {}
        for digest, children in digests.items():
            summary = dict.fromkeys(SEVERITIES, 0)
            statuses = []
            for child in children:
                row = rows.get(child)
                if row is None:
                    statuses.append("not_scanned")
                    continue
                statuses.append(row.status)
                counts = row.summary or {}
                if allowed and any(counts.values()):
                    counts = self.report(child, None, allowed).summary
                for k in SEVERITIES:
                    summary[k] += int(counts.get(k, 0))
            out[digest] = {"status": combined_status(statuses), "summary": summary}
        return out

    def can_request(self, actor: Actor, repository: str) -> bool:
        """Whether `request` would be allowed (the console shows its "Scan now" button then)."""
        if actor.principal is None:
            return False
        if actor.is_admin:
            return True
        return "push" in self.auth.allowed(actor.principal, Scope("repository", repository, ("push",)))

    def request(self, actor: Actor, repository: str, reference: str) -> dict[str, Any]:
        self._may(actor, repository, "push")
        digest, _ = self._resolve(repository, reference)
        self.store.request(digest, repository)
        return {"digest": digest, "status": "queued"}

    # -- settings and policy -----------------------------------------------------------------------------
    def policy(self, actor: Actor, namespace: str) -> Policy:
        checked(validate_namespace, namespace)
        if self.namespaces.get(namespace) is None:
            raise NotFound(f"namespace {namespace!r} not found")
        if actor.principal is None:
            raise Unauthenticated("authentication required")
        return self.store.policy(namespace)

    def set_policy(self, actor: Actor, namespace: str, *, scan_on_push: bool | None = None,
                   block_severity: str | None | object = ..., block_unscanned: bool | None = None) -> Policy:
        checked(validate_namespace, namespace)
        if self.namespaces.get(namespace) is None:
            raise NotFound(f"namespace {namespace!r} not found")
        self._owner(actor, namespace)
        current = self.store.policy(namespace)
        severity = current.block_severity if block_severity is ... else block_severity
        if severity is not None and severity not in BLOCK_SEVERITIES:
            raise Invalid(f"block_severity is one of {', '.join(BLOCK_SEVERITIES)}, or null")
        policy = Policy(current.scan_on_push if scan_on_push is None else scan_on_push, severity,  # type: ignore[arg-type]
                        current.block_unscanned if block_unscanned is None else block_unscanned)
        self.store.set_policy(namespace, policy)
        self.guard.forget()
        self._record(actor, "namespace.scan_policy", namespace, {"scan_on_push": policy.scan_on_push,
                                                                  "block_severity": policy.block_severity,
                                                                  "block_unscanned": policy.block_unscanned})
        return policy

    @staticmethod
    def policy_reader_check(actor: Actor) -> None:
        if actor.principal is None:
            raise Unauthenticated("authentication required")

    # -- the allowlist -----------------------------------------------------------------------------------
    def allowlist(self, actor: Actor, namespace: str | None) -> list[Allowed]:
        if actor.principal is None:
            raise Unauthenticated("authentication required")
        if namespace is not None:
            checked(validate_namespace, namespace)
            if self.namespaces.get(namespace) is None:
                raise NotFound(f"namespace {namespace!r} not found")
        return self.store.allowlist(namespace, system=namespace is None)

    def allow(self, actor: Actor, namespace: str | None, vulnerability: str, reason: str,
              expires_at: datetime | None) -> Allowed:
        if namespace is not None:
            checked(validate_namespace, namespace)
            if self.namespaces.get(namespace) is None:
                raise NotFound(f"namespace {namespace!r} not found")
        self._owner(actor, namespace)
        vulnerability = vulnerability.strip()
        if len(vulnerability) > 64 or not VULN_ID.match(vulnerability):
            raise Invalid("vulnerability is an advisory id such as CVE-2024-3094 or GHSA-xxxx-xxxx-xxxx")
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON:
            raise Invalid(f"a reason of 1 to {MAX_REASON} characters is required")
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=timezone.utc)
        entry = self.store.allow(namespace, vulnerability, reason, expires_at, actor.name)
        if entry is None:
            raise NotFound(f"namespace {namespace!r} not found")
        self._record(actor, "allowlist.add", namespace or "*", {
            "vulnerability": vulnerability, "reason": reason,
            "expires_at": expires_at.isoformat() if expires_at else None})
        return entry

    def disallow(self, actor: Actor, namespace: str | None, entry_id: int) -> None:
        self._owner(actor, namespace)
        if not self.store.disallow(entry_id, namespace):
            raise NotFound(f"allowlist entry {entry_id} not found")
        self._record(actor, "allowlist.remove", namespace or "*", {"id": entry_id})


def combined_status(statuses: list[str]) -> str:
    """The status of an index (or a list row) from its platforms' scan statuses."""
    if statuses and all(s == "unsupported" for s in statuses):
        return "unsupported"
    return next((s for s in ("running", "queued", "failed", "not_scanned") if s in statuses), "done")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def report_json(report: Report) -> dict[str, Any]:
    row = report.row
    layers: list[Any] = []
    if row is not None and row.inventory is not None:
        inventory = decode_inventory(row.inventory)
        layers = list(inventory.layers) if inventory is not None else []
    vulns = []
    for finding, new, allowlisted in report.findings:
        doc = finding_dict(finding)
        layer = layers[finding.layer] if 0 <= finding.layer < len(layers) else None
        vulns.append({
            "id": finding.id, "aliases": list(finding.aliases), "package": finding.package,
            "source_package": finding.source_package, "ecosystem": finding.type,
            "installed_version": finding.installed_version, "fixed_version": finding.fixed_version,
            "severity": finding.severity, "layer": layer.digest if layer else None,
            "layer_created_by": layer.created_by if layer else None, "allowlisted": allowlisted,
            "new_since_last_scan": new, "fix_status": finding.fix_status, "cvss_score": doc["cvss_score"],
            "title": finding.title, "url": finding.url,
        })
    status = row.status if row is not None else "not_scanned"
    return {
        "digest": report.digest, "status": status, "error": row.error if row is not None else None,
        "scanned_at": _iso(row.scanned_at) if row else None,
        "evaluated_at": _iso(row.evaluated_at) if row else None,
        "db_updated_at": _iso(row.db_updated_at) if row else None,
        "os": {"id": row.os_id, "version": row.os_version} if row is not None and row.os_id else None,
        "summary": report.summary, "vulnerabilities": vulns, "notes": row.notes if row is not None else [],
    }


def packages_json(row: ScanRow | None) -> list[dict[str, Any]]:
    inventory = decode_inventory(row.inventory) if row is not None else None
    if inventory is None:
        return []
    layers = inventory.layers
    return [{"name": p.name, "version": p.version, "ecosystem": p.type, "source_package": p.source_name,
             "purl": purl_of(p, inventory.os), "layer": layers[p.layer].digest if 0 <= p.layer < len(layers) else None,
             "path": p.path} for p in inventory.packages]
