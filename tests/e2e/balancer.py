"""nginx round-robin in front of several nodes, for tests: `with balancer([a, b]) as address: ...`.

Runs scripts/nginx-lb in the foreground in its own session on a free loopback port; nginx's master and
workers are one process group, stopped together when the block ends. DIR/access.log, which names the
upstream of each request, is readable through `access_log(address)` while the block runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import ROOT, free_port

NGINX_LB = ROOT / "scripts" / "nginx-lb"
_dirs: dict[str, Path] = {}  # address -> the running balancer's DIR


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (nginx's fast shutdown) to the group, SIGKILL after 10 s; bounded either way."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # workers that outlived their master
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def balancer(upstreams: list[str]) -> Iterator[str]:
    """Round-robin over `upstreams` ("127.0.0.1:PORT" each); yields the balancer's "127.0.0.1:PORT"."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-lb-"))
    log = open(workdir / "nginx-lb.out", "wb")
    proc = subprocess.Popen([str(NGINX_LB), "--foreground", str(port), str(workdir), *upstreams],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # the first use may apt-get install nginx-light
        while not _listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                out = (workdir / "nginx-lb.out").read_bytes().decode(errors="replace")
                raise RuntimeError(f"scripts/nginx-lb did not start: {out[-2000:]}")
            time.sleep(0.05)
        _dirs[address] = workdir
        yield address
    finally:
        _dirs.pop(address, None)
        _stop(proc)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def access_log(address: str) -> list[str]:
    """The running balancer's access log lines (`... up=HOST:PORT in=BYTES ...`), oldest first."""
    path = _dirs[address] / "access.log"
    return path.read_text().splitlines() if path.exists() else []
