"""Crash safety of a real `dockyard serve`: SIGKILL during concurrent pushes, and a full disk.

SIGKILL: several threads push random blobs (monolithic, chunked, closing PUT with a body, some
blobs shared between threads) and manifests that reference them, recording every request the
server acknowledged with 201. Meanwhile a monolithic upload and a chunk of a session are left
half-sent. The server is killed (supervisor and worker), then started again on the same data
directory: everything acknowledged is served with the right bytes, tags resolve, every file in
the blob store hashes to its name, the orphan staging file is gone, and the half-written session
resumes from its committed offset.

Full disk: the data directory on a 64 MiB tmpfs; pushes go on until one fails. The failure is a
507 with a JSON error (never a 500), its staging file goes, nothing stored before is lost, and
after freeing space (cancelling a session) pushes work again.

The random data (blob sizes and bytes, the ways blobs are pushed, the moment of the kill) comes
from a seed printed with each test's output; DOCKYARD_TEST_SEED=<seed> replays it. The timing of
the threads and of the kill cannot be replayed exactly.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, free_port
from tests.e2e.helpers_raw import (
    RawConn,
    basic_value,
    blob_file,
    blob_ok,
    blob_status,
    client,
    db_sessions,
    error_json,
    finish,
    manifest_for,
    patch_chunk,
    push_monolithic,
    put_manifest,
    range_for,
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
SEED = int(os.environ.get("DOCKYARD_TEST_SEED") or random.SystemRandom().randrange(1 << 32))


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """The test's random data, derived from SEED and the test's name (so one test replays alone)."""
    print(f"random data from DOCKYARD_TEST_SEED={SEED}")  # shown with a failure's captured output
    return random.Random(f"{SEED}-{request.node.name}")


# -- SIGKILL during concurrent pushes -------------------------------------------------------------
@dataclass
class Acked:
    """What the server acknowledged with 201 (so it must survive a crash)."""

    blobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (repo, digest) -> size
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)  # (repo, tag) -> (digest, body)
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[str] = field(default_factory=list)

    def blob(self, repo: str, data: bytes) -> None:
        with self.lock:
            self.blobs[(repo, sha256(data))] = len(data)

    def manifest(self, repo: str, tag: str, digest: str, body: bytes) -> None:
        with self.lock:
            self.manifests[(repo, tag)] = (digest, body)


_POOL_RNG = random.Random(f"{SEED}-pool")
SHARED_POOL = [_POOL_RNG.randbytes(_POOL_RNG.randint(1, 300 * 1024)) for _ in range(4)]  # pushed by several threads


def _push_blob(c: httpx.Client, repo: str, data: bytes, rng: random.Random) -> bool:
    """Push one blob in a random way; True when the server acknowledged it with 201."""
    how = rng.choice(["monolithic", "chunks", "put-body"])
    digest = sha256(data)
    if how == "monolithic":
        return push_monolithic(c, repo, data).status_code == 201
    upload_id = start_session(c, repo)
    if how == "put-body":
        return finish(c, repo, upload_id, digest, data).status_code == 201
    step = max(1, len(data) // rng.randint(1, 4))
    offset = 0
    while offset < len(data):
        part = data[offset:offset + step]
        r = patch_chunk(c, repo, upload_id, offset, part)
        if r.status_code != 202:
            return False
        offset += len(part)
    return finish(c, repo, upload_id, digest).status_code == 201


def _pusher(server: ServerProcess, index: int, round_no: int, acked: Acked, stop: threading.Event,
            deadline: float) -> None:
    rng = random.Random(f"{SEED}-{round_no}-{index}")
    repo = f"crash/t{index}"
    with client(server, timeout=30) as c:
        for n in range(200):  # bounded in count and time
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                layers = [rng.randbytes(rng.randint(1, 2 * MiB)) for _ in range(rng.randint(1, 3))]
                layers.append(rng.choice(SHARED_POOL))
                config = f'{{"round":{round_no},"thread":{index},"n":{n},"r":"{rng.getrandbits(64):x}"}}'.encode()
                for blob in [*layers, config]:
                    if not _push_blob(c, repo, blob, rng):
                        if not stop.is_set():
                            acked.errors.append(f"{repo}: blob push refused while the server was up")
                        return
                    acked.blob(repo, blob)
                body = manifest_for(config, layers)
                tag = f"r{round_no}-n{n}"
                r = put_manifest(c, repo, tag, body)
                if r.status_code != 201:
                    if not stop.is_set():
                        acked.errors.append(f"{repo}:{tag}: manifest refused: {r.status_code} {r.text[:200]}")
                    return
                assert r.headers["Docker-Content-Digest"] == sha256(body)
                acked.manifest(repo, tag, sha256(body), body)
            except (httpx.HTTPError, AssertionError, KeyError, OSError):
                return  # the server went away mid-request: that request was not acknowledged


def _verify(server: ServerProcess, acked: Acked) -> None:
    with client(server) as c:
        for (repo, digest), size in sorted(acked.blobs.items()):
            assert blob_ok(c, repo, digest, size), f"acknowledged blob {repo}@{digest} ({size} bytes) lost or corrupt"
        for (repo, tag), (digest, body) in sorted(acked.manifests.items()):
            r = c.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            assert r.status_code == 200, f"acknowledged tag {repo}:{tag} lost: {r.status_code}"
            assert r.content == body and r.headers["Docker-Content-Digest"] == digest
            r = c.get(f"/v2/{repo}/manifests/{digest}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            assert r.status_code == 200 and sha256(r.content) == digest
        for repo in {repo for repo, _ in acked.manifests}:
            r = c.get(f"/v2/{repo}/tags/list")
            assert r.status_code == 200
            listed = set(r.json()["tags"])
            assert {tag for rp, tag in acked.manifests if rp == repo} <= listed


@dataclass
class HalfSent:
    orphan: RawConn  # a monolithic POST whose body stops half way
    session_conn: RawConn  # a PATCH chunk whose body stops half way
    repo: str
    upload_id: str
    first: bytes
    chunk: bytes


def _leave_half_sent(server: ServerProcess, c: httpx.Client, rng: random.Random) -> HalfSent:
    """A monolithic upload and a session chunk, both half-sent and left open when the server dies."""
    repo = f"crash/half-{uuid.uuid4().hex[:6]}"
    before = set(staging_files(server.data))
    auth = basic_value(server.user, server.password)
    data = rng.randbytes(8 * MiB)
    orphan = RawConn(server.port)
    orphan.send_head("POST", f"/v2/{repo}/blobs/uploads/?digest={sha256(data)}", {
        "Authorization": auth, "Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    orphan.send(data[:3 * MiB])
    assert wait_until(lambda: any(size >= MiB for name, size in staging_files(server.data).items() if name not in before),
                      timeout=20), "the half-sent monolithic upload never reached its staging file"

    upload_id = start_session(c, repo)
    first = rng.randbytes(MiB + 12345)
    assert patch_chunk(c, repo, upload_id, 0, first).status_code == 202
    chunk = rng.randbytes(8 * MiB)
    conn = RawConn(server.port)
    conn.send_head("PATCH", f"/v2/{repo}/blobs/uploads/{upload_id}", {
        "Authorization": auth, "Content-Type": "application/octet-stream",
        "Content-Range": f"{len(first)}-{len(first) + len(chunk) - 1}", "Content-Length": str(len(chunk))})
    conn.send(chunk[:3 * MiB])
    assert wait_until(lambda: (staging_size(server.data, upload_id) or 0) > len(first) + MiB, timeout=20), \
        "the half-sent chunk never reached its staging file"
    return HalfSent(orphan, conn, repo, upload_id, first, chunk)


def _check_staging_after_restart(server: ServerProcess, half: HalfSent | None) -> None:
    sessions = db_sessions(server.data)
    files = staging_files(server.data)
    orphans = sorted(set(files) - set(sessions))
    assert orphans == [], f"staging files without a session survived the restart: {orphans}"
    for upload_id, offset in sessions.items():
        assert upload_id in files, f"session {upload_id} lost its staging file"
        assert files[upload_id] >= offset, f"session {upload_id}: {files[upload_id]} bytes on disk, offset {offset}"
    if half is None:
        return
    with client(server) as c:
        assert session_range(c, half.repo, half.upload_id) == range_for(len(half.first))
        # the half-written chunk is still on disk past the offset; sending it again fixes that
        r = patch_chunk(c, half.repo, half.upload_id, len(half.first), half.chunk)
        assert r.status_code == 202, r.text
        assert staging_size(server.data, half.upload_id) == len(half.first) + len(half.chunk)
        whole = half.first + half.chunk
        assert finish(c, half.repo, half.upload_id, sha256(whole)).status_code == 201
        assert blob_ok(c, half.repo, sha256(whole), len(whole))


def test_sigkill_during_concurrent_pushes(tmp_path: Path, rng: random.Random) -> None:
    data = tmp_path / "data"
    password = "e2e-" + uuid.uuid4().hex[:12]
    server = ServerProcess(data, free_port(), password).start()
    acked = Acked()
    try:
        for round_no in range(2):
            with client(server) as c:
                half = _leave_half_sent(server, c, rng)
            stop = threading.Event()
            deadline = time.monotonic() + 90
            threads = [threading.Thread(target=_pusher, args=(server, i, round_no, acked, stop, deadline), daemon=True)
                       for i in range(4)]
            for t in threads:
                t.start()
            pushed_before = len(acked.manifests)
            target = pushed_before + 6
            wait_until(lambda: len(acked.manifests) >= target or not any(t.is_alive() for t in threads), timeout=60)
            time.sleep(rng.uniform(0, 0.3))  # land the kill at some random point of the pushes
            server.stop(signal.SIGKILL)
            stop.set()
            for t in threads:
                t.join(timeout=60)
            assert not any(t.is_alive() for t in threads)
            half.orphan.close()
            half.session_conn.close()
            assert acked.errors == []
            assert len(acked.manifests) > pushed_before, "nothing was pushed before the kill"

            # straight after the crash: nothing in the store is half-written or misnamed
            assert store_problems(data) == []

            server = ServerProcess(data, free_port(), password).start()
            _verify(server, acked)
            assert store_problems(data, allow_temp=False) == []  # the startup purge took leftovers
            _check_staging_after_restart(server, half)
    finally:
        server.stop(signal.SIGKILL)


def test_sigkill_while_idle_keeps_everything(tmp_path: Path, rng: random.Random) -> None:
    """The plain case: push, SIGKILL with nothing in flight, restart: all there."""
    data = tmp_path / "data"
    password = "e2e-" + uuid.uuid4().hex[:12]
    server = ServerProcess(data, free_port(), password).start()
    acked = Acked()
    try:
        with client(server) as c:
            layers = [rng.randbytes(n) for n in (0, 1, 4096, 3 * MiB)]
            config = b'{"idle":true}'
            for blob in [*layers, config]:
                assert push_monolithic(c, "crash/idle", blob).status_code == 201
                acked.blob("crash/idle", blob)
            body = manifest_for(config, layers)
            assert put_manifest(c, "crash/idle", "v1", body).status_code == 201
            acked.manifest("crash/idle", "v1", sha256(body), body)
            committing = start_session(c, "crash/idle")
            committing_data = rng.randbytes(300_000)
            assert patch_chunk(c, "crash/idle", committing, 0, committing_data).status_code == 202
        server.stop(signal.SIGKILL)
        # a crash in the middle of that session's commit: its file already renamed into the
        # store, the transaction that records the blob and ends the session not committed
        target = blob_file(data, sha256(committing_data))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(data / "uploads" / committing, target)
        # what a crash at other moments leaves: a monolithic upload's staging file (no session)
        # and a half-written staged manifest; the purge at startup removes both
        (data / "uploads" / uuid.uuid4().hex).write_bytes(rng.randbytes(5000))
        (data / "blobs" / ".staging").mkdir(exist_ok=True)
        (data / "blobs" / ".staging" / f"{os.getpid()}.{time.monotonic_ns()}.tmp").write_bytes(b'{"schemaVer')
        server = ServerProcess(data, free_port(), password).start()
        _verify(server, acked)
        assert store_problems(data, allow_temp=False) == []
        _check_staging_after_restart(server, None)
        with client(server) as c:
            # the half-committed session is gone (it can never be finished), the blob is not
            # served (no row), and pushing it again works
            assert session_range(c, "crash/idle", committing) is None
            assert finish(c, "crash/idle", committing, sha256(committing_data)).status_code == 404
            assert blob_status(c, "crash/idle", sha256(committing_data)) == 404
            assert push_monolithic(c, "crash/idle", committing_data).status_code == 201
            assert blob_ok(c, "crash/idle", sha256(committing_data), len(committing_data))
        assert store_problems(data, allow_temp=False) == []
    finally:
        server.stop(signal.SIGKILL)


# -- full disk ------------------------------------------------------------------------------------
def _mount_tmpfs(where: Path, size: str) -> str | None:
    """Mount a tmpfs; None on success, else why not."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"mount failed: {exc}"
    if proc.returncode != 0:
        return f"mount -t tmpfs failed here: {proc.stderr.strip() or proc.returncode}"
    return None


