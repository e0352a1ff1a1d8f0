"""Go modules compiled into a binary: the build information the Go linker embeds (`go version
-m` prints it).

Go ≥ 1.18 writes it into the `.go.buildinfo` section: a 32-byte header ("\\xff Go buildinf:",
pointer size, flags) then, when flags has the "inline" bit (0x2), two varint-prefixed strings:
the toolchain version ("go1.21.3") and the module information, lines of tab-separated fields:

    path  example.com/cmd/app
    mod   example.com/app  v1.2.3  h1:…
    dep   golang.org/x/net  v0.17.0  h1:…
    =>    example.com/fork/net  v0.17.1  h1:…     (replaces the line above)

Older binaries store pointers into the data segment instead; they are skipped with a note.

Packages: every `dep` (or what `=>` replaces it with: that is the code compiled in; a
replacement by a local directory has no version and is skipped), the main module (`mod`; a
local build's "(devel)" becomes "devel"), and "stdlib" at the toolchain's version written as a
module version ("go1.21.3" → "v1.21.3"), which is how Go's advisories name the standard library.
"""

from __future__ import annotations

from dockyard.scan.analyzers import UNATTRIBUTED, Findings
from dockyard.scan.model import GO, Package

MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
ALIGN = 16
FLAG_INLINE = 0x2
STDLIB = "stdlib"


class OldFormat(ValueError):
    """Build information in the pre-1.18 pointer format."""


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("bad varint")


def _string(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = _uvarint(data, pos)
    if pos + length > len(data):
        raise ValueError("string past the end of the build info")
    return data[pos:pos + length], pos + length


def find_header(data: bytes) -> int:
    """Offset of the build info header in `data` (found at 16-byte alignment, as Go's own
    reader does), or -1."""
    start = 0
    while (i := data.find(MAGIC, start)) != -1:
        if i % ALIGN == 0 and len(data) - i >= HEADER_SIZE:
            return i
        start = i + 1
    return -1


def parse_buildinfo(data: bytes) -> tuple[str, str]:
    """(toolchain version, module info text) from the bytes of a `.go.buildinfo` section.
    Raises OldFormat for pre-1.18 binaries and ValueError for anything malformed."""
    at = find_header(data)
    if at < 0:
        raise ValueError("no Go build info header")
    if not data[at + 15] & FLAG_INLINE:
        raise OldFormat("build info in the pre-Go 1.18 format")
    version, pos = _string(data, at + HEADER_SIZE)
    mod, _ = _string(data, pos)
    # The module info is framed by two 16-byte sentinels.
    mod = mod[16:-16] if len(mod) >= 33 and mod[-17:-16] == b"\n" else b""
    return version.decode("utf-8", "replace"), mod.decode("utf-8", "replace")


def parse_modinfo(text: str) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
    """The main module (path, version) if any, and the dependencies as compiled in (path,
    version), replacements applied."""
    main: tuple[str, str] | None = None
    deps: list[tuple[str, str]] = []
    last: str | None = None  # which list the previous mod/dep line went to
    for line in text.splitlines():
        fields = line.split("\t")
        if fields[0] == "mod" and len(fields) >= 3:
            main, last = (fields[1], fields[2]), "mod"
        elif fields[0] == "dep" and len(fields) >= 3:
            deps.append((fields[1], fields[2]))
            last = "dep"
        elif fields[0] == "=>" and len(fields) >= 2 and last is not None:
            replacement = (fields[1], fields[2] if len(fields) >= 3 else "")
            if last == "mod":
                main = replacement
            else:
                deps[-1] = replacement
            last = None
        else:
            last = None
    return main, deps


def stdlib_version(toolchain: str) -> str | None:
    """"v1.21.3" from "go1.21.3" (or "go1.21.3 X:boringcrypto"); None for a development toolchain."""
    words = toolchain.split()
    if not words or not words[0].startswith("go") or not words[0][2:3].isdigit():
        return None
    return "v" + words[0][2:]


def packages_of(path: str, toolchain: str, modinfo: str) -> list[Package]:
    main, deps = parse_modinfo(modinfo)
    found: list[Package] = []

    def add(name: str, version: str) -> None:
        if name and version:
            found.append(Package(name=name, version=version, type=GO, layer=UNATTRIBUTED, path=path))

    if main is not None:
        add(main[0], "devel" if main[1] == "(devel)" else main[1])
    for name, version in deps:
        add(name, version)  # a local replacement has no version: skipped
    if (std := stdlib_version(toolchain)) is not None:
        add(STDLIB, std)
    return found


def parse(path: str, section: bytes) -> Findings:
    """Packages from the bytes of a binary's `.go.buildinfo` section."""
    try:
        toolchain, modinfo = parse_buildinfo(section)
    except OldFormat:
        return Findings(notes=(f"{path}: Go binary built before Go 1.18, its modules are not read",))
    except (ValueError, IndexError) as exc:
        return Findings(notes=(f"{path}: unreadable Go build info ({exc})",))
    return Findings(packages=tuple(packages_of(path, toolchain, modinfo)))
