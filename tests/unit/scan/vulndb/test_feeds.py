"""`vulndb update` (scan/vulndb/feeds.py) against feeds served by a local HTTP server on
127.0.0.1 (the `served` fixture, conftest.py): archives built from the vendored records, and hostile ones."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
import zstandard

from dockyard.scan.vulndb import feeds, status, update
from dockyard.scan.vulndb.feeds import UnsafeArchive, unpack
from tests.unit.scan.vulndb.vendored import VULNDATA, osv_zip


def _rustsec_tarball(path: Path) -> None:
    """Like GitHub's archive of rustsec/advisory-db: one top directory, then the repository."""
    with tarfile.open(path, "w:gz") as tf:
        for md in sorted((VULNDATA / "rustsec").rglob("*.md")):
            tf.add(md, f"advisory-db-main/{md.relative_to(VULNDATA / 'rustsec')}")


def test_update_from_local_feeds(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    osv_zip(root / "all.zip")
    _rustsec_tarball(root / "main.tar.gz")
    (root / "main.json").write_text(json.dumps({
        "distroversion": "v3.21", "reponame": "main", "urlprefix": "https://dl-cdn.alpinelinux.org/alpine",
        "apkurl": "{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk",
        "archs": ["x86_64"], "packages": [{"pkg": {"name": "zlib", "secfixes": {"1.3.1-r0": ["CVE-2023-45853"]}}}]}))
    db = tmp_path / "data" / "vulndb" / "advisories.sqlite"
    results = update(db, {"osv-go": f"{base}/all.zip", "rustsec": f"{base}/main.tar.gz",
                          "alpine-3.21-main": f"{base}/main.json", "gone": f"{base}/missing.zip"})
    by_name = {r.name: r for r in results}
    assert all(by_name[n].ok for n in ("osv-go", "rustsec", "alpine-3.21-main"))
    assert not by_name["gone"].ok and "404" in (by_name["gone"].error or "")
    st = {s.name: s for s in status(db).sources}
    assert set(st) == {"osv:osv-go", "rustsec:rustsec", "alpine:alpine-3.21-main"}  # named after the feeds
    assert (st["osv:osv-go"].records, st["osv:osv-go"].skipped) == (2, 1)
    assert st["rustsec:rustsec"].records == 3
    assert st["osv:osv-go"].path == f"{base}/all.zip"
    assert not list((tmp_path / "data" / "vulndb").glob("dockyard-vulndb-*"))  # the work directory is gone


def test_a_failed_feed_keeps_its_previous_records(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    osv_zip(root / "all.zip")
    db = tmp_path / "advisories.sqlite"
    update(db, {"osv-go": f"{base}/all.zip"})
    before = status(db)
    (root / "all.zip").unlink()
    (result,) = update(db, {"osv-go": f"{base}/all.zip"})
    assert not result.ok
    assert status(db).db_id == before.db_id  # nothing to write: the file was not touched


def _zip_with(path: Path, name: str, data: bytes = b"{}", mode: int | None = None) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, data)


@pytest.mark.parametrize("name", ["../evil.json", "/etc/evil.json", "a/../../evil.json"])
def test_path_traversal_in_zip_is_refused(tmp_path: Path, name: str) -> None:
    _zip_with(tmp_path / "bad.zip", name)
    with pytest.raises(UnsafeArchive):
        unpack(tmp_path / "bad.zip", tmp_path / "out")
    assert not (tmp_path / "evil.json").exists()


def test_links_are_refused(tmp_path: Path) -> None:
    _zip_with(tmp_path / "link.zip", "link", b"/etc/passwd", mode=0o120777)
    with pytest.raises(UnsafeArchive):
        unpack(tmp_path / "link.zip", tmp_path / "out")
    with tarfile.open(tmp_path / "link.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("feed/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(UnsafeArchive):
        unpack(tmp_path / "link.tar.gz", tmp_path / "out2")


def test_unpacked_size_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds, "MAX_UNPACKED_BYTES", 1000)
    with tarfile.open(tmp_path / "big.tar.gz", "w:gz") as tf:
        data = b"0" * 5000  # compresses to almost nothing
        info = tarfile.TarInfo("big.json")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    with pytest.raises(UnsafeArchive):
        unpack(tmp_path / "big.tar.gz", tmp_path / "out")


def test_unsafe_feed_fails_alone(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    _zip_with(root / "bad.zip", "../../escaped.json")
    osv_zip(root / "all.zip")
    results = update(tmp_path / "db.sqlite", {"bad": f"{base}/bad.zip", "osv-go": f"{base}/all.zip"})
    assert [r.ok for r in results] == [False, True]
    assert "unsafe member path" in (results[0].error or "")
    assert not list(tmp_path.rglob("escaped.json"))


def test_single_files_and_compressed_archives(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    (root / "tracker" / "data").mkdir(parents=True)
    tracker = {"openssl": {"CVE-2024-4741": {"releases": {
        "bookworm": {"status": "resolved", "fixed_version": "3.0.14-1~deb12u1", "urgency": "not yet assigned"}}}}}
    (root / "tracker" / "data" / "json").write_text(json.dumps(tracker))  # no suffix, as Debian serves it
    busybox = VULNDATA / "alpine-vuln-list-3.20/alpine/3.20/main/busybox.json"
    (root / "main.json.gz").write_bytes(gzip.compress(busybox.read_bytes()))
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        tf.add(VULNDATA / "redhat-csaf/vex/2024/cve-2024-3094.json", "2024/cve-2024-3094.json")
    (root / "csaf_vex.tar.zst").write_bytes(zstandard.ZstdCompressor().compress(tar.getvalue()))
    db = tmp_path / "db.sqlite"
    results = update(db, {"debian": f"{base}/tracker/data/json", "alpine": f"{base}/main.json.gz",
                          "redhat-vex": f"{base}/csaf_vex.tar.zst"})
    assert [r.error for r in results] == [None, None, None]
    records = {s.name: s.records for s in status(db).sources}
    assert records == {"debian:debian": 1, "alpine:alpine": 31, "csaf:redhat-vex": 1}
