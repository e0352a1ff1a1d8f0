"""The test infrastructure for many nodes works: a real S3 server (Ceph RGW, tests/s3_support.py) and
nginx round-robin in front of several upstreams (scripts/nginx-lb, tests/e2e/balancer.py)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.exceptions
import httpx
import pytest

from tests.e2e.balancer import access_log, balancer
from tests.s3_support import S3Server, empty_and_delete

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024


# -- Ceph RGW ----------------------------------------------------------------------------------------
@pytest.mark.s3
def test_put_get_ranged_get_head(s3_bucket: tuple[S3Server, str]) -> None:
    server, bucket = s3_bucket
    s3 = server.client()
    data = os.urandom(3 * MiB + 17)
    s3.put_object(Bucket=bucket, Key="a/blob", Body=data)
    assert s3.get_object(Bucket=bucket, Key="a/blob")["Body"].read() == data
    part = s3.get_object(Bucket=bucket, Key="a/blob", Range="bytes=1000-1999")
    assert part["ContentRange"] == f"bytes 1000-1999/{len(data)}"
    assert part["Body"].read() == data[1000:2000]
    head = s3.head_object(Bucket=bucket, Key="a/blob")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()


@pytest.mark.s3
def test_multipart_upload(s3_bucket: tuple[S3Server, str]) -> None:
    server, bucket = s3_bucket
    s3 = server.client()
    parts_data = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1234)]  # 5 MiB: S3's minimum part
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    parts = []
    for number, chunk in enumerate(parts_data, start=1):
        etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=number, Body=chunk)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts})
    # radosgw 16.2 answers CompleteMultipartUpload with an empty ETag; HEAD has the real one.
    head = s3.head_object(Bucket=bucket, Key="mp")
    assert head["ContentLength"] == sum(len(p) for p in parts_data)
    assert head["ETag"].strip('"').endswith("-3")
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(parts_data)
    # An upload left unfinished: the fixture's teardown must abort it, or deleting the bucket fails.
    other = s3.create_multipart_upload(Bucket=bucket, Key="left-open")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="left-open", UploadId=other, PartNumber=1, Body=b"x" * 100)
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])] == ["left-open"]


@pytest.mark.s3
def test_delete_objects_batch(s3_bucket: tuple[S3Server, str]) -> None:
    server, bucket = s3_bucket
    s3 = server.client()
    for key in ("k1", "k2", "k3"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k1"}, {"Key": "k3"}]})
    assert sorted(d["Key"] for d in answer["Deleted"]) == ["k1", "k3"]
    assert not answer.get("Errors")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k2"]


@pytest.mark.s3
def test_presigned_get_with_httpx(s3_bucket: tuple[S3Server, str]) -> None:
    server, bucket = s3_bucket
    s3 = server.client()
    data = os.urandom(100_000)
    s3.put_object(Bucket=bucket, Key="p", Body=data)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    assert url.startswith(server.endpoint + "/")  # path-style, signed for 127.0.0.1
    with httpx.Client(timeout=30) as http:
        full = http.get(url)
        assert full.status_code == 200 and full.content == data
        ranged = http.get(url, headers={"Range": "bytes=10-19"})
        assert ranged.status_code == 206 and ranged.content == data[10:20]
        assert http.get(url.replace("Signature=", "Signature=0")).status_code == 403
        assert http.get(f"{server.endpoint}/{bucket}/p").status_code == 403  # not signed at all


@pytest.mark.s3
def test_empty_and_delete_removes_objects_uploads_and_bucket(ceph_rgw: S3Server) -> None:
    s3 = ceph_rgw.client()
    bucket = f"t-empty-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"o{i}", Body=b"x")
    s3.create_multipart_upload(Bucket=bucket, Key="open")
    empty_and_delete(s3, bucket)
    with pytest.raises(botocore.exceptions.ClientError) as gone:
        s3.head_bucket(Bucket=bucket)
    assert gone.value.response["Error"]["Code"] == "404"


# -- nginx round-robin -------------------------------------------------------------------------------
class Node:
    """A tiny upstream in a thread: GET answers its name; PUT/POST read the body as it arrives (chunked
    or Content-Length) and answer its size and sha256 with the headers it came with; /drop hangs up
    without answering on a node created with `drops=True`."""

    def __init__(self, name: str, drops: bool = False) -> None:
        self.name = name
        self.drops = drops
        self.requests: list[tuple[str, str]] = []
        self.first_body_bytes = threading.Event()  # set once the first 64 KiB of a body have arrived
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive with nginx's upstream pool

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, status: int, payload: dict[str, object]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> Iterator[bytes]:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    for _ in range(100_000):  # bounded: 20 MiB arrives in far fewer chunks
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()  # the empty trailer line
                            return
                        remaining = size
                        while remaining:
                            piece = self.rfile.read(min(remaining, 65536))
                            if not piece:
                                return
                            remaining -= len(piece)
                            yield piece
                        self.rfile.readline()  # CRLF after the chunk
                    return
                remaining = int(self.headers.get("Content-Length", "0"))
                while remaining:
                    piece = self.rfile.read(min(remaining, 65536))
                    if not piece:
                        return
                    remaining -= len(piece)
                    yield piece

            def _handle(self) -> None:
                node.requests.append((self.command, self.path))
                if self.path == "/drop" and node.drops:
                    self.close_connection = True
                    self.connection.shutdown(2)  # no answer at all: nginx sees an upstream error
                    return
                if self.command == "GET":
                    self._answer(200, {"node": node.name})
                    return
                digest, size = hashlib.sha256(), 0
                for piece in self._body():
                    digest.update(piece)
                    size += len(piece)
                    if size >= 65536:
                        node.first_body_bytes.set()
                self._answer(201, {
                    "node": node.name, "size": size, "sha256": digest.hexdigest(),
                    "host": self.headers.get("Host"), "xff": self.headers.get("X-Forwarded-For"),
                    "proto": self.headers.get("X-Forwarded-Proto"),
                    "te": self.headers.get("Transfer-Encoding"), "length": self.headers.get("Content-Length"),
                })

            do_GET = do_PUT = do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def nodes() -> Iterator[tuple[Node, Node]]:
    a, b = Node("a", drops=True), Node("b")
    yield a, b
    a.close()
    b.close()


def test_balancer_alternates_between_upstreams(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    with balancer([a.address, b.address]) as address, httpx.Client(timeout=30) as http:
        served = [http.get(f"http://{address}/x").json()["node"] for _ in range(6)]
        assert sorted(served) == ["a", "a", "a", "b", "b", "b"]
        assert all(served[i] != served[i + 1] for i in range(5)), served  # strict round-robin
        deadline = time.monotonic() + 5  # nginx logs a request once it has answered it
        while len(access_log(address)) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        logged = access_log(address)
        assert sum(f"up={a.address}" in line for line in logged) == 3
        assert sum(f"up={b.address}" in line for line in logged) == 3


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_balancer_streams_a_20_mib_put_through(nodes: tuple[Node, Node], framing: str) -> None:
    """The upstream receives the first bytes of a 20 MiB body while the client has sent only 4 MiB of
    it (the client waits for that): nginx streams the body instead of spooling it first. Host passes
    through unchanged; chunked stays chunked."""
    a, b = nodes
    data = os.urandom(20 * MiB)
    streamed: list[bool] = []

    def body() -> Iterator[bytes]:
        for offset in range(0, 4 * MiB, MiB):
            yield data[offset:offset + MiB]
        # Bounded wait; a spooling balancer would never pass anything on before the body's end.
        deadline = time.monotonic() + 15
        while not (a.first_body_bytes.is_set() or b.first_body_bytes.is_set()) and time.monotonic() < deadline:
            time.sleep(0.01)
        streamed.append(a.first_body_bytes.is_set() or b.first_body_bytes.is_set())
        for offset in range(4 * MiB, len(data), MiB):
            yield data[offset:offset + MiB]

    headers = {"Host": "registry.example:5000"}
    if framing == "content-length":
        headers["Content-Length"] = str(len(data))
    with balancer([a.address, b.address]) as address, httpx.Client(timeout=60) as http:
        answer = http.put(f"http://{address}/v2/blob", content=body(), headers=headers)
    assert answer.status_code == 201
    got = answer.json()
    assert streamed == [True]
    assert got["size"] == len(data) and got["sha256"] == hashlib.sha256(data).hexdigest()
    assert got["host"] == "registry.example:5000"
    assert got["xff"] == "127.0.0.1" and got["proto"] == "http"
    if framing == "chunked":
        assert got["te"] == "chunked" and got["length"] is None
    else:
        assert got["te"] is None and got["length"] == str(len(data))


def test_balancer_retries_get_but_not_post_on_another_upstream(nodes: tuple[Node, Node]) -> None:
    """Node a hangs up without answering. A GET that hit it is passed on to b; a POST is not (it may
    have had its effect on a), the client gets a 502 instead."""
    a, b = nodes
    with balancer([a.address, b.address]) as address, httpx.Client(timeout=30) as http:
        # Two requests, round-robin: one of them reaches a, and comes back from b.
        assert [http.get(f"http://{address}/drop").json()["node"] for _ in range(2)] == ["b", "b"]
        assert ("GET", "/drop") in a.requests
    with balancer([a.address, b.address]) as address, httpx.Client(timeout=30) as http:  # a fresh one
        before_a, before_b = len(a.requests), len(b.requests)
        statuses = sorted(http.post(f"http://{address}/drop", content=b"{}").status_code for _ in range(2))
        assert statuses == [201, 502]
        assert a.requests[before_a:] == [("POST", "/drop")] and b.requests[before_b:] == [("POST", "/drop")]
