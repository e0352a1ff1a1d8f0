"""Time and memory of the scanner's inventory (scan/inventory.py `build_inventory`) on generated
layers. A script, not a test: speed and memory are measured here, never by timed tests.

    python bench/scan_layers.py                     # both layers below, in /tmp/bench-scan
    python bench/scan_layers.py --only debian --repeat 5
    python bench/scan_layers.py --dir /tmp/bench-scan --keep --json bench/results/scan.json

Two layers are generated (deterministically, from a seed):

- "debian": shaped like a Debian bookworm base layer, ~30 MB gzip: a dpkg status with 100
  packages, their info/*.list and *.md5sums files, a few thousand regular files (docs, locales,
  zoneinfo, perl modules), 250 ELF executables in usr/bin, 150 shared libraries, and two Go
  binaries and a cargo-auditable Rust binary in usr/local/bin. Target: the whole scan ≤ 3 s.
- "big": 1 GiB uncompressed (gzip level 1, written as a stream): 1,500 ordinary files, ELF
  executables of 20–60 MiB (spooled to disk past 16 MiB), a 40 MiB jar with nested jars, a Go
  binary, package databases. Target: memory growth ≤ 256 MiB.

Each layer is measured in a fresh child process (`measure` sub-command): wall time of
build_inventory (the best and the median of --repeat runs), the growth of the process's resident memory
(its peak, VmHWM, after the runs minus VmRSS before the first), and tracemalloc's peak of Python allocations in
one extra run.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tarfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from dockyard.scan.inventory import Limits, build_inventory  # noqa: E402
from tests.unit.scan.layerkit import (dpkg_stanza, elf64, file_source, go_binary, go_buildinfo,  # noqa: E402
                                      go_modinfo, jar, os_release, rpm_header, rpmdb_sqlite, rust_binary)

LIMITS = Limits(max_layer_bytes=8 << 30, max_file_bytes=64 << 20)  # the defaults of ScanSettings
TEXT = (b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
        b"labore et dolore magna aliqua. /usr/share/doc copyright GPL-2+ debian bookworm main\n")


def content(rng: random.Random, size: int, random_fraction: float) -> bytes:
    """`size` bytes, `random_fraction` of them incompressible, the rest text."""
    noisy = int(size * random_fraction)
    text = (TEXT * (size // len(TEXT) + 1))[: size - noisy]
    return rng.randbytes(noisy) + text


def _add(tar: tarfile.TarFile, path: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime = len(data), mode, 1700000000
    tar.addfile(info, io.BytesIO(data))


def _symlink(tar: tarfile.TarFile, path: str, target: str) -> None:
    info = tarfile.TarInfo(path)
    info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
    tar.addfile(info)


def _dir(tar: tarfile.TarFile, path: str) -> None:
    info = tarfile.TarInfo(path)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def go_tool(rng: random.Random, size: int, deps: int) -> bytes:
    modinfo = go_modinfo(("example.com/tool", "v1.4.0"),
                         [(f"github.com/dep{i}/lib{i}", f"v1.{i}.0") for i in range(deps)])
    return elf64({".rodata": content(rng, size, 0.4), ".go.buildinfo": go_buildinfo("go1.21.3", modinfo)})


def debian_layer(path: Path, seed: int = 1) -> None:
    rng = random.Random(seed)
    names = [f"pkg{i:03d}" for i in range(100)]
    with gzip.open(path, "wb", compresslevel=6) as gz, tarfile.open(fileobj=gz, mode="w|",
                                                                      format=tarfile.PAX_FORMAT) as tar:
        for d in ("etc", "usr", "usr/bin", "usr/lib", "usr/share", "var", "var/lib", "var/lib/dpkg"):
            _dir(tar, d)
        _add(tar, "usr/lib/os-release", os_release("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)"))
        _symlink(tar, "etc/os-release", "../usr/lib/os-release")
        status = "\n".join(dpkg_stanza(n, f"1.{i}.0-{i % 7}+deb12u1", source=f"src{i // 3:03d}")
                           for i, n in enumerate(names))
        _add(tar, "var/lib/dpkg/status", status.encode())
        for n in names:
            _add(tar, f"var/lib/dpkg/info/{n}.list", content(rng, 3000, 0.0))
            _add(tar, f"var/lib/dpkg/info/{n}.md5sums", content(rng, 4000, 0.5))
        for i in range(250):  # executables: small C programs, with neither Go nor cargo data
            _add(tar, f"usr/bin/tool{i:03d}", elf64({".rodata": content(rng, rng.randint(20_000, 250_000), 0.3)}),
                 mode=0o755)
        for i in range(150):  # shared libraries: ELF but not executable, so not read
            _add(tar, f"usr/lib/x86_64-linux-gnu/lib{i:03d}.so.1",
                 elf64({".rodata": content(rng, rng.randint(30_000, 250_000), 0.3)}))
        for n in names:
            _add(tar, f"usr/share/doc/{n}/copyright", content(rng, 2500, 0.0))
            _add(tar, f"usr/share/doc/{n}/changelog.Debian.gz", content(rng, 6000, 1.0))
        for i in range(1500):
            _add(tar, f"usr/share/locale/l{i % 60}/LC_MESSAGES/m{i}.mo", content(rng, rng.randint(500, 20_000), 0.3))
        for i in range(600):
            _add(tar, f"usr/share/zoneinfo/zone{i}", content(rng, 2000, 0.7))
        for i in range(800):
            _add(tar, f"usr/share/perl5/Module{i}.pm", content(rng, rng.randint(1000, 30_000), 0.1))
        _add(tar, "usr/local/bin/tool-a", go_tool(rng, 8 << 20, 60), mode=0o755)
        _add(tar, "usr/local/bin/tool-b", go_tool(rng, 4 << 20, 20), mode=0o755)
        _add(tar, "usr/local/bin/rg", rust_binary([{"name": f"crate{i}", "version": f"0.{i}.0"} for i in range(80)]),
             mode=0o755)


class _Generated(io.RawIOBase):
    """A file's content made on the fly (the 1 GiB layer is never held)."""

    def __init__(self, rng: random.Random, size: int, pool: bytes) -> None:
        self.left, self.rng, self.pool = size, rng, pool

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = min(self.left if n is None or n < 0 else n, self.left, 1 << 16)
        if n <= 0:
            return b""
        self.left -= n
        noisy = n // 4
        start = self.rng.randrange(0, len(self.pool) - noisy)
        return self.pool[start:start + noisy] + (TEXT * (n // len(TEXT) + 1))[: n - noisy]


def big_layer(path: Path, size: int = 1 << 30, seed: int = 2) -> None:
    rng = random.Random(seed)
    pool = rng.randbytes(8 << 20)
    written = 0

    def add_stream(tar: tarfile.TarFile, name: str, n: int, mode: int = 0o644, head: bytes = b"") -> None:
        nonlocal written
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = n, mode, 1700000000
        body = _Generated(rng, n - len(head), pool)
        tar.addfile(info, io.BufferedReader(_Prefixed(head, body)))  # type: ignore[arg-type]
        written += n

    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as gz, \
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "etc/os-release", os_release("almalinux", "9.4"))
        _add(tar, "var/lib/rpm/rpmdb.sqlite", rpmdb_sqlite([rpm_header(f"pkg{i}", "1.0", f"{i}.el9",
                                                                       sourcerpm=f"pkg{i}-1.0-{i}.el9.src.rpm")
                                                            for i in range(400)]))
        nested = {f"BOOT-INF/lib/lib{i}.jar": jar(poms=[("com.example", f"lib{i}", f"1.{i}")],
                                                  extra={"blob.bin": rng.randbytes(300_000)}) for i in range(120)}
        big_jar = jar(poms=[("com.example", "app", "1.0")], nested=nested)
        _add(tar, "opt/app/app.jar", big_jar)
        written += len(big_jar)
        _add(tar, "usr/local/bin/server", go_binary(deps=[("golang.org/x/net", "v0.17.0")]) + bytes(30 << 20),
             mode=0o755)
        i = 0
        while written < size - (80 << 20):
            if i % 40 == 0:  # an executable of 20–60 MiB: spooled to disk, then scanned for markers
                add_stream(tar, f"usr/bin/big{i}", rng.randint(20, 60) << 20, 0o755,
                           head=elf64({".rodata": b"x" * 64}))
            else:
                add_stream(tar, f"usr/share/data/file{i}", rng.randint(64 << 10, 1 << 20))
            i += 1


class _Prefixed(io.RawIOBase):
    def __init__(self, head: bytes, rest: io.RawIOBase) -> None:
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.head[: len(buffer)] if self.head else self.rest.read(len(buffer))
        self.head = self.head[len(data):] if self.head else b""
        buffer[: len(data)] = data
        return len(data)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(layer: Path, repeat: int) -> dict[str, object]:
    """Runs in a fresh process: times, RSS growth, tracemalloc peak."""
    src = file_source(layer)
    rss_before = _status_kib("VmRSS")  # resident now; the peak after the runs minus this is the growth
    times = []
    outcome = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        outcome = build_inventory([src], ["generated"], LIMITS)
        times.append(time.perf_counter() - t0)
    rss_after = _status_kib("VmHWM")  # the peak resident size of this process so far
    tracemalloc.start()
    build_inventory([src], ["generated"], LIMITS)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert outcome is not None
    return {"layer": layer.name, "compressed_bytes": layer.stat().st_size, "runs": repeat,
            "best_s": round(min(times), 3), "median_s": round(statistics.median(times), 3),
            "rss_growth_mib": round((rss_after - rss_before) / 1024, 1),
            "rss_before_mib": round(rss_before / 1024, 1), "peak_rss_after_mib": round(rss_after / 1024, 1),
            "tracemalloc_peak_mib": round(peak / (1 << 20), 1),
            "packages": len(outcome.inventory.packages), "notes": list(outcome.notes)}


def uncompressed_size(layer: Path) -> int:
    total = 0
    with gzip.open(layer, "rb") as gz:
        while chunk := gz.read(1 << 20):
            total += len(chunk)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    m = sub.add_parser("measure", help="(internal) measure one layer in this process")
    m.add_argument("layer", type=Path)
    m.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench-scan"))
    parser.add_argument("--only", choices=["debian", "big"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the generated layers (and reuse them next time)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.command == "measure":
        print(json.dumps(measure(args.layer, args.repeat)))
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    results = []
    for name, generate, repeat in (("debian", debian_layer, args.repeat), ("big", big_layer, 1)):
        if args.only and args.only != name:
            continue
        path = args.dir / f"{name}.tar.gz"
        if not path.exists():
            t0 = time.perf_counter()
            generate(path)
            print(f"# generated {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        result = json.loads(subprocess.run([sys.executable, __file__, "measure", str(path), "--repeat", str(repeat)],
                                           check=True, capture_output=True, text=True).stdout)
        result["uncompressed_bytes"] = uncompressed_size(path)
        results.append(result)
        if not args.keep:
            path.unlink()
    print(f"{'layer':8} {'gzip MB':>8} {'tar MB':>8} {'best s':>7} {'median s':>8} {'RSS +MiB':>9} "
          f"{'tracemalloc MiB':>15} {'packages':>8}")
    for r in results:
        print(f"{r['layer'].split('.')[0]:8} {r['compressed_bytes'] / 1e6:8.1f} {r['uncompressed_bytes'] / 1e6:8.1f} "
              f"{r['best_s']:7.2f} {r['median_s']:8.2f} {r['rss_growth_mib']:9.1f} {r['tracemalloc_peak_mib']:15.1f} "
              f"{r['packages']:8}")
    if args.json:
        args.json.write_text(json.dumps({"machine": os.uname().machine, "cpus": os.cpu_count(), "results": results},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
