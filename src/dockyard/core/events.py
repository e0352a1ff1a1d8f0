"""What happened to the registry's content: the events the services record with each change.

An event is written in the same transaction as the change it describes (meta/events.py, a
transactional outbox), so a change that is committed always has its event and a rolled-back one
never does. A dispatcher (meta/events.py `dispatch`, run by every node's worker) hands each event
to its subscribers exactly once: the audit log (inline, in the dispatcher's transaction) and,
later, scanning, builds, webhooks and replication (a job per event).

Pure vocabulary: no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MANIFEST_PUSHED = "manifest.pushed"  # detail: digest, media_type, size, tags, subject
TAG_MOVED = "tag.moved"  # the tag names another manifest now; detail: tag, digest, previous (None: new)
TAG_DELETED = "tag.deleted"  # detail: tag, digest
MANIFEST_DELETED = "manifest.deleted"  # detail: digest, tags (the tags that went with it)
BLOB_DELETED = "blob.deleted"  # unlinked from the repository; detail: digest
REPOSITORY_CREATED = "repository.created"  # by a push, a mount or the management API
REPOSITORY_DELETED = "repository.deleted"  # with its tags and manifests (blobs go to GC)
SCAN_FINISHED = "scan.finished"  # detail: digest, status, summary, error (repository: the one it was queued for)
BUILD_SUCCEEDED = "build.succeeded"  # detail: build, ref, revision, tags, digest, duration_seconds
BUILD_FAILED = "build.failed"  # detail: build, ref, revision, tags, status (failed | cancelled), error, duration_seconds

KINDS = (MANIFEST_PUSHED, TAG_MOVED, TAG_DELETED, MANIFEST_DELETED, BLOB_DELETED, REPOSITORY_CREATED,
         REPOSITORY_DELETED, SCAN_FINISHED, BUILD_SUCCEEDED, BUILD_FAILED)

# The audit log's action for each event kind (None: not an audit record of its own: a tag
# moved by a push is part of the push's record). Actions keep the names the audit log has
# always used, so filters on them go on working.
AUDIT_ACTIONS: dict[str, str | None] = {
    MANIFEST_PUSHED: "manifest.push",
    TAG_MOVED: None,
    TAG_DELETED: "tag.delete",
    MANIFEST_DELETED: "manifest.delete",
    BLOB_DELETED: "blob.delete",
    REPOSITORY_CREATED: "repository.create",
    REPOSITORY_DELETED: "repository.delete",
    SCAN_FINISHED: None,
    BUILD_SUCCEEDED: None,  # the build's push is audited; the build itself is in its own history
    BUILD_FAILED: None,
}


@dataclass(frozen=True, slots=True)
class Origin:
    """Who made a change, and from where: carried from the edge (HTTP handler, CLI) into the
    service that records the change's events."""

    actor: str = "system"
    remote: str | None = None


SYSTEM = Origin()


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be written with its change."""

    kind: str
    repository: str | None
    target: str  # what the audit log names: "repo", "repo:tag" or "repo@digest"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    kind: str
    repository: str | None
    target: str
    detail: dict[str, Any]
    actor: str
    remote: str | None
    created_at: datetime


def manifest_target(repository: str, reference: str) -> str:
    """"repo:tag" for a tag, "repo@digest" for a digest."""
    return f"{repository}@{reference}" if ":" in reference else f"{repository}:{reference}"
