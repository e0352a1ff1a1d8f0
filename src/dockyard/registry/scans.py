"""Scanning images as jobs, re-evaluating stored inventories, and deciding pulls by policy.

- `scan(digest, repository)` (job `scan.image`): reads the manifest, streams its layers from the
  blob store through the inventory (scan/inventory.py), matches the packages against the advisory
  database (scan/matcher.py), stores inventory and findings (meta/scans.py) and pushes the SBOMs as
  referrers. An index fans out: each platform manifest is a scan of its own.
- `reevaluate()` (job `scan.reevaluate`): when the advisory database changed, every stored
  inventory is matched again — no layer is read — and findings the previous evaluation did not
  have are flagged new.
- `PullGuard.check(repository, digest)`: the namespace's policy on a manifest GET (403 DENIED
  naming the count and the console page).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.config import Settings
from dockyard.core.access import namespace_of
from dockyard.core.errors import Denied, RegistryError
from dockyard.core.events import Origin
from dockyard.core.image import has_image_config, layers_with_history
from dockyard.core.manifest import ParsedManifest, parse_manifest
from dockyard.meta.content import ContentStore
from dockyard.meta.events import EventStore
from dockyard.meta.scans import Allowed, Evaluated, Policy, ScanStore
from dockyard.registry.manifests import ManifestService
from dockyard.registry.uploads import UploadService
from dockyard.scan.codec import (
    decode_findings,
    decode_inventory,
    decode_rows,
    encode_findings,
    encode_inventory,
    encode_rows,
    finding_key,
    finding_row,
    row_key,
)
from dockyard.scan.model import SEVERITIES, Finding, severity_rank
from dockyard.scan.vulndb import status as db_status
from dockyard.storage.base import BlobStore

if TYPE_CHECKING:
    from dockyard.scan.matcher import AdvisoryIndex

log = logging.getLogger("dockyard.scans")

SCANNER = Origin(actor="scanner")
DETAIL_CONFIG_BYTES = 8 << 20


def summarize(findings: list[Finding], allowed: set[str] | None = None) -> dict[str, int]:
    """Counts per severity, leaving out allowlisted vulnerabilities (by id or any alias)."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        if allowed and is_allowed(finding, allowed):
            continue
        counts[finding.severity if finding.severity in counts else "unknown"] += 1
    return counts


def is_allowed(finding: Finding, allowed: set[str]) -> bool:
    return finding.id in allowed or any(alias in allowed for alias in finding.aliases)


def active_ids(entries: list[Allowed], now: datetime | None = None) -> set[str]:
    now = now or datetime.now(timezone.utc)
    return {entry.vulnerability for entry in entries if entry.active(now)}


