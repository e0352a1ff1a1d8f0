"""Lists: the base endpoint, tags/list and _catalog with pagination, and the referrers API."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from tests.integration.helpers import (  # noqa: F401  (no_server_errors is an autouse fixture)
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    assert_error,
    descriptor,
    image_manifest,
    index_manifest,
    no_server_errors,
    push_blob,
    push_image,
    put_manifest,
    sha256,
)

LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


def next_link(response) -> str | None:  # type: ignore[no-untyped-def]
    link = response.headers.get("link")
    if link is None:
        return None
    m = LINK.match(link)
    assert m, link
    return m.group("url")


def test_base(app_client: TestClient) -> None:
    r = app_client.get("/v2/")
    assert r.status_code == 200
    assert r.json() == {}
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    assert app_client.get("/v2").status_code == 200
    assert app_client.head("/v2/").status_code == 200


def test_tags_list(app_client: TestClient) -> None:
    _, body = push_image(app_client, "lib/tags", "b")
    for tag in ("a", "C", "1.0", "latest"):
        assert put_manifest(app_client, "lib/tags", tag, body).status_code == 201
    r = app_client.get("/v2/lib/tags/tags/list")
    assert r.status_code == 200
    assert r.json() == {"name": "lib/tags", "tags": ["1.0", "C", "a", "b", "latest"]}
    assert "link" not in r.headers


def test_tags_list_pagination(app_client: TestClient) -> None:
    _, body = push_image(app_client, "paged", "t00")
    tags = [f"t{i:02d}" for i in range(11)]
    for tag in tags[1:]:
        put_manifest(app_client, "paged", tag, body)
    seen: list[str] = []
    url: str | None = "/v2/paged/tags/list?n=3"
    pages = 0
    while url:
        r = app_client.get(url)
        assert r.status_code == 200
        page = r.json()["tags"]
        assert len(page) <= 3
        seen += page
        url = next_link(r)
        pages += 1
        if url:
            assert url.startswith("/v2/paged/tags/list?")
            assert "n=3" in url and f"last={page[-1]}" in url
    assert seen == tags
    assert pages == 4
    r = app_client.get("/v2/paged/tags/list", params={"n": 2, "last": "t05"})
    assert r.json()["tags"] == ["t06", "t07"]
    r = app_client.get("/v2/paged/tags/list", params={"last": "t08"})
    assert r.json()["tags"] == ["t09", "t10"]
    assert "link" not in r.headers
    # exactly the number left: no Link
    r = app_client.get("/v2/paged/tags/list", params={"n": 2, "last": "t08"})
    assert r.json()["tags"] == ["t09", "t10"]
    assert "link" not in r.headers
    r = app_client.get("/v2/paged/tags/list", params={"last": "zzz"})
    assert r.json()["tags"] == []
    r = app_client.get("/v2/paged/tags/list", params={"n": 0})
    assert r.status_code == 200
    assert r.json()["tags"] == []


def test_tags_list_of_unknown_repository(app_client: TestClient) -> None:
    assert_error(app_client.get("/v2/does/not/exist/tags/list"), 404, "NAME_UNKNOWN")
    assert_error(app_client.get("/v2/does/not/exist/tags/list?n=5"), 404, "NAME_UNKNOWN")


def test_tags_list_of_repository_without_tags(app_client: TestClient) -> None:
    push_blob(app_client, "untagged", b"x")
    r = app_client.get("/v2/untagged/tags/list")
    assert r.status_code == 200
    assert r.json() == {"name": "untagged", "tags": []}


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "1e3", "0x10", "--1", "١", "1_0", "+5", " 5"])
def test_bad_page_size(app_client: TestClient, n: str) -> None:
    push_image(app_client, "pages", "v1")
    assert_error(app_client.get("/v2/pages/tags/list", params={"n": n}), 400, "PAGINATION_NUMBER_INVALID")
    assert_error(app_client.get("/v2/_catalog", params={"n": n}), 400, "PAGINATION_NUMBER_INVALID")


@pytest.mark.parametrize("last", ["-bad", ".x", "a" * 129, "has space", "é", "a/b"])
def test_bad_last_tag(app_client: TestClient, last: str) -> None:
    """A `last` no tag could be named is TAG_INVALID (distribution's code for a bad tag)."""
    push_image(app_client, "pages", "v1")
    assert_error(app_client.get("/v2/pages/tags/list", params={"last": last}), 400, "TAG_INVALID")
    assert_error(app_client.get("/v2/pages/tags/list", params={"n": "1", "last": last}), 400, "TAG_INVALID")


@pytest.mark.parametrize("last", ["UPPER", "-bad", "a//b", "a/", "has space", "é", "a" * 256])
def test_bad_last_repository(app_client: TestClient, last: str) -> None:
    """A `last` no repository could be named is NAME_INVALID, from the spec's table."""
    push_image(app_client, "pages", "v1")
    assert_error(app_client.get("/v2/_catalog", params={"last": last}), 400, "NAME_INVALID")


def test_good_last_that_names_nothing(app_client: TestClient) -> None:
    push_image(app_client, "pages", "v1")
    push_image(app_client, "pages", "v3")
    assert app_client.get("/v2/pages/tags/list", params={"last": "v2"}).json()["tags"] == ["v3"]
    assert app_client.get("/v2/_catalog", params={"last": "a/b"}).json()["repositories"] == ["pages"]


def test_huge_page_size_is_capped(app_client: TestClient) -> None:
    push_image(app_client, "pages", "v1")
    r = app_client.get("/v2/pages/tags/list", params={"n": "9" * 40})
    assert r.status_code == 200
    assert r.json()["tags"] == ["v1"]
    assert app_client.get("/v2/_catalog", params={"n": "9" * 40}).json()["repositories"] == ["pages"]


def test_catalog_pagination(app_client: TestClient) -> None:
    names = sorted(["alpha", "beta", "gamma/one", "gamma/two", "delta", "a/b/c", "zeta"])
    for name in names:
        push_blob(app_client, name, name.encode())
    r = app_client.get("/v2/_catalog")
    assert r.status_code == 200
    assert r.json() == {"repositories": names}
    assert "link" not in r.headers
    seen: list[str] = []
    url: str | None = "/v2/_catalog?n=2"
    while url:
        r = app_client.get(url)
        page = r.json()["repositories"]
        assert 0 < len(page) <= 2
        seen += page
        url = next_link(r)
        if url:
            assert url.startswith("/v2/_catalog?") and "n=2" in url
    assert seen == names
    r = app_client.get("/v2/_catalog", params={"n": 3, "last": "beta"})
    assert r.json()["repositories"] == names[names.index("beta") + 1:][:3]
    assert next_link(r) is not None
    r = app_client.get("/v2/_catalog", params={"n": 0})
    assert r.json()["repositories"] == []


def test_catalog_link_escapes_names(app_client: TestClient) -> None:
    for name in ("a/b", "a/c", "a/d"):
        push_blob(app_client, name, b"x")
    r = app_client.get("/v2/_catalog", params={"n": 1})
    url = next_link(r)
    assert url is not None
    r = app_client.get(url)
    assert r.json()["repositories"] == ["a/c"]


def test_catalog_empty(app_client: TestClient) -> None:
    assert app_client.get("/v2/_catalog").json() == {"repositories": []}


# -- referrers ------------------------------------------------------------------------------------
def push_referrer(client: TestClient, repo: str, subject: tuple[str, bytes], artifact_type: str | None,
                  config_type: str = OCI_EMPTY, annotations: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    config = b"{}"
    push_blob(client, repo, config)
    layer = f"signature for {subject[0]} {artifact_type} {annotations}".encode()
    push_blob(client, repo, layer)
    extra: dict[str, object] = {"subject": descriptor(OCI_MANIFEST, subject[1], subject[0])}
    if artifact_type:
        extra["artifactType"] = artifact_type
    if annotations:
        extra["annotations"] = annotations
    body = image_manifest(descriptor(config_type, config), [descriptor(OCI_LAYER, layer)], **extra)
    r = put_manifest(client, repo, sha256(body), body)
    assert r.status_code == 201, r.text
    return r, sha256(body), body


def test_push_with_subject_answers_oci_subject(app_client: TestClient) -> None:
    subject = push_image(app_client, "refs", "v1")
    r, _, _ = push_referrer(app_client, "refs", subject, "application/vnd.example.sig")
    assert r.headers["oci-subject"] == subject[0]
    # without a subject, no header
    r = put_manifest(app_client, "refs", "v2", subject[1])
    assert "oci-subject" not in r.headers


def test_subject_need_not_exist(app_client: TestClient) -> None:
    absent = image_manifest(descriptor(OCI_CONFIG, b"absent"), [])
    push_image(app_client, "refs", "v1")
    r, digest, _ = push_referrer(app_client, "refs", (sha256(absent), absent), "application/vnd.example.sbom")
    assert r.headers["oci-subject"] == sha256(absent)
    r = app_client.get(f"/v2/refs/referrers/{sha256(absent)}")
    assert [m["digest"] for m in r.json()["manifests"]] == [digest]


def test_referrers(app_client: TestClient) -> None:
    subject = push_image(app_client, "refs", "v1")
    _, sig, sig_body = push_referrer(app_client, "refs", subject, "application/vnd.example.sig", annotations={"k": "v"})
    _, sbom, _ = push_referrer(app_client, "refs", subject, "application/vnd.example.sbom")
    _, by_config, _ = push_referrer(app_client, "refs", subject, None, config_type="application/vnd.example.config")
    r = app_client.get(f"/v2/refs/referrers/{subject[0]}")
    assert r.status_code == 200
    assert r.headers["content-type"] == OCI_INDEX
    assert "oci-filters-applied" not in r.headers
    index = r.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    found = {m["digest"]: m for m in index["manifests"]}
    assert set(found) == {sig, sbom, by_config}
    assert found[sig] == {"mediaType": OCI_MANIFEST, "digest": sig, "size": len(sig_body),
                          "artifactType": "application/vnd.example.sig", "annotations": {"k": "v"}}
    assert found[by_config]["artifactType"] == "application/vnd.example.config"


def test_referrers_filtered_by_artifact_type(app_client: TestClient) -> None:
    subject = push_image(app_client, "refs", "v1")
    _, sig, _ = push_referrer(app_client, "refs", subject, "application/vnd.example.sig")
    push_referrer(app_client, "refs", subject, "application/vnd.example.sbom")
    r = app_client.get(f"/v2/refs/referrers/{subject[0]}", params={"artifactType": "application/vnd.example.sig"})
    assert r.status_code == 200
    assert r.headers["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [sig]
    r = app_client.get(f"/v2/refs/referrers/{subject[0]}", params={"artifactType": "application/none"})
    assert r.headers["oci-filters-applied"] == "artifactType"
    assert r.json()["manifests"] == []


def test_referrers_of_unknown_digest_is_an_empty_index(app_client: TestClient) -> None:
    push_image(app_client, "refs", "v1")
    r = app_client.get(f"/v2/refs/referrers/{sha256(b'nothing refers to this')}")
    assert r.status_code == 200
    assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_referrers_stay_in_their_repository(app_client: TestClient) -> None:
    subject = push_image(app_client, "refs", "v1")
    push_referrer(app_client, "refs", subject, "application/vnd.example.sig")
    push_image(app_client, "other", "v1")
    assert app_client.get(f"/v2/other/referrers/{subject[0]}").json()["manifests"] == []


def test_deleted_referrer_disappears(app_client: TestClient) -> None:
    subject = push_image(app_client, "refs", "v1")
    _, sig, _ = push_referrer(app_client, "refs", subject, "application/vnd.example.sig")
    assert app_client.delete(f"/v2/refs/manifests/{sig}").status_code == 202
    assert app_client.get(f"/v2/refs/referrers/{subject[0]}").json()["manifests"] == []


def test_index_with_subject(app_client: TestClient) -> None:
    subject = push_image(app_client, "refs", "v1")
    child = push_image(app_client, "refs", None, layer=b"child")
    body = index_manifest([descriptor(OCI_MANIFEST, child[1], child[0])], artifactType="application/vnd.example.bundle",
                          subject=descriptor(OCI_MANIFEST, subject[1], subject[0]))
    r = put_manifest(app_client, "refs", sha256(body), body, OCI_INDEX)
    assert r.status_code == 201
    assert r.headers["oci-subject"] == subject[0]
    found = app_client.get(f"/v2/refs/referrers/{subject[0]}").json()["manifests"]
    assert found == [{"mediaType": OCI_INDEX, "digest": sha256(body), "size": len(body),
                      "artifactType": "application/vnd.example.bundle"}]


def test_referrers_with_bad_digest(app_client: TestClient) -> None:
    push_image(app_client, "refs", "v1")
    for ref in ("latest", "sha256:abc", "md5:" + "0" * 32):
        assert_error(app_client.get(f"/v2/refs/referrers/{ref}"), 400, "DIGEST_INVALID")
