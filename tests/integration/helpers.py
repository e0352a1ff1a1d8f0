"""Shared helpers for the in-process /v2 tests: building and pushing blobs and manifests, reading
error bodies, and a guard that fails any test that gets a 5xx answer.

`no_server_errors` is an autouse fixture; tests/integration/conftest.py imports it, so it applies
to every test of tests/integration (a module that imports it too changes nothing).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import httpx
import pytest
from starlette.testclient import TestClient

from dockyard.config import Settings

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"


@pytest.fixture(autouse=True)
def no_server_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail the test if any request made through a TestClient was answered with a 5xx."""
    seen: list[str] = []
    original = TestClient.send

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = original(self, request, **kwargs)
        if response.status_code >= 500:
            seen.append(f"{request.method} {request.url} -> {response.status_code}: {response.text[:300]}")
        return response

    monkeypatch.setattr(TestClient, "send", send)
    yield seen
    assert not seen, "server errors:\n" + "\n".join(seen)


@dataclass
class RawResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


def raw_request(client: TestClient, method: str, raw_path: bytes, headers: list[tuple[bytes, bytes]] | None = None,
                body: bytes = b"", query: bytes = b"", with_auth: bool = True) -> RawResponse:
    """Call the ASGI app directly, bypassing httpx's URL normalisation and header encoding (so
    paths with `..`, `//` or raw bytes in headers reach the app exactly as a server would pass them)."""
    hdrs = list(headers or [])
    if with_auth and "authorization" in client.headers:
        hdrs.append((b"authorization", client.headers["authorization"].encode()))
    hdrs.append((b"host", b"registry.test"))
    if body:
        hdrs.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": unquote(raw_path.decode("latin-1")), "raw_path": raw_path,
        "query_string": query, "root_path": "", "headers": hdrs, "client": ("127.0.0.1", 1234),
        "server": ("registry.test", 80),
    }
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await client.app(scope, receive, send)  # type: ignore[arg-type]

    assert client.portal is not None
    client.portal.call(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    response = RawResponse(start["status"], {k.decode().lower(): v.decode("latin-1") for k, v in start["headers"]}, content)
    assert response.status_code < 500, (method, raw_path, response.status_code, response.text[:300])
    return response


# -- digests and bodies ---------------------------------------------------------------------------
def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def descriptor(media_type: str, data: bytes, digest: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest or sha256(data), "size": len(data), **extra}


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def image_manifest(config: dict[str, Any], layers: list[dict[str, Any]], media_type: str = OCI_MANIFEST,
                   **extra: Any) -> bytes:
    return dumps({"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": layers, **extra})


def index_manifest(children: list[dict[str, Any]], media_type: str = OCI_INDEX, **extra: Any) -> bytes:
    return dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": children, **extra})


# -- answers ----------------------------------------------------------------------------------------
def error_codes(response: httpx.Response | RawResponse) -> list[str]:
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("errors"), list), body
    return [e["code"] for e in body["errors"]]


def assert_error(response: httpx.Response | RawResponse, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert code in error_codes(response), response.text[:500]


# -- pushing ----------------------------------------------------------------------------------------
def push_blob(client: TestClient, repo: str, data: bytes, digest: str | None = None) -> str:
    digest = digest or sha256(data)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == digest
    return digest


def start_upload(client: TestClient, repo: str) -> str:
    """Open a session; returns its Location (a path)."""
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    assert r.headers["docker-upload-uuid"]
    return r.headers["location"]


def put_manifest(client: TestClient, repo: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST) -> httpx.Response:
    return client.put(f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type})


