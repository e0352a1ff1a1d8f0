"""Image versions in the web console, pushed through /v2: the versions list (digest, size,
platforms, sorting, pages, search), the page of one image or index, deleting a tag, and the audit
log of those deletions.
"""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from dockyard.web.i18n import human_size
from tests.integration.console_helpers import (  # noqa: F401  (app, registry, console are fixtures)
    app,
    attr,
    config,
    console,
    elements,
    flashes,
    location,
    make_namespace,
    post,
    registry,
    tags_of,
    texts,
)
from tests.integration.helpers import (  # noqa: F401  (no_server_errors is an autouse fixture)
    OCI_CONFIG,
    OCI_LAYER,
    descriptor,
    image_manifest,
    no_server_errors,
    push_blob,
    push_image,
    push_index,
    put_manifest,
    sha256,
)


# -- image versions -----------------------------------------------------------------------------------------
def version_rows(html: str) -> list[str]:
    return attr(html, "version-row", "data-tag")


def row_blocks(html: str) -> dict[str, str]:
    return {re.search(r'data-tag="([^"]+)"', block).group(1): block  # type: ignore[union-attr]
            for block in re.findall(r'<tr data-testid="version-row".*?</tr>', html, re.S)}


def test_versions_list_tags_with_digest_size_and_platforms(console: TestClient, registry: TestClient) -> None:
    make_namespace(console, "team")
    amd64_config, arm64_config = config("amd64"), config("arm64", "v8")
    amd64, amd64_body = push_image(registry, "team/app", "1.0", config=amd64_config, layer=b"amd64 layer")
    arm64, arm64_body = push_image(registry, "team/app", None, config=arm64_config, layer=b"arm64 layer bytes")
    multi, multi_body = push_index(registry, "team/app", "multi", [(amd64, amd64_body), (arm64, arm64_body)])

    page = console.get("/console/repo/team/app/-/versions")
    assert page.status_code == 200
    assert sorted(version_rows(page.text)) == ["1.0", "multi"]
    assert texts(page.text, "versions-total") == ["2 tags"]
    rows = row_blocks(page.text)
    assert attr(rows["1.0"], "version-digest", "title") == [amd64]
    assert texts(rows["1.0"], "version-digest") == [f"sha256:{amd64[7:19]}"]
    amd64_size = len(amd64_body) + len(amd64_config) + len(b"amd64 layer")
    arm64_size = len(arm64_body) + len(arm64_config) + len(b"arm64 layer bytes")
    assert texts(rows["1.0"], "version-size") == [human_size(amd64_size)]
    assert texts(rows["1.0"], "platform") == ["linux/amd64"]
    assert attr(rows["multi"], "version-digest", "title") == [multi]
    assert texts(rows["multi"], "version-size") == [human_size(len(multi_body) + amd64_size + arm64_size)]
    assert texts(rows["multi"], "platform") == [f"linux/amd64 {human_size(amd64_size)}",
                                                f"linux/arm64/v8 {human_size(arm64_size)}"]
    assert "multi-arch" in rows["multi"] and "multi-arch" not in rows["1.0"]
    assert elements(page.text, "tag-delete")  # the administrator may delete tags


