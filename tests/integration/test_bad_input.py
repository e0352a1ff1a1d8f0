"""Bad input everywhere: invalid names and tags, malformed manifests, wrong methods, odd paths and
headers. Each answer is the spec's error (never a 500), and nothing is written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from dockyard.config import Settings
from tests.integration.helpers import (  # noqa: F401  (no_server_errors is an autouse fixture)
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    assert_error,
    descriptor,
    dumps,
    no_server_errors,
    push_blob,
    push_image,
    put_manifest,
    raw_request,
    sha256,
    snapshot,
)

BAD_NAMES = ["UPPER", "Mixed/case", "a..b", "a//b", "-leading", "trailing-", "a/-b", "a_", "a__-b",
             "white space", "a/b/", "ünïcode", "a" * 256, "/".join(["ab"] * 100), "x:5000", "a@b", "a+b"]


def urls(name: str) -> list[tuple[str, str]]:
    digest = sha256(b"x")
    return [
        ("GET", f"/v2/{name}/tags/list"),
        ("GET", f"/v2/{name}/manifests/latest"),
        ("HEAD", f"/v2/{name}/manifests/latest"),
        ("PUT", f"/v2/{name}/manifests/latest"),
        ("DELETE", f"/v2/{name}/manifests/latest"),
        ("GET", f"/v2/{name}/blobs/{digest}"),
        ("DELETE", f"/v2/{name}/blobs/{digest}"),
        ("POST", f"/v2/{name}/blobs/uploads/"),
        ("PATCH", f"/v2/{name}/blobs/uploads/{'0' * 32}"),
        ("GET", f"/v2/{name}/referrers/{digest}"),
    ]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_names(app_client: TestClient, settings: Settings, name: str) -> None:
    for method, url in urls(name):
        r = app_client.request(method, url, content=b"{}" if method in ("PUT", "PATCH") else None)
        if method == "HEAD":
            assert r.status_code == 400
        else:
            assert_error(r, 400, "NAME_INVALID")
    assert snapshot(app_client, settings) == (set(), [])


def test_name_length_limit(app_client: TestClient) -> None:
    name = "/".join(["a" * 50] * 5)  # 254 characters
    assert len(name) <= 255
    push_blob(app_client, name, b"ok")
    assert_error(app_client.post(f"/v2/{name}xx/blobs/uploads/"), 400, "NAME_INVALID")


@pytest.mark.parametrize("raw_path", [
    b"/v2/a/../b/tags/list", b"/v2/../etc/tags/list", b"/v2/a/%2e%2e/b/tags/list", b"/v2/%2e%2e/tags/list",
    b"/v2/a/%2E%2E/%2E%2E/b/tags/list", b"//v2/a/tags/list", b"/v2//a/tags/list", b"/v2/a//b/tags/list",
    b"/v2/a/./b/tags/list", b"/v2/a%2fb%2f..%2fc/tags/list", b"/v2/a%00b/tags/list", b"/v2/a%0ab/tags/list",
    b"/v2/%c3%a9/tags/list", b"/v2/%ff%fe/tags/list",
])
def test_traversal_and_odd_paths(app_client: TestClient, raw_path: bytes) -> None:
    push_image(app_client, "b", "v1")
    r = raw_request(app_client, "GET", raw_path)
    if raw_path.startswith(b"//"):
        assert r.status_code == 404
    else:
        assert_error(r, 400, "NAME_INVALID")


def test_traversal_on_blob_and_upload_paths(app_client: TestClient, settings: Settings) -> None:
    digest = sha256(b"x")
    for raw in (f"/v2/a/%2e%2e/b/blobs/{digest}", "/v2/%2e%2e/blobs/uploads/", f"/v2/a/../b/manifests/{digest}"):
        for method in ("GET", "POST", "PUT", "DELETE"):
            r = raw_request(app_client, method, raw.encode(), body=b"x")
            assert r.status_code in (400, 405), (method, raw, r.status_code)
            if r.status_code == 400:
                assert_error(r, 400, "NAME_INVALID")
    assert snapshot(app_client, settings) == (set(), [])


@pytest.mark.parametrize("tag", [".hidden", "-dash", "a" * 129, "tag!", "t%20t", "%C3%A9", "t*", "a,b"])
def test_invalid_tags(app_client: TestClient, settings: Settings, tag: str) -> None:
    _, body = push_image(app_client, "tags", "ok")
    before = snapshot(app_client, settings)
    assert_error(put_manifest(app_client, "tags", tag, body), 400, "MANIFEST_INVALID")
    assert_error(app_client.get(f"/v2/tags/manifests/{tag}"), 400, "MANIFEST_INVALID")
    assert_error(app_client.delete(f"/v2/tags/manifests/{tag}"), 400, "MANIFEST_INVALID")
    assert app_client.get("/v2/tags/tags/list").json()["tags"] == ["ok"]
    assert snapshot(app_client, settings) == before


def test_longest_tag_is_accepted(app_client: TestClient) -> None:
    tag = "T" + "a_b.c-" * 21 + "x"
    assert len(tag) == 128
    digest, _ = push_image(app_client, "tags", tag)
    assert app_client.get(f"/v2/tags/manifests/{tag}").headers["docker-content-digest"] == digest


@pytest.mark.parametrize("reference", ["sha256:abc", "md5:" + "0" * 32, "sha256:" + "G" * 64, "a:b:c"])
def test_invalid_digest_references(app_client: TestClient, reference: str) -> None:
    _, body = push_image(app_client, "refs", "v1")
    assert_error(app_client.get(f"/v2/refs/manifests/{reference}"), 400, "DIGEST_INVALID")
    assert_error(app_client.delete(f"/v2/refs/manifests/{reference}"), 400, "DIGEST_INVALID")
    assert_error(put_manifest(app_client, "refs", reference, body), 400, "DIGEST_INVALID")
    assert_error(app_client.get(f"/v2/refs/referrers/{reference}"), 400, "DIGEST_INVALID")


def _image(config: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": config or descriptor(OCI_CONFIG, b"{}"), "layers": [descriptor(OCI_LAYER, b"L")]}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


GOOD_DESC = descriptor(OCI_LAYER, b"L")
INVALID_MANIFESTS: dict[str, tuple[bytes, str]] = {
    "not json": (b"this is not json", OCI_MANIFEST),
    "truncated": (dumps(_image())[:-5], OCI_MANIFEST),
    "binary": (bytes(range(256)), OCI_MANIFEST),
    "empty": (b"", OCI_MANIFEST),
    "utf16": (json.dumps(_image()).encode("utf-16"), OCI_MANIFEST),
    "array": (b"[]", OCI_MANIFEST),
    "string": (b'"manifest"', OCI_MANIFEST),
    "null": (b"null", OCI_MANIFEST),
    "no schemaVersion": (dumps(_image(schemaVersion=None)), OCI_MANIFEST),
    "schemaVersion 3": (dumps(_image(schemaVersion=3)), OCI_MANIFEST),
    "schemaVersion string": (dumps(_image(schemaVersion="2")), OCI_MANIFEST),
    "schemaVersion true": (dumps(_image(schemaVersion=True)), OCI_MANIFEST),
    "mediaType vs Content-Type": (dumps(_image()), DOCKER_MANIFEST),
    "index body as image type": (dumps({"schemaVersion": 2, "manifests": []}), OCI_MANIFEST),
    "image type vs index Content-Type": (dumps(_image()), OCI_INDEX),
    "docker list vs oci index": (dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": []}), OCI_INDEX),
    "unknown mediaType": (dumps(_image(mediaType="application/x-unknown")), OCI_MANIFEST),
    "mediaType not a string": (dumps(_image(mediaType=5)), OCI_MANIFEST),
    "no config": (dumps(_image(config=None) | {"config": None}), OCI_MANIFEST),
    "config a string": (dumps(_image(config="sha256:abc")), OCI_MANIFEST),
    "layers not a list": (dumps(_image(layers={"a": 1})), OCI_MANIFEST),
    "layer not an object": (dumps(_image(layers=["x"])), OCI_MANIFEST),
    "descriptor without digest": (dumps(_image(layers=[{"mediaType": OCI_LAYER, "size": 1}])), OCI_MANIFEST),
    "descriptor bad digest": (dumps(_image(layers=[{**GOOD_DESC, "digest": "sha256:nothex"}])), OCI_MANIFEST),
    "descriptor md5 digest": (dumps(_image(layers=[{**GOOD_DESC, "digest": "md5:" + "0" * 32}])), OCI_MANIFEST),
    "descriptor negative size": (dumps(_image(layers=[{**GOOD_DESC, "size": -1}])), OCI_MANIFEST),
    "descriptor size string": (dumps(_image(layers=[{**GOOD_DESC, "size": "1"}])), OCI_MANIFEST),
    "descriptor size float": (dumps(_image(layers=[{**GOOD_DESC, "size": 1.5}])), OCI_MANIFEST),
    "descriptor size bool": (dumps(_image(layers=[{**GOOD_DESC, "size": True}])), OCI_MANIFEST),
    "descriptor without mediaType": (dumps(_image(layers=[{k: v for k, v in GOOD_DESC.items() if k != "mediaType"}])),
                                     OCI_MANIFEST),
    "descriptor bad annotations": (dumps(_image(layers=[{**GOOD_DESC, "annotations": {"a": 1}}])), OCI_MANIFEST),
    "descriptor bad urls": (dumps(_image(layers=[{**GOOD_DESC, "urls": "http://x"}])), OCI_MANIFEST),
    "bad subject": (dumps(_image(subject={"digest": "sha256:x"})), OCI_MANIFEST),
    "artifactType not a string": (dumps(_image(artifactType=["a"])), OCI_MANIFEST),
    "annotations a list": (dumps(_image(annotations=["a"])), OCI_MANIFEST),
    "docker manifest without layers": (dumps(_image(mediaType=DOCKER_MANIFEST, layers=[])), DOCKER_MANIFEST),
    "image with manifests": (dumps(_image(manifests=[])), OCI_MANIFEST),
    "index with layers": (dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "layers": []}), OCI_INDEX),
    "index manifests not a list": (dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": {}}), OCI_INDEX),
    "index bad child": (dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"digest": 1}]}), OCI_INDEX),
    "no shape": (dumps({"schemaVersion": 2}), "application/octet-stream"),
    "deeply nested": (b'{"schemaVersion": 2, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", OCI_MANIFEST),
    "huge integer": (b'{"schemaVersion": ' + b"9" * 5000 + b"}", OCI_MANIFEST),
    "huge size": (dumps(_image(layers=[{**GOOD_DESC, "size": 10**30}])).replace(b"1" + b"0" * 30, b"1" + b"0" * 5000),
                  OCI_MANIFEST),
    "nan": (dumps(_image()).replace(b'"schemaVersion":2', b'"schemaVersion":NaN'), OCI_MANIFEST),
    "lone surrogate": (dumps(_image()).replace(b'"layers"', b'"\\ud800":1,"layers"'), OCI_MANIFEST),
}


@pytest.mark.parametrize("case", sorted(INVALID_MANIFESTS))
def test_invalid_manifests(app_client: TestClient, settings: Settings, case: str) -> None:
    push_blob(app_client, "bad", b"{}")
    push_blob(app_client, "bad", b"L")
    before = snapshot(app_client, settings)
    body, content_type = INVALID_MANIFESTS[case]
    r = put_manifest(app_client, "bad", "v1", body, content_type)
    if case == "lone surrogate":  # valid JSON, and nothing else wrong with it
        assert r.status_code == 201
        return
    assert_error(r, 400, "MANIFEST_INVALID")
    assert_error(put_manifest(app_client, "bad", sha256(body), body, content_type), 400, "MANIFEST_INVALID")
    assert_error(app_client.get("/v2/bad/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    assert snapshot(app_client, settings) == before


@pytest.mark.parametrize("char", ["\\u0000", "\\ud800"])
@pytest.mark.parametrize("where", ["artifactType", "config mediaType", "annotation", "layer mediaType"])
def test_odd_characters_in_manifest_fields(app_client: TestClient, settings: Settings, where: str, char: str) -> None:
    """JSON may carry a NUL (PostgreSQL text cannot) or a lone surrogate (not encodable as UTF-8).
    Refused or stored, never a 500."""
    push_blob(app_client, "nul", b"{}")
    push_blob(app_client, "nul", b"L")
    doc = _image()
    value = f"application/x{char}y"
    if where == "artifactType":
        doc["artifactType"] = value
    elif where == "config mediaType":
        doc["config"]["mediaType"] = value
    elif where == "annotation":
        doc["annotations"] = {value: value}
    else:
        doc["layers"][0]["mediaType"] = value
    body = dumps(doc).replace(b"\\\\u", b"\\u")
    r = put_manifest(app_client, "nul", "v1", body)
    assert r.status_code in (201, 400), r.text
    if r.status_code == 400:
        assert_error(r, 400, "MANIFEST_INVALID")
    else:
        assert app_client.get("/v2/nul/manifests/v1").content == body


def test_valid_manifest_without_media_type(app_client: TestClient) -> None:
    push_blob(app_client, "bare", b"{}")
    push_blob(app_client, "bare", b"L")
    body = dumps(_image(mediaType=None))
    assert put_manifest(app_client, "bare", "v1", body, "application/octet-stream").status_code == 201
    assert app_client.get("/v2/bare/manifests/v1").headers["content-type"] == OCI_MANIFEST


@pytest.mark.parametrize(("method", "url"), [
    ("POST", "/v2/"), ("PUT", "/v2/"), ("DELETE", "/v2/_catalog"), ("POST", "/v2/_catalog"),
    ("POST", "/v2/repo/manifests/latest"), ("PATCH", "/v2/repo/manifests/latest"),
    ("PUT", f"/v2/repo/blobs/{sha256(b'x')}"), ("POST", f"/v2/repo/blobs/{sha256(b'x')}"),
    ("PATCH", f"/v2/repo/blobs/{sha256(b'x')}"), ("GET", "/v2/repo/blobs/uploads/"), ("PUT", "/v2/repo/blobs/uploads/"),
    ("DELETE", "/v2/repo/blobs/uploads/"), ("POST", f"/v2/repo/blobs/uploads/{'0' * 32}"),
    ("POST", "/v2/repo/tags/list"), ("DELETE", "/v2/repo/tags/list"), ("PUT", f"/v2/repo/referrers/{sha256(b'x')}"),
])
def test_wrong_methods(app_client: TestClient, settings: Settings, method: str, url: str) -> None:
    r = app_client.request(method, url, content=b"x")
    assert_error(r, 405, "UNSUPPORTED")
    assert method not in r.headers["allow"].split(", ")
    assert snapshot(app_client, settings) == (set(), [])


@pytest.mark.parametrize(("url", "code"), [
    ("/v2/repo", "NAME_UNKNOWN"), ("/v2/repo/", "NAME_UNKNOWN"), ("/v2/repo/tags", "NAME_UNKNOWN"),
    ("/v2/repo/tags/list/", "NAME_UNKNOWN"), ("/v2/repo/unknown/thing", "NAME_UNKNOWN"), ("/v2/_catalog/x", "NAME_UNKNOWN"),
    ("/v2/repo/referrers/", "NAME_UNKNOWN"), ("/v2/repo/manifests/", "MANIFEST_UNKNOWN"),
    ("/v2/repo/manifests/a/b", "MANIFEST_UNKNOWN"), ("/v2/repo/blobs/", "BLOB_UNKNOWN"),
    (f"/v2/repo/blobs/{sha256(b'x')}/more", "BLOB_UNKNOWN"), ("/v2/repo/blobs/uploads/abc/def", "BLOB_UPLOAD_UNKNOWN"),
])
def test_unknown_endpoints(app_client: TestClient, url: str, code: str) -> None:
    """A path no route matches answers the spec's code for what it points at, not a private one."""
    assert_error(app_client.get(url), 404, code)


