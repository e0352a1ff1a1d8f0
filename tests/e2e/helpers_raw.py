"""Helpers for the crash-safety and disconnect tests against a real `dockyard serve`.

- `RawConn`: a raw HTTP/1.1 socket to 127.0.0.1, so a test can send headers that promise a
  long body, send part of it, and hang up (which httpx cannot do on purpose).
- small registry-client helpers over httpx (push a blob, a manifest; read them back);
- checks on the data directory: every file in the blob store hashes to its name, the staging
  area, the upload sessions the database knows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import sqlite3
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ServerProcess, free_port

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def basic_value(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, interval: float = 0.05) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# -- raw sockets ------------------------------------------------------------------------------------
class RawConn:
    """One HTTP/1.1 request over a plain socket to 127.0.0.1."""

    def __init__(self, port: int, timeout: float = 15.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_head(self, method: str, path: str, headers: dict[str, str]) -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_chunk(self, data: bytes) -> None:
        """One chunk of a `Transfer-Encoding: chunked` body (b"" ends the body)."""
        self.sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def close(self) -> None:
        """An orderly hang-up (FIN) in the middle of the body."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def reset(self) -> None:
        """An abortive hang-up (RST), as when a client process dies."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def read_response(self, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
        self.sock.settimeout(timeout)
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no response head")
            part = self.sock.recv(65536)
            if not part:
                raise ConnectionError(f"connection closed before the response head: {buf[:200]!r}")
            buf += part
        head, _, rest = buf.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers = {}
        for line in header_lines:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length and time.monotonic() < deadline:
            part = self.sock.recv(65536)
            if not part:
                break
            rest += part
        return status, headers, rest[:length]


# -- a server whose store is checked when it stops -------------------------------------------------
@contextmanager
def checked_server(base: Path) -> Iterator[ServerProcess]:
    """A `dockyard serve` on a free port under `base`; when the tests are done, it is stopped and
    its data directory must hold no partial or stray blob (store_problems)."""
    proc = ServerProcess(base / "data", free_port(), "e2e-" + uuid.uuid4().hex[:12]).start()
    try:
        yield proc
    finally:
        proc.stop()
    assert store_problems(proc.data) == []


# -- registry client ------------------------------------------------------------------------------
def client(server: ServerProcess, timeout: float = 60.0) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=(server.user, server.password), timeout=timeout)


def push_monolithic(c: httpx.Client, repo: str, data: bytes) -> httpx.Response:
    return c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data,
                  headers={"Content-Type": "application/octet-stream"})


def start_session(c: httpx.Client, repo: str) -> str:
    """POST a new upload session; returns its id."""
    r = c.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    return r.headers["Docker-Upload-UUID"]


def patch_chunk(c: httpx.Client, repo: str, upload_id: str, start: int, data: bytes) -> httpx.Response:
    return c.patch(f"/v2/{repo}/blobs/uploads/{upload_id}", content=data, headers={
        "Content-Type": "application/octet-stream", "Content-Range": f"{start}-{start + len(data) - 1}"})


def finish(c: httpx.Client, repo: str, upload_id: str, digest: str, data: bytes = b"") -> httpx.Response:
    return c.put(f"/v2/{repo}/blobs/uploads/{upload_id}", params={"digest": digest}, content=data,
                 headers={"Content-Type": "application/octet-stream"})


def session_range(c: httpx.Client, repo: str, upload_id: str) -> str | None:
    """The Range header of a session's status (GET → 204, `0-(offset-1)`); None when unknown."""
    r = c.get(f"/v2/{repo}/blobs/uploads/{upload_id}")
    if r.status_code == 404:
        return None
    assert r.status_code == 204, (r.status_code, r.text)
    return r.headers["Range"]


def range_for(offset: int) -> str:
    return f"0-{max(offset - 1, 0)}"


def manifest_for(config: bytes, layers: list[bytes]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)} for layer in layers],
    }
    return json.dumps(doc, sort_keys=True).encode()


def put_manifest(c: httpx.Client, repo: str, ref: str, body: bytes) -> httpx.Response:
    return c.put(f"/v2/{repo}/manifests/{ref}", content=body, headers={"Content-Type": OCI_MANIFEST})


def blob_ok(c: httpx.Client, repo: str, digest: str, size: int | None = None) -> bool:
    r = c.get(f"/v2/{repo}/blobs/{digest}")
    return r.status_code == 200 and sha256(r.content) == digest and (size is None or len(r.content) == size)


def blob_status(c: httpx.Client, repo: str, digest: str) -> int:
    return c.head(f"/v2/{repo}/blobs/{digest}").status_code


# -- the data directory ---------------------------------------------------------------------------
def blob_file(data: Path, digest: str) -> Path:
    alg, hexpart = digest.split(":", 1)
    return data / "blobs" / alg / hexpart[:2] / hexpart


def store_problems(data: Path, allow_temp: bool = True) -> list[str]:
    """Hash every file in the blob store; a file whose content does not match its name, or that
    is not where its name says, is a problem (and, without `allow_temp`, a leftover staged
    manifest). Returns them (empty: the store is sound)."""
    problems: list[str] = []
    root = data / "blobs"
    if not root.exists():
        return problems
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).parts
        if len(rel) == 2 and rel[0] == ".staging" and rel[1].endswith(".tmp"):
            # a manifest being written (FsBlobStore.stage_bytes); a crash can leave one behind,
            # where nothing reads it, until the purge at the next start removes it
            if not allow_temp:
                problems.append(f"staged manifest left over: {path}")
            continue
        if len(rel) != 3:
            problems.append(f"unexpected file {path}")
            continue
        alg, prefix, name = rel
        if name.startswith("."):
            problems.append(f"temporary file left in the store: {path}")
            continue
        if alg not in ("sha256", "sha512") or not name.startswith(prefix):
            problems.append(f"misplaced file {path}")
            continue
        h = hashlib.new(alg)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if h.hexdigest() != name:
            problems.append(f"{path}: content hashes to {alg}:{h.hexdigest()}")
    return problems


def staging_files(data: Path) -> dict[str, int]:
    """Files in the staging area: {name: size}."""
    root = data / "uploads"
    if not root.exists():
        return {}
    return {e.name: e.stat().st_size for e in os.scandir(root) if e.is_file()}


def staging_size(data: Path, upload_id: str) -> int | None:
    try:
        return (data / "uploads" / upload_id).stat().st_size
    except FileNotFoundError:
        return None


def db_sessions(data: Path) -> dict[str, int]:
    """Upload sessions the (SQLite) database holds: {id: offset}. Read-only."""
    conn = sqlite3.connect(f"file:{data / 'dockyard.db'}?mode=ro", uri=True, timeout=10)
    try:
        return {row[0]: int(row[1]) for row in conn.execute('SELECT id, "offset" FROM upload_sessions')}
    finally:
        conn.close()


def error_json(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    assert isinstance(doc.get("errors"), list) and doc["errors"], doc
    assert {"code", "message"} <= set(doc["errors"][0]), doc
    return doc  # type: ignore[no-any-return]


def server_holds_open(server: ServerProcess, path: Path) -> bool:
    """Whether a process of the server (supervisor or worker: one process group) has `path` open:
    the observable sign that a request's handler reached its staging file (and, once it is gone
    again, that the handler is done with it)."""
    assert server.proc is not None
    group, target = server.proc.pid, str(path)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) != group:
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
        except OSError:  # the process or the descriptor went away meanwhile
            continue
    return False