def test_versions_sort_and_pages(console: TestClient, registry: TestClient) -> None:
    make_namespace(console, "team")
    names = [f"t{i:02d}" for i in range(45)]
    for name in names:
        push_image(registry, "team/app", name, config=config(), layer=b"shared layer")
    url = "/console/repo/team/app/-/versions"
    get = lambda **params: console.get(url, params=params)  # noqa: E731

    asc = get(sort="name", order="asc", per_page="20")
    assert version_rows(asc.text) == names[:20]
    assert texts(asc.text, "versions-total") == ["45 tags"]
    assert texts(asc.text, "page-3") == ["3"] and not elements(asc.text, "page-4")
    assert "Page 1 of 3" in asc.text
    assert version_rows(get(sort="name", order="desc", per_page="20").text) == names[::-1][:20]
    assert version_rows(get(sort="name", per_page="20").text) == names[:20]  # name sorts ascending by default
    assert version_rows(get(sort="name", order="asc", per_page="20", page="2").text) == names[20:40]
    last = get(sort="name", order="asc", per_page="20", page="3").text
    assert version_rows(last) == names[40:]
    assert len(version_rows(last)) == 5
    assert "Page 3 of 3" in last
    assert version_rows(get(sort="name", order="desc", per_page="20", page="3").text) == names[::-1][40:]
    assert version_rows(get(sort="name", order="asc", per_page="20", page="9").text) == names[40:]  # clamped
    assert version_rows(get(sort="name", order="asc", per_page="20", page="0").text) == names[:20]
    assert len(version_rows(get(sort="name").text)) == 45  # 50 a page by default
    assert len(version_rows(get(per_page="7").text)) == 45  # not an offered page size: the default
    for sort in ("pushed", "pulled", "size"):
        assert sorted(version_rows(get(sort=sort, per_page="50").text)) == names

    found = get(q="t1", sort="name")
    assert version_rows(found.text) == [f"t1{i}" for i in range(10)]
    assert texts(found.text, "versions-total") == ["10 tags"]
    assert version_rows(get(q="T4", sort="name", order="desc").text) == ["t44", "t43", "t42", "t41", "t40"]
    nothing = get(q="zzz").text
    assert version_rows(nothing) == [] and "No tags match." in nothing

    partial = console.get(url, params={"sort": "name", "order": "desc", "q": "t2"},
                          headers={"HX-Request": "true", "HX-Target": "versions"})
    assert partial.status_code == 200
    assert "<html" not in partial.text and "<table" in partial.text
    assert version_rows(partial.text) == [f"t2{i}" for i in range(9, -1, -1)]


@pytest.mark.parametrize("params", [{"sort": "evil"}, {"sort": "name; drop table tags"}, {"order": "sideways"},
                                    {"sort": "name", "order": "ASC"}, {"sort": "x" * 5000}])
def test_versions_bad_sort_is_a_4xx_page(console: TestClient, registry: TestClient, params: dict[str, str]) -> None:
    make_namespace(console, "team")
    push_image(registry, "team/app", "v1", config=config())
    r = console.get("/console/repo/team/app/-/versions", params=params)
    assert 400 <= r.status_code < 500, r.status_code
    assert texts(r.text, "error-message")
    assert "<html" in r.text


def test_version_page_of_an_image(console: TestClient, registry: TestClient) -> None:
    make_namespace(console, "team")
    history = [
        {"created": "2024-05-01T10:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc123 in / "},
        {"created": "2024-05-01T10:00:01Z", "created_by": '/bin/sh -c #(nop)  CMD ["/bin/sh"]', "empty_layer": True},
        {"created": "2024-05-01T10:00:02Z", "created_by": "RUN /bin/sh -c apk add --no-cache curl # buildkit"},
    ]
    cfg = config("arm64", "v8", history=history, author="Jane <jane@example.com>",
                 config={"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin"],
                         "Labels": {"org.opencontainers.image.title": "app"}})
    layer1, layer2 = b"base layer", b"curl layer"
    push_blob(registry, "team/app", cfg)
    push_blob(registry, "team/app", layer1)
    push_blob(registry, "team/app", layer2)
    body = image_manifest(descriptor(OCI_CONFIG, cfg), [descriptor(OCI_LAYER, layer1), descriptor(OCI_LAYER, layer2)],
                          annotations={"org.opencontainers.image.source": "https://example.com/app"})
    assert put_manifest(registry, "team/app", "1.0", body).status_code == 201
    digest = sha256(body)

    for reference in ("1.0", digest):
        page = console.get(f"/console/repo/team/app/-/versions/{reference}")
        assert page.status_code == 200, page.text[:500]
        assert texts(page.text, "detail-digest") == [digest]
        assert texts(page.text, "detail-platform") == ["linux/arm64/v8"]
        assert texts(page.text, "detail-size") == [human_size(len(body) + len(cfg) + len(layer1) + len(layer2))]
        assert len(elements(page.text, "layer-row")) == 2
        assert texts(page.text, "layer-command") == ["/bin/sh -c #(nop) ADD file:abc123 in /",
                                                     "RUN /bin/sh -c apk add --no-cache curl # buildkit"]
        assert '/bin/sh -c #(nop)  CMD [&#34;/bin/sh&#34;]' in page.text  # the history, escaped
        assert "Jane &lt;jane@example.com&gt;" in page.text
        assert "org.opencontainers.image.title" in "".join(texts(page.text, "labels"))
        assert "https://example.com/app" in "".join(texts(page.text, "annotations"))
        assert not elements(page.text, "child-platform")