@pytest.mark.parametrize("header", [b"Basic", b"Basic !!!notbase64", b"Basic " + b"\xff\xfe", b"Bearer", b"Bearer ",
                                    b"Digest abc", b"\xff", b"Basic Zm9v"])
def test_garbage_authorization(app_client: TestClient, settings: Settings, header: bytes) -> None:
    for method, path in (("GET", b"/v2/"), ("POST", b"/v2/repo/blobs/uploads/"), ("GET", b"/v2/_catalog")):
        r = raw_request(app_client, method, path, [(b"authorization", header)], with_auth=False)
        assert_error(r, 401, "UNAUTHORIZED")
        assert r.headers["www-authenticate"].startswith("Bearer realm=")
    assert snapshot(app_client, settings) == (set(), [])


def test_manifest_put_with_bad_content_length(app_client: TestClient, settings: Settings) -> None:
    push_blob(app_client, "cl", b"{}")
    push_blob(app_client, "cl", b"L")
    before = snapshot(app_client, settings)
    body = dumps(_image())
    for value in (b"abc", b"-1", b"\xb2"):
        r = raw_request(app_client, "PUT", b"/v2/cl/manifests/v1",
                        [(b"content-type", OCI_MANIFEST.encode()), (b"content-length", value)], body)
        assert r.status_code == 400
    assert snapshot(app_client, settings) == before


