"""scan/analyzers/java.py"""

from __future__ import annotations

import io
import zipfile

import pytest

from dockyard.scan.analyzers import java, wanted
from dockyard.scan.layers import Limits
from dockyard.scan.model import MAVEN
from tests.unit.scan.layerkit import jar

LIMITS = Limits(max_layer_bytes=1 << 30, max_file_bytes=16 << 20, max_archive_depth=3)


def parse(data: bytes, path: str = "opt/app/app.jar", limits: Limits = LIMITS):
    return java.parse(path, io.BytesIO(data), limits)


def found(data: bytes, **kwargs) -> list[tuple[str, str, str]]:
    return [(p.name, p.version, p.path) for p in parse(data, **kwargs).packages]


@pytest.mark.parametrize(("path", "is_archive"), [("opt/app.jar", True), ("srv/ROOT.WAR", True), ("x/app.ear", True),
                                                  ("opt/app.jar.sha1", False), ("opt/jar", False)])
def test_paths(path: str, is_archive: bool) -> None:
    assert (wanted(path, 0o644) is not None) is is_archive


def test_pom_properties() -> None:
    data = jar(poms=[("org.apache.logging.log4j", "log4j-core", "2.14.1")])
    assert found(data) == [("org.apache.logging.log4j:log4j-core", "2.14.1", "opt/app/app.jar")]
    assert parse(data).packages[0].type == MAVEN


def test_a_shaded_jar_lists_what_it_bundles() -> None:
    data = jar(poms=[("com.example", "app", "1.0.0"), ("com.google.guava", "guava", "32.1.3-jre")])
    assert [n for n, _, _ in found(data)] == ["com.example:app", "com.google.guava:guava"]


def test_nested_jars_to_the_depth_limit() -> None:
    deepest = jar(poms=[("d", "deepest", "4")])
    deep = jar(poms=[("c", "deep", "3")], nested={"lib/deepest.jar": deepest})
    inner = jar(poms=[("b", "inner", "2")], nested={"lib/deep.jar": deep})
    outer = jar(poms=[("a", "outer", "1")], nested={"BOOT-INF/lib/inner.jar": inner})
    outcome = parse(outer, path="app.jar")
    assert [(p.name, p.path) for p in outcome.packages] == [
        ("a:outer", "app.jar"), ("b:inner", "app.jar!/BOOT-INF/lib/inner.jar"),
        ("c:deep", "app.jar!/BOOT-INF/lib/inner.jar!/lib/deep.jar")]
    assert outcome.notes == ("app.jar!/BOOT-INF/lib/inner.jar!/lib/deep.jar!/lib/deepest.jar: nested deeper than 3 "
                             "archives, not read",)


@pytest.mark.parametrize(("manifest", "filename", "expected"), [
    ({"Implementation-Version": "3.12.0", "Bundle-SymbolicName": "org.apache.commons.lang3"},
     "commons-lang3-3.12.0.jar", ("org.apache.commons:commons-lang3", "3.12.0")),
    ({"Bundle-Version": "2.15.2", "Bundle-SymbolicName": "com.fasterxml.jackson.core.jackson-databind"},
     "jackson-databind-2.15.2.jar", ("com.fasterxml.jackson.core:jackson-databind", "2.15.2")),
    ({"Implementation-Vendor-Id": "org.yaml", "Bundle-SymbolicName": "org.yaml.snakeyaml;singleton:=true"},
     "snakeyaml-2.2.jar", ("org.yaml:snakeyaml", "2.2")),  # the version from the file name
    ({"Implementation-Version": "1.0"}, "tool.jar", None),  # no group: nothing
    ({"Bundle-SymbolicName": "org.example.tool"}, "tool.jar", None),  # no version: nothing
])
def test_manifest_fallback(manifest: dict[str, str], filename: str, expected: tuple[str, str] | None) -> None:
    packages = found(jar(manifest=manifest), path=f"opt/{filename}")
    assert packages == ([(*expected, f"opt/{filename}")] if expected else [])


def test_the_manifest_is_not_used_when_a_pom_is_there() -> None:
    data = jar(poms=[("g", "a", "1")], manifest={"Implementation-Vendor-Id": "x", "Implementation-Version": "9"})
    assert [n for n, _, _ in found(data, path="opt/a-1.jar")] == ["g:a"]


def test_manifest_continuation_lines() -> None:
    text = "Manifest-Version: 1.0\r\nBundle-SymbolicName: com.example.very.long.na\r\n me.here\r\n\r\nName: x\r\n"
    assert java.parse_manifest(text)["Bundle-SymbolicName"] == "com.example.very.long.name.here"


def test_a_zip_bomb_is_skipped_with_a_note() -> None:
    # A nested "jar" that inflates to 64 MiB of zeros, from well under 1 MiB.
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("BOOT-INF/lib/bomb.jar", bytes(64 << 20))
    assert len(out.getvalue()) < 1 << 20
    outer = jar(poms=[("g", "app", "1")], nested={"BOOT-INF/lib/inner.jar": out.getvalue()})
    outcome = parse(outer, path="app.jar")
    assert [p.name for p in outcome.packages] == ["g:app"]
    assert any("bomb.jar: declares 67108864 bytes" in note for note in outcome.notes)


def test_the_entry_count_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(java, "MAX_ENTRIES", 5)
    data = jar(poms=[("g", "a", "1")], extra={f"x/{i}.class": b"" for i in range(10)})
    outcome = parse(data)
    assert outcome.packages == () and "entries, past the 5" in outcome.notes[0]


def test_count_entries_counts_the_real_records() -> None:
    data = jar(extra={f"x/{i}": b"" for i in range(7)})
    assert java.count_entries(io.BytesIO(data)) == len(zipfile.ZipFile(io.BytesIO(data)).infolist())
    # zip64 end records (forced): the count still comes from the directory
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", allowZip64=True) as zf:
        for i in range(3):
            zf.writestr(f"f{i}", b"x")
        zf._didModify = True  # noqa: SLF001
    assert java.count_entries(io.BytesIO(out.getvalue())) == 3


def test_not_a_zip_and_corrupt_entries_are_notes() -> None:
    assert "not a zip archive" in parse(b"PK\x03\x04 nope").notes[0]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("META-INF/maven/g/a/pom.properties", "groupId=g\nartifactId=a\nversion=1\n")
    data = out.getvalue().replace(b"groupId=g", b"groupId=h")  # the CRC no longer matches
    outcome = parse(data)
    assert outcome.packages == () and "unreadable (BadZipFile)" in outcome.notes[0]
