"""Java archives: jar, war and ear files, and the archives nested in them (Spring Boot's
BOOT-INF/lib, a war's WEB-INF/lib, an ear's modules), down to `Limits.max_archive_depth`.

Maven writes `META-INF/maven/GROUP/ARTIFACT/pom.properties` (groupId, artifactId, version) into
every jar it builds; a shaded jar carries those of what it bundled. Each one is a package
"group:artifact". A jar without any (Gradle, Ant, hand-made) falls back on its manifest, with
this heuristic:
  - version: Implementation-Version, else Bundle-Version, else Specification-Version, else the
    version at the end of the file name ("commons-lang3-3.12.0.jar");
  - artifact: the file name without that version;
  - group: Implementation-Vendor-Id, else the OSGi Bundle-SymbolicName without its last
    segment, or without ".ARTIFACT" when it ends so ("com.fasterxml.jackson.core.jackson-databind"
    → "com.fasterxml.jackson.core", "org.apache.commons.lang3" → "org.apache.commons").
  Without a group, artifact and version nothing is reported: advisories name Maven packages
  by group and artifact, and a guess on fewer facts would match the wrong thing.
A nested archive's packages have the path "outer.jar!/BOOT-INF/lib/inner.jar" (the jar: URL
form, "!/" at each level).

Bombs: an archive tree may declare at most MAX_ENTRIES entries in all (counted in each central
directory before zipfile parses it: zipfile keeps an object per entry), and the bytes decompressed
from it (nested archives, manifests, pom.properties) are taken from one budget of
`Limits.max_file_bytes`. An entry whose declared size exceeds what is left is skipped with a
note; zipfile never inflates past an entry's declared size.
"""

from __future__ import annotations

import re
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import IO

from dockyard.scan.analyzers import UNATTRIBUTED, Findings, Read, Want
from dockyard.scan.layers import SPOOL_MEMORY_BYTES, Limits
from dockyard.scan.model import MAVEN, Package

SUFFIXES = (".jar", ".war", ".ear")
MAX_ENTRIES = 100_000
MAX_METADATA_BYTES = 1 << 20  # a pom.properties or MANIFEST.MF
MANIFEST = "META-INF/MANIFEST.MF"
_POM = re.compile(r"META-INF/maven/[^/]+/[^/]+/pom\.properties")
_FILE_VERSION = re.compile(r"^(?P<artifact>.+?)-(?P<version>\d[\w.\-+]*)$")
_EOCD, _EOCD64, _LOCATOR64, _CENTRAL = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07", b"PK\x01\x02"
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, ValueError,
               EOFError, OSError, zlib.error, struct.error)


def want(path: str) -> Want | None:
    return _WANT if path.lower().endswith(SUFFIXES) else None


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties, the subset Maven writes: key=value (or key: value) lines, # comments."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"([^=:\s]+)\s*[=:]\s*(.*)", line)
        if match:
            props[match.group(1)] = match.group(2).strip()
    return props


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a MANIFEST.MF; lines longer than 72 bytes continue on lines that
    start with one space, joined without it."""
    headers: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line:
            break
        if line.startswith(" "):
            if last is not None:
                headers[last] += line[1:]
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip()
            headers[last] = value.strip()
    return headers


def package_from_pom(props: dict[str, str], path: str) -> Package | None:
    group, artifact, version = props.get("groupId"), props.get("artifactId"), props.get("version")
    if not group or not artifact or not version:
        return None
    return Package(name=f"{group}:{artifact}", version=version, type=MAVEN, layer=UNATTRIBUTED, path=path)


def package_from_manifest(headers: dict[str, str], filename: str, path: str) -> Package | None:
    """The fallback heuristic in this module's docstring."""
    stem = filename.rpartition("/")[2]
    stem = stem[: stem.rfind(".")] if "." in stem else stem
    version = headers.get("Implementation-Version") or headers.get("Bundle-Version") or \
        headers.get("Specification-Version")
    match = _FILE_VERSION.match(stem)
    if version and stem.endswith(f"-{version}"):
        artifact = stem[: -len(version) - 1]
    elif match:
        artifact, version = match.group("artifact"), version or match.group("version")
    else:
        artifact = stem
    group = headers.get("Implementation-Vendor-Id", "").strip()
    symbolic = headers.get("Bundle-SymbolicName", "").split(";")[0].strip()
    if not group and "." in symbolic:
        group = symbolic[: -len(artifact) - 1] if symbolic.endswith(f".{artifact}") else symbolic.rpartition(".")[0]
    if not group or not artifact or not version:
        return None
    return Package(name=f"{group}:{artifact}", version=version, type=MAVEN, layer=UNATTRIBUTED, path=path)