class ScanService:
    def __init__(self, *, settings: Settings, store: ScanStore, content: ContentStore, manifests: ManifestService,
                 uploads: UploadService, blobs: BlobStore, events: EventStore) -> None:
        self.settings = settings
        self.store = store
        self.content = content
        self.manifests = manifests
        self.uploads = uploads
        self.blobs = blobs
        self.events = events
        self._seen_db: str | None = None
        self._seen_file: tuple[int, int, int] | None | bool = False

    @property
    def db_path(self) -> Path:
        return self.settings.vulndb_path

    def index(self) -> AdvisoryIndex:
        from dockyard.scan.matcher import AdvisoryIndex

        return AdvisoryIndex.load(self.db_path)

    # -- one image -----------------------------------------------------------------------------------
    def _parsed(self, digest: str, repository: str | None) -> ParsedManifest:
        record = self.content.get_manifest(repository, digest) if repository else None
        data = self.manifests.content_of(digest)
        return parse_manifest(data, record.media_type if record is not None else None)

    def scan(self, digest: str, repository: str | None, check: Callable[[], None] = lambda: None) -> dict[str, Any]:
        """Scan one manifest; returns the job's result. Raises only for what a retry may cure
        (the database or the blob store failing)."""
        self.store.start(digest)
        try:
            parsed = self._parsed(digest, repository)
        except (FileNotFoundError, RegistryError) as exc:
            self._finish(digest, repository, "failed", error=f"the manifest cannot be read: {exc}")
            return {"status": "failed"}
        if parsed.is_index:
            return self._fan_out(digest, repository, parsed)
        if parsed.subject is not None or not has_image_config(parsed):
            kind = parsed.artifact_type or (parsed.config.media_type if parsed.config else parsed.media_type)
            self._finish(digest, repository, "unsupported", error=f"not a container image ({kind})")
            return {"status": "unsupported"}
        # The scanner's readers (ELF, archives, package databases) are loaded with the first scan,
        # not at start-up: a registry that never scans keeps their memory.
        from dockyard.scan.inventory import LayerSource, Limits, ScanFailed, Unsupported, build_inventory

        config = self.manifests.read_config(parsed, DETAIL_CONFIG_BYTES)
        layers = layers_with_history(parsed, config)
        sources = [LayerSource(layer.digest, layer.media_type, layer.size, self._opener(layer.digest))
                   for layer in layers]
        limits = Limits(max_layer_bytes=self.settings.scan.max_layer_bytes,
                        max_file_bytes=self.settings.scan.max_file_bytes)
        started = time.monotonic()
        try:
            outcome = build_inventory(sources, [layer.created_by for layer in layers], limits, check)
        except ScanFailed as exc:
            self._finish(digest, repository, "failed", error=str(exc))
            return {"status": "failed", "error": str(exc)}
        except Unsupported as exc:
            self._finish(digest, repository, "unsupported", error=str(exc))
            return {"status": "unsupported"}
        inventory = outcome.inventory
        index = self.index()
        findings = index.match(inventory.os, inventory.packages)
        new = self._new_keys(findings, self.store.findings_of([digest]).get(digest))
        summary = summarize(findings)
        self._finish(digest, repository, "done", inventory=encode_inventory(inventory),
                     findings=encode_findings(findings, new), summary=summary,
                     os_id=inventory.os.id if inventory.os else None,
                     os_version=inventory.os.version if inventory.os else None,
                     db_id=index.db_id or None, db_updated_at=index.updated_at, notes=outcome.notes)
        if self.settings.scan.sbom and repository:
            try:
                self.push_sboms(repository, digest, inventory)
            except Exception:
                log.warning("scan of %s: the SBOMs could not be pushed to %s", digest, repository, exc_info=True)
        return {"status": "done", "packages": len(inventory.packages), "vulnerabilities": len(findings),
                "summary": summary, "seconds": round(time.monotonic() - started, 3)}

    def abandon(self, digest: str, repository: str | None, error: str) -> None:
        """A scan job that will not finish (cancelled, or out of attempts)."""
        self._finish(digest, repository, "failed", error=error)

    def _opener(self, digest: str) -> Callable[[], Any]:
        return lambda: self.blobs.open_stream(digest)

    def _finish(self, digest: str, repository: str | None, status: str, **values: Any) -> None:
        self.store.finish(digest, status, repository=repository, events=self.events, origin=SCANNER, **values)

    def _fan_out(self, digest: str, repository: str | None, parsed: ParsedManifest) -> dict[str, Any]:
        queued = 0
        with self.store.db.write() as conn:
            for child in parsed.manifests:
                platform = child.platform or {}
                if platform.get("os") == "unknown":  # BuildKit's attestation manifests
                    continue
                # Platforms pushed before their index were queued by their own push already.
                queued += self.store.queue(conn, child.digest, repository, unless_known=True)
        self._finish(digest, repository, "done", summary=dict.fromkeys(SEVERITIES, 0),
                     notes=["an index: its platform manifests are scanned one by one"])
        return {"status": "done", "platforms": queued}

    @staticmethod
    def _new_keys(findings: list[Finding], previous: bytes | None) -> set[tuple[str, str, str]] | None:
        before = decode_rows(previous)
        if before is None:
            return None  # a first scan: nothing is "new since the last one"
        known = {row_key(r) for r in before}
        return {finding_key(f) for f in findings} - known

    # -- SBOMs ---------------------------------------------------------------------------------------
    def push_sboms(self, repository: str, digest: str, inventory: Any) -> list[str]:
        """Push CycloneDX and SPDX SBOMs with the image as their subject, replacing the ones
        Dockyard pushed before for it."""
        from dockyard.scan import sbom  # CycloneDX's library: loaded with the first SBOM

        record = self.content.get_manifest(repository, digest)
        if record is None:
            return []  # deleted from the repository meanwhile
        subject = sbom.Subject(repository, digest, record.media_type, record.size)
        created = datetime.now(timezone.utc).replace(microsecond=0)
        pushed = []
        old = [r for r in self.content.referrers(repository, digest, None)
               if sbom.GENERATOR in (r.annotations or {}) and r.artifact_type in sbom.FILE_NAMES]
        for artifact in sbom.sboms(subject, inventory, created):
            self.uploads.put_bytes(repository, sbom.EMPTY_JSON, SCANNER)
            self.uploads.put_bytes(repository, artifact.blob, SCANNER)
            self.manifests.put(repository, artifact.digest, artifact.manifest, sbom.OCI_MANIFEST, origin=SCANNER)
            pushed.append(artifact.digest)
        for record in old:
            if record.digest not in pushed:
                self.manifests.delete(repository, record.digest, SCANNER)
        return pushed

    # -- the advisory database changed ---------------------------------------------------------------
    def reevaluate(self, check: Callable[[], None] = lambda: None,
                   progress: Callable[[int], None] = lambda n: None) -> dict[str, Any]:
        """Match every stored inventory evaluated against another advisory database, in batches
        of one transaction each. Findings the previous evaluation did not have are flagged new
        (flags from before stay until the image is scanned again); an image whose findings did
        not change only has its database stamp moved on."""
        index = self.index()
        done = changed = 0
        after = ""
        while True:
            check()
            batch = self.store.stale(index.db_id, after)
            if not batch:
                break
            results: list[Evaluated] = []
            for digest, scanned_at, inventory_data, findings_data in batch:
                after = digest
                inventory = decode_inventory(inventory_data)
                if inventory is None:
                    continue
                findings = index.match(inventory.os, inventory.packages)
                before = decode_rows(findings_data)
                known = {row_key(r): bool(r[-1]) for r in before} if before is not None else None
                rows = [finding_row(f, known is not None and known.get(finding_key(f), True)) for f in findings]
                if rows == before:
                    results.append(Evaluated(digest, scanned_at, None, None))
                    continue
                changed += any(known is not None and finding_key(f) not in known for f in findings)
                results.append(Evaluated(digest, scanned_at, encode_rows(rows), summarize(findings)))
            done += self.store.evaluated_many(results, index.db_id, index.updated_at)
            progress(done)
        return {"evaluated": done, "with_new_findings": changed, "db_id": index.db_id}

    def database_changed(self) -> bool:
        """True once per new advisory database file seen by this process (worker tick), when
        some stored inventory was evaluated against another one."""
        try:
            st = os.stat(self.db_path)
            identity: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            identity = None
        if identity == self._seen_file:
            return False
        self._seen_file = identity
        db_id = db_status(self.db_path).db_id if identity is not None else ""
        if db_id == self._seen_db:
            return False
        self._seen_db = db_id
        return bool(db_id) and bool(self.store.stale(db_id, limit=1))


