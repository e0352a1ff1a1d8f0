"""A webhook receiver for tests: a small HTTP server on 127.0.0.1 in a thread that records every
request, checks Standard Webhooks signatures with its own code (not Dockyard's), and can answer
500 for the first N requests, redirect, answer slowly or at length.

    with Receiver() as hook:
        ...  # POST to hook.url
        assert hook.verify(secret, hook.requests[0])
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    fail_first: int = 0  # answer 500 to this many requests first
    status: int = 204
    redirect_to: str | None = None  # answer 302 with this Location
    delay: float = 0.0  # seconds before answering
    answer: bytes = b""
    requests: list[Received] = field(default_factory=list)

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.requests.append(Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                                  body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                if len(receiver.requests) <= receiver.fail_first:
                    status, payload = 500, b'{"error": "down for maintenance"}'
                elif receiver.redirect_to:
                    status, payload = 302, b""
                else:
                    status, payload = receiver.status, receiver.answer
                self.send_response(status)
                if receiver.redirect_to:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Receiver", "test")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading (bounded reads)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @staticmethod
    def verify(secret: str, request: Received, tolerance: int = 300) -> bool:
        """The Standard Webhooks check a receiver makes: the signature over id.timestamp.body with
        the base64-decoded secret, and a timestamp within `tolerance` seconds of now."""
        msg_id, stamp = request.headers["webhook-id"], request.headers["webhook-timestamp"]
        if abs(time.time() - int(stamp)) > tolerance:
            return False
        key = base64.b64decode(secret.removeprefix("whsec_"))
        expected = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + request.body, hashlib.sha256).digest())
        given = [part.partition(",")[2] for part in request.headers["webhook-signature"].split()
                 if part.startswith("v1,")]
        return any(hmac.compare_digest(expected.decode(), sig) for sig in given)
