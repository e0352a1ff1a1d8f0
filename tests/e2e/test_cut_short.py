"""Bodies that end early or can never arrive, against a real `dockyard serve` (granian):

- a client that half-closes its side (shutdown SHUT_WR) in the middle of a body gets a 400 with
  the spec's error body (SIZE_INVALID with a Content-Length, BLOB_UPLOAD_INVALID or
  MANIFEST_INVALID for a chunked body), never granian's own bare 500;
- `Content-Length: 100000000000000000` is answered 413 SIZE_INVALID at once, the body unread;
- either way nothing is stored and the server logs no error.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.e2e.helpers_raw import (
    checked_server,
    OCI_MANIFEST,
    RawConn,
    basic_value,
    blob_file,
    blob_status,
    client,
    error_json,
    session_range,
    sha256,
    staging_files,
    staging_size,
    start_session,
    wait_until,
)

pytestmark = pytest.mark.e2e

HUGE = "100000000000000000"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with checked_server(tmp_path_factory.mktemp("cut-short")) as proc:
        yield proc


@pytest.fixture
def c(srv: ServerProcess) -> Iterator[httpx.Client]:
    with client(srv) as http:
        yield http


def _repo() -> str:
    return f"cut/short-{uuid.uuid4().hex[:8]}"


def _send(srv: ServerProcess, method: str, path: str, headers: dict[str, str], body: bytes,
          half_close: bool) -> tuple[int, dict[str, str], bytes]:
    conn = RawConn(srv.port)
    try:
        conn.send_head(method, path, {"Authorization": basic_value(srv.user, srv.password), **headers})
        conn.send(body)
        if half_close:
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server answered and closed first: its answer is still to be read
        return conn.read_response(timeout=20)
    finally:
        conn.close()


def _code(status: int, body: bytes) -> tuple[int, str]:
    return status, error_json(body)["errors"][0]["code"]


def _log_is_clean(srv: ServerProcess) -> None:
    log = srv.log.read_text(errors="replace")
    assert "Traceback" not in log and "internal error" not in log and " 500" not in log, log[-3000:]


def _no_staging_left(srv: ServerProcess, before: dict[str, int]) -> None:
    assert wait_until(lambda: staging_files(srv.data).keys() <= before.keys(), timeout=10), staging_files(srv.data)


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_monolithic_post_half_closed(srv: ServerProcess, c: httpx.Client, framing: str) -> None:
    repo, data = _repo(), b"x" * 200_000
    digest = sha256(data)
    before = staging_files(srv.data)
    if framing == "length":
        headers, body = {"Content-Length": str(len(data))}, data[:70_000]
    else:
        headers, body = {"Transfer-Encoding": "chunked"}, f"{70_000:x}\r\n".encode() + data[:70_000] + b"\r\n"
    status, _, answer = _send(srv, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}",
                              {"Content-Type": "application/octet-stream", **headers}, body, half_close=True)
    assert _code(status, answer) == (400, "SIZE_INVALID" if framing == "length" else "BLOB_UPLOAD_INVALID")
    assert blob_status(c, repo, digest) == 404
    assert not blob_file(srv.data, digest).exists()
    _no_staging_left(srv, before)
    _log_is_clean(srv)


def test_patch_half_closed_keeps_the_session(srv: ServerProcess, c: httpx.Client) -> None:
    repo = _repo()
    upload_id = start_session(c, repo)
    status, _, answer = _send(srv, "PATCH", f"/v2/{repo}/blobs/uploads/{upload_id}", {
        "Content-Type": "application/octet-stream", "Content-Range": "0-99999", "Content-Length": "100000"},
        b"y" * 30_000, half_close=True)
    assert _code(status, answer) == (400, "SIZE_INVALID")
    assert wait_until(lambda: staging_size(srv.data, upload_id) == 0, timeout=10)
    assert session_range(c, repo, upload_id) == "0-0"
    _log_is_clean(srv)


def test_manifest_put_half_closed(srv: ServerProcess, c: httpx.Client) -> None:
    repo = _repo()
    status, _, answer = _send(srv, "PUT", f"/v2/{repo}/manifests/v1", {
        "Content-Type": OCI_MANIFEST, "Content-Length": "5000"}, b'{"schemaVersion": 2, ', half_close=True)
    assert _code(status, answer) == (400, "SIZE_INVALID")
    assert c.get(f"/v2/{repo}/manifests/v1").status_code == 404
    _log_is_clean(srv)


@pytest.mark.parametrize("half_close", [False, True])
@pytest.mark.parametrize("kind", ["post", "patch", "put"])
def test_absurd_content_length(srv: ServerProcess, c: httpx.Client, kind: str, half_close: bool) -> None:
    repo = _repo()
    digest = sha256(b"never")
    if kind == "post":
        path, extra = f"/v2/{repo}/blobs/uploads/?digest={digest}", {}
    else:
        upload_id = start_session(c, repo)
        path = f"/v2/{repo}/blobs/uploads/{upload_id}" + (f"?digest={digest}" if kind == "put" else "")
        extra = {"Content-Range": f"0-{int(HUGE) - 1}"}
    before = staging_files(srv.data)
    started = time.monotonic()
    status, headers, answer = _send(srv, "PATCH" if kind == "patch" else "POST" if kind == "post" else "PUT", path,
                              {"Content-Type": "application/octet-stream", "Content-Length": HUGE, **extra},
                              b"", half_close=half_close)  # no body bytes: unread ones would make the close an RST
    assert _code(status, answer) == (413, "SIZE_INVALID")
    assert headers.get("connection") == "close"
    assert time.monotonic() - started < 10  # answered at once, not after reading
    assert blob_status(c, repo, digest) == 404
    if kind != "post":
        assert session_range(c, repo, upload_id) == "0-0"
    _no_staging_left(srv, before)
    _log_is_clean(srv)


def test_a_refusal_before_the_body_closes_the_connection(srv: ServerProcess) -> None:
    """A push refused before its body was read (here: no credentials) says `Connection: close`,
    so a client never sends its next request on a connection the server is closing; keep-alive
    clients then carry on without "Server disconnected without sending a response"."""
    repo, data = _repo(), b"z" * 4096
    with httpx.Client(base_url=srv.url, timeout=20) as anonymous:
        for _ in range(30):
            r = anonymous.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data)
            assert r.status_code == 401 and r.headers.get("connection") == "close"
            assert anonymous.get("/v2/").status_code == 401
    with client(srv) as c:  # a refusal after the body was read keeps the connection
        r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(b"other")}, content=data)
        assert r.status_code == 400 and "connection" not in r.headers
    _log_is_clean(srv)