class PullGuard:
    """The namespaces' pull policies on manifest GETs. Policies are cached for a few seconds per
    process, so that a namespace without one costs a dict lookup; a namespace that blocks reads
    the scan rows (and its allowlist) on each GET, so an allowlisted vulnerability or a finished
    scan applies at once."""

    TTL = 3.0

    def __init__(self, store: ScanStore, console_url: Callable[[str, str], str]) -> None:
        self.store = store
        self.console_url = console_url
        self._policies: dict[str, Policy] = {}
        self._loaded = 0.0
        self._lock = threading.Lock()

    def forget(self) -> None:
        self._loaded = 0.0

    @property
    def stale(self) -> bool:
        return time.monotonic() - self._loaded > self.TTL

    def refresh(self) -> None:
        with self._lock:
            if self.stale:
                self._policies = self.store.policies()
                self._loaded = time.monotonic()

    def policy(self, namespace: str) -> Policy | None:
        """The namespace's policy when it blocks anything (refresh first when `stale`)."""
        policy = self._policies.get(namespace)
        return policy if policy is not None and policy.blocks else None

    def needs_check(self, repository: str) -> bool:
        return self.policy(namespace_of(repository)) is not None

    def check(self, repository: str, digest: str, content: bytes, media_type: str) -> None:
        """Raise Denied when the policy of the repository's namespace blocks this manifest
        (for an index: when it blocks any of its platform manifests)."""
        namespace = namespace_of(repository)
        policy = self.policy(namespace)
        if policy is None:
            return
        digests = [digest]
        try:
            parsed = parse_manifest(content, media_type)
        except RegistryError:
            parsed = None
        if parsed is not None and parsed.is_index:
            digests = [c.digest for c in parsed.manifests if (c.platform or {}).get("os") != "unknown"]
        elif parsed is not None and (parsed.subject is not None or not has_image_config(parsed)):
            return  # signatures, SBOMs and other artifacts are not images: nothing to block
        rows = self.store.get_many(digests)
        if policy.block_unscanned:
            unscanned = [d for d in digests if d not in rows or rows[d].status not in ("done", "unsupported")]
            if unscanned:
                raise Denied(f"{repository}@{digest} has not been scanned yet, and the policy of namespace "
                             f"{namespace} blocks pulls of unscanned images; see {self.console_url(repository, digest)}")
        if policy.block_severity is None:
            return
        threshold = severity_rank(policy.block_severity)
        # Only rows whose summary counts something at or above the threshold need their findings
        # (read in one query), to leave out what the allowlist accepts.
        over = [d for d, row in rows.items() if row.status in ("done", "queued", "running") and row.summary
                and any(row.summary.get(s, 0) for s in SEVERITIES[:threshold + 1])]
        count = 0
        if over:
            allowed = active_ids(self.store.allowlist(namespace))
            for data in self.store.findings_of(over).values():
                count += sum(1 for f, _ in decode_findings(data) or []
                             if severity_rank(f.severity) <= threshold and not is_allowed(f, allowed))
        if count:
            raise Denied(f"{repository}@{digest} has {count} vulnerabilit{'y' if count == 1 else 'ies'} of severity "
                         f"{policy.block_severity} or higher, and the policy of namespace {namespace} blocks its "
                         f"pulls; see {self.console_url(repository, digest)}")


def vulndb_report(settings: Settings, store: ScanStore) -> dict[str, Any]:
    """The advisory database's status for the API and console (GET /api/v1/vulndb)."""
    path = settings.vulndb_path
    found = db_status(path)
    sources = [{"name": src.name, "kind": src.kind, "records": src.records, "imported_at": src.imported_at,
                "newest": src.newest} for src in found.sources]
    return {"path": str(path), "present": found.exists, "db_id": found.db_id or None,
            "updated_at": found.updated_at, "sources": sources, "scans": store.counts()}
