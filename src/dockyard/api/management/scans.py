"""The scan API under /api/v1: reports, packages and SBOMs per manifest, scan requests, namespace
scan policy, allowlists (per namespace and system-wide) and the advisory database's status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from dockyard.api.management import scan_schemas as ss
from dockyard.api.management.openapi import Endpoint, path_id
from dockyard.management.scans import ScansService

if TYPE_CHECKING:
    from dockyard.api.management.routes import Call

REPO_REF = (("name", "Repository name, slashes included."), ("reference", "A manifest digest (or a tag)."))
NS = (("ns", "Namespace name."),)


class ScanEndpoints:
    def __init__(self, scans: ScansService, vulndb_status: Callable[[], dict[str, Any]]) -> None:
        self.scans = scans
        self.vulndb_status = vulndb_status

    def request_scan(self, c: Call) -> ss.ScanQueued:
        """Queue a scan of the image (each platform of an index). Needs push. The report stays
        readable while the scan runs. These four calls also take registry credentials (a robot
        account, a temporary password), within their repository permissions: for CI pipelines."""
        return ss.ScanQueued.model_validate(self.scans.request(c.actor, c.path["name"], c.path["reference"]))

    def get_vulnerabilities(self, c: Call) -> ss.VulnerabilitiesOut:
        """The image's vulnerabilities: each with its CVE id, severity, package, installed and fixed
        version and the layer that brought it in. Anyone who may pull the repository."""
        return ss.VulnerabilitiesOut.model_validate(
            self.scans.vulnerabilities(c.actor, c.path["name"], c.path["reference"]))

    def get_packages(self, c: Call) -> ss.PackagesOut:
        """What the image holds: OS and language packages with purls and layers."""
        return ss.PackagesOut.model_validate(self.scans.packages(c.actor, c.path["name"], c.path["reference"]))

    def get_sbom(self, c: Call) -> Response:
        """The image's SBOM, CycloneDX or SPDX JSON (also pushed as referrers of the image)."""
        data, media_type = self.scans.sbom(c.actor, c.path["name"], c.path["reference"], c.query.format)
        ext = "cdx.json" if c.query.format == "cyclonedx" else "spdx.json"
        name = c.path["reference"].replace(":", "-")
        return Response(data, media_type=media_type,
                        headers={"Content-Disposition": f'attachment; filename="sbom-{name}.{ext}"',
                                 "Cache-Control": "no-store"})

    def get_scan_policy(self, c: Call) -> ss.PolicyOut:
        """The namespace's scan-on-push setting and pull policy."""
        return ss.PolicyOut.of(self.scans.policy(c.actor, c.path["ns"]))

    def set_scan_policy(self, c: Call) -> ss.PolicyOut:
        """Owners and administrators. Only the fields given change; a blocked manifest GET answers
        403 DENIED naming the count of vulnerabilities and the console page."""
        fields: dict[str, Any] = {}
        for key in ("scan_on_push", "block_unscanned"):
            if c.fields.get(key) is not None:
                fields[key] = c.fields[key]
        if "block_severity" in c.fields:
            fields["block_severity"] = c.fields["block_severity"]
        return ss.PolicyOut.of(self.scans.set_policy(c.actor, c.path["ns"], **fields))

    def _list(self, c: Call, namespace: str | None) -> ss.AllowedList:
        now = datetime.now(timezone.utc)
        return ss.AllowedList(items=[ss.AllowedOut.of(a, now) for a in self.scans.allowlist(c.actor, namespace)])

    def _allow(self, c: Call, namespace: str | None) -> ss.AllowedOut:
        b = c.body
        entry = self.scans.allow(c.actor, namespace, b.vulnerability, b.reason, b.expires_at)
        return ss.AllowedOut.of(entry, datetime.now(timezone.utc))

    @staticmethod
    def _id(c: Call) -> int:
        return path_id(c.path["id"], "allowlist entry")

    def list_namespace_allowlist(self, c: Call) -> ss.AllowedList:
        """The namespace's accepted vulnerabilities, expired ones included (`active: false`)."""
        return self._list(c, c.path["ns"])

    def add_namespace_allowlist(self, c: Call) -> ss.AllowedOut:
        """Owners and administrators. One entry per vulnerability: adding it again replaces it."""
        return self._allow(c, c.path["ns"])

    def delete_namespace_allowlist(self, c: Call) -> None:
        """Owners and administrators."""
        self.scans.disallow(c.actor, c.path["ns"], self._id(c))

    def list_system_allowlist(self, c: Call) -> ss.AllowedList:
        """Vulnerabilities accepted in every namespace."""
        return self._list(c, None)

    def add_system_allowlist(self, c: Call) -> ss.AllowedOut:
        """Administrators."""
        return self._allow(c, None)

    def delete_system_allowlist(self, c: Call) -> None:
        """Administrators."""
        self.scans.disallow(c.actor, None, self._id(c))

    def get_vulndb(self, c: Call) -> ss.VulnDbOut:
        """The advisory database scans use: its sources, record counts and ages
        (`dockyard vulndb import|update` changes it)."""
        self.scans.policy_reader_check(c.actor)
        return ss.VulnDbOut.model_validate(self.vulndb_status())

    def repository_endpoints(self) -> list[Endpoint]:
        """Before /repositories/{name:path}, which would swallow these suffixes."""
        E = Endpoint
        base = "/repositories/{name:path}/manifests/{reference}"
        return [
            E("POST", f"{base}/scan", self.request_scan, "Scan an image", "security", response=ss.ScanQueued,
              status=202, params=REPO_REF, registry_credentials=True),
            E("GET", f"{base}/vulnerabilities", self.get_vulnerabilities, "Get an image's vulnerabilities", "security",
              response=ss.VulnerabilitiesOut, params=REPO_REF, registry_credentials=True),
            E("GET", f"{base}/packages", self.get_packages, "List an image's packages", "security",
              response=ss.PackagesOut, params=REPO_REF, registry_credentials=True),
            E("GET", f"{base}/sbom", self.get_sbom, "Download an image's SBOM", "security", query=ss.SbomQuery,
              params=REPO_REF, registry_credentials=True),
        ]

    def other_endpoints(self) -> list[Endpoint]:
        E = Endpoint
        entry = (("ns", "Namespace name."), ("id", "Allowlist entry id."))
        return [
            E("GET", "/namespaces/{ns}/scan-policy", self.get_scan_policy, "Get a namespace's scan policy", "security",
              response=ss.PolicyOut, params=NS),
            E("PUT", "/namespaces/{ns}/scan-policy", self.set_scan_policy, "Set a namespace's scan policy", "security",
              body=ss.PolicyUpdate, response=ss.PolicyOut, params=NS),
            E("GET", "/namespaces/{ns}/allowlist", self.list_namespace_allowlist, "List a namespace's allowlist",
              "security", response=ss.AllowedList, params=NS),
            E("POST", "/namespaces/{ns}/allowlist", self.add_namespace_allowlist, "Allowlist a vulnerability in a namespace",
              "security", body=ss.AllowCreate, response=ss.AllowedOut, status=201, params=NS),
            E("DELETE", "/namespaces/{ns}/allowlist/{id}", self.delete_namespace_allowlist,
              "Remove a namespace allowlist entry", "security", status=204, params=entry),
            E("GET", "/allowlist", self.list_system_allowlist, "List the system-wide allowlist", "security",
              response=ss.AllowedList),
            E("POST", "/allowlist", self.add_system_allowlist, "Allowlist a vulnerability everywhere", "security",
              body=ss.AllowCreate, response=ss.AllowedOut, status=201),
            E("DELETE", "/allowlist/{id}", self.delete_system_allowlist, "Remove a system-wide allowlist entry",
              "security", status=204, params=(("id", "Allowlist entry id."),)),
            E("GET", "/vulndb", self.get_vulndb, "Get the advisory database's status", "security",
              response=ss.VulnDbOut),
        ]
