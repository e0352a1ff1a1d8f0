"""The whole staged advisory data of the workspace (../shared/vulndata, ~33 MiB, ~11,700 files),
when it is there: every feed directory is recognised as a source and yields records, and a few
known answers hold on the full data. Skipped in a clone without the workspace beside it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dockyard.scan.matcher import AdvisoryIndex
from dockyard.scan.model import DEB, GO, OsInfo, Package
from dockyard.scan.vulndb import import_paths, status

ROOT = Path(__file__).resolve().parents[4]
SHARED = Path(os.environ.get("DOCKYARD_SHARED_DIR") or ROOT.parent / "shared") / "vulndata"

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="no staged ../shared/vulndata beside the clone")


def test_every_staged_source_is_recognised(tmp_path: Path) -> None:
    db = tmp_path / "advisories.sqlite"
    started = time.perf_counter()
    report = import_paths(db, [SHARED])
    seconds = time.perf_counter() - started
    print(f"\nimported {SHARED} in {seconds:.1f}s: {sum(s.records for s in report.sources)} records, "
          f"{report.unknown} unknown files")
    feeds = {p.name for p in SHARED.iterdir() if p.is_dir()}
    by_dir = {Path(s.path).name: s for s in status(db).sources}
    assert set(by_dir) == feeds
    for name, source in by_dir.items():
        assert source.records > 0, name
    assert by_dir["osv-pypi"].records > 2500 and by_dir["osv-go"].records > 4000
    assert report.unknown < 30  # READMEs, licences, manifests

    index = AdvisoryIndex.load(db)
    openssh = index.match(OsInfo("debian", "12", "bookworm"),
                          [Package("openssh-server", "1:9.2p1-2+deb12u2", DEB, 0, "x", "openssh", "1:9.2p1-2+deb12u2")])
    assert {f.id: f.fixed_version for f in openssh}.get("CVE-2024-6387") == "1:9.2p1-2+deb12u3"
    text = index.match(None, [Package("golang.org/x/text", "v0.3.7", GO, 0, "x")])
    assert "CVE-2022-32149" in {f.id for f in text}