def test_trailing_newline_is_not_ignored(app_client: TestClient, settings: Settings) -> None:
    """`$` in a regex also matches before a final newline: "latest\n" must not pass as a tag."""
    _, body = push_image(app_client, "nl", "v1")
    before = snapshot(app_client, settings)
    digest = sha256(b"data")
    r = raw_request(app_client, "PUT", b"/v2/nl/manifests/latest%0A", [(b"content-type", OCI_MANIFEST.encode())], body)
    assert_error(r, 400, "MANIFEST_INVALID")
    r = raw_request(app_client, "PUT", b"/v2/nl/manifests/" + sha256(body).encode() + b"%0A",
                    [(b"content-type", OCI_MANIFEST.encode())], body)
    assert_error(r, 400, "DIGEST_INVALID")
    r = raw_request(app_client, "POST", b"/v2/nl/blobs/uploads/", body=b"data", query=f"digest={digest}%0A".encode())
    assert_error(r, 400, "DIGEST_INVALID")
    r = raw_request(app_client, "GET", b"/v2/nl/blobs/" + digest.encode() + b"%0A")
    assert_error(r, 400, "DIGEST_INVALID")
    for path in (b"/v2/nl%0A/tags/list", b"/v2/nl%0A/blobs/uploads/", b"/v2/a%0Ab/manifests/v1"):
        assert_error(raw_request(app_client, "POST" if b"uploads" in path else "GET", path), 400, "NAME_INVALID")
    assert app_client.get("/v2/nl/tags/list").json()["tags"] == ["v1"]
    assert snapshot(app_client, settings) == before


