"""Upload sessions: POST then PUT, streamed and chunked PATCH, status, cancel, out-of-order chunks."""

from __future__ import annotations

from collections.abc import Iterator

from starlette.testclient import TestClient

from dockyard.config import Settings
from tests.integration.helpers import (  # noqa: F401  (no_server_errors is an autouse fixture)
    assert_error,
    no_server_errors,
    push_blob,
    raw_request,
    sha256,
    sha512,
    start_upload,
    stored_files,
)

DATA = bytes(range(256)) * 40  # 10240 bytes


def blob_files(settings: Settings) -> set[str]:
    return {f for f in stored_files(settings) if f.startswith("blobs/")}


def staged_files(settings: Settings) -> set[str]:
    return {f for f in stored_files(settings) if f.startswith("uploads/")}


def test_post_opens_a_session(app_client: TestClient) -> None:
    r = app_client.post("/v2/up/blobs/uploads/")
    assert r.status_code == 202
    assert r.headers["location"] == f"/v2/up/blobs/uploads/{r.headers['docker-upload-uuid']}"
    assert r.headers["range"] == "0-0"
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


def test_post_then_put_monolithic(app_client: TestClient) -> None:
    location = start_upload(app_client, "up")
    digest = sha256(DATA)
    r = app_client.put(location, params={"digest": digest}, content=DATA)
    assert r.status_code == 201
    assert r.headers["location"] == f"/v2/up/blobs/{digest}"
    assert r.headers["docker-content-digest"] == digest
    assert app_client.get(f"/v2/up/blobs/{digest}").content == DATA
    # the session is gone once committed
    assert_error(app_client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(app_client.put(location, params={"digest": digest}, content=DATA), 404, "BLOB_UPLOAD_UNKNOWN")


def test_post_without_trailing_slash(app_client: TestClient) -> None:
    r = app_client.post("/v2/up/blobs/uploads")
    assert r.status_code == 202


def test_streamed_patch_without_content_range(app_client: TestClient) -> None:
    location = start_upload(app_client, "stream")

    def body() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        for i in range(0, len(DATA), 1000):
            yield DATA[i:i + 1000]

    r = app_client.patch(location, content=body())
    assert r.status_code == 202
    assert r.headers["range"] == f"0-{len(DATA) - 1}"
    location = r.headers["location"]
    r = app_client.put(location, params={"digest": sha256(DATA)})
    assert r.status_code == 201
    assert app_client.get(f"/v2/stream/blobs/{sha256(DATA)}").content == DATA


def test_chunked_patch_with_content_range(app_client: TestClient) -> None:
    location = start_upload(app_client, "chunks")
    parts = [DATA[:4000], DATA[4000:8000], DATA[8000:]]
    offset = 0
    for part in parts:
        end = offset + len(part) - 1
        r = app_client.patch(location, content=part, headers={"Content-Range": f"{offset}-{end}"})
        assert r.status_code == 202, r.text
        assert r.headers["range"] == f"0-{end}"
        assert r.headers["docker-upload-uuid"]
        location = r.headers["location"]
        offset = end + 1
        status = app_client.get(location)
        assert status.status_code == 204
        assert status.headers["range"] == f"0-{end}"
    r = app_client.put(location, params={"digest": sha256(DATA)})
    assert r.status_code == 201
    assert app_client.get(f"/v2/chunks/blobs/{sha256(DATA)}").content == DATA


def test_content_range_with_bytes_prefix(app_client: TestClient) -> None:
    location = start_upload(app_client, "chunks")
    r = app_client.patch(location, content=DATA[:100], headers={"Content-Range": "bytes 0-99/*"})
    assert r.status_code == 202
    assert r.headers["range"] == "0-99"


def test_out_of_order_chunk_is_refused_and_upload_stays_usable(app_client: TestClient) -> None:
    location = start_upload(app_client, "ooo")
    r = app_client.patch(location, content=DATA[:1000], headers={"Content-Range": "0-999"})
    assert r.status_code == 202
    # a gap
    r = app_client.patch(location, content=DATA[2000:3000], headers={"Content-Range": "2000-2999"})
    assert_error(r, 416, "BLOB_UPLOAD_INVALID")
    assert r.headers["range"] == "0-999"
    assert r.headers["location"] == location
    # an overlap (a retried chunk)
    r = app_client.patch(location, content=DATA[0:1000], headers={"Content-Range": "0-999"})
    assert_error(r, 416, "BLOB_UPLOAD_INVALID")
    assert r.headers["range"] == "0-999"
    # the session still has exactly the first chunk
    status = app_client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-999"
    r = app_client.patch(location, content=DATA[1000:], headers={"Content-Range": f"1000-{len(DATA) - 1}"})
    assert r.status_code == 202
    r = app_client.put(location, params={"digest": sha256(DATA)})
    assert r.status_code == 201
    assert app_client.get(f"/v2/ooo/blobs/{sha256(DATA)}").content == DATA


def test_first_chunk_not_at_zero(app_client: TestClient, settings: Settings) -> None:
    location = start_upload(app_client, "ooo")
    r = app_client.patch(location, content=DATA[:10], headers={"Content-Range": "5-14"})
    assert_error(r, 416, "BLOB_UPLOAD_INVALID")
    assert r.headers["range"] == "0-0"
    assert app_client.get(location).headers["range"] == "0-0"


def test_content_range_and_length_disagree(app_client: TestClient) -> None:
    location = start_upload(app_client, "len")
    r = app_client.patch(location, content=DATA[:10], headers={"Content-Range": "0-19"})
    assert_error(r, 400, "SIZE_INVALID")
    assert app_client.get(location).headers["range"] == "0-0"


def test_wrong_content_length_on_patch_keeps_previous_state(app_client: TestClient) -> None:
    location = start_upload(app_client, "len")
    assert app_client.patch(location, content=DATA[:100]).status_code == 202
    r = app_client.patch(location, content=DATA[100:200], headers={"Content-Length": "50"})
    assert_error(r, 400, "SIZE_INVALID")
    r = app_client.patch(location, content=DATA[100:200], headers={"Content-Length": "150"})
    assert_error(r, 400, "SIZE_INVALID")
    assert app_client.get(location).headers["range"] == "0-99"
    assert app_client.patch(location, content=DATA[100:]).status_code == 202
    assert app_client.put(location, params={"digest": sha256(DATA)}).status_code == 201


def test_upload_status(app_client: TestClient) -> None:
    location = start_upload(app_client, "status")
    r = app_client.get(location)
    assert r.status_code == 204
    assert r.headers["range"] == "0-0"
    assert r.headers["location"] == location
    app_client.patch(location, content=DATA[:10])
    r = app_client.get(location)
    assert r.status_code == 204
    assert r.headers["range"] == "0-9"
    assert r.content == b""


def test_cancel_upload(app_client: TestClient, settings: Settings) -> None:
    location = start_upload(app_client, "cancel")
    app_client.patch(location, content=DATA[:500])
    assert staged_files(settings)
    r = app_client.delete(location)
    assert r.status_code == 204
    assert staged_files(settings) == set()
    assert_error(app_client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(app_client.patch(location, content=b"more"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(app_client.put(location, params={"digest": sha256(DATA[:500])}), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(app_client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert blob_files(settings) == set()


def test_closing_put_with_last_chunk(app_client: TestClient) -> None:
    location = start_upload(app_client, "last")
    r = app_client.patch(location, content=DATA[:6000], headers={"Content-Range": "0-5999"})
    location = r.headers["location"]
    r = app_client.put(location, params={"digest": sha256(DATA)}, content=DATA[6000:],
                       headers={"Content-Range": f"6000-{len(DATA) - 1}"})
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == sha256(DATA)
    assert app_client.get(f"/v2/last/blobs/{sha256(DATA)}").content == DATA


def test_closing_put_with_last_chunk_without_range(app_client: TestClient) -> None:
    location = start_upload(app_client, "last")
    app_client.patch(location, content=DATA[:10])
    r = app_client.put(location, params={"digest": sha256(DATA)}, content=DATA[10:])
    assert r.status_code == 201
    assert app_client.get(f"/v2/last/blobs/{sha256(DATA)}").content == DATA


def test_closing_put_with_out_of_order_last_chunk(app_client: TestClient, settings: Settings) -> None:
    location = start_upload(app_client, "last")
    app_client.patch(location, content=DATA[:10])
    r = app_client.put(location, params={"digest": sha256(DATA)}, content=DATA[20:],
                       headers={"Content-Range": f"20-{len(DATA) - 1}"})
    assert_error(r, 416, "BLOB_UPLOAD_INVALID")
    assert r.headers["range"] == "0-9"
    assert blob_files(settings) == set()
    assert app_client.get(location).headers["range"] == "0-9"


def test_digest_mismatch_stores_nothing(app_client: TestClient, settings: Settings) -> None:
    location = start_upload(app_client, "mismatch")
    app_client.patch(location, content=DATA)
    wrong = sha256(b"something else")
    r = app_client.put(location, params={"digest": wrong})
    assert_error(r, 400, "DIGEST_INVALID")
    assert blob_files(settings) == set()
    assert staged_files(settings) == set()
    assert_error(app_client.get(f"/v2/mismatch/blobs/{wrong}"), 404, "BLOB_UNKNOWN")
    assert_error(app_client.get(f"/v2/mismatch/blobs/{sha256(DATA)}"), 404, "BLOB_UNKNOWN")
    # the failed session is discarded
    assert_error(app_client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_sha512_chunked_upload(app_client: TestClient) -> None:
    location = start_upload(app_client, "sha512")
    r = app_client.patch(location, content=DATA[:5000], headers={"Content-Range": "0-4999"})
    location = r.headers["location"]
    r = app_client.put(location, params={"digest": sha512(DATA)}, content=DATA[5000:])
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == sha512(DATA)
    assert app_client.get(f"/v2/sha512/blobs/{sha512(DATA)}").content == DATA


def test_sha512_mismatch(app_client: TestClient, settings: Settings) -> None:
    location = start_upload(app_client, "sha512")
    app_client.patch(location, content=DATA)
    assert_error(app_client.put(location, params={"digest": sha512(b"other")}), 400, "DIGEST_INVALID")
    assert blob_files(settings) == set()


def test_closing_put_without_digest(app_client: TestClient) -> None:
    location = start_upload(app_client, "nodigest")
    app_client.patch(location, content=DATA[:10])
    assert_error(app_client.put(location), 400, "BLOB_UPLOAD_INVALID")
    # still usable
    assert app_client.get(location).headers["range"] == "0-9"
    assert app_client.put(location, params={"digest": sha256(DATA[:10])}).status_code == 201


def test_closing_put_with_unsupported_digest(app_client: TestClient, settings: Settings) -> None:
    location = start_upload(app_client, "algo")
    app_client.patch(location, content=DATA[:10])
    assert_error(app_client.put(location, params={"digest": "md5:" + "0" * 32}), 400, "DIGEST_INVALID")
    assert_error(app_client.put(location, params={"digest": "sha256:xyz"}), 400, "DIGEST_INVALID")
    assert blob_files(settings) == set()
    assert app_client.get(location).headers["range"] == "0-9"


def test_session_belongs_to_its_repository(app_client: TestClient) -> None:
    location = start_upload(app_client, "mine")
    upload_id = location.rsplit("/", 1)[1]
    other = f"/v2/theirs/blobs/uploads/{upload_id}"
    assert_error(app_client.get(other), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(app_client.patch(other, content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(app_client.put(other, params={"digest": sha256(b"")}), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(app_client.delete(other), 404, "BLOB_UPLOAD_UNKNOWN")
    assert app_client.get(location).status_code == 204


def test_unknown_upload_ids(app_client: TestClient) -> None:
    for upload_id in ("0" * 32, "nonexistent", "a" * 500, "not-a-uuid", "%C3%A9t%C3%A9", "x.y", "%00", "%2e%2e"):
        path = f"/v2/repo/blobs/uploads/{upload_id}"
        assert_error(app_client.get(path), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_error(app_client.patch(path, content=b"abc"), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_error(app_client.put(path, params={"digest": sha256(b"abc")}, content=b"abc"), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_error(app_client.delete(path), 404, "BLOB_UPLOAD_UNKNOWN")


def test_garbage_content_range(app_client: TestClient) -> None:
    location = start_upload(app_client, "range")
    for value in ("abc", "10-5", "-5", "5-", "bytes=x-y", "0-1-2"):
        r = app_client.patch(location, content=b"abc", headers={"Content-Range": value})
        assert_error(r, 416, "BLOB_UPLOAD_INVALID")
    # bytes that are digits to Python's str.isdigit but not to int(), as a server passes them
    for raw in (b"\xb2-\xb3", b"0-\xb9", b"bytes \xb2-3/*"):
        r = raw_request(app_client, "PATCH", location.encode(), [(b"content-range", raw)], b"abc")
        assert_error(r, 416, "BLOB_UPLOAD_INVALID")
    for raw in (b"\xb2", b"1\xb2"):
        r = raw_request(app_client, "PATCH", location.encode(), [(b"content-length", raw)], b"")
        assert_error(r, 400, "SIZE_INVALID")
    assert app_client.get(location).headers["range"] == "0-0"


def test_empty_patch_changes_nothing(app_client: TestClient) -> None:
    location = start_upload(app_client, "empty")
    r = app_client.patch(location, content=b"")
    assert r.status_code == 202
    assert r.headers["range"] == "0-0"
    assert app_client.put(location, params={"digest": sha256(b"")}).status_code == 201


def test_blob_pushed_twice_through_sessions(app_client: TestClient, settings: Settings) -> None:
    digest = push_blob(app_client, "dup", DATA)
    location = start_upload(app_client, "dup")
    assert app_client.put(location, params={"digest": digest}, content=DATA).status_code == 201
    assert app_client.get(f"/v2/dup/blobs/{digest}").content == DATA
    assert staged_files(settings) == set()
