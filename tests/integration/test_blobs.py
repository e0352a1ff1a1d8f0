"""Blobs: GET/HEAD (with Range), DELETE, monolithic POST, sha512, cross-repository mounts."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from dockyard.config import Settings
from tests.integration.helpers import (  # noqa: F401  (no_server_errors is an autouse fixture)
    assert_error,
    no_server_errors,
    push_blob,
    sha256,
    sha512,
    snapshot,
    stored_files,
)

DATA = b"0123456789abcdefghijklmnopqrstuvwxyz"


def test_monolithic_post_then_get_and_head(app_client: TestClient) -> None:
    digest = sha256(DATA)
    r = app_client.post("/v2/lib/app/blobs/uploads/", params={"digest": digest}, content=DATA)
    assert r.status_code == 201
    assert r.headers["location"] == f"/v2/lib/app/blobs/{digest}"
    assert r.headers["docker-content-digest"] == digest

    r = app_client.get(f"/v2/lib/app/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == DATA
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["content-length"] == str(len(DATA))

    r = app_client.head(f"/v2/lib/app/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == str(len(DATA))
    assert r.headers["docker-content-digest"] == digest


def test_blob_range_request(app_client: TestClient) -> None:
    digest = push_blob(app_client, "ranges", DATA)
    r = app_client.get(f"/v2/ranges/blobs/{digest}", headers={"Range": "bytes=5-9"})
    assert r.status_code == 206
    assert r.content == DATA[5:10]
    assert r.headers["content-range"] == f"bytes 5-9/{len(DATA)}"
    assert r.headers["content-length"] == "5"

    r = app_client.get(f"/v2/ranges/blobs/{digest}", headers={"Range": "bytes=30-"})
    assert r.status_code == 206
    assert r.content == DATA[30:]
    assert r.headers["content-range"] == f"bytes 30-{len(DATA) - 1}/{len(DATA)}"


@pytest.mark.parametrize("value", ["bytes={size}-", "bytes={size}-{size}", "bytes=500-0", "bytes=9-2", "bytes=-0",
                                   "bytes=99999999999999999999-"])
def test_blob_range_not_satisfiable(app_client: TestClient, value: str) -> None:
    """Past the end, inverted or empty: 416 with the blob's size, never 400."""
    digest = push_blob(app_client, "ranges", DATA)
    r = app_client.get(f"/v2/ranges/blobs/{digest}", headers={"Range": value.format(size=len(DATA))})
    assert r.status_code == 416, (value, r.status_code, r.text)
    assert r.headers["content-range"] == f"bytes */{len(DATA)}"


def test_blob_range_on_an_empty_blob(app_client: TestClient) -> None:
    digest = push_blob(app_client, "ranges", b"")
    for value in ("bytes=0-", "bytes=-1", "bytes=0-0"):
        r = app_client.get(f"/v2/ranges/blobs/{digest}", headers={"Range": value})
        assert r.status_code == 416, (value, r.status_code)
        assert r.headers["content-range"] == "bytes */0"


def test_blob_range_with_a_stale_if_range_is_ignored(app_client: TestClient) -> None:
    digest = push_blob(app_client, "ranges", DATA)
    r = app_client.get(f"/v2/ranges/blobs/{digest}", headers={"Range": "bytes=9-2", "If-Range": '"other"'})
    assert r.status_code == 200
    assert r.content == DATA
    r = app_client.get(f"/v2/ranges/blobs/{digest}", headers={"Range": "bytes=2-4", "If-Range": f'"{digest}"'})
    assert r.status_code == 206
    assert r.content == DATA[2:5]


def test_unknown_blob(app_client: TestClient) -> None:
    push_blob(app_client, "known", b"something")
    missing = sha256(b"never pushed")
    assert_error(app_client.get(f"/v2/known/blobs/{missing}"), 404, "BLOB_UNKNOWN")
    r = app_client.head(f"/v2/known/blobs/{missing}")
    assert r.status_code == 404
    assert r.content == b""


