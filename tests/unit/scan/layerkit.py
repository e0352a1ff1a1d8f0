"""Image layers built in memory, for the scanner's tests and for end-to-end tests that push real
images made of them.

Layers are lists of entries turned into tar blobs:

    from tests.unit.scan.layerkit import File, Whiteout, layer, source, dpkg_status, dpkg_stanza

    base = layer([File("var/lib/dpkg/status", dpkg_status(dpkg_stanza("openssl", "3.0.11-1~deb12u2",
                                                                      source="openssl")))])
    fix = layer([Whiteout("usr/share/doc")], compression="zstd")
    outcome = build_inventory([source(base), source(fix)], [None, None], LIMITS)

Entry kinds: File, Dir, Symlink, Hardlink, Whiteout (".wh.NAME"), Opaque (".wh..wh..opq"), and
RawName (any tar name, for hostile names). `layer(..., compression="gzip" | "zstd" | "none")`.

Package databases at known versions: `dpkg_status`/`dpkg_stanza` (and distroless status.d
files: `dpkg_stanza(..., status=None)`), `apk_installed`/`apk_entry`, `rpm_header` (a real RPM
header blob) and `rpmdb_sqlite`, `os_release`, `dist_info`, `npm_package`, `package_lock`.
Binaries: `elf64` builds a minimal valid ELF64 file with a section header table (pyelftools
and binutils read it), `go_binary` one with a Go ≥ 1.18 `.go.buildinfo` section, `rust_binary`
one with a cargo auditable `.dep-v0` section. `jar` builds a jar with pom.properties, a manifest
and nested jars.

`oci_layout(dest, [tar, …], created_by)` writes an OCI image layout directory of such layers,
which `skopeo copy oci:DEST:latest docker://…` pushes as a real image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sqlite3
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import zstandard

from dockyard.scan.layers import LayerSource

GZIP_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+zstd"
TAR_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"


# --- entries and layers ---------------------------------------------------------------------

@dataclass(frozen=True)
class File:
    path: str
    data: bytes = b""
    mode: int = 0o644


@dataclass(frozen=True)
class Dir:
    path: str
    mode: int = 0o755


@dataclass(frozen=True)
class Symlink:
    path: str
    target: str


@dataclass(frozen=True)
class Hardlink:
    path: str
    target: str  # an earlier entry of the same layer


@dataclass(frozen=True)
class Whiteout:
    path: str  # what is deleted from the lower layers: written as DIR/.wh.NAME


@dataclass(frozen=True)
class Opaque:
    directory: str  # written as DIRECTORY/.wh..wh..opq


@dataclass(frozen=True)
class RawName:
    name: str  # a tar member name written as is ("../../etc/passwd", "/abs")
    data: bytes = b""


Entry = Union[File, Dir, Symlink, Hardlink, Whiteout, Opaque, RawName]


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.mtime = kind, size, mode, 1700000000
    return info


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    """A plain tar of the entries, in order (PAX format, as BuildKit and podman write)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            if isinstance(entry, File):
                tar.addfile(_info(entry.path, size=len(entry.data), mode=entry.mode), io.BytesIO(entry.data))
            elif isinstance(entry, RawName):
                tar.addfile(_info(entry.name, size=len(entry.data)), io.BytesIO(entry.data))
            elif isinstance(entry, Dir):
                tar.addfile(_info(entry.path, tarfile.DIRTYPE, mode=entry.mode))
            elif isinstance(entry, (Symlink, Hardlink)):
                info = _info(entry.path, tarfile.SYMTYPE if isinstance(entry, Symlink) else tarfile.LNKTYPE,
                             mode=0o777 if isinstance(entry, Symlink) else 0o644)
                info.linkname = entry.target
                tar.addfile(info)
            elif isinstance(entry, Whiteout):
                parent, _, name = entry.path.rpartition("/")
                tar.addfile(_info(f"{parent}/.wh.{name}" if parent else f".wh.{name}"))
            elif isinstance(entry, Opaque):
                tar.addfile(_info(f"{entry.directory}/.wh..wh..opq" if entry.directory else ".wh..wh..opq"))
    return out.getvalue()


def compress(data: bytes, compression: str = "gzip") -> bytes:
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    if compression == "none":
        return data
    raise ValueError(compression)


