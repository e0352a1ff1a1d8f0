"""The use-cases behind the console's image-version pages: a repository's tags as versions (sizes,
platforms, pulls), one version in detail (config, layers with the commands that made them,
referrers), deleting a tag, and the backfill of image facts for manifests pushed before they
were recorded.

Reading needs the right to pull the repository (an invisible repository is NotFound, as if it
did not exist); deleting a tag needs the "delete" action and a login with the account password.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dockyard.auth.service import AuthService
from dockyard.core.digest import Digest, is_digest
from dockyard.core.errors import ManifestUnknown, RegistryError
from dockyard.core.image import (
    IMAGE_CONFIG_TYPES,
    HistoryEntry,
    ImageFacts,
    Layer,
    author_of,
    config_section,
    created_of,
    history_of,
    image_facts,
    image_size,
    labels_of,
    layers_with_history,
    platform_of,
    str_map,
)
from dockyard.core.manifest import INDEX_TYPES, Descriptor, ParsedManifest, parse_manifest
from dockyard.core.names import validate_name, validate_tag
from dockyard.core.scopes import Scope
from dockyard.management.base import Actor, checked
from dockyard.management.errors import Forbidden, Invalid, NotFound
from dockyard.meta.content import ContentStore
from dockyard.meta.db import aware
from dockyard.meta.versions import SORTS, ManifestFacts, TagRow, VersionStore
from dockyard.registry.manifests import ManifestService

__all__ = ["HistoryEntry", "ImagesService", "Layer", "PlatformImage", "Referrer", "Version", "VersionDetail",
           "VersionsPage"]

log = logging.getLogger("dockyard.images")

ORDERS = ("asc", "desc")
MAX_PER_PAGE = 200
DETAIL_CONFIG_BYTES = 8 << 20  # the detail page reads bigger configs than a push does


@dataclass(frozen=True, slots=True)
class PlatformImage:
    platform: str | None  # "linux/amd64", "linux/arm64/v8"; None when unknown (attestations, artifacts)
    digest: str
    size: int | None  # compressed: manifest bytes + config + layers
    media_type: str


@dataclass(frozen=True, slots=True)
class Version:
    """One tag of a repository."""

    tag: str
    digest: str
    media_type: str
    is_index: bool
    size: int | None  # image: manifest + config + layers; index: its own bytes + its children's sizes
    platforms: list[PlatformImage]  # image: itself; index: one per child, in index order
    artifact_type: str | None
    pushed_at: datetime
    pulls: int
    last_pulled_at: datetime | None


@dataclass(frozen=True, slots=True)
class VersionsPage:
    items: list[Version]
    total: int  # tags matching the filter
    page: int  # 1-based, clamped to [1, pages]
    per_page: int
    sort: str
    order: str
    search: str | None

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True, slots=True)
class Referrer:
    digest: str
    media_type: str
    artifact_type: str | None
    size: int
    annotations: dict[str, str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class VersionDetail:
    repository: str
    reference: str  # as asked: a tag or a digest
    digest: str
    media_type: str
    is_index: bool
    manifest_size: int
    size: int | None
    tags: list[str]  # every tag pointing at the digest, sorted
    platform: str | None  # image: from its config; index: None
    children: list[PlatformImage]  # index: each child; image: []
    config_digest: str | None
    config: dict[str, Any] | None  # the config's "config" object (Env, Cmd, Labels…)
    created: str | None
    author: str | None
    labels: dict[str, str]
    annotations: dict[str, str]  # the manifest's
    layers: list[Layer]
    history: list[HistoryEntry]
    referrers: list[Referrer]  # oldest first
    manifest_json: str  # pretty-printed
    pulls: int  # of the tag asked for; 0 when asked by digest
    last_pulled_at: datetime | None


class ImagesService:
    def __init__(self, *, content: ContentStore, manifests: ManifestService, versions: VersionStore,
                 auth: AuthService, activity_flush: Callable[[], object] | None = None) -> None:
        self.content = content
        self.manifests = manifests
        self.rows = versions
        self.auth = auth
        # Writes the buffered pull counts first, so a page shows a pull made a moment ago.
        self.activity_flush = activity_flush

    # -- access ----------------------------------------------------------------------------------------
    def _visible(self, actor: Actor, repository: str) -> None:
        checked(validate_name, repository)
        if not actor.is_admin and not self.auth.visible(actor.principal, [repository]):
            raise NotFound(f"repository {repository!r} not found")

    def _flush(self) -> None:
        if self.activity_flush is not None:
            try:
                self.activity_flush()
            except Exception:  # the counts are a second late; the page still shows
                log.exception("flushing pull counts failed")

    def can_delete(self, actor: Actor, repository: str) -> bool:
        if actor.read_only:
            return False
        return "delete" in self.auth.allowed(actor.principal, Scope("repository", repository, ("delete",)))

    # -- reads -------------------------------------------------------------------------------------------
    def versions(self, actor: Actor, repository: str, *, sort: str = "pushed", order: str = "desc", page: int = 1,
                 per_page: int = 50, search: str | None = None) -> VersionsPage:
        if sort not in SORTS:
            raise Invalid(f"sort is one of {', '.join(SORTS)}")
        if order not in ORDERS:
            raise Invalid("order is asc or desc")
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise Invalid(f"per_page must be between 1 and {MAX_PER_PAGE}")
        self._visible(actor, repository)
        self._flush()
        search = search or None
        result = self.rows.page(repository, sort=sort, descending=order == "desc", search=search, page=page,
                                per_page=per_page)
        if result is None:
            raise NotFound(f"repository {repository!r} not found")
        children = self._children(repository, [r.digest for r in result.rows if _is_index(r)])
        items = [self._version(row, children) for row in result.rows]
        return VersionsPage(items, result.total, result.page, per_page, sort, order, search)

    def _children(self, repository: str, index_digests: list[str]) -> dict[str, list[PlatformImage]]:
        """index digest -> its children in index order: descriptors from the index bytes (cached
        by the ManifestService), facts from one query for all of them."""
        listed: dict[str, list[Descriptor]] = {}
        for digest in dict.fromkeys(index_digests):
            parsed = self._parsed(digest, None)
            listed[digest] = parsed.manifests if parsed is not None else []
        rows = self.rows.manifests(repository, {d.digest for ds in listed.values() for d in ds})
        return {digest: [_platform_image(d, rows.get(d.digest)) for d in ds] for digest, ds in listed.items()}

    def _parsed(self, digest: str, media_type: str | None) -> ParsedManifest | None:
        try:
            return parse_manifest(self.manifests.content_of(digest), media_type)
        except (FileNotFoundError, RegistryError):
            return None

    @staticmethod
    def _version(row: TagRow, children: dict[str, list[PlatformImage]]) -> Version:
        media_type = row.media_type or ""
        index = _is_index(row)
        platforms = children.get(row.digest, []) if index else [
            PlatformImage(row.platform, row.digest, row.image_size, media_type)]
        artifact_type = row.artifact_type if row.artifact_type not in IMAGE_CONFIG_TYPES else None
        return Version(tag=row.tag, digest=row.digest, media_type=media_type, is_index=index, size=row.image_size,
                       platforms=platforms, artifact_type=artifact_type, pushed_at=row.pushed_at, pulls=row.pulls,
                       last_pulled_at=row.last_pulled_at)

    def version(self, actor: Actor, repository: str, reference: str) -> VersionDetail:
        self._visible(actor, repository)
        pulls, last_pulled = 0, None
        if is_digest(reference):
            checked(Digest.parse, reference)
            digest = reference
        else:
            checked(validate_tag, reference)
            self._flush()
            found = self.rows.tag(repository, reference)
            if found is None:
                raise NotFound(f"{repository}:{reference} not found")
            digest, pulls, last_pulled = found
        row = self.rows.manifest(repository, digest)
        if row is None:
            raise NotFound(f"{repository}@{digest} not found")
        try:
            data = self.manifests.content_of(digest)
            parsed = parse_manifest(data, row.media_type)
        except (FileNotFoundError, RegistryError):
            raise NotFound(f"{repository}@{digest} cannot be read") from None
        config = self.manifests.read_config(parsed, DETAIL_CONFIG_BYTES)
        children = self._children(repository, [digest])[digest] if parsed.is_index else []
        return VersionDetail(
            repository=repository, reference=reference, digest=digest, media_type=row.media_type,
            is_index=parsed.is_index, manifest_size=row.size, size=_size(row, parsed, children),
            tags=self.rows.tags_of(repository, digest),
            platform=None if parsed.is_index else (platform_of(config) if config is not None else row.platform),
            children=children,
            config_digest=parsed.config.digest if parsed.config is not None else None,
            config=config_section(config), created=created_of(config), author=author_of(config),
            labels=labels_of(config), annotations=str_map(parsed.annotations),
            layers=layers_with_history(parsed, config), history=history_of(config),
            referrers=[Referrer(r.digest, r.media_type, r.artifact_type, r.size, dict(r.annotations or {}),
                                aware(r.created_at))
                       for r in self.content.referrers(repository, digest, None)],
            manifest_json=_pretty(data), pulls=pulls, last_pulled_at=last_pulled,
        )

    # -- changes -----------------------------------------------------------------------------------------
    def delete_tag(self, actor: Actor, repository: str, tag: str) -> None:
        self._visible(actor, repository)
        if not self.can_delete(actor, repository):
            raise Forbidden(f"you may not delete tags of {repository}")
        checked(validate_tag, tag)
        try:
            # Through the registry, so its caches forget the tag; its tag.deleted event is the
            # audit record, as for a DELETE through /v2 (one filter finds both).
            self.manifests.delete(repository, tag, actor.origin)
        except ManifestUnknown:
            raise NotFound(f"{repository}:{tag} not found") from None

    def backfill_all(self, batch: int = 1000) -> int:
        """`backfill` until a call finds less than a batch to do; returns the rows updated."""
        total = 0
        while (done := self.backfill(batch)) == batch:
            total += done
        return total + done

    def backfill(self, limit: int = 1000) -> int:
        """Fill the facts of up to `limit` manifests pushed before they were recorded: images
        from their bytes and configs, then indexes from their children (in passes, for indexes of
        indexes). Returns the rows updated."""
        done = after = 0
        while done < limit:
            batch = self.rows.pending(indexes=False, after_id=after, limit=min(200, limit - done))
            if not batch:
                break
            after = batch[-1].id
            facts: dict[int, ImageFacts] = {}
            for m in batch:
                try:
                    parsed = parse_manifest(self.manifests.content_of(m.digest), m.media_type)
                except (FileNotFoundError, RegistryError):
                    log.warning("cannot read manifest %s@%s to record its facts", m.repository, m.digest)
                    continue
                facts[m.id] = image_facts(parsed, m.size, self.manifests.read_config(parsed))
            done += self.rows.set_facts(facts)
        progress = True
        while progress and done < limit:  # each pass may complete the indexes of the indexes it filled
            progress, after = False, 0
            while done < limit:
                pending = self.rows.pending(indexes=True, after_id=after, limit=min(200, limit - done))
                if not pending:
                    break
                after = pending[-1].id
                sizes = self.rows.children_sizes(m.id for m in pending)
                facts = {m.id: ImageFacts(None, m.size + sum(s for s in sizes[m.id] if s is not None), None)
                         for m in pending if None not in sizes[m.id]}
                updated = self.rows.set_facts(facts)
                done += updated
                progress = progress or updated > 0
        if done:
            log.info("recorded image facts of %d manifests", done)
        return done


def _is_index(row: TagRow) -> bool:
    return row.media_type in INDEX_TYPES


def _platform_image(desc: Descriptor, row: ManifestFacts | None) -> PlatformImage:
    """A child of an index: its facts from its row, its platform from its config or else the index's descriptor."""
    platform = (row.platform if row else None) or platform_of(desc.platform)
    return PlatformImage(platform, desc.digest, row.image_size if row else None, row.media_type if row else desc.media_type)


def _size(row: ManifestFacts, parsed: ParsedManifest, children: list[PlatformImage]) -> int | None:
    """The stored size, or (before the backfill reached it) the same sum made now."""
    if row.image_size is not None:
        return row.image_size
    if not parsed.is_index:
        return image_size(parsed, row.size)
    sizes = {c.digest: c.size for c in children}
    return None if None in sizes.values() else row.size + sum(s for s in sizes.values() if s is not None)


def _pretty(data: bytes) -> str:
    try:
        return json.dumps(json.loads(data), indent=2, ensure_ascii=False)
    except ValueError:
        return data.decode("utf-8", "replace")
