"""Tag parameters on a manifest PUT by digest (distribution-spec, end-7b):
`PUT /v2/<name>/manifests/<digest>?tag=a&tag=b` stores the manifest and points every tag at it in
one transaction, answering one `OCI-Tag` header per tag; an invalid tag stores nothing."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from dockyard.config import Settings
from tests.integration.helpers import (  # noqa: F401  (no_server_errors is an autouse fixture)
    OCI_CONFIG,
    OCI_MANIFEST,
    assert_error,
    descriptor,
    image_manifest,
    no_server_errors,
    push_blob,
    push_image,
    sha256,
    sha512,
    snapshot,
)
from tests.integration.test_token_auth import bearer, token_for


def _manifest(client: TestClient, repo: str, marker: str = "") -> bytes:
    config = f'{{"os":"linux","marker":"{marker}"}}'.encode()
    push_blob(client, repo, config)
    return image_manifest(descriptor(OCI_CONFIG, config), [])


def _put(client: TestClient, repo: str, reference: str, body: bytes, tags: list[str],
         headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return client.put(f"/v2/{repo}/manifests/{reference}", params=[("tag", t) for t in tags], content=body,
                      headers={"Content-Type": OCI_MANIFEST, **(headers or {})})


def _tags(client: TestClient, repo: str) -> list[str]:
    r = client.get(f"/v2/{repo}/tags/list")
    assert r.status_code == 200, r.text
    return list(r.json()["tags"])


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_push_by_digest_with_tags(app_client: TestClient, algorithm: str) -> None:
    body = _manifest(app_client, "tagged")
    digest = sha256(body) if algorithm == "sha256" else sha512(body)
    r = _put(app_client, "tagged", digest, body, ["1.2.3", "latest"])
    assert r.status_code == 201, r.text
    assert r.headers.get_list("oci-tag") == ["1.2.3", "latest"]
    assert r.headers["docker-content-digest"] == digest
    assert _tags(app_client, "tagged") == ["1.2.3", "latest"]
    for tag in ("1.2.3", "latest"):
        got = app_client.get(f"/v2/tagged/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200
        assert got.content == body
        # A sha512 manifest is served under its own digest: a push by tag could only name it by sha256.
        assert got.headers["docker-content-digest"] == digest


def test_push_by_digest_without_tags_has_no_oci_tag(app_client: TestClient) -> None:
    body = _manifest(app_client, "plain")
    r = _put(app_client, "plain", sha256(body), body, [])
    assert r.status_code == 201
    assert "oci-tag" not in r.headers
    assert _tags(app_client, "plain") == []


def test_repeated_tag_is_stored_and_answered_once(app_client: TestClient) -> None:
    body = _manifest(app_client, "twice")
    r = _put(app_client, "twice", sha256(body), body, ["v1", "v1", "v2"])
    assert r.status_code == 201
    assert r.headers.get_list("oci-tag") == ["v1", "v2"]
    assert _tags(app_client, "twice") == ["v1", "v2"]


def test_tag_params_move_existing_tags(app_client: TestClient) -> None:
    old, _ = push_image(app_client, "moving", "latest")
    body = _manifest(app_client, "moving", "new")
    r = _put(app_client, "moving", sha256(body), body, ["latest", "2.0"])
    assert r.status_code == 201
    assert app_client.get("/v2/moving/manifests/latest").headers["docker-content-digest"] == sha256(body) != old
    assert _tags(app_client, "moving") == ["2.0", "latest"]


@pytest.mark.parametrize("bad", ["", "-x", ".x", "a" * 129, "has space", "é", "a/b", "v1:v2"])
def test_one_invalid_tag_stores_nothing(app_client: TestClient, settings: Settings, bad: str) -> None:
    push_image(app_client, "strict", "keep")
    body = _manifest(app_client, "strict", "new")
    before = snapshot(app_client, settings)
    r = _put(app_client, "strict", sha256(body), body, ["good", bad])
    assert_error(r, 400, "TAG_INVALID")
    assert "oci-tag" not in r.headers
    assert snapshot(app_client, settings) == before
    assert _tags(app_client, "strict") == ["keep"]
    assert_error(app_client.get(f"/v2/strict/manifests/{sha256(body)}"), 404, "MANIFEST_UNKNOWN")


def test_tag_params_on_a_push_by_tag_are_refused(app_client: TestClient, settings: Settings) -> None:
    body = _manifest(app_client, "bytag")
    before = snapshot(app_client, settings)
    assert_error(_put(app_client, "bytag", "v1", body, ["v2"]), 400, "TAG_INVALID")
    assert snapshot(app_client, settings) == before


def test_tags_are_not_stored_when_the_manifest_is_refused(app_client: TestClient, settings: Settings) -> None:
    body = image_manifest(descriptor(OCI_CONFIG, b'{"never":"pushed"}'), [])
    before = snapshot(app_client, settings)
    assert_error(_put(app_client, "refused", sha256(body), body, ["v1"]), 400, "MANIFEST_BLOB_UNKNOWN")
    assert_error(_put(app_client, "refused", sha256(body + b" "), body, ["v1"]), 400, "DIGEST_INVALID")
    assert snapshot(app_client, settings) == before


def test_tagging_needs_push(app_client: TestClient, anon_client: TestClient, settings: Settings) -> None:
    push_image(app_client, "guarded", "keep")
    body = _manifest(app_client, "guarded", "new")
    before = snapshot(app_client, settings)
    token = token_for(anon_client, ["repository:guarded:pull"])
    r = _put(anon_client, "guarded", sha256(body), body, ["latest"], bearer(token))
    assert r.status_code in (401, 403), r.text
    assert "oci-tag" not in r.headers
    assert snapshot(app_client, settings) == before
    assert _tags(app_client, "guarded") == ["keep"]