def test_version_page_of_an_index(console: TestClient, registry: TestClient) -> None:
    make_namespace(console, "team")
    children = [push_image(registry, "team/app", None, config=config(arch), layer=f"{arch} layer".encode())
                for arch in ("amd64", "arm64", "s390x")]
    digest, _ = push_index(registry, "team/app", "multi", children)
    page = console.get("/console/repo/team/app/-/versions/multi")
    assert page.status_code == 200
    assert texts(page.text, "detail-digest") == [digest]
    platforms = elements(page.text, "child-platform")
    assert [p["text"].split()[0] for p in platforms] == ["linux/amd64", "linux/arm64", "linux/s390x"]
    for (child, _), shown in zip(children, platforms, strict=True):
        assert f"/console/repo/team/app/-/versions/{child.replace(':', '%3A')}" in page.text
        assert f"sha256:{child[7:19]}" in shown["text"]
    assert not elements(page.text, "layer-row") and not elements(page.text, "detail-platform")
    # a child, by digest
    child = console.get(f"/console/repo/team/app/-/versions/{children[1][0]}")
    assert texts(child.text, "detail-platform") == ["linux/arm64"]


def test_unknown_versions_are_404_and_bad_references_4xx(console: TestClient, registry: TestClient) -> None:
    make_namespace(console, "team")
    push_image(registry, "team/app", "v1", config=config())
    assert console.get("/console/repo/team/app/-/versions/nope").status_code == 404
    assert console.get("/console/repo/team/app/-/versions/sha256:" + "a" * 64).status_code == 404
    assert console.get("/console/repo/team/nothing/-/versions").status_code == 404
    assert console.get("/console/repo/team/nothing/-/versions/v1").status_code == 404
    assert console.get("/console/repo/team/app/-/nowhere").status_code == 404
    for bad in ("sha256:zzz", "bad!tag", "-v1", "x" * 200, "sha256:" + "A" * 64):
        r = console.get(f"/console/repo/team/app/-/versions/{bad}")
        assert 400 <= r.status_code < 500, (bad, r.status_code)


def test_delete_a_tag(console: TestClient, registry: TestClient) -> None:
    make_namespace(console, "team")
    for tag in ("v1", "v2", "v3"):
        push_image(registry, "team/app", tag, config=config())
    r = post(console, "/console/repo/team/app/-/tags/v1/delete")
    assert location(r) == "/console/repo/team/app/-/versions"
    assert flashes(console, r, "ok") == ["Tag v1 deleted."]
    assert tags_of(registry, "team/app") == ["v2", "v3"]
    assert registry.get("/v2/team/app/manifests/v1").status_code == 404
    assert sorted(version_rows(console.get("/console/repo/team/app/-/versions").text)) == ["v2", "v3"]
    # back to the page the form was on, if it is this repository's versions list
    back = "/console/repo/team/app/-/versions?sort=name&order=desc"
    assert location(post(console, "/console/repo/team/app/-/tags/v2/delete", back=back)) == back
    assert location(post(console, "/console/repo/team/app/-/tags/v3/delete", back="https://evil.com/")) == \
        "/console/repo/team/app/-/versions"
    assert tags_of(registry, "team/app") == []
    # an unknown tag: back to the form's page with the reason (a POST's errors are flashed, never a dead end)
    assert post(console, "/console/repo/team/app/-/tags/v1/delete").status_code == 303

    audit = console.get("/console/audit", params={"action": "tag.delete"}).text
    rows = elements(audit, "audit-row")
    assert [r["attrs"]["data-action"] for r in rows] == ["tag.delete"] * 3
    assert all("team/app" in r["text"] and "admin" in r["text"] for r in rows)
    assert ["v3" in rows[0]["text"], "v2" in rows[1]["text"], "v1" in rows[2]["text"]] == [True] * 3  # newest first
    everything = attr(console.get("/console/audit").text, "audit-row", "data-action")
    assert "namespace.create" in everything and everything.count("tag.delete") == 3
    assert attr(console.get("/console/audit", params={"action": "namespace."}).text, "audit-row",
                "data-action") == ["namespace.create"]


def test_the_overview_lists_the_latest_versions(console: TestClient, registry: TestClient) -> None:
    make_namespace(console, "team")
    for n in range(7):
        push_image(registry, "team/app", f"v{n}", config=config("amd64"), layer=f"layer {n}".encode())
    page = console.get("/console/repo/team/app").text
    latest = re.findall(r'data-testid="latest-version"><a href="[^"]+">([^<]+)</a>', page)
    assert latest == ["v6", "v5", "v4", "v3", "v2"]
    assert "All 7 versions" in page