def layer(entries: Iterable[Entry], compression: str = "gzip") -> bytes:
    """A layer blob: the entries as a tar, compressed."""
    return compress(tar_bytes(entries), compression)


def digest_of(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def source(blob: bytes, media_type: str = GZIP_MEDIA_TYPE) -> LayerSource:
    """A LayerSource over a blob in memory (each open() a fresh stream)."""
    return LayerSource(digest=digest_of(blob), media_type=media_type, size=len(blob), open=lambda: io.BytesIO(blob))


def file_source(path: str | os.PathLike[str], digest: str | None = None,
                media_type: str = GZIP_MEDIA_TYPE) -> LayerSource:
    """A LayerSource over a blob on disk (big generated layers); the digest is not checked."""
    path = Path(path)
    return LayerSource(digest=digest or f"sha256:{'0' * 64}", media_type=media_type, size=path.stat().st_size,
                       open=lambda: open(path, "rb"))


# --- package databases ----------------------------------------------------------------------

def os_release(os_id: str, version_id: str | None = None, codename: str | None = None,
               pretty_name: str | None = None) -> bytes:
    lines = [f"ID={os_id}"]
    if version_id is not None:
        lines.append(f'VERSION_ID="{version_id}"')
    if codename is not None:
        lines.append(f"VERSION_CODENAME={codename}")
    if pretty_name is not None:
        lines.append(f'PRETTY_NAME="{pretty_name}"')
    return ("\n".join(lines) + "\n").encode()


def dpkg_stanza(name: str, version: str, *, arch: str = "amd64", source: str | None = None,
                status: str | None = "install ok installed") -> str:
    """One dpkg stanza. `source`: "name" or "name (version)". status=None for status.d files."""
    lines = [f"Package: {name}"]
    if status is not None:
        lines.append(f"Status: {status}")
    lines += ["Priority: optional", "Section: libs", "Installed-Size: 100", "Maintainer: Debian <debian@example.org>",
              f"Architecture: {arch}"]
    if source is not None:
        lines.append(f"Source: {source}")
    lines += [f"Version: {version}", "Depends: libc6 (>= 2.34)", f"Description: the {name} package",
              " A longer description, continued", " .", " over lines."]
    return "\n".join(lines) + "\n"


def dpkg_status(*stanzas: str) -> bytes:
    return "\n".join(stanzas).encode()


def apk_entry(name: str, version: str, *, origin: str | None = None, arch: str = "x86_64") -> str:
    lines = ["C:Q1abcdefghijklmnopqrstuvwxyz0123=", f"P:{name}", f"V:{version}", f"A:{arch}", "S:12345",
             "I:45678", f"T:the {name} package", "U:https://example.org", "L:MIT"]
    if origin is not None:
        lines.append(f"o:{origin}")
    lines += ["m:Someone <someone@example.org>", "t:1700000000", "F:usr/lib", f"R:lib{name}.so.1", "Z:Q1zzz="]
    return "\n".join(lines) + "\n"


def apk_installed(*entries: str) -> bytes:
    return "\n".join(entries).encode()


RPM_STRING, RPM_INT32 = 6, 4


def rpm_header(name: str, version: str, release: str, *, epoch: int | None = None, arch: str = "x86_64",
               sourcerpm: str | None = None) -> bytes:
    """An RPM header blob as rpmdb.sqlite stores it: index count, data length, 16-byte index
    entries (tag, type, offset, count), then the data store (int32 aligned to 4)."""
    tags: list[tuple[int, int, str | int]] = [(1000, RPM_STRING, name), (1001, RPM_STRING, version),
                                                (1002, RPM_STRING, release), (1022, RPM_STRING, arch)]
    if epoch is not None:
        tags.append((1003, RPM_INT32, epoch))
    if sourcerpm is not None:
        tags.append((1044, RPM_STRING, sourcerpm))
    tags.append((1004, RPM_STRING, f"the {name} package"))  # SUMMARY: a tag readers must skip
    index, data = b"", b""
    for tag, kind, value in sorted(tags):
        if kind == RPM_INT32:
            data += b"\x00" * (-len(data) % 4)
            index += struct.pack(">iIiI", tag, kind, len(data), 1)
            data += struct.pack(">i", value)
        else:
            index += struct.pack(">iIiI", tag, kind, len(data), 1)
            data += str(value).encode() + b"\x00"
    return struct.pack(">II", len(tags), len(data)) + index + data


def rpmdb_sqlite(headers: Sequence[bytes]) -> bytes:
    """An rpmdb.sqlite (rpm ≥ 4.16) holding these header blobs."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rpmdb.sqlite")
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
        conn.execute("CREATE TABLE Name (key TEXT NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL)")
        conn.executemany("INSERT INTO Packages (blob) VALUES (?)", [(h,) for h in headers])
        conn.commit()
        conn.close()
        return Path(path).read_bytes()


def dist_info(name: str, version: str, site: str = "usr/local/lib/python3.11/site-packages") -> list[File]:
    folder = f"{site}/{name.replace('-', '_')}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name}\n\nLong text.\n"
    return [File(f"{folder}/METADATA", metadata.encode()), File(f"{folder}/RECORD", b""),
            File(f"{folder}/INSTALLER", b"pip\n")]


def npm_package(name: str, version: str, root: str = "app") -> File:
    prefix = f"{root}/" if root else ""
    return File(f"{prefix}node_modules/{name}/package.json",
                json.dumps({"name": name, "version": version, "main": "index.js"}).encode())


def package_lock(packages: dict[str, str], lockfile_version: int = 3, dev: Iterable[str] = ()) -> bytes:
    """A package-lock.json listing name → version (v2/v3 "packages", or v1 "dependencies")."""
    dev = set(dev)
    if lockfile_version == 1:
        deps = {n: {"version": v, **({"dev": True} if n in dev else {})} for n, v in packages.items()}
        return json.dumps({"name": "app", "version": "1.0.0", "lockfileVersion": 1, "dependencies": deps}).encode()
    entries: dict[str, dict[str, object]] = {"": {"name": "app", "version": "1.0.0"}}
    for n, v in packages.items():
        entries[f"node_modules/{n}"] = {"version": v, **({"dev": True} if n in dev else {})}
    return json.dumps({"name": "app", "version": "1.0.0", "lockfileVersion": lockfile_version,
                       "packages": entries}).encode()


# --- binaries and archives ------------------------------------------------------------------

def elf64(sections: dict[str, bytes], *, text: bytes = b"\xc3" * 64) -> bytes:
    """A minimal little-endian x86-64 ELF64 executable: header, a .text section, the given
    sections (PROGBITS, 16-byte aligned) and a section header table with .shstrtab."""
    names = [".text", *sections, ".shstrtab"]
    shstrtab = b"\x00" + b"".join(n.encode() + b"\x00" for n in names)
    contents = [text, *sections.values(), shstrtab]
    body, offsets = b"", []
    for content in contents:
        body += b"\x00" * (-(64 + len(body)) % 16)
        offsets.append(64 + len(body))
        body += content
    body += b"\x00" * (-(64 + len(body)) % 8)
    shoff = 64 + len(body)
    headers = b"\x00" * 64  # the null section
    name_at = 1
    for i, (name, content) in enumerate(zip(names, contents)):
        kind = 3 if name == ".shstrtab" else 1  # SHT_STRTAB, SHT_PROGBITS
        flags = 6 if name == ".text" else (2 if kind == 1 else 0)  # ALLOC|EXECINSTR, ALLOC
        headers += struct.pack("<IIQQQQIIQQ", name_at, kind, flags, 0, offsets[i], len(content), 0, 0, 16, 0)
        name_at += len(name) + 1
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\x00" * 8
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, 0, shoff, 0, 64, 56, 0, 64,
                                 len(names) + 1, len(names))
    return header + body + headers


GO_INFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
GO_INFO_END = bytes.fromhex("f932433186182072008242104116d8f2")


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def go_modinfo(main: tuple[str, str] | None, deps: Sequence[tuple[str, str] | tuple[str, str, str, str]],
               cmd_path: str = "example.com/app/cmd/app") -> str:
    """`go version -m` text: deps are (path, version) or (path, version, new_path, new_version)
    for a `=>` replacement."""
    lines = [f"path\t{cmd_path}"]
    if main is not None:
        lines.append(f"mod\t{main[0]}\t{main[1]}\t")
    for dep in deps:
        lines.append(f"dep\t{dep[0]}\t{dep[1]}\th1:abc=")
        if len(dep) == 4:
            lines.append(f"=>\t{dep[2]}\t{dep[3]}\th1:def=")
    lines += ["build\t-compiler=gc", "build\tGOOS=linux"]
    return "\n".join(lines) + "\n"


def go_buildinfo(go_version: str, modinfo: str, *, inline: bool = True) -> bytes:
    """A `.go.buildinfo` section: the 32-byte header, then (Go ≥ 1.18, inline) the version and
    the module info framed by its sentinels, each varint-prefixed."""
    header = b"\xff Go buildinf:" + bytes([8, 0x2 if inline else 0x0]) + b"\x00" * 16
    if not inline:
        return header + b"\x00" * 32
    mod = GO_INFO_START + modinfo.encode() + GO_INFO_END
    return header + _uvarint(len(go_version)) + go_version.encode() + _uvarint(len(mod)) + mod


def go_binary(go_version: str = "go1.21.3", main: tuple[str, str] | None = ("example.com/app", "v1.2.3"),
              deps: Sequence[tuple[str, str] | tuple[str, str, str, str]] = (), *, inline: bool = True) -> bytes:
    return elf64({".rodata": b"hello", ".go.buildinfo": go_buildinfo(go_version, go_modinfo(main, deps),
                                                                       inline=inline)})


def rust_binary(packages: Sequence[dict[str, object]]) -> bytes:
    """An ELF with a cargo auditable `.dep-v0` section: packages as {"name", "version", "source",
    "kind"?, "root"?, "dependencies"?}."""
    doc = {"packages": [{"dependencies": [], **p} for p in packages]}
    return elf64({".dep-v0": zlib.compress(json.dumps(doc).encode())})


def jar(poms: Sequence[tuple[str, str, str]] = (), manifest: dict[str, str] | None = None,
        nested: dict[str, bytes] | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    """A jar: pom.properties for each (group, artifact, version), a MANIFEST.MF with these
    headers, nested archives stored under their names (e.g. "BOOT-INF/lib/x.jar"), and extra
    entries (compressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        headers = {"Manifest-Version": "1.0", "Created-By": "layerkit", **(manifest or {})}
        zf.writestr("META-INF/MANIFEST.MF", "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
        for group, artifact, version in poms:
            zf.writestr(f"META-INF/maven/{group}/{artifact}/pom.properties",
                        f"#Generated by Maven\nartifactId={artifact}\ngroupId={group}\nversion={version}\n")
        zf.writestr("com/example/Main.class", b"\xca\xfe\xba\xbe" + b"\x00" * 60)
        for name, data in (nested or {}).items():
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data, compress_type=zipfile.ZIP_STORED)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return out.getvalue()


# --- images ---------------------------------------------------------------------------------

def oci_layout(dest: str | os.PathLike[str], tars: Sequence[bytes], created_by: Sequence[str] = (),
               *, compression: str = "gzip", tag: str = "latest", architecture: str = "amd64") -> str:
    """Writes an OCI image layout of these (uncompressed) layer tars at `dest` and returns the
    manifest's digest. `skopeo copy oci:DEST:TAG docker://HOST/REPO:TAG` pushes it."""
    dest = Path(dest)
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        digest = digest_of(data)
        (blobs / digest.split(":", 1)[1]).write_bytes(data)
        return digest

    media_type = {"gzip": GZIP_MEDIA_TYPE, "zstd": ZSTD_MEDIA_TYPE, "none": TAR_MEDIA_TYPE}[compression]
    layers = []
    for tar in tars:
        blob = compress(tar, compression)
        layers.append({"mediaType": media_type, "digest": put(blob), "size": len(blob)})
    history = [{"created": "2024-01-01T00:00:00Z", "created_by": created_by[i] if i < len(created_by) else ""}
               for i in range(len(tars))]
    config = json.dumps({"architecture": architecture, "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [digest_of(t) for t in tars]},
                         "history": history}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": put(config), "size": len(config)},
                           "layers": layers}).encode()
    manifest_digest = put(manifest)
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return manifest_digest
