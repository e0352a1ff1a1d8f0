"""Manifests: the four media types, GET/HEAD/PUT/DELETE by tag and digest, references that must
exist, validation, size limit, deletion semantics and content negotiation."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from dockyard.config import Settings
from tests.integration.helpers import (  # noqa: F401  (no_server_errors is an autouse fixture)
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    assert_error,
    descriptor,
    dumps,
    image_manifest,
    index_manifest,
    no_server_errors,
    push_blob,
    push_image,
    push_index,
    raw_request,
    put_manifest,
    sha256,
    sha512,
    snapshot,
)


def get(client: TestClient, repo: str, ref: str, accept: str | None = None, method: str = "GET"):  # type: ignore[no-untyped-def]
    request = client.build_request(method, f"/v2/{repo}/manifests/{ref}")
    if accept is None:
        del request.headers["accept"]
    else:
        request.headers["accept"] = accept
    return client.send(request)


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_image_manifest_round_trip(app_client: TestClient, media_type: str) -> None:
    digest, body = push_image(app_client, "img", "v1", media_type=media_type)
    for ref in ("v1", digest):
        r = app_client.get(f"/v2/img/manifests/{ref}", headers={"Accept": media_type})
        assert r.status_code == 200
        assert r.content == body
        assert r.headers["content-type"] == media_type
        assert r.headers["docker-content-digest"] == digest
        assert r.headers["content-length"] == str(len(body))
        h = app_client.head(f"/v2/img/manifests/{ref}", headers={"Accept": media_type})
        assert h.status_code == 200
        assert h.content == b""
        assert h.headers["docker-content-digest"] == digest
        assert h.headers["content-length"] == str(len(body))
        assert h.headers["content-type"] == media_type


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_index_round_trip(app_client: TestClient, media_type: str) -> None:
    image_type = DOCKER_MANIFEST if media_type == DOCKER_LIST else OCI_MANIFEST
    children = [push_image(app_client, "multi", None, media_type=image_type, layer=f"layer {i}".encode()) for i in range(2)]
    digest, body = push_index(app_client, "multi", "latest", children, media_type)
    for ref in ("latest", digest):
        r = app_client.get(f"/v2/multi/manifests/{ref}", headers={"Accept": media_type})
        assert r.status_code == 200
        assert r.content == body
        assert r.headers["content-type"] == media_type
        assert r.headers["docker-content-digest"] == digest
    for child_digest, child_body in children:
        assert app_client.get(f"/v2/multi/manifests/{child_digest}").content == child_body


def test_put_by_digest(app_client: TestClient) -> None:
    config = b'{"os":"linux"}'
    push_blob(app_client, "bydigest", config)
    body = image_manifest(descriptor(OCI_CONFIG, config), [])
    digest = sha256(body)
    r = put_manifest(app_client, "bydigest", digest, body)
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == digest
    assert app_client.get(f"/v2/bydigest/manifests/{digest}").content == body
    assert app_client.get("/v2/bydigest/tags/list").json()["tags"] == []


def test_put_by_sha512_digest(app_client: TestClient) -> None:
    config = b'{"os":"linux"}'
    push_blob(app_client, "sha512", config)
    body = image_manifest(descriptor(OCI_CONFIG, config), [])
    digest = sha512(body)
    r = put_manifest(app_client, "sha512", digest, body)
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == digest
    r = app_client.get(f"/v2/sha512/manifests/{digest}")
    assert r.status_code == 200
    assert r.content == body
    assert r.headers["docker-content-digest"] == digest


def test_manifest_referencing_sha512_blobs(app_client: TestClient) -> None:
    config, layer = b'{"os":"linux"}', b"sha512 layer"
    push_blob(app_client, "sha512", config, sha512(config))
    push_blob(app_client, "sha512", layer, sha512(layer))
    body = image_manifest(descriptor(OCI_CONFIG, config, sha512(config)), [descriptor(OCI_LAYER, layer, sha512(layer))])
    assert put_manifest(app_client, "sha512", "v1", body).status_code == 201
    # the sha256 names of the same bytes are not enough
    body = image_manifest(descriptor(OCI_CONFIG, config), [])
    assert_error(put_manifest(app_client, "sha512", "v2", body), 400, "MANIFEST_BLOB_UNKNOWN")


def test_digest_reference_not_matching_body(app_client: TestClient, settings: Settings) -> None:
    push_image(app_client, "mismatch", "v1")
    config = push_blob(app_client, "mismatch", b"{}")
    body = image_manifest(descriptor(OCI_CONFIG, b"{}"), [])
    before = snapshot(app_client, settings)
    for ref in (sha256(body + b" "), sha512(body + b" ")):
        # The spec's code for content that hashes to another digest, as for blobs.
        assert_error(put_manifest(app_client, "mismatch", ref, body), 400, "DIGEST_INVALID")
        assert_error(app_client.get(f"/v2/mismatch/manifests/{ref}"), 404, "MANIFEST_UNKNOWN")
    assert_error(app_client.get(f"/v2/mismatch/manifests/{sha256(body)}"), 404, "MANIFEST_UNKNOWN")
    assert snapshot(app_client, settings) == before
    assert config


def test_unknown_manifest(app_client: TestClient) -> None:
    push_image(app_client, "known", "v1")
    assert_error(app_client.get("/v2/known/manifests/v2"), 404, "MANIFEST_UNKNOWN")
    assert_error(app_client.get(f"/v2/known/manifests/{sha256(b'x')}"), 404, "MANIFEST_UNKNOWN")
    r = app_client.head("/v2/known/manifests/v2")
    assert r.status_code == 404
    assert r.content == b""
    assert_error(app_client.delete("/v2/known/manifests/v2"), 404, "MANIFEST_UNKNOWN")
    assert_error(app_client.delete(f"/v2/known/manifests/{sha256(b'x')}"), 404, "MANIFEST_UNKNOWN")
    # in a repository that does not exist
    assert_error(app_client.get("/v2/nothing/here/manifests/latest"), 404, "MANIFEST_UNKNOWN")


def test_manifest_not_readable_through_another_repository(app_client: TestClient) -> None:
    digest, _ = push_image(app_client, "one", "v1")
    push_image(app_client, "two", "v0")
    assert_error(app_client.get(f"/v2/two/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    assert_error(app_client.get("/v2/two/manifests/v1"), 404, "MANIFEST_UNKNOWN")


def test_missing_blob(app_client: TestClient, settings: Settings) -> None:
    config = b'{"os":"linux"}'
    push_blob(app_client, "missing", config)
    before = snapshot(app_client, settings)
    missing_layer = descriptor(OCI_LAYER, b"never uploaded")
    body = image_manifest(descriptor(OCI_CONFIG, config), [missing_layer])
    assert_error(put_manifest(app_client, "missing", "v1", body), 400, "MANIFEST_BLOB_UNKNOWN")
    body = image_manifest(descriptor(OCI_CONFIG, b"no config"), [])
    assert_error(put_manifest(app_client, "missing", "v1", body), 400, "MANIFEST_BLOB_UNKNOWN")
    assert_error(put_manifest(app_client, "missing", sha256(body), body), 400, "MANIFEST_BLOB_UNKNOWN")
    assert_error(app_client.get("/v2/missing/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    assert snapshot(app_client, settings) == before


def test_missing_blob_in_a_new_repository_creates_nothing(app_client: TestClient, settings: Settings) -> None:
    body = image_manifest(descriptor(OCI_CONFIG, b"{}"), [])
    assert_error(put_manifest(app_client, "brand/new", "v1", body), 400, "MANIFEST_BLOB_UNKNOWN")
    assert app_client.get("/v2/_catalog").json()["repositories"] == []
    assert_error(app_client.get("/v2/brand/new/tags/list"), 404, "NAME_UNKNOWN")
    assert snapshot(app_client, settings) == (set(), [])


def test_blob_in_another_repository_is_not_enough(app_client: TestClient) -> None:
    config = push_blob(app_client, "other", b"{}")
    body = image_manifest(descriptor(OCI_CONFIG, b"{}"), [])
    assert_error(put_manifest(app_client, "mine", "v1", body), 400, "MANIFEST_BLOB_UNKNOWN")
    assert config


def test_foreign_layers_need_not_exist(app_client: TestClient) -> None:
    config = push_blob(app_client, "foreign", b"{}")
    layer = descriptor("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", b"windows base",
                       urls=["https://example.invalid/layer"])
    body = image_manifest(descriptor(OCI_CONFIG, b"{}"), [layer])
    assert put_manifest(app_client, "foreign", "v1", body).status_code == 201
    assert config


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_index_with_missing_child(app_client: TestClient, settings: Settings, media_type: str) -> None:
    child = push_image(app_client, "idx", None)
    before = snapshot(app_client, settings)
    missing = image_manifest(descriptor(OCI_CONFIG, b"absent"), [])
    body = index_manifest([descriptor(OCI_MANIFEST, child[1], child[0]), descriptor(OCI_MANIFEST, missing)], media_type)
    assert_error(put_manifest(app_client, "idx", "latest", body, media_type), 400, "MANIFEST_BLOB_UNKNOWN")
    assert_error(app_client.get("/v2/idx/manifests/latest"), 404, "MANIFEST_UNKNOWN")
    assert snapshot(app_client, settings) == before
    # a child manifest in another repository does not count either
    other = push_image(app_client, "elsewhere", None)
    body = index_manifest([descriptor(OCI_MANIFEST, other[1], other[0])], media_type)
    assert_error(put_manifest(app_client, "idx", "latest", body, media_type), 400, "MANIFEST_BLOB_UNKNOWN")


def test_retag_moves_the_tag(app_client: TestClient) -> None:
    first, _ = push_image(app_client, "retag", "latest", layer=b"first")
    second, _ = push_image(app_client, "retag", "latest", layer=b"second")
    assert first != second
    assert app_client.get("/v2/retag/manifests/latest").headers["docker-content-digest"] == second
    assert app_client.get(f"/v2/retag/manifests/{first}").status_code == 200


def test_same_manifest_pushed_twice(app_client: TestClient) -> None:
    digest, body = push_image(app_client, "twice", "a")
    r = put_manifest(app_client, "twice", "b", body)
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == digest
    assert app_client.get("/v2/twice/tags/list").json()["tags"] == ["a", "b"]


def test_delete_by_tag_removes_only_that_tag(app_client: TestClient) -> None:
    digest, body = push_image(app_client, "deltag", "a")
    put_manifest(app_client, "deltag", "b", body)
    r = app_client.delete("/v2/deltag/manifests/a")
    assert r.status_code == 202
    assert_error(app_client.get("/v2/deltag/manifests/a"), 404, "MANIFEST_UNKNOWN")
    assert app_client.get("/v2/deltag/manifests/b").headers["docker-content-digest"] == digest
    assert app_client.get(f"/v2/deltag/manifests/{digest}").content == body
    assert app_client.get("/v2/deltag/tags/list").json()["tags"] == ["b"]
    assert_error(app_client.delete("/v2/deltag/manifests/a"), 404, "MANIFEST_UNKNOWN")


def test_delete_by_digest_removes_its_tags(app_client: TestClient) -> None:
    digest, body = push_image(app_client, "deldigest", "a")
    put_manifest(app_client, "deldigest", "b", body)
    other, _ = push_image(app_client, "deldigest", "c", layer=b"other")
    r = app_client.delete(f"/v2/deldigest/manifests/{digest}")
    assert r.status_code == 202
    for ref in ("a", "b", digest):
        assert_error(app_client.get(f"/v2/deldigest/manifests/{ref}"), 404, "MANIFEST_UNKNOWN")
        assert app_client.head(f"/v2/deldigest/manifests/{ref}").status_code == 404
    assert app_client.get("/v2/deldigest/tags/list").json()["tags"] == ["c"]
    assert app_client.get("/v2/deldigest/manifests/c").headers["docker-content-digest"] == other
    assert_error(app_client.delete(f"/v2/deldigest/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    # it can be pushed again
    assert put_manifest(app_client, "deldigest", "a", body).status_code == 201


def test_index_requested_with_only_image_types_is_unknown(app_client: TestClient) -> None:
    children = [push_image(app_client, "neg", None, layer=b"n")]
    digest, body = push_index(app_client, "neg", "latest", children)
    image_only = f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"
    for ref in ("latest", digest):
        assert_error(get(app_client, "neg", ref, image_only), 404, "MANIFEST_UNKNOWN")
        assert get(app_client, "neg", ref, image_only, "HEAD").status_code == 404
        r = get(app_client, "neg", ref, None)
        assert r.status_code == 200
        assert r.content == body
        assert r.headers["content-type"] == OCI_INDEX
        assert get(app_client, "neg", ref, "*/*").status_code == 200
        assert get(app_client, "neg", ref, f"{OCI_MANIFEST}, {OCI_INDEX};q=0.5").status_code == 200
        assert get(app_client, "neg", ref, "application/json").status_code == 200


def test_accept_listed_in_separate_headers(app_client: TestClient) -> None:
    # Go clients send one Accept header per media type
    digest, _ = push_index(app_client, "neg", "latest", [push_image(app_client, "neg", None)])
    r = raw_request(app_client, "GET", b"/v2/neg/manifests/latest",
                    [(b"accept", OCI_MANIFEST.encode()), (b"accept", OCI_INDEX.encode())])
    assert r.status_code == 200
    assert r.headers["docker-content-digest"] == digest
    r = raw_request(app_client, "GET", b"/v2/neg/manifests/latest",
                    [(b"accept", OCI_MANIFEST.encode()), (b"accept", DOCKER_MANIFEST.encode())])
    assert_error(r, 404, "MANIFEST_UNKNOWN")


def test_image_manifest_served_whatever_the_accept(app_client: TestClient) -> None:
    digest, _ = push_image(app_client, "plain", "v1")
    r = get(app_client, "plain", "v1", DOCKER_MANIFEST)
    assert r.status_code == 200
    assert r.headers["content-type"] == OCI_MANIFEST
    assert r.headers["docker-content-digest"] == digest


def test_manifest_too_large(app_client: TestClient, settings: Settings) -> None:
    config = push_blob(app_client, "large", b"{}")
    before = snapshot(app_client, settings)
    limit = settings.limits.manifest_max_bytes
    assert limit == 4 * 1024 * 1024
    doc = json.loads(image_manifest(descriptor(OCI_CONFIG, b"{}"), []))
    doc["annotations"] = {"padding": "x" * limit}
    body = dumps(doc)
    assert_error(put_manifest(app_client, "large", "v1", body), 413, "MANIFEST_INVALID")

    def streamed():  # type: ignore[no-untyped-def]  # no Content-Length: the limit applies as it arrives
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    r = app_client.put("/v2/large/manifests/v1", content=streamed(), headers={"Content-Type": OCI_MANIFEST})
    assert_error(r, 413, "MANIFEST_INVALID")
    assert_error(app_client.get("/v2/large/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    assert snapshot(app_client, settings) == before
    # just under the limit is fine
    doc["annotations"] = {"padding": ""}
    doc["annotations"]["padding"] = "x" * (limit - len(dumps(doc)))
    body = dumps(doc)
    assert len(body) == limit
    assert put_manifest(app_client, "large", "v1", body).status_code == 201
    assert config


def test_schema1_is_unsupported(app_client: TestClient, settings: Settings) -> None:
    before = snapshot(app_client, settings)
    body = dumps({"schemaVersion": 1, "name": "s1", "tag": "v1", "architecture": "amd64", "fsLayers": [], "history": []})
    assert_error(put_manifest(app_client, "s1", "v1", body, DOCKER_SCHEMA1_SIGNED), 415, "UNSUPPORTED")
    assert_error(put_manifest(app_client, "s1", "v1", body, "application/vnd.docker.distribution.manifest.v1+json"),
                 415, "UNSUPPORTED")
    assert_error(put_manifest(app_client, "s1", "v1", body, "application/json"), 415, "UNSUPPORTED")
    assert snapshot(app_client, settings) == before
