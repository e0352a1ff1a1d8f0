"""Anonymous callers cannot grow a real `dockyard serve` without bound: 100,000 distinct
anonymous tokens, each presented once, leave its memory within 50 MiB of where it started, and
each costs about as much CPU as the first ones did (the verification cache used to rebuild a
50,000-entry dict for every new token once full). CPU time per token rather than a wall-clock
limit, so that a busy test machine does not make the test lie either way."""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from dockyard.auth.tokens import TokenService, load_or_create_key
from tests.conftest import ServerProcess

# Most of the time is the server verifying 100,000 signatures (and this test making them).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

TOKENS = 100_000  # ten times the verified-token cache (VERIFIED_TOKENS_MAX)
WINDOW = 64  # requests in flight on the connection (HTTP/1.1 pipelining)
MAX_GROWTH = 50 << 20
DEADLINE_SECONDS = 900  # a generous bound for a busy machine: CPU time is what is compared


def _group(pid: int) -> list[int]:
    """The server and its worker processes."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def rss_of_group(pid: int) -> int:
    """Resident memory of the server and its workers, in bytes."""
    total = 0
    for p in _group(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def cpu_of_group(pid: int) -> float:
    """CPU seconds (user + system) the server and its workers have used."""
    ticks = 0
    for p in _group(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def anonymous_tokens(key_path: Path, count: int) -> list[str]:
    """What /auth/token hands any anonymous caller, signed with the server's own key: made here
    rather than asked for, so the test is about verification (and 4x shorter). Signed without
    PyJWT (twice as fast); TokenService.verify checks the first one reads as the server's."""
    key = load_or_create_key(key_path)
    kid = TokenService(key, "dockyard", "dockyard", 3600, 3600).kid
    header = _b64(json.dumps({"alg": "ES256", "kid": kid, "typ": "JWT"}).encode())
    now = int(time.time())
    out = []
    for _ in range(count):
        claims = {"iss": "dockyard", "sub": "", "aud": "dockyard", "iat": now, "nbf": now - 5, "exp": now + 3600,
                  "jti": secrets.token_hex(16), "access": []}
        signed = header + b"." + _b64(json.dumps(claims).encode())
        r, s = decode_dss_signature(key.sign(signed, ec.ECDSA(hashes.SHA256())))
        out.append((signed + b"." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))).decode())
    return out


def present(address: tuple[str, int], tokens: list[str], deadline: float) -> dict[int, int]:
    """GET /v2/ once with each token, pipelined on one connection; the count of each status."""
    statuses: dict[int, int] = {}
    with socket.create_connection(address) as sock:
        buffer = b""
        sent = received = 0
        while received < len(tokens):
            assert time.monotonic() < deadline, f"only {received} of {len(tokens)} tokens presented in time"
            batch = []
            while sent < len(tokens) and sent - received < WINDOW:
                batch.append(f"GET /v2/ HTTP/1.1\r\nHost: registry.test\r\nAuthorization: Bearer {tokens[sent]}\r\n\r\n")
                sent += 1
            if batch:
                sock.sendall("".join(batch).encode())
            chunk = sock.recv(1 << 16)
            assert chunk, "the server closed the connection"
            buffer += chunk
            while (end := buffer.find(b"\r\n\r\n")) >= 0:
                head = buffer[:end].decode("latin-1").split("\r\n")
                length = next((int(h.split(":", 1)[1]) for h in head[1:] if h.lower().startswith("content-length:")), 0)
                if len(buffer) < end + 4 + length:
                    break
                status = int(head[0].split()[1])
                statuses[status] = statuses.get(status, 0) + 1
                buffer = buffer[end + 4 + length:]
                received += 1
    return statuses


def test_anonymous_tokens_do_not_grow_the_server(server: ServerProcess) -> None:
    assert server.proc is not None
    key_path = server.data / "keys" / "token-signing.pem"
    minted = anonymous_tokens(key_path, TOKENS)
    assert TokenService(load_or_create_key(key_path), "dockyard", "dockyard", 3600, 3600).verify(minted[0]).subject == ""
    address = ("127.0.0.1", server.port)
    deadline = time.monotonic() + DEADLINE_SECONDS
    pid = server.proc.pid
    warm = 20_000
    cpu = cpu_of_group(pid)
    assert present(address, minted[:warm], deadline) == {200: warm}  # the caches reach their bounds
    cpu_warm = (cpu_of_group(pid) - cpu) / warm
    before, cpu = rss_of_group(pid), cpu_of_group(pid)
    assert present(address, minted[warm:], deadline) == {200: TOKENS - warm}
    cpu_rest = (cpu_of_group(pid) - cpu) / (TOKENS - warm)
    grown = rss_of_group(pid) - before
    assert grown <= MAX_GROWTH, f"the server grew by {grown >> 20} MiB"
    assert cpu_rest <= 2 * cpu_warm, f"{cpu_rest * 1e6:.0f} us of CPU per token once the cache is full, {cpu_warm * 1e6:.0f} before"
    assert present(address, minted[-10:], deadline) == {200: 10}  # and it still answers