def push_image(client: TestClient, repo: str, tag: str | None = "latest", *, media_type: str = OCI_MANIFEST,
               layer: bytes | None = None, config: bytes | None = None, **extra: Any) -> tuple[str, bytes]:
    """Push a config, one layer and an image manifest; returns (manifest digest, manifest bytes)."""
    docker = media_type == DOCKER_MANIFEST
    config = config if config is not None else dumps({"architecture": "amd64", "os": "linux", "repo": repo, "tag": tag})
    layer = layer if layer is not None else f"layer of {repo}:{tag}".encode()
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    body = image_manifest(descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
                          [descriptor(DOCKER_LAYER if docker else OCI_LAYER, layer)], media_type, **extra)
    digest = sha256(body)
    r = put_manifest(client, repo, tag or digest, body, media_type)
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == digest
    return digest, body


def push_index(client: TestClient, repo: str, tag: str | None, children: list[tuple[str, bytes]],
               media_type: str = OCI_INDEX) -> tuple[str, bytes]:
    child_type = DOCKER_MANIFEST if media_type == DOCKER_LIST else OCI_MANIFEST
    body = index_manifest([descriptor(child_type, data, digest, platform={"architecture": f"arch{i}", "os": "linux"})
                           for i, (digest, data) in enumerate(children)], media_type)
    digest = sha256(body)
    r = put_manifest(client, repo, tag or digest, body, media_type)
    assert r.status_code == 201, r.text
    return digest, body


# -- what is on disk and in the database ----------------------------------------------------------
def stored_files(settings: Settings) -> set[str]:
    """Every file in the blob store and the staging area (relative paths)."""
    out: set[str] = set()
    for root in (settings.blob_root, settings.upload_root):
        if root.exists():
            out |= {str(p.relative_to(root.parent)) for p in Path(root).rglob("*") if p.is_file()}
    return out


def catalog(client: TestClient) -> list[str]:
    r = client.get("/v2/_catalog")
    assert r.status_code == 200, r.text
    return list(r.json()["repositories"])


def snapshot(client: TestClient, settings: Settings) -> tuple[set[str], list[str]]:
    """What the registry holds: files and repositories. Equal before and after a refused request."""
    return stored_files(settings), catalog(client)


T = TypeVar("T")


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something true (which is returned); fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def run_together(fns: list[Callable[[], T]], timeout: float = 30.0) -> list[T]:
    """Run every fn in its own thread, all starting at the same moment; their results in order
    (fails the test when one raised or did not finish within `timeout`)."""
    barrier = threading.Barrier(len(fns))
    results: list[Any] = [None] * len(fns)

    def run(i: int) -> None:
        barrier.wait(timeout)
        try:
            results[i] = fns[i]()
        except BaseException as e:  # noqa: BLE001  (reported below)
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return results


# -- jobs, run by hand ---------------------------------------------------------------------------------
class _JobCtx:
    """What a handler gets from a worker: never cancelled, progress ignored."""

    def __init__(self, job: Any) -> None:
        self.job = job

    def check(self) -> None:
        pass

    def progress(self, done: int, total: int | None = None, force: bool = False) -> None:
        pass


def run_jobs(services: Any, kinds: tuple[str, ...], raise_errors: bool = False) -> list[Any]:
    """Dispatch events, then run every due job of `kinds` once through its handler, as a worker
    would (the tests' apps run no embedded worker): a failed attempt is queued again an hour later,
    or with `raise_errors` raised. Returns the outcomes (results, or the exceptions)."""
    from dockyard.app import job_services
    from dockyard.jobs.kinds import job_kinds

    handlers = {k.name: k.handler for k in job_kinds(job_services(services))}
    outcomes: list[Any] = []
    services.events.dispatch_all()
    while (job := services.jobs.claim("test", kinds, 60)) is not None:
        try:
            result = handlers[job.kind](_JobCtx(job), job.args)
        except Exception as exc:  # noqa: BLE001 (the worker's part: record and retry later)
            if raise_errors:
                raise
            services.jobs.fail(job.id, "test", str(exc), 3600 if job.attempts < job.max_attempts else None)
            outcomes.append(exc)
        else:
            services.jobs.succeed(job.id, "test", result)
            outcomes.append(result)
        services.events.dispatch_all()
    return outcomes