def _umount(where: Path) -> None:
    if not os.path.ismount(where):
        return
    if subprocess.run(["umount", str(where)], capture_output=True, timeout=30).returncode != 0:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def _assert_insufficient_storage(r: httpx.Response) -> None:
    assert r.status_code == 507, f"expected 507 on a full disk, got {r.status_code}: {r.text[:300]}"
    assert r.headers["content-type"].startswith("application/json")
    doc = error_json(r.content)
    assert doc["errors"][0]["code"] == "UNKNOWN"
    assert doc["errors"][0]["message"].startswith("insufficient storage")


def test_full_disk(tmp_path: Path, rng: random.Random) -> None:
    disk = tmp_path / "disk"
    why = _mount_tmpfs(disk, "64m")
    if why:
        pytest.skip(why)
    server: ServerProcess | None = None
    try:
        data = disk / "data"
        password = "e2e-" + uuid.uuid4().hex[:12]
        server = ServerProcess(data, free_port(), password)
        server.log = tmp_path / "server.log"  # not on the disk that fills up
        server.start()
        repo = "crash/full"
        acked = Acked()
        with client(server) as c:
            # something stored before the disk fills, which must survive it
            layers = [rng.randbytes(MiB), rng.randbytes(100_000)]
            config = b'{"before":"full"}'
            for blob in [*layers, config]:
                assert push_monolithic(c, repo, blob).status_code == 201
                acked.blob(repo, blob)
            body = manifest_for(config, layers)
            assert put_manifest(c, repo, "before", body).status_code == 201
            acked.manifest(repo, "before", sha256(body), body)
            # ballast: an upload session holding 8 MiB, cancelled later to free space
            ballast = start_session(c, repo)
            assert patch_chunk(c, repo, ballast, 0, rng.randbytes(8 * MiB)).status_code == 202
            # a session whose bytes are all there, closed only when the disk is full
            late = start_session(c, repo)
            late_data = rng.randbytes(64 * 1024)
            assert patch_chunk(c, repo, late, 0, late_data).status_code == 202

            # 1. monolithic pushes until one fails
            failure: httpx.Response | None = None
            failed_digest = ""
            for _ in range(40):  # 40 x 4 MiB > 64 MiB
                blob = rng.randbytes(4 * MiB)
                r = push_monolithic(c, repo, blob)
                if r.status_code == 201:
                    acked.blob(repo, blob)
                    continue
                failure, failed_digest = r, sha256(blob)
                break
            assert failure is not None, "the disk never filled up"
            _assert_insufficient_storage(failure)
            assert blob_status(c, repo, failed_digest) == 404
            assert not blob_file(data, failed_digest).exists()
            assert staging_files(data) == {ballast: 8 * MiB, late: len(late_data)}, \
                "the failed upload left its staging file"

            # 2. a chunk of a session on the full disk: refused, the session stays as it was
            upload_id = start_session(c, repo)
            part = rng.randbytes(4 * MiB)
            r = patch_chunk(c, repo, upload_id, 0, part)
            _assert_insufficient_storage(r)
            assert staging_size(data, upload_id) == 0
            assert session_range(c, repo, upload_id) == range_for(0)
            # fill what is left with smaller blobs, then the session's chunk fails again
            for _ in range(64):
                blob = rng.randbytes(256 * 1024)
                r = push_monolithic(c, repo, blob)
                if r.status_code != 201:
                    _assert_insufficient_storage(r)
                    break
                acked.blob(repo, blob)
            r = patch_chunk(c, repo, upload_id, 0, part)
            _assert_insufficient_storage(r)
            assert staging_size(data, upload_id) == 0

            # 3. the last pages: tiny blobs until even those fail, then manifests, sessions and
            #    tiny blobs are stored or refused cleanly (507), never a 500
            refused = 0
            for i in range(400):
                blob = rng.randbytes(4096 if refused == 0 else 1)
                r = push_monolithic(c, repo, blob)
                if r.status_code == 201:
                    acked.blob(repo, blob)
                    continue
                _assert_insufficient_storage(r)
                refused += 1
                if refused >= 3:
                    break
            assert refused >= 1, "the disk never filled up completely"
            for i in range(3):
                body = manifest_for(config, layers[:1] + [layers[1]] * i)
                r = put_manifest(c, repo, f"during{i}", body)
                if r.status_code == 201:
                    acked.manifest(repo, f"during{i}", sha256(body), body)
                else:
                    _assert_insufficient_storage(r)
            r = c.post(f"/v2/{repo}/blobs/uploads/")
            assert r.status_code in (202, 507), f"{r.status_code}: {r.text[:300]}"
            if r.status_code == 202:
                assert c.delete(r.headers["Location"]).status_code == 204
            else:
                _assert_insufficient_storage(r)
            r = finish(c, repo, late, sha256(late_data))
            late_done = r.status_code == 201
            if late_done:
                acked.blob(repo, late_data)
            else:
                _assert_insufficient_storage(r)
                # Either the session is intact (still at its offset, its bytes staged), or the
                # failed transaction had already moved its bytes into the store and the session
                # is gone (BLOB_UPLOAD_UNKNOWN): the client starts that blob again.
                # (When the database itself is full, the session row can only go later.)
                if staging_size(data, late) is not None:
                    assert session_range(c, repo, late) == range_for(len(late_data))
                    assert staging_size(data, late) == len(late_data)
                else:
                    assert blob_status(c, repo, sha256(late_data)) == 404

            # nothing stored before is lost or damaged
            _verify(server, acked)
            assert store_problems(data, allow_temp=False) == []
            late_staged = not late_done and staging_size(data, late) is not None
            assert set(staging_files(data)) == {ballast, upload_id} | ({late} if late_staged else set())

            # 4. free space by cancelling the ballast session; everything works again
            assert c.delete(f"/v2/{repo}/blobs/uploads/{ballast}").status_code == 204
            assert staging_size(data, ballast) is None
            r = patch_chunk(c, repo, upload_id, 0, part)
            assert r.status_code == 202, r.text
            assert finish(c, repo, upload_id, sha256(part)).status_code == 201
            acked.blob(repo, part)
            blob = rng.randbytes(2 * MiB)
            assert push_monolithic(c, repo, blob).status_code == 201
            acked.blob(repo, blob)
            body = manifest_for(config, [part, blob])
            assert put_manifest(c, repo, "after", body).status_code == 201
            acked.manifest(repo, "after", sha256(body), body)
            if late_staged:  # the closing PUT that failed on the full disk, sent again
                r = finish(c, repo, late, sha256(late_data))
                assert r.status_code == 201, f"{r.status_code}: {r.text[:300]}"
                acked.blob(repo, late_data)
            elif not late_done:  # its session was lost with the failed commit: push it again
                r = finish(c, repo, late, sha256(late_data))
                assert r.status_code == 404 and error_json(r.content)["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
                again = start_session(c, repo)
                assert finish(c, repo, again, sha256(late_data), late_data).status_code == 201
                acked.blob(repo, late_data)
        _verify(server, acked)

        # a restart on the same data directory finds it all intact
        server.stop()
        server = ServerProcess(data, free_port(), password)
        server.log = tmp_path / "server.log"
        server.start()
        _verify(server, acked)
        assert store_problems(data, allow_temp=False) == []
        assert staging_files(data) == {}
    finally:
        if server is not None:
            server.stop(signal.SIGKILL)
        _umount(disk)
    assert not os.path.ismount(disk)
