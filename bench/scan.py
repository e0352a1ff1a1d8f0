"""Issue 11's scanning figures, measured through the real services (SQLite metadata, fs blob store,
the advisory database file), not timed tests:

1. import: `dockyard vulndb import` of the whole advisory tree (../shared/vulndata) — goal ≤ 60 s;
2. scan: one Debian bookworm-sized image (a ~30 MB gzip base layer with the package database of
   a real bookworm base, 100 packages, a few thousand files and ~400 ELF files; a Python layer
   with 30 packages) through ScanService.scan — read the layers from the store, inventory, match,
   store, push the two SBOMs — goal ≤ 3 s; with the process's resident memory growth (VmHWM);
3. re-evaluation: 1,000 stored inventories (that image's, versions varied) matched against a new
   advisory database by ScanService.reevaluate — goal ≤ 10 s.

    python bench/scan.py [--vulndata ../shared/vulndata] [--dir /tmp/bench-scan-e2e] [--repeat 5]
                         [--inventories 1000] [--json bench/results/scan-e2e.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import statistics
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scan_layers import _add, _status_kib, debian_layer  # noqa: E402

from dockyard.app import build_services  # noqa: E402
from dockyard.config import load_settings  # noqa: E402
from dockyard.meta.migrate import upgrade  # noqa: E402
from dockyard.meta.tables import blobs, scans  # noqa: E402
from dockyard.scan.codec import decode_inventory, encode_inventory  # noqa: E402
from dockyard.scan.model import Inventory, Package  # noqa: E402
from dockyard.scan.vulndb import import_paths  # noqa: E402
from tests.unit.scan.layerkit import dist_info, dpkg_stanza, layer  # noqa: E402

# A bookworm base's packages (name|version|source), some at versions older than their DSA fix.
BOOKWORM = """adduser|3.134|adduser;apt|2.6.1|apt;base-files|12.4+deb12u5|base-files;base-passwd|3.6.1|base-passwd;
bash|5.2.15-2+b2|bash;bsdutils|1:2.38.1-5+b1|util-linux;coreutils|9.1-1|coreutils;dash|0.5.12-2|dash;
debconf|1.5.82|debconf;debian-archive-keyring|2023.3+deb12u1|debian-archive-keyring;debianutils|5.7-0.5~deb12u1|debianutils;
diffutils|1:3.8-4|diffutils;dpkg|1.21.22|dpkg;e2fsprogs|1.47.0-2|e2fsprogs;findutils|4.9.0-4|findutils;
gcc-12-base|12.2.0-14|gcc-12;gpgv|2.2.40-1.1|gnupg2;grep|3.8-5|grep;gzip|1.12-1|gzip;hostname|3.23+nmu1|hostname;
init-system-helpers|1.65.2|init-system-helpers;libacl1|2.3.1-3|acl;libapt-pkg6.0|2.6.1|apt;libattr1|1:2.5.1-4|attr;
libaudit-common|1:3.0.9-1|audit;libaudit1|1:3.0.9-1|audit;libblkid1|2.38.1-5+b1|util-linux;libbz2-1.0|1.0.8-5+b1|bzip2;
libc-bin|2.36-9+deb12u1|glibc;libc6|2.36-9+deb12u1|glibc;libcap-ng0|0.8.3-1+b3|libcap-ng;libcap2|1:2.66-4|libcap2;
libcom-err2|1.47.0-2|e2fsprogs;libcrypt1|1:4.4.33-2|libxcrypt;libdb5.3|5.3.28+dfsg2-1|db5.3;libdebconfclient0|0.270|cdebconf;
libext2fs2|1.47.0-2|e2fsprogs;libffi8|3.4.4-1|libffi;libgcc-s1|12.2.0-14|gcc-12;libgcrypt20|1.10.1-3|libgcrypt20;
libgmp10|2:6.2.1+dfsg1-1.1|gmp;libgnutls30|3.7.9-2+deb12u1|gnutls28;libgpg-error0|1.46-1|libgpg-error;
libhogweed6|3.8.1-2|nettle;libidn2-0|2.3.3-1+b1|libidn2;liblz4-1|1.9.4-1|lz4;liblzma5|5.4.1-0.2|xz-utils;
libmd0|1.0.4-2|libmd;libmount1|2.38.1-5+b1|util-linux;libnettle8|3.8.1-2|nettle;libp11-kit0|0.24.1-2|p11-kit;
libpam-modules|1.5.2-6+deb12u1|pam;libpam-modules-bin|1.5.2-6+deb12u1|pam;libpam-runtime|1.5.2-6+deb12u1|pam;
libpam0g|1.5.2-6+deb12u1|pam;libpcre2-8-0|10.42-1|pcre2;libseccomp2|2.5.4-1+b3|libseccomp;libselinux1|3.4-1+b6|libselinux;
libsemanage-common|3.4-1|libsemanage;libsemanage2|3.4-1+b5|libsemanage;libsepol2|3.4-2.1|libsepol;
libsmartcols1|2.38.1-5+b1|util-linux;libss2|1.47.0-2|e2fsprogs;libstdc++6|12.2.0-14|gcc-12;libsystemd0|252.17-1~deb12u1|systemd;
libtasn1-6|4.19.0-2|libtasn1-6;libtinfo6|6.4-4|ncurses;libudev1|252.17-1~deb12u1|systemd;libunistring2|1.0-2|libunistring;
libuuid1|2.38.1-5+b1|util-linux;libxxhash0|0.8.1-1|xxhash;libzstd1|1.5.4+dfsg2-5|libzstd;login|1:4.13+dfsg1-1+b1|shadow;
logsave|1.47.0-2|e2fsprogs;mawk|1.3.4.20200120-3.1|mawk;mount|2.38.1-5+b1|util-linux;ncurses-base|6.4-4|ncurses;
ncurses-bin|6.4-4|ncurses;passwd|1:4.13+dfsg1-1+b1|shadow;perl-base|5.36.0-7+deb12u1|perl;sed|4.9-1|sed;
sysvinit-utils|3.06-4|sysvinit;tar|1.34+dfsg-1.2+deb12u1|tar;tzdata|2024a-0+deb12u1|tzdata;usr-is-merged|37~deb12u1|usrmerge;
util-linux|2.38.1-5+b1|util-linux;util-linux-extra|2.38.1-5+b1|util-linux;zlib1g|1:1.2.13.dfsg-1|zlib;
ca-certificates|20230311|ca-certificates;openssl|3.0.11-1~deb12u1|openssl;libssl3|3.0.11-1~deb12u1|openssl;
openssh-client|1:9.2p1-2+deb12u1|openssh;libkrb5-3|1.20.1-2+deb12u1|krb5;libgssapi-krb5-2|1.20.1-2+deb12u1|krb5;
libk5crypto3|1.20.1-2+deb12u1|krb5;libkrb5support0|1.20.1-2+deb12u1|krb5;libkeyutils1|1.6.3-2|keyutils;
curl|7.88.1-10+deb12u4|curl;libcurl4|7.88.1-10+deb12u4|curl;libnghttp2-14|1.52.0-1|nghttp2;libpsl5|0.21.2-1|libpsl;
librtmp1|2.4+20151223.gitfa8646d.1-2+b2|rtmpdump;libssh2-1|1.10.0-3+b1|libssh2;libbrotli1|1.0.9-2+b6|brotli;
libldap-2.5-0|2.5.13+dfsg-5|openldap;libsasl2-2|2.1.28+dfsg-10|cyrus-sasl2;libsasl2-modules-db|2.1.28+dfsg-10|cyrus-sasl2;
libxml2|2.9.14+dfsg-1.3~deb12u1|libxml2;libexpat1|2.5.0-1|expat;libsqlite3-0|3.40.1-2|sqlite3;
python3.11-minimal|3.11.2-6|python3.11;libpython3.11-minimal|3.11.2-6|python3.11;libwebp7|1.2.4-0.2|libwebp"""

PYTHON = [("requests", "2.25.0"), ("urllib3", "1.26.5"), ("jinja2", "2.10"), ("django", "3.2.0"), ("pillow", "8.0.0"),
          ("pyyaml", "5.3"), ("cryptography", "3.2"), ("flask", "1.0"), ("werkzeug", "2.0.0"), ("setuptools", "65.5.0"),
          ("pip", "23.0"), ("idna", "3.4"), ("certifi", "2022.12.7"), ("sqlalchemy", "1.3.0"), ("numpy", "1.21.0"),
          ("lxml", "4.6.0"), ("paramiko", "2.7.0"), ("aiohttp", "3.8.0"), ("tornado", "6.0"), ("gunicorn", "19.0"),
          ("babel", "2.9.0"), ("markdown", "3.3"), ("pygments", "2.7.0"), ("httpx", "0.22.0"), ("twisted", "20.3.0"),
          ("pyjwt", "1.7.0"), ("celery", "5.0.0"), ("redis", "4.3.0"), ("scrapy", "2.5.0"), ("mistune", "0.8.0")]


def packages() -> list[tuple[str, str, str]]:
    return [tuple(line.strip().split("|")) for line in BOOKWORM.replace("\n", "").split(";")]  # type: ignore[misc]


def base_layer(path: Path) -> None:
    """scan_layers' Debian-shaped layer, its dpkg status replaced by the real bookworm packages."""
    generated = path.with_suffix(".gen")
    debian_layer(generated)
    import gzip

    status = "\n".join(dpkg_stanza(n, v, source=s) for n, v, s in packages()).encode()
    with gzip.open(generated, "rb") as src, gzip.open(path, "wb", compresslevel=6) as gz, \
            tarfile.open(fileobj=src, mode="r|") as tin, tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tout:
        for member in tin:
            if member.name == "var/lib/dpkg/status":
                _add(tout, member.name, status)
                continue
            tout.addfile(member, tin.extractfile(member) if member.isfile() else None)
    generated.unlink()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vulndata", type=Path, default=ROOT.parent / "shared" / "vulndata")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench-scan-e2e"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--inventories", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    results: dict[str, object] = {"cpu": _cpu(), "python": platform.python_version()}
    try:
        settings = load_settings(data_dir=args.dir / "data", jobs={"embedded_worker": False},
                                 scan={"db_path": str(args.dir / "vulndb" / "advisories.sqlite")})
        settings.data_dir.mkdir(parents=True)
        services = build_services(settings)
        upgrade(services.db)

        # 1. the advisory database
        t0 = time.perf_counter()
        report = import_paths(settings.vulndb_path, [args.vulndata])
        results["import_s"] = round(time.perf_counter() - t0, 2)
        results["import_records"] = sum(len(s.advisories) for s in report.sources)
        results["import_sources"] = len(report.sources)
        print(f"import of {args.vulndata}: {results['import_s']} s, {results['import_records']} advisories "
              f"from {results['import_sources']} sources")

        # 2. one image, scanned through the service
        base = args.dir / "base.tar.gz"
        base_layer(base)
        py = layer([f for name, version in PYTHON for f in dist_info(name, version)])
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                             "history": [{"created_by": "ADD rootfs.tar.gz /"}, {"created_by": "RUN pip install …"}]}).encode()
        repo = "bench/app"
        layer_descs = []
        for blob in (base.read_bytes(), py):
            layer_descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(blob),
                                "size": len(blob)})
            services.uploads.put_bytes(repo, blob)
        services.uploads.put_bytes(repo, config)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": sha256(config), "size": len(config)},
                               "layers": layer_descs}).encode()
        digest, _ = services.manifests.put(repo, "1.0", manifest, "application/vnd.oci.image.manifest.v1+json")
        services.scans.index()  # the advisory index loads once per database file, not per scan
        rss_before = _status_kib("VmRSS")
        times = []
        result: dict[str, object] = {}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = services.scans.scan(digest, repo)
            times.append(time.perf_counter() - t0)
        results["scan_layer_mb"] = round(base.stat().st_size / 1e6, 1)
        results["scan_best_s"] = round(min(times), 3)
        results["scan_median_s"] = round(statistics.median(times), 3)
        results["scan_rss_growth_mib"] = round((_status_kib("VmHWM") - rss_before) / 1024, 1)
        results["scan_packages"] = result.get("packages")
        results["scan_vulnerabilities"] = result.get("vulnerabilities")
        print(f"scan of {repo}@{digest[:19]} ({results['scan_layer_mb']} MB base layer): best {results['scan_best_s']} s, "
              f"median {results['scan_median_s']} s, {result.get('packages')} packages, "
              f"{result.get('vulnerabilities')} vulnerabilities, RSS growth {results['scan_rss_growth_mib']} MiB")

        # 3. 1,000 stored inventories, re-evaluated against a new database
        row = services.scan_store.get(digest, heavy=True)
        inventory = decode_inventory(row.inventory)
        assert inventory is not None
        with services.db.write() as conn:
            for i in range(args.inventories):
                fake = sha256(f"bench inventory {i}".encode())
                varied = Inventory(inventory.os, tuple(
                    Package(p.name, p.version if (j + i) % 5 else p.version + f"+b{i % 3}", p.type, p.layer, p.path,
                            p.source_name, p.source_version, p.arch)
                    for j, p in enumerate(inventory.packages)), inventory.layers)
                conn.execute(blobs.insert().values(digest=fake, size=1, created_at=row.requested_at))
                conn.execute(scans.insert().values(digest=fake, status="done", requested_at=row.requested_at,
                                                   scanned_at=row.scanned_at, inventory=encode_inventory(varied),
                                                   db_id="an older database"))
        import_paths(settings.vulndb_path, [args.vulndata / "osv-pypi"])  # a new database file, re-read in full
        t0 = time.perf_counter()
        done = services.scans.reevaluate()
        results["reevaluate_s"] = round(time.perf_counter() - t0, 2)
        results["reevaluated"] = done["evaluated"]
        print(f"re-evaluation of {done['evaluated']} stored inventories ({len(inventory.packages)} packages each, "
              f"advisory index loaded once): {results['reevaluate_s']} s")
        # Again, with a database whose records are the same: every image's findings are unchanged,
        # so only their database stamp moves (the common case when a feed update touches few packages).
        import_paths(settings.vulndb_path, [args.vulndata / "osv-pypi"])
        t0 = time.perf_counter()
        again = services.scans.reevaluate()
        results["reevaluate_unchanged_s"] = round(time.perf_counter() - t0, 2)
        print(f"re-evaluation of {again['evaluated']} inventories whose findings did not change: "
              f"{results['reevaluate_unchanged_s']} s")
        services.db.dispose()
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))
    return 0


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
