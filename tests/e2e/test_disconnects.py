"""Clients that hang up in the middle of an upload, against a real `dockyard serve`.

A raw socket sends the request head with a large Content-Length (or a chunked body), part of
the body, then closes (FIN) or resets (RST). Afterwards, for each kind of upload:

- the session's committed offset (GET on the upload URL → 204 Range) is unchanged;
- its staging file is cut back to that offset (never longer);
- no blob appears (not in the API, not in the store);
- the same chunk sent again succeeds, and the finished blob reads back with the right digest.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.e2e.helpers_raw import (
    checked_server,
    RawConn,
    basic_value,
    blob_file,
    blob_ok,
    blob_status,
    client,
    error_json,
    finish,
    patch_chunk,
    push_monolithic,
    range_for,
    server_holds_open,
    session_range,
    sha256,
    staging_files,
    staging_size,
    start_session,
    store_problems,
    wait_until,
)

pytestmark = pytest.mark.e2e

MiB = 1 << 20
FIRST = MiB + MiB // 2  # an acknowledged first chunk, so the offset to come back to is not 0
CHUNK = 8 * MiB  # the chunk the client announces
SENT = 3 * MiB  # what it sends of it before hanging up (more than one 1 MiB write batch)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with checked_server(tmp_path_factory.mktemp("disconnects")) as proc:
        yield proc


@pytest.fixture
def c(srv: ServerProcess) -> Iterator[httpx.Client]:
    with client(srv) as http:
        yield http


def _repo() -> str:
    return f"crash/disc-{uuid.uuid4().hex[:8]}"


def _hang_up(conn: RawConn, how: str) -> None:
    if how == "fin":
        conn.close()
    else:
        conn.reset()


def _reached(srv: ServerProcess, upload_id: str, offset: int, sent: int) -> None:
    """Wait until the request's handler has the staging file open and, when a whole write batch
    was sent, has written past `offset`: the hang-up then lands where the test says it does."""
    path = srv.data / "uploads" / upload_id

    def reached() -> bool:
        return server_holds_open(srv, path) and (sent < SENT or (staging_size(srv.data, upload_id) or 0) > offset)
    assert wait_until(reached, timeout=20), \
        f"the request never reached its staging file ({staging_size(srv.data, upload_id)} bytes)"


def _settled(srv: ServerProcess, upload_id: str, offset: int) -> None:
    """Wait until the server is done with the broken request (its handler closed the staging
    file), then the file must be back at `offset`."""
    assert wait_until(lambda: not server_holds_open(srv, srv.data / "uploads" / upload_id), timeout=20), \
        "the server never let go of the staging file"
    assert staging_size(srv.data, upload_id) == offset, (
        f"staging file is {staging_size(srv.data, upload_id)} bytes, committed offset {offset}")


def _start_with_first_chunk(c: httpx.Client, repo: str) -> tuple[str, bytes]:
    upload_id = start_session(c, repo)
    first = os.urandom(FIRST)
    r = patch_chunk(c, repo, upload_id, 0, first)
    assert r.status_code == 202, r.text
    assert r.headers["Range"] == range_for(FIRST)
    return upload_id, first


def _check_nothing_committed(srv: ServerProcess, c: httpx.Client, repo: str, upload_id: str, offset: int,
                             digest: str) -> None:
    _settled(srv, upload_id, offset)
    assert session_range(c, repo, upload_id) == range_for(offset)
    assert blob_status(c, repo, digest) == 404
    assert not blob_file(srv.data, digest).exists()


def _retry_and_finish(srv: ServerProcess, c: httpx.Client, repo: str, upload_id: str, first: bytes, chunk: bytes) -> None:
    r = patch_chunk(c, repo, upload_id, len(first), chunk)
    assert r.status_code == 202, r.text
    assert r.headers["Range"] == range_for(len(first) + len(chunk))
    assert staging_size(srv.data, upload_id) == len(first) + len(chunk)
    whole = first + chunk
    r = finish(c, repo, upload_id, sha256(whole))
    assert r.status_code == 201, r.text
    assert blob_ok(c, repo, sha256(whole), len(whole))
    assert staging_size(srv.data, upload_id) is None
    assert store_problems(srv.data) == []


@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("sent", [0, 100, SENT])
def test_monolithic_post_disconnect(srv: ServerProcess, c: httpx.Client, how: str, sent: int) -> None:
    repo = _repo()
    data = os.urandom(CHUNK)
    digest = sha256(data)
    before = set(staging_files(srv.data))
    conn = RawConn(srv.port)
    conn.send_head("POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", {
        "Authorization": basic_value(srv.user, srv.password),
        "Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    conn.send(data[:sent])

    def reached() -> bool:  # the POST's staging file is open (and past a write batch when one was sent)
        new = {n: size for n, size in staging_files(srv.data).items() if n not in before}
        return any(server_holds_open(srv, srv.data / "uploads" / n) and (sent < SENT or size >= MiB)
                   for n, size in new.items())
    assert wait_until(reached, timeout=20), "the POST never reached its staging file"
    _hang_up(conn, how)
    # the staging file of the monolithic upload goes: nobody could ever resume it
    assert wait_until(lambda: set(staging_files(srv.data)) <= before, timeout=20), staging_files(srv.data)
    assert blob_status(c, repo, digest) == 404
    assert not blob_file(srv.data, digest).exists()
    r = push_monolithic(c, repo, data)
    assert r.status_code == 201, r.text
    assert blob_ok(c, repo, digest, len(data))
    assert set(staging_files(srv.data)) <= before
    assert store_problems(srv.data) == []


@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_streamed_patch_disconnect(srv: ServerProcess, c: httpx.Client, how: str, framing: str) -> None:
    """A streamed PATCH (no Content-Range) cut off: the session stays at its offset."""
    repo = _repo()
    upload_id, first = _start_with_first_chunk(c, repo)
    chunk = os.urandom(CHUNK)
    conn = RawConn(srv.port)
    headers = {"Authorization": basic_value(srv.user, srv.password), "Content-Type": "application/octet-stream"}
    if framing == "content-length":
        headers["Content-Length"] = str(len(chunk))
    else:
        headers["Transfer-Encoding"] = "chunked"
    conn.send_head("PATCH", f"/v2/{repo}/blobs/uploads/{upload_id}", headers)
    if framing == "content-length":
        conn.send(chunk[:SENT])
    else:
        for i in range(0, SENT, 256 * 1024):
            conn.send_chunk(chunk[i:i + 256 * 1024])
        # no terminating zero-length chunk: the body is incomplete
    _reached(srv, upload_id, FIRST, SENT)
    _hang_up(conn, how)
    _check_nothing_committed(srv, c, repo, upload_id, len(first), sha256(first + chunk))
    _retry_and_finish(srv, c, repo, upload_id, first, chunk)


@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("sent", [0, 100, SENT])
def test_chunked_patch_disconnect(srv: ServerProcess, c: httpx.Client, how: str, sent: int) -> None:
    """A PATCH with Content-Range cut off: the session stays at its offset; the chunk is resent."""
    repo = _repo()
    upload_id, first = _start_with_first_chunk(c, repo)
    chunk = os.urandom(CHUNK)
    conn = RawConn(srv.port)
    conn.send_head("PATCH", f"/v2/{repo}/blobs/uploads/{upload_id}", {
        "Authorization": basic_value(srv.user, srv.password), "Content-Type": "application/octet-stream",
        "Content-Range": f"{FIRST}-{FIRST + CHUNK - 1}", "Content-Length": str(CHUNK)})
    conn.send(chunk[:sent])
    _reached(srv, upload_id, FIRST, sent)
    _hang_up(conn, how)
    _check_nothing_committed(srv, c, repo, upload_id, FIRST, sha256(first + chunk))
    _retry_and_finish(srv, c, repo, upload_id, first, chunk)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_closing_put_disconnect(srv: ServerProcess, c: httpx.Client, how: str) -> None:
    """The closing PUT ?digest= carries the last chunk and is cut off: no blob, the session
    stays at its offset, and the PUT sent again commits the blob."""
    repo = _repo()
    upload_id, first = _start_with_first_chunk(c, repo)
    last = os.urandom(CHUNK)
    digest = sha256(first + last)
    conn = RawConn(srv.port)
    conn.send_head("PUT", f"/v2/{repo}/blobs/uploads/{upload_id}?digest={digest}", {
        "Authorization": basic_value(srv.user, srv.password), "Content-Type": "application/octet-stream",
        "Content-Length": str(CHUNK)})
    conn.send(last[:SENT])
    _reached(srv, upload_id, FIRST, SENT)
    _hang_up(conn, how)
    _check_nothing_committed(srv, c, repo, upload_id, FIRST, digest)
    r = finish(c, repo, upload_id, digest, last)
    assert r.status_code == 201, r.text
    assert blob_ok(c, repo, digest, FIRST + CHUNK)
    assert staging_size(srv.data, upload_id) is None


def test_many_disconnects_then_resume(srv: ServerProcess, c: httpx.Client) -> None:
    """Chunk after chunk is cut off at a different point; each time the session stays where it
    was, and resending completes it."""
    repo = _repo()
    upload_id, first = _start_with_first_chunk(c, repo)
    chunk = os.urandom(2 * MiB)
    for i, sent in enumerate([1, 4096, MiB - 1, MiB, MiB + 1, 2 * MiB - 1]):
        conn = RawConn(srv.port)
        conn.send_head("PATCH", f"/v2/{repo}/blobs/uploads/{upload_id}", {
            "Authorization": basic_value(srv.user, srv.password), "Content-Type": "application/octet-stream",
            "Content-Range": f"{FIRST}-{FIRST + len(chunk) - 1}", "Content-Length": str(len(chunk))})
        conn.send(chunk[:sent])
        _reached(srv, upload_id, FIRST, sent)
        _hang_up(conn, "fin" if i % 2 else "rst")
        _check_nothing_committed(srv, c, repo, upload_id, FIRST, sha256(first + chunk))
    _retry_and_finish(srv, c, repo, upload_id, first, chunk)


def test_short_body_then_close_is_not_committed(srv: ServerProcess, c: httpx.Client) -> None:
    """A client that half-closes its side (shutdown SHUT_WR) after a short body: the server sees
    the end of the stream before Content-Length bytes; the chunk must not count."""
    repo = _repo()
    upload_id, first = _start_with_first_chunk(c, repo)
    chunk = os.urandom(MiB)
    conn = RawConn(srv.port)
    conn.send_head("PATCH", f"/v2/{repo}/blobs/uploads/{upload_id}", {
        "Authorization": basic_value(srv.user, srv.password), "Content-Type": "application/octet-stream",
        "Content-Range": f"{FIRST}-{FIRST + len(chunk) - 1}", "Content-Length": str(len(chunk))})
    conn.send(chunk[: MiB // 2])
    conn.sock.shutdown(socket.SHUT_WR)
    # granian signals the half-close as an ASGI disconnect; the app still answers on the
    # half-open connection with the spec's error (it used to send nothing, and granian a bare 500).
    status, _, body = conn.read_response(timeout=20)
    assert (status, error_json(body)["errors"][0]["code"]) == (400, "SIZE_INVALID")
    conn.close()
    _check_nothing_committed(srv, c, repo, upload_id, FIRST, sha256(first + chunk))
    _retry_and_finish(srv, c, repo, upload_id, first, chunk)
