"""Where things live under the data directory (the only place that knows the layout).

    DATA/
    ├── dockyard.db                      SQLite metadata (when no database.url is set)
    ├── keys/token-signing.pem           EC P-256 key that signs registry tokens (made on first start;
    │                                    auth.signing_key_file puts it elsewhere, e.g. shared by nodes)
    ├── keys/secrets.key                 AES-256 key sealing the secrets the registry reads back, such as
    │                                    webhook signing secrets (made on first start; auth.secrets_key_file)
    ├── blobs/                           content-addressed store (storage.root overrides)
    │   ├── sha256/ab/abcdef…            one file per blob, named by its digest (manifests pushed
    │   ├── sha512/01/0123…              since migration 0005 live in the database instead)
    │   └── .staging/                    manifests being written by versions before 0005 (purged)
    ├── uploads/                         staging area for upload sessions
    │   └── <session uuid>               bytes received so far; moved into blobs/ only after the
    │                                    digest checks out (fsync, then rename)
    └── vulndb/advisories.sqlite         the advisory database scans read (scan.db_path overrides);
                                         `dockyard vulndb import|update` replace it whole (rename)

With `storage.driver: s3` blobs and upload sessions live in the bucket instead (storage/s3.py).

A file in blobs/ is complete and verified by construction: nothing is ever written there in
place. A crash leaves at most a stray staging file, which the upload purge removes.
"""

from __future__ import annotations

from pathlib import Path

from dockyard.core.digest import Digest


def blob_path(root: Path, digest: str) -> Path:
    """Path of a blob; the digest is parsed first, so no input can escape `root`."""
    d = Digest.parse(digest)
    return root / d.algorithm / d.encoded[:2] / d.encoded


def staging_path(root: Path, upload_id: str) -> Path:
    # upload ids are uuid4 hex strings validated by the caller; keep the check here too.
    if not upload_id.isalnum():
        raise ValueError("invalid upload id")
    return root / upload_id