def count_entries(fh: IO[bytes]) -> int | None:
    """How many records the central directory really holds (not what the end record claims),
    walking it without building anything; None when the end records cannot be found."""
    size = fh.seek(0, 2)
    tail_len = min(size, 22 + 0xFFFF)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(_EOCD)
    if at < 0 or at + 22 > len(tail):
        return None
    cd_end = size - tail_len + at
    cd_size = struct.unpack_from("<I", tail, at + 12)[0]
    if at >= 20 and tail[at - 20:at - 16] == _LOCATOR64:  # zip64: its end record precedes the locator
        fh.seek(cd_end - 20 - 56)
        record = fh.read(56)
        if record[:4] != _EOCD64:
            return None
        cd_end, cd_size = cd_end - 20 - 56, struct.unpack_from("<Q", record, 40)[0]
    if cd_size > cd_end:
        return None
    fh.seek(cd_end - cd_size)
    directory = fh.read(cd_size)
    count = pos = 0
    while pos + 46 <= len(directory) and directory[pos:pos + 4] == _CENTRAL:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", directory, pos + 28)
        pos += 46 + name_len + extra_len + comment_len
        count += 1
    return count


@dataclass
class _Budget:
    bytes_left: int
    entries_left: int
    notes: list[str] = field(default_factory=list)


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, where: str) -> bytes | None:
    if info.file_size > min(MAX_METADATA_BYTES, budget.bytes_left):
        budget.notes.append(f"{where}: {info.filename} declares {info.file_size} bytes, not read")
        return None
    budget.bytes_left -= info.file_size
    try:
        with zf.open(info) as entry:
            return entry.read(info.file_size + 1)
    except _ZIP_ERRORS as exc:
        budget.notes.append(f"{where}: {info.filename} unreadable ({type(exc).__name__})")
        return None


def _walk(fh: IO[bytes], where: str, depth: int, limits: Limits, budget: _Budget,
          found: dict[tuple[str, str, str], Package]) -> None:
    entries = count_entries(fh)
    if entries is None:
        budget.notes.append(f"{where}: not a zip archive")
        return
    if entries > budget.entries_left:
        budget.notes.append(f"{where}: {entries} entries, past the {MAX_ENTRIES} read in one archive: not read")
        return
    budget.entries_left -= entries
    fh.seek(0)
    with zipfile.ZipFile(fh) as zf:
        infos = zf.infolist()
        poms = [i for i in infos if _POM.fullmatch(i.filename)]
        for info in poms:
            data = _read_entry(zf, info, budget, where)
            if data is not None and (package := package_from_pom(parse_properties(data.decode("utf-8", "replace")),
                                                                 where)) is not None:
                found.setdefault((package.name, package.version, where), package)
        if not poms and (manifest := next((i for i in infos if i.filename == MANIFEST), None)) is not None:
            data = _read_entry(zf, manifest, budget, where)
            if data is not None:
                headers = parse_manifest(data.decode("utf-8", "replace"))
                if (package := package_from_manifest(headers, where.rpartition("/")[2], where)) is not None:
                    found.setdefault((package.name, package.version, where), package)
        for info in infos:
            if info.is_dir() or not info.filename.lower().endswith(SUFFIXES):
                continue
            inner = f"{where}!/{info.filename}"
            if depth >= limits.max_archive_depth:
                budget.notes.append(f"{inner}: nested deeper than {limits.max_archive_depth} archives, not read")
                continue
            if info.file_size > budget.bytes_left:
                budget.notes.append(f"{inner}: declares {info.file_size} bytes, past what is left of "
                                    "scan.max_file_bytes for this archive: not read")
                continue
            budget.bytes_left -= info.file_size
            try:
                with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spooled:
                    with zf.open(info) as entry:
                        while chunk := entry.read(1 << 20):
                            spooled.write(chunk)
                    _walk(spooled, inner, depth + 1, limits, budget, found)  # type: ignore[arg-type]
            except _ZIP_ERRORS as exc:
                budget.notes.append(f"{inner}: unreadable archive ({type(exc).__name__})")


def parse(path: str, fh: IO[bytes], limits: Limits) -> Findings:
    budget = _Budget(bytes_left=limits.max_file_bytes, entries_left=MAX_ENTRIES)
    found: dict[tuple[str, str, str], Package] = {}
    try:
        _walk(fh, path, 1, limits, budget, found)
    except _ZIP_ERRORS as exc:
        budget.notes.append(f"{path}: unreadable archive ({type(exc).__name__})")
    return Findings(packages=tuple(found.values()), notes=tuple(budget.notes))


_WANT = Want("java", Read.SPOOL, parse)