def test_blob_is_not_readable_through_another_repository(app_client: TestClient) -> None:
    digest = push_blob(app_client, "private/one", DATA)
    assert_error(app_client.get(f"/v2/private/two/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_delete_blob(app_client: TestClient) -> None:
    digest = push_blob(app_client, "deleting", DATA)
    r = app_client.delete(f"/v2/deleting/blobs/{digest}")
    assert r.status_code == 202
    assert_error(app_client.get(f"/v2/deleting/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert app_client.head(f"/v2/deleting/blobs/{digest}").status_code == 404
    assert_error(app_client.delete(f"/v2/deleting/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_delete_blob_keeps_it_in_other_repositories(app_client: TestClient) -> None:
    digest = push_blob(app_client, "keep/a", DATA)
    push_blob(app_client, "keep/b", DATA)
    assert app_client.delete(f"/v2/keep/a/blobs/{digest}").status_code == 202
    assert app_client.get(f"/v2/keep/b/blobs/{digest}").content == DATA


def test_delete_unknown_blob_in_unknown_repository(app_client: TestClient) -> None:
    assert_error(app_client.delete(f"/v2/nowhere/blobs/{sha256(b'x')}"), 404, "BLOB_UNKNOWN")


def test_sha512_blob(app_client: TestClient, settings: Settings) -> None:
    digest = sha512(DATA)
    r = app_client.post("/v2/big/hash/blobs/uploads/", params={"digest": digest}, content=DATA)
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == digest
    r = app_client.get(f"/v2/big/hash/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == DATA
    assert r.headers["docker-content-digest"] == digest
    assert any(f.startswith("blobs/sha512/") for f in stored_files(settings))
    # the same bytes are unknown under their sha256 name
    assert_error(app_client.get(f"/v2/big/hash/blobs/{sha256(DATA)}"), 404, "BLOB_UNKNOWN")


def test_monolithic_digest_mismatch_stores_nothing(app_client: TestClient, settings: Settings) -> None:
    push_blob(app_client, "mono", b"existing")
    before = snapshot(app_client, settings)
    wrong = sha256(b"other content")
    r = app_client.post("/v2/mono/blobs/uploads/", params={"digest": wrong}, content=DATA)
    assert_error(r, 400, "DIGEST_INVALID")
    assert_error(app_client.get(f"/v2/mono/blobs/{wrong}"), 404, "BLOB_UNKNOWN")
    assert_error(app_client.get(f"/v2/mono/blobs/{sha256(DATA)}"), 404, "BLOB_UNKNOWN")
    assert snapshot(app_client, settings) == before


def test_monolithic_digest_mismatch_in_new_repository_creates_nothing(app_client: TestClient, settings: Settings) -> None:
    r = app_client.post("/v2/fresh/blobs/uploads/", params={"digest": sha256(b"nope")}, content=DATA)
    assert_error(r, 400, "DIGEST_INVALID")
    assert stored_files(settings) == set()
    assert "fresh" not in app_client.get("/v2/_catalog").json()["repositories"]


def test_monolithic_sha512_mismatch(app_client: TestClient, settings: Settings) -> None:
    r = app_client.post("/v2/mono/blobs/uploads/", params={"digest": sha512(b"nope")}, content=DATA)
    assert_error(r, 400, "DIGEST_INVALID")
    assert stored_files(settings) == set()


def test_unsupported_algorithm_is_refused(app_client: TestClient, settings: Settings) -> None:
    for digest in ("md5:" + "0" * 32, "sha1:" + "a" * 40, "sha384:" + "b" * 96):
        r = app_client.post("/v2/algo/blobs/uploads/", params={"digest": digest}, content=DATA)
        assert_error(r, 400, "DIGEST_INVALID")
        assert_error(app_client.get(f"/v2/algo/blobs/{digest}"), 400, "DIGEST_INVALID")
    assert stored_files(settings) == set()


def test_malformed_digests(app_client: TestClient, settings: Settings) -> None:
    bad = ["sha256:" + "A" * 64, "sha256:" + "a" * 63, "sha256:" + "a" * 65, "sha256:", "sha256", "latest",
           "sha512:" + "a" * 64, ":abc", "sha256:" + "g" * 64]
    for digest in bad:
        r = app_client.post("/v2/bad/digest/blobs/uploads/", params={"digest": digest}, content=DATA)
        assert_error(r, 400, "DIGEST_INVALID")
        assert_error(app_client.get(f"/v2/bad/digest/blobs/{digest}"), 400, "DIGEST_INVALID")
        assert_error(app_client.delete(f"/v2/bad/digest/blobs/{digest}"), 400, "DIGEST_INVALID")
    assert stored_files(settings) == set()


def test_monolithic_wrong_content_length(app_client: TestClient, settings: Settings) -> None:
    digest = sha256(DATA)
    # the body is longer than announced
    r = app_client.post("/v2/len/blobs/uploads/", params={"digest": digest}, content=DATA,
                        headers={"Content-Length": str(len(DATA) - 3)})
    assert_error(r, 400, "SIZE_INVALID")
    # shorter than announced
    r = app_client.post("/v2/len/blobs/uploads/", params={"digest": digest}, content=DATA,
                        headers={"Content-Length": str(len(DATA) + 3)})
    assert_error(r, 400, "SIZE_INVALID")
    # not a number
    r = app_client.post("/v2/len/blobs/uploads/", params={"digest": digest}, content=DATA,
                        headers={"Content-Length": "twelve"})
    assert_error(r, 400, "SIZE_INVALID")
    assert_error(app_client.get(f"/v2/len/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert stored_files(settings) == set()


def test_monolithic_empty_blob(app_client: TestClient) -> None:
    digest = push_blob(app_client, "empty", b"")
    r = app_client.get(f"/v2/empty/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == b""
    assert app_client.head(f"/v2/empty/blobs/{digest}").headers["content-length"] == "0"


def test_pushing_the_same_blob_twice(app_client: TestClient) -> None:
    first = push_blob(app_client, "twice", DATA)
    assert push_blob(app_client, "twice", DATA) == first
    assert app_client.get(f"/v2/twice/blobs/{first}").content == DATA


def test_mount_with_from(app_client: TestClient) -> None:
    digest = push_blob(app_client, "source/repo", DATA)
    r = app_client.post("/v2/target/repo/blobs/uploads/", params={"mount": digest, "from": "source/repo"})
    assert r.status_code == 201
    assert r.headers["location"] == f"/v2/target/repo/blobs/{digest}"
    assert r.headers["docker-content-digest"] == digest
    assert app_client.get(f"/v2/target/repo/blobs/{digest}").content == DATA


def test_mount_without_from_finds_the_blob_elsewhere(app_client: TestClient) -> None:
    digest = push_blob(app_client, "somewhere/else", DATA)
    r = app_client.post("/v2/target/blobs/uploads/", params={"mount": digest})
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == digest
    assert app_client.get(f"/v2/target/blobs/{digest}").content == DATA


def test_mount_from_a_repository_without_the_blob_opens_a_session(app_client: TestClient) -> None:
    digest = push_blob(app_client, "has/it", DATA)
    push_blob(app_client, "lacks/it", b"other")
    r = app_client.post("/v2/target/blobs/uploads/", params={"mount": digest, "from": "lacks/it"})
    assert r.status_code == 202
    assert r.headers["location"].startswith("/v2/target/blobs/uploads/")
    assert_error(app_client.get(f"/v2/target/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_mount_of_unknown_blob_opens_a_usable_session(app_client: TestClient, settings: Settings) -> None:
    digest = sha256(DATA)
    r = app_client.post("/v2/target/blobs/uploads/", params={"mount": digest, "from": "nowhere"})
    assert r.status_code == 202
    location = r.headers["location"]
    assert location.startswith("/v2/target/blobs/uploads/")
    assert r.headers["range"] == "0-0"
    assert not any(f.startswith("blobs/") for f in stored_files(settings))
    r = app_client.put(location, params={"digest": digest}, content=DATA)
    assert r.status_code == 201
    assert app_client.get(f"/v2/target/blobs/{digest}").content == DATA


def test_mount_with_invalid_digest(app_client: TestClient, settings: Settings) -> None:
    r = app_client.post("/v2/target/blobs/uploads/", params={"mount": "md5:" + "0" * 32, "from": "x"})
    assert_error(r, 400, "DIGEST_INVALID")
    assert stored_files(settings) == set()


def test_mount_with_invalid_from_name_does_not_fail(app_client: TestClient) -> None:
    digest = push_blob(app_client, "src", DATA)
    for source in ("UPPER", "../src", "a//b", "x" * 300):
        r = app_client.post("/v2/target/blobs/uploads/", params={"mount": digest, "from": source})
        assert r.status_code in (202, 400), r.text
        if r.status_code == 400:
            assert_error(r, 400, "NAME_INVALID")
    assert_error(app_client.get(f"/v2/target/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_blob_range_garbage(app_client: TestClient) -> None:
    digest = push_blob(app_client, "ranges", DATA)
    # Malformed headers are ignored (200, the whole blob); valid ones are served; never a 400.
    for value, status in (("bytes=abc", 200), ("items=1-2", 200), ("bytes=", 200), ("bytes=-", 200), ("bytes=0-1,3-4", 200),
                          ("bytes=1-2-3", 200), ("bytes=+1-2", 200), ("garbage", 200),
                          ("bytes=-5", 206), ("bytes=0-99999999999999999999", 206), (" Bytes = 3 - 4 ", 206)):
        r = app_client.get(f"/v2/ranges/blobs/{digest}", headers={"Range": value})
        assert r.status_code == status, (value, r.status_code, r.text)
        if r.status_code == 200:
            assert r.content == DATA
