"""scan/inventory.py: layers merged bottom-up, packages attributed to layers."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest

from dockyard.scan.inventory import LayerSource, Limits, Outcome, ScanFailed, Unsupported, build_inventory
from dockyard.scan.model import APK, DEB, GO, MAVEN, NPM, PYPI, RPM, LayerInfo, OsInfo
from tests.unit.scan.layerkit import (ZSTD_MEDIA_TYPE, Dir, File, Hardlink, Opaque, RawName, Symlink, Whiteout,
                                      apk_entry, apk_installed, dist_info, dpkg_stanza, dpkg_status, go_binary, jar,
                                      layer, npm_package, os_release, package_lock, rpm_header, rpmdb_sqlite,
                                      rust_binary, source)

LIMITS = Limits(max_layer_bytes=256 << 20, max_file_bytes=8 << 20)
STATUS = "var/lib/dpkg/status"
SITE = "usr/local/lib/python3.11/site-packages"


def scan(*layers: list, limits: Limits = LIMITS, compression: str = "gzip") -> Outcome:
    blobs = [layer(entries, compression) for entries in layers]
    return build_inventory([source(b) for b in blobs], [f"step {i}" for i in range(len(blobs))], limits)


def listing(outcome: Outcome, kind: str | None = None) -> list[tuple[str, str, int]]:
    return [(p.name, p.version, p.layer) for p in outcome.inventory.packages if kind is None or p.type == kind]


def status(*packages: tuple[str, str]) -> File:
    return File(STATUS, dpkg_status(*(dpkg_stanza(name, version) for name, version in packages)))


# --- merging --------------------------------------------------------------------------------

def test_a_package_removed_by_a_whiteout_is_not_reported() -> None:
    outcome = scan([*dist_info("requests", "2.31.0", SITE), *dist_info("idna", "3.6", SITE)],
                   [Whiteout(f"{SITE}/requests-2.31.0.dist-info")])
    assert listing(outcome) == [("idna", "3.6", 0)]


def test_a_whiteout_of_a_parent_directory_removes_everything_below() -> None:
    outcome = scan([*dist_info("requests", "2.31.0", SITE), status(("bash", "5.2"))], [Whiteout("usr/local")])
    assert listing(outcome) == [("bash", "5.2", 0)]


def test_a_whiteout_of_a_single_file() -> None:
    distroless = "var/lib/dpkg/status.d/"
    outcome = scan([File(distroless + "libssl3", dpkg_status(dpkg_stanza("libssl3", "3.0.11-1", status=None))),
                    File(distroless + "tzdata", dpkg_status(dpkg_stanza("tzdata", "2024a-0", status=None)))],
                   [Whiteout(distroless + "tzdata")])
    assert listing(outcome) == [("libssl3", "3.0.11-1", 0)]


def test_an_opaque_directory_hides_lower_content_but_not_its_own() -> None:
    outcome = scan([*dist_info("requests", "2.31.0", SITE), *dist_info("idna", "3.6", "usr/lib/python3/dist-packages")],
                   [Opaque(SITE), *dist_info("urllib3", "2.2.1", SITE)])
    assert listing(outcome) == [("idna", "3.6", 0), ("urllib3", "2.2.1", 1)]


def test_an_opaque_root_hides_every_lower_layer() -> None:
    outcome = scan([status(("bash", "5.2"))], [Opaque(""), *dist_info("six", "1.16.0", SITE)])
    assert listing(outcome) == [("six", "1.16.0", 1)]


def test_whiteouts_do_not_touch_their_own_layer() -> None:
    outcome = scan([*dist_info("requests", "2.31.0", SITE)],
                   [Whiteout(SITE), *dist_info("requests", "2.32.0", SITE)])
    assert listing(outcome) == [("requests", "2.32.0", 1)]


def test_a_file_replaced_by_something_unreadable_loses_its_packages() -> None:
    bin_path = "usr/local/bin/app"
    outcome = scan([File(bin_path, go_binary(), mode=0o755)], [File(bin_path, b"#!/bin/sh\necho hi\n", mode=0o755)])
    assert listing(outcome) == []
    outcome = scan([File(bin_path, go_binary(), mode=0o755)], [Dir(bin_path)])
    assert listing(outcome) == []


def test_a_directory_replaced_by_a_symlink_loses_what_it_held() -> None:
    outcome = scan([*dist_info("requests", "2.31.0", SITE)], [Symlink(SITE, "/opt/elsewhere")])
    assert listing(outcome) == []


def test_a_later_entry_of_the_same_path_wins_within_a_layer() -> None:
    outcome = scan([status(("bash", "5.1")), status(("bash", "5.2"))])
    assert listing(outcome) == [("bash", "5.2", 0)]


# --- attribution ----------------------------------------------------------------------------

def test_attribution_of_a_rewritten_database() -> None:
    outcome = scan(
        [status(("libc6", "2.36-9"), ("libssl3", "3.0.11-1~deb12u1"), ("bash", "5.2.15-2"))],
        [status(("libc6", "2.36-9"), ("libssl3", "3.0.11-1~deb12u1"), ("bash", "5.2.15-2"), ("curl", "7.88.1-10"))],
        [File("app/readme", b"nothing to do with packages")],
        [status(("libc6", "2.36-9"), ("libssl3", "3.0.11-1~deb12u2"), ("curl", "7.88.1-10"))],
    )
    assert listing(outcome) == [
        ("curl", "7.88.1-10", 1),  # installed in layer 1, untouched since
        ("libc6", "2.36-9", 0),  # untouched since layer 0 although every later status rewrote it
        ("libssl3", "3.0.11-1~deb12u2", 3),  # upgraded in layer 3
    ]  # bash removed in layer 3


def test_a_downgrade_and_a_reinstall_start_a_new_run() -> None:
    outcome = scan([status(("a", "1"), ("b", "1"))], [status(("a", "2"), ("b", "1"))],
                   [status(("a", "1"))], [status(("a", "1"), ("b", "1"))])
    assert listing(outcome) == [("a", "1", 2), ("b", "1", 3)]


def test_a_deleted_then_recreated_database_starts_over() -> None:
    outcome = scan([status(("bash", "5.2"))], [Whiteout(STATUS)], [status(("bash", "5.2"))])
    assert listing(outcome) == [("bash", "5.2", 2)]


def test_per_package_files_keep_the_layer_of_the_identical_copy_below() -> None:
    chmod = [File(f.path, f.data, mode=0o600) for f in dist_info("requests", "2.31.0", SITE)]
    outcome = scan([*dist_info("requests", "2.31.0", SITE)], chmod)
    assert listing(outcome) == [("requests", "2.31.0", 0)]
    outcome = scan([*dist_info("requests", "2.31.0", SITE)], [Dir("tmp")], [
        File(f"{SITE}/requests-2.31.0.dist-info/METADATA", b"Name: requests\nVersion: 2.32.0\n")])
    assert listing(outcome) == [("requests", "2.32.0", 2)]


def test_apk_and_rpm_attribution() -> None:
    installed = "lib/apk/db/installed"
    outcome = scan([File(installed, apk_installed(apk_entry("musl", "1.2.5-r0"), apk_entry("zlib", "1.3.1-r0")))],
                   [File(installed, apk_installed(apk_entry("musl", "1.2.5-r0"), apk_entry("zlib", "1.3.1-r1"),
                                                  apk_entry("curl", "8.9.1-r0")))])
    assert listing(outcome, APK) == [("curl", "8.9.1-r0", 1), ("musl", "1.2.5-r0", 0), ("zlib", "1.3.1-r1", 1)]
    rpmdb = "var/lib/rpm/rpmdb.sqlite"
    outcome = scan([File(rpmdb, rpmdb_sqlite([rpm_header("bash", "5.1.8", "9.el9"),
                                              rpm_header("openssl-libs", "3.0.7", "27.el9", epoch=1)]))],
                   [File(rpmdb, rpmdb_sqlite([rpm_header("bash", "5.1.8", "9.el9"),
                                              rpm_header("openssl-libs", "3.0.7", "28.el9", epoch=1)]))])
    assert listing(outcome, RPM) == [("bash", "5.1.8-9.el9", 0), ("openssl-libs", "1:3.0.7-28.el9", 1)]


def test_one_rpmdb_at_both_locations_is_listed_once() -> None:
    db = rpmdb_sqlite([rpm_header("bash", "5.1.8", "9.el9")])
    outcome = scan([File("usr/lib/sysimage/rpm/rpmdb.sqlite", db)], [File("var/lib/rpm/rpmdb.sqlite", db)])
    assert [(p.name, p.layer, p.path) for p in outcome.inventory.packages] == [
        ("bash", 0, "usr/lib/sysimage/rpm/rpmdb.sqlite")]


# --- what is read ---------------------------------------------------------------------------

def test_a_debian_like_image() -> None:
    outcome = scan(
        [File("usr/lib/os-release", os_release("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)")),
         Symlink("etc/os-release", "../usr/lib/os-release"),
         File(STATUS, dpkg_status(dpkg_stanza("libssl3", "3.0.11-1~deb12u2", source="openssl"),
                                  dpkg_stanza("bash", "5.2.15-2+b2", source="bash (5.2.15-2)")))],
        [*dist_info("Django", "4.2.11", SITE),
         npm_package("express", "4.19.2", root="srv"),
         File("srv/package-lock.json", package_lock({"express": "4.19.2", "qs": "6.11.0"})),
         File("usr/local/bin/app", go_binary(deps=[("golang.org/x/net", "v0.17.0")]), mode=0o755),
         File("usr/local/bin/rg", rust_binary([{"name": "regex", "version": "1.10.4", "source": "crates.io"}]),
              mode=0o755),
         File("opt/app/app.jar", jar(poms=[("org.apache.logging.log4j", "log4j-core", "2.14.1")]))],
        compression="zstd",
    )
    inventory = outcome.inventory
    assert inventory.os == OsInfo(id="debian", version="12", codename="bookworm",
                                  pretty_name="Debian GNU/Linux 12 (bookworm)")
    assert [(p.type, p.name, p.version, p.layer) for p in inventory.packages] == [
        ("cargo", "regex", "1.10.4", 1),
        (DEB, "bash", "5.2.15-2+b2", 0),
        (DEB, "libssl3", "3.0.11-1~deb12u2", 0),
        (GO, "example.com/app", "v1.2.3", 1),
        (GO, "golang.org/x/net", "v0.17.0", 1),
        (GO, "stdlib", "v1.21.3", 1),
        (MAVEN, "org.apache.logging.log4j:log4j-core", "2.14.1", 1),
        (NPM, "express", "4.19.2", 1),  # once: the lock's copy is the same package
        (NPM, "qs", "6.11.0", 1),  # only in the lock
        (PYPI, "Django", "4.2.11", 1),
    ]
    assert [(p.source_name, p.source_version) for p in inventory.packages if p.type == DEB] == [
        ("bash", "5.2.15-2"), ("openssl", "3.0.11-1~deb12u2")]
    assert inventory.layers == tuple(LayerInfo(digest=layer_.digest, created_by=f"step {i}")
                                     for i, layer_ in enumerate(inventory.layers))
    assert outcome.notes == ()


def test_etc_os_release_is_preferred_when_both_are_files() -> None:
    outcome = scan([File("usr/lib/os-release", os_release("debian", "12")),
                    File("etc/os-release", os_release("ubuntu", "22.04", "jammy"))])
    assert outcome.inventory.os.id == "ubuntu"
    assert scan([File("var/x", b"")]).inventory.os is None


def test_distroless_status_d() -> None:
    outcome = scan([File("var/lib/dpkg/status.d/libssl3",
                         dpkg_status(dpkg_stanza("libssl3", "3.0.11-1~deb12u2", source="openssl", status=None))),
                    File("var/lib/dpkg/status.d/libssl3.md5sums", b"abc  usr/lib/libssl.so.3\n"),
                    File("var/lib/dpkg/status.d/base", dpkg_status(dpkg_stanza("base-files", "12.4+deb12u5",
                                                                               status=None)))])
    assert [(p.name, p.source_name, p.path) for p in outcome.inventory.packages] == [
        ("base-files", "base-files", "var/lib/dpkg/status.d/base"),
        ("libssl3", "openssl", "var/lib/dpkg/status.d/libssl3")]


def test_executables_are_read_only_when_they_could_be_programs() -> None:
    binary = go_binary()
    outcome = scan([File("opt/data/blob", binary, mode=0o644), File("usr/bin/tool", binary, mode=0o644),
                    File("opt/app/server", binary, mode=0o755)])
    assert sorted({p.path for p in outcome.inventory.packages}) == ["opt/app/server", "usr/bin/tool"]


def test_hard_links() -> None:
    outcome = scan([File("usr/local/bin/app", go_binary(), mode=0o755),
                    Hardlink("usr/local/bin/app-alias", "usr/local/bin/app"),
                    File("var/backups/status", dpkg_status(dpkg_stanza("bash", "5.2"))),
                    Hardlink(STATUS, "var/backups/status")])
    assert sorted({p.path for p in outcome.inventory.packages}) == ["usr/local/bin/app", "usr/local/bin/app-alias"]
    assert outcome.notes == (f"{STATUS}: a hard link to var/backups/status, not read",)


def test_files_over_max_file_bytes_are_skipped_with_a_note() -> None:
    limits = Limits(max_layer_bytes=256 << 20, max_file_bytes=64 << 10)
    big = dpkg_status(*(dpkg_stanza(f"pkg{i}", "1.0") for i in range(300)))
    assert len(big) > 64 << 10
    outcome = scan([File(STATUS, big), File("usr/bin/huge", b"\x7fELF" + bytes(100 << 10), mode=0o755),
                    File("usr/bin/huge.sh", b"#!/bin/sh\n" + bytes(100 << 10), mode=0o755)], limits=limits)
    assert listing(outcome) == []
    assert outcome.notes == ("usr/bin/huge: 100.0 KiB, over scan.max_file_bytes (64 KiB): not read",
                             f"{STATUS}: {len(big) / 1024:.1f} KiB, over scan.max_file_bytes (64 KiB): not read")


def test_a_zip_bomb_in_a_jar_is_skipped_with_a_note() -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("WEB-INF/lib/huge.jar", bytes(32 << 20))
    outcome = scan([File("srv/app.war", jar(poms=[("com.example", "app", "1.0")],
                                            nested={"WEB-INF/lib/bomb.war": bomb.getvalue()}))])
    assert listing(outcome) == [("com.example:app", "1.0", 0)]
    assert outcome.notes == ("srv/app.war!/WEB-INF/lib/bomb.war!/WEB-INF/lib/huge.jar: declares 33554432 bytes, past "
                             "what is left of scan.max_file_bytes for this archive: not read",)


def test_only_notes_of_surviving_files_are_kept() -> None:
    outcome = scan([File("var/lib/rpm/Packages", b"bdb")], [Whiteout("var/lib/rpm")])
    assert outcome.notes == ()
    outcome = scan([File("var/lib/rpm/Packages", b"bdb")])
    assert "BerkeleyDB database var/lib/rpm/Packages not read" in outcome.notes[0]


def test_path_traversal_names_are_ignored() -> None:
    outcome = scan([RawName("../../var/lib/dpkg/status", dpkg_status(dpkg_stanza("evil", "1"))),
                    RawName("/etc/os-release", os_release("alpine", "3.20.3"))])
    assert listing(outcome) == []
    assert outcome.inventory.os == OsInfo(id="alpine", version="3.20.3")  # an absolute name is just rooted
    assert "1 entries with unsafe names" in outcome.notes[0]


def test_malformed_files_become_notes_not_failures() -> None:
    outcome = scan([File("var/lib/rpm/rpmdb.sqlite", b"garbage"), File("opt/x.jar", b"garbage"),
                    File("usr/bin/x", b"\x7fELF" + b"\xff Go buildinf:" + bytes(50), mode=0o755)])
    assert listing(outcome) == []
    assert len(outcome.notes) == 3


def test_packages_are_sorted_deterministically() -> None:
    entries = [*dist_info("b", "1", SITE), *dist_info("a", "2", SITE), *dist_info("a", "1", "opt/venv/lib/site")]
    one = scan(entries).inventory.packages
    two = scan(list(reversed(entries))).inventory.packages
    assert one == two
    assert [(p.name, p.version) for p in one] == [("a", "1"), ("a", "2"), ("b", "1")]


def test_created_by_shorter_than_layers() -> None:
    blobs = [layer([File("a", b"")]), layer([File("b", b"")])]
    outcome = build_inventory([source(b) for b in blobs], ["only one"], LIMITS)
    assert [info.created_by for info in outcome.inventory.layers] == ["only one", None]


# --- failures -------------------------------------------------------------------------------

def test_an_artifact_blob_is_unsupported() -> None:
    blobs = [layer([status(("bash", "5.2"))]), b'{"mediaType": "application/vnd.cncf.helm.config.v1+json"}']
    with pytest.raises(Unsupported, match="not a container filesystem layer"):
        build_inventory([source(b) for b in blobs], [None, None], LIMITS)


def test_a_tar_bomb_fails_the_scan() -> None:
    # 64 MiB of one repeated byte in a file: a few tens of KiB compressed.
    blob = layer([File("bomb", b"A" * (64 << 20))])
    assert len(blob) < 1 << 20
    limits = Limits(max_layer_bytes=8 << 20, max_file_bytes=1 << 20)
    with pytest.raises(ScanFailed, match=r"expands past 8 MiB \(scan.max_layer_bytes\)"):
        build_inventory([source(blob)], [None], limits)


def test_cancellation_through_check() -> None:
    class Cancelled(Exception):
        pass

    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) > 1:
            raise Cancelled()

    blobs = [layer([File("a", b"")]), layer([File("b", b"")])]
    with pytest.raises(Cancelled):
        build_inventory([source(b) for b in blobs], [None, None], LIMITS, check)


def test_cancellation_while_a_package_database_is_read() -> None:
    class Cancelled(Exception):
        pass

    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) > 1:  # the first call is before the layer: then while the file is read
            raise Cancelled()

    blob = layer([File(STATUS, b"Package: x\n" * (2 << 20))])  # 22 MiB: check() runs while it is read
    with pytest.raises(Cancelled):
        build_inventory([source(blob)], [None], Limits(max_layer_bytes=1 << 30, max_file_bytes=64 << 20), check)


def test_a_non_directory_entry_for_the_root_is_ignored() -> None:
    outcome = scan([status(("bash", "5.2"))], [RawName("./", b"")])
    assert listing(outcome) == [("bash", "5.2", 0)]


def test_a_plain_tar_and_a_lying_media_type() -> None:
    blob = layer([status(("bash", "5.2"))], "none")
    lying = LayerSource(digest="sha256:x", media_type=ZSTD_MEDIA_TYPE, size=len(blob), open=lambda: io.BytesIO(blob))
    assert listing(build_inventory([lying], [None], LIMITS)) == [("bash", "5.2", 0)]
    gz = gzip.compress(blob)
    assert listing(build_inventory([source(gz)], [None], LIMITS)) == [("bash", "5.2", 0)]