def test_query_string_garbage(app_client: TestClient) -> None:
    push_image(app_client, "q", "v1")
    for query in (b"n=%ff%fe", b"n=1&n=2", b"%%%", b"n", b"last=" + b"z" * 5000, b"last=%ff"):
        r = raw_request(app_client, "GET", b"/v2/q/tags/list", query=query)
        assert r.status_code in (200, 400), (query, r.status_code)
        if r.status_code == 400:
            assert_error(r, 400, "TAG_INVALID" if query.startswith(b"last=") else "PAGINATION_NUMBER_INVALID")
    r = raw_request(app_client, "GET", b"/v2/q/referrers/" + sha256(b"x").encode(), query=b"artifactType=%ff")
    assert r.status_code == 200
    # a NUL in any query parameter (PostgreSQL text cannot hold one) is refused up front
    digest = sha256(b"x").encode()
    for path, query, method in ((b"/v2/q/tags/list", b"last=%00", "GET"), (b"/v2/_catalog", b"last=a%00b", "GET"),
                                (b"/v2/q/referrers/" + digest, b"artifactType=%00", "GET"),
                                (b"/v2/q/blobs/uploads/", b"mount=" + digest + b"&from=a%00", "POST"),
                                (b"/v2/q/blobs/uploads/", b"digest=" + digest + b"%00", "POST")):
        assert_error(raw_request(app_client, method, path, query=query, body=b"x"), 400, "UNSUPPORTED")
