"""Manifests and tags: push, pull, delete, tag listing and the referrers API.

Manifest bytes are immutable per digest, so they are cached in memory without expiry. The tag →
digest and (repository, digest) → media type caches are kept exact for writes made through this
process and expire after a few seconds for writes made elsewhere (`dockyard gc` run by hand);
app.py turns them on only for a single server process.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.core.digest import Digest, is_digest
from dockyard.core.errors import DigestInvalid, ManifestTooLarge, ManifestUnknown, NameUnknown, TagInvalid
from dockyard.core.events import SYSTEM, Origin
from dockyard.core.image import MAX_CONFIG_BYTES, has_image_config, image_facts, parse_config
from dockyard.core.manifest import OCI_INDEX, ParsedManifest, parse_manifest
from dockyard.core.names import is_valid_tag, validate_tag
from dockyard.meta.content import ContentStore
from dockyard.storage.base import BlobStore


@dataclass(frozen=True, slots=True)
class Manifest:
    digest: str
    media_type: str
    content: bytes


CACHE_SECONDS = 5.0


class _Lru:
    """A small thread-safe LRU map (handlers run in several threads)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        return self._data.get(key)

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            if len(self._data) > self.limit:
                self._data.popitem(last=False)

    def pop(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            return self._data.pop(key, default)

    def items(self) -> list[tuple[Any, Any]]:
        with self._lock:
            return list(self._data.items())


def check_tag_params(reference: str, values: Sequence[str]) -> list[str]:
    """The `?tag=` parameters of a manifest PUT, each once in their order; raises TagInvalid for
    a name outside the tag grammar, or for tags on a push by tag (the spec defines them for a push
    by digest only), before anything is read or stored."""
    if values and not is_digest(reference):
        raise TagInvalid("tag parameters are only accepted on a push by digest", {"reference": reference[:300]})
    for value in values:
        if not is_valid_tag(value):
            raise TagInvalid(f"invalid tag {value[:140]!r}: up to 128 characters of [A-Za-z0-9_.-], "
                             "not starting with '.' or '-'", {"tag": value[:300]})
    return list(dict.fromkeys(values))


class ManifestService:
    def __init__(self, content: ContentStore, store: BlobStore, max_bytes: int, cache: bool) -> None:
        self.content = content
        self.store = store
        self.max_bytes = max_bytes
        self.cache = cache
        self._bytes: _Lru = _Lru(4096)  # digest -> bytes (immutable: always safe)
        self._tags: _Lru = _Lru(65536)  # (repo, tag) -> (digest, expires)
        self._records: _Lru = _Lru(65536)  # (repo, digest) -> (media type, expires)
        self._tag_lists: _Lru = _Lru(1024)  # repo -> (sorted tag names, expires)

    def _cached(self, cache: _Lru, key: tuple[str, str]) -> str | None:
        if not self.cache:
            return None
        entry = cache.get(key)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]  # type: ignore[no-any-return]

    def _remember(self, cache: _Lru, key: tuple[str, str], value: str) -> None:
        if self.cache:
            cache.put(key, (value, time.monotonic() + CACHE_SECONDS))

    def clear_cache(self) -> None:
        """Forget tag and manifest lookups (after garbage collection deleted manifests)."""
        self._tags = _Lru(self._tags.limit)
        self._records = _Lru(self._records.limit)
        self._tag_lists = _Lru(self._tag_lists.limit)

    def _forget_tags(self, repository: str) -> None:
        self._tag_lists.pop(repository, None)

    def _forget_digest(self, repository: str, digest: str) -> None:
        self._records.pop((repository, digest), None)
        for key in [k for k, v in self._tags.items() if k[0] == repository and v[0] == digest]:
            self._tags.pop(key, None)

    def put(self, repository: str, reference: str, data: bytes, content_type: str | None,
            extra_tags: Sequence[str] = (), origin: Origin = SYSTEM) -> tuple[str, str | None]:
        """Store a manifest under a tag or digest; returns (digest, subject digest or None).

        `extra_tags` are the `?tag=` parameters of a push by digest (checked by `check_tag_params`),
        stored in the manifest's transaction: the only way to tag a manifest whose digest is not
        sha256, since a push by tag names it by its sha256 digest."""
        if len(data) > self.max_bytes:
            raise ManifestTooLarge(f"manifest is {len(data)} bytes; the limit is {self.max_bytes}")
        tags: Sequence[str]
        if is_digest(reference):
            wanted = Digest.parse(reference)
            digest = str(Digest.of(data, wanted.algorithm))
            if digest != reference:
                # The spec's code for content that does not match its digest (as for blobs).
                raise DigestInvalid(f"manifest digest is {digest}, not {reference}", {"digest": reference})
            tags = extra_tags
        else:
            tags = (validate_tag(reference),)
            digest = str(Digest.of(data))
        parsed = parse_manifest(data, content_type)
        facts = None if parsed.is_index else image_facts(parsed, len(data), self.read_config(parsed))
        # The bytes go into the database with the rest of the push (meta/tables.py,
        # manifest_contents): no file, fsync or rename on this path.
        self.content.put_manifest(repository, digest, data, parsed, tags, facts, origin, reference)
        self._bytes.put(digest, data)
        if tags:
            for tag in tags:
                self._remember(self._tags, (repository, tag), digest)
            self._forget_tags(repository)
        return digest, parsed.subject.digest if parsed.subject else None

    def read_config(self, parsed: ParsedManifest, limit: int = MAX_CONFIG_BYTES) -> dict[str, Any] | None:
        """The image config of an image manifest as a JSON object; None for other configs, one
        over `limit` bytes, one not stored (yet: the transaction checks) or one that is not JSON.
        Reads at most `limit` + 1 bytes, whatever size the descriptor claims."""
        config = parsed.config
        if not has_image_config(parsed) or config is None or config.size > limit:
            return None
        try:
            data = self.store.read_small(config.digest, limit + 1)
        except FileNotFoundError:
            return None
        return parse_config(data) if len(data) <= limit else None

    def resolve(self, repository: str, reference: str) -> str:
        """The digest a tag or digest reference names; raises ManifestUnknown."""
        if is_digest(reference):
            Digest.parse(reference)
            return reference
        validate_tag(reference)
        digest = self._cached(self._tags, (repository, reference))
        if digest is not None:
            return digest
        digest = self.content.resolve_tag(repository, reference)
        if digest is None:
            raise ManifestUnknown(f"manifest {reference!r} is unknown in {repository}", {"tag": reference})
        self._remember(self._tags, (repository, reference), digest)
        return digest

    def get(self, repository: str, reference: str) -> Manifest:
        digest = self.resolve(repository, reference)
        media_type = self._cached(self._records, (repository, digest))
        if media_type is None:
            record = self.content.get_manifest(repository, digest)
            if record is None:
                raise ManifestUnknown(f"manifest {reference!r} is unknown in {repository}", {"digest": digest})
            media_type = record.media_type
            self._remember(self._records, (repository, digest), media_type)
        return Manifest(digest, media_type, self.content_of(digest))

    def content_of(self, digest: str) -> bytes:
        """A stored manifest's bytes by digest (cached: immutable); the caller has checked that the
        repository holds it. Raises FileNotFoundError."""
        data: bytes | None = self._bytes.get(digest)
        if data is None:
            # Manifests pushed before migration 0005 are files in the blob store.
            data = self.content.manifest_content(digest)
            if data is None:
                data = self.store.read_small(digest, 1 << 30)  # whole: checked against the limit when pushed
            self._bytes.put(digest, data)
        return data

    def delete(self, repository: str, reference: str, origin: Origin = SYSTEM) -> None:
        """By tag: only that tag goes. By digest: the manifest and every tag pointing to it."""
        if is_digest(reference):
            Digest.parse(reference)
            found = self.content.delete_manifest(repository, reference, origin)
            self._forget_digest(repository, reference)
            self._forget_tags(repository)
        else:
            validate_tag(reference)
            found = self.content.delete_tag(repository, reference, origin)
            self._tags.pop((repository, reference), None)
            self._forget_tags(repository)
        if not found:
            raise ManifestUnknown(f"manifest {reference!r} is unknown in {repository}", {"reference": reference})

    def tags(self, repository: str, last: str | None, n: int | None) -> list[str]:
        """Tags in lexical order after `last`, at most `n`; raises NameUnknown."""
        if not self.cache:
            result = self.content.list_tags(repository, last, n)
            if result is None:
                raise NameUnknown(f"repository {repository} is unknown", {"name": repository})
            return result
        entry = self._tag_lists.get(repository)
        if entry is None or entry[1] < time.monotonic():
            full = self.content.list_tags(repository, None, None)
            if full is None:
                raise NameUnknown(f"repository {repository} is unknown", {"name": repository})
            entry = (full, time.monotonic() + CACHE_SECONDS)
            self._tag_lists.put(repository, entry)
        names: list[str] = entry[0]
        start = bisect.bisect_right(names, last) if last else 0
        return names[start:] if n is None else names[start:start + n]

    def referrers(self, repository: str, digest: str, artifact_type: str | None) -> bytes:
        """The referrers of `digest` as an OCI image index (an empty one when there are none)."""
        Digest.parse(digest)
        descriptors = []
        for record in self.content.referrers(repository, digest, artifact_type):
            desc: dict[str, Any] = {"mediaType": record.media_type, "digest": record.digest, "size": record.size}
            if record.artifact_type:
                desc["artifactType"] = record.artifact_type
            if record.annotations:
                desc["annotations"] = record.annotations
            descriptors.append(desc)
        return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}).encode()
