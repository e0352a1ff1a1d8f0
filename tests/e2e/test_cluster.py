"""Two `dockyard serve` nodes of one registry (tests/e2e/cluster.py): separate data directories, one
PostgreSQL database, one Ceph RGW bucket, one signing key file, token auth, and nginx round-robin in
front (tests/e2e/balancer.py). Any request may reach any node: the PATCHes of one upload, a token
signed by the other node, an upload the other node's restart must not disturb; GC runs once per
interval cluster-wide; real clients push and pull through the balancer; a node SIGKILLed and started
again loses no acknowledged push.

Most tests drive the nodes directly (not through nginx) so the alternation between them is certain.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from dockyard.meta.db import Database
from dockyard.meta.migrate import upgrade
from dockyard.registry.uploads import CLAIM_SECONDS
from tests.conftest import _pg_database
from tests.e2e import clients as cl
from tests.e2e.balancer import access_log, balancer
from tests.e2e.cluster import (
    OCI_MANIFEST, Cluster, Node, Pusher, api, close_upload, cluster, get_blob, manifest_for, patch, path_of,
    push_monolithic, put_manifest, require_postgres, sha256, start_upload, token,
)
from tests.e2e.helpers_raw import RawConn, wait_until
from tests.s3_support import S3Server

pytestmark = [pytest.mark.e2e, pytest.mark.s3, pytest.mark.postgres]
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, ceph_rgw: S3Server) -> Iterator[Cluster]:
    """One two-node cluster for the module (GC off: tests leave blobs without manifests on purpose);
    each test uses repositories of its own."""
    require_postgres()
    with cluster(tmp_path_factory.mktemp("cluster"), ceph_rgw) as group:
        yield group


def pull_push(group: Cluster, base_url: str, repo: str) -> str:
    return token(base_url, group.user, group.password, f"repository:{repo}:pull,push")


# -- 1. the PATCHes of one upload on alternating nodes ----------------------------------------------------
def test_chunked_upload_whose_patches_alternate_between_the_nodes(nodes: Cluster) -> None:
    a, b = nodes.nodes
    repo = "cluster/alternate"
    bearer = pull_push(nodes, a.url, repo)
    # Under and over the 5 MiB part size, and exactly it: the store buffers small chunks in a tail
    # object and completes parts from it, whichever node the next chunk reaches.
    sizes = [1 * MiB, 7 * MiB + 3, 300_000, 5 * MiB, 2 * MiB, 6 * MiB + 1]
    last = 123_457  # sent with the closing PUT
    data = os.urandom(sum(sizes) + last)
    with api(a.url, bearer) as ca, api(b.url, bearer) as cb:
        location = start_upload(ca, repo)  # POST on A
        offset = 0
        for i, size in enumerate(sizes):
            here, other = (cb, ca) if i % 2 == 0 else (ca, cb)  # PATCH on B, A, B, A, ...
            r = patch(here, location, offset, data[offset:offset + size])
            assert r.status_code == 202, (i, str(here.base_url), r.status_code, r.text)
            offset += size
            assert r.headers["range"] == f"0-{offset - 1}"
            location = path_of(r.headers["location"])
            status = other.get(location)  # the other node knows where the session stands
            assert status.status_code == 204 and status.headers["range"] == f"0-{offset - 1}", status.text
        assert len(sizes) % 2 == 0  # PATCHes on B, A, ..., A: the closing PUT goes to B
        r = close_upload(cb, location, sha256(data), data[offset:])
        assert r.status_code == 201, r.text
        assert r.headers["docker-content-digest"] == sha256(data)
        for c in (ca, cb):
            assert get_blob(c, repo, sha256(data)) == data
            head = c.head(f"/v2/{repo}/blobs/{sha256(data)}")
            assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
            # a range across the first part boundary (5 MiB) and one at the very end
            for start, end in ((5 * MiB - 10, 5 * MiB + 9), (len(data) - 7, len(data) - 1)):
                part = c.get(f"/v2/{repo}/blobs/{sha256(data)}", headers={"Range": f"bytes={start}-{end}"})
                assert part.status_code == 206 and part.content == data[start:end + 1], (start, part.status_code)
        # the session is gone everywhere once closed
        assert ca.get(location).status_code == 404 and cb.get(location).status_code == 404


def test_monolithic_upload_on_one_node_is_read_from_the_other(nodes: Cluster) -> None:
    a, b = nodes.nodes
    repo = "cluster/monolithic"
    bearer = pull_push(nodes, a.url, repo)
    small, large = os.urandom(70_000), os.urandom(6 * MiB + 11)
    with api(a.url, bearer) as ca, api(b.url, bearer) as cb:
        for data in (small, large):
            r = push_monolithic(ca, repo, data)
            assert r.status_code == 201, r.text
            assert get_blob(cb, repo, sha256(data)) == data
        # and the POST-then-PUT form: the session starts on B, its body arrives on A
        two_step = os.urandom(3 * MiB)
        location = start_upload(cb, repo)
        assert close_upload(ca, location, sha256(two_step), two_step).status_code == 201
        assert get_blob(cb, repo, sha256(two_step)) == two_step


# -- 2. a token signed by one node is good on the other ---------------------------------------------------
def test_token_from_one_node_works_on_the_other(nodes: Cluster) -> None:
    a, b = nodes.nodes
    repo = "cluster/token"
    from_a = pull_push(nodes, a.url, repo)
    config, layer = b'{"architecture":"amd64","os":"linux"}', os.urandom(200_000)
    manifest = manifest_for(config, [layer])
    with api(b.url, from_a) as cb:  # push on B with A's token
        for blob in (config, layer):
            r = push_monolithic(cb, repo, blob)
            assert r.status_code == 201, r.text
        r = put_manifest(cb, repo, "v1", manifest)
        assert r.status_code == 201, r.text
        got = cb.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200 and got.content == manifest
        assert get_blob(cb, repo, sha256(layer)) == layer
    from_b = token(b.url, nodes.user, nodes.password, f"repository:{repo}:pull")
    with api(a.url, from_b) as ca:  # and B's token pulls on A
        got = ca.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200 and got.content == manifest
        assert get_blob(ca, repo, sha256(layer)) == layer
        # a pull token is no push token on the other node either
        assert push_monolithic(ca, repo, b"x").status_code in (401, 403)
    # B checks the signature: the same token with its signature altered is refused
    head, payload, signature = from_a.split(".")
    forged = ".".join([head, payload, ("A" if signature[0] != "A" else "B") + signature[1:]])
    with api(b.url, forged) as cb:
        r = cb.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED", r.text
    assert nodes.key_file.is_file()


def test_tag_moved_or_deleted_on_one_node_is_seen_at_once_on_the_other(nodes: Cluster) -> None:
    """No node serves from a stale cache: B answers what A wrote a moment ago."""
    a, b = nodes.nodes
    repo = "cluster/cache"
    bearer = token(a.url, nodes.user, nodes.password, f"repository:{repo}:pull,push,delete")
    layer, configs = os.urandom(1000), [f'{{"os":"linux","n":{n}}}'.encode() for n in (1, 2)]
    first, second = (manifest_for(config, [layer]) for config in configs)
    with api(a.url, bearer) as ca, api(b.url, bearer) as cb:
        for blob in (layer, *configs):
            assert push_monolithic(ca, repo, blob).status_code == 201

        def served(ref: str) -> tuple[int, bytes]:
            r = cb.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
            return r.status_code, r.content

        assert put_manifest(ca, repo, "t", first).status_code == 201
        assert served("t") == (200, first) and served(sha256(first)) == (200, first)  # B has seen it
        assert put_manifest(ca, repo, "t", second).status_code == 201  # the tag moves on A
        assert served("t") == (200, second)
        assert ca.delete(f"/v2/{repo}/manifests/{sha256(second)}").status_code == 202
        assert served("t")[0] == 404 and served(sha256(second))[0] == 404
        assert served(sha256(first)) == (200, first)
        tags = cb.get(f"/v2/{repo}/tags/list")
        assert tags.status_code == 200 and tags.json()["tags"] in (None, []), tags.text


# -- 3. an upload open on one node survives the other node's restart ------------------------------------
def staged_pieces(group: Cluster, location: str) -> int:
    """How many parts and objects the store holds for the upload at `location` (its id ends the path)."""
    s3, prefix = group.s3_client(), f"uploads/{location.rstrip('/').rsplit('/', 1)[-1]}/"
    pieces = len(s3.list_objects_v2(Bucket=group.bucket, Prefix=prefix).get("Contents", []))
    for mpu in s3.list_multipart_uploads(Bucket=group.bucket, Prefix=prefix).get("Uploads", []):
        pieces += len(s3.list_parts(Bucket=group.bucket, Key=mpu["Key"], UploadId=mpu["UploadId"]).get("Parts", []))
    return pieces


def test_upload_open_on_one_node_survives_the_other_nodes_restarts(nodes: Cluster) -> None:
    """Sessions opened on A (over the part size, under it, and still empty) survive B's clean restart
    and B's crash in the middle of a PATCH of one of them: A reports the offset acknowledged before
    the crash, the upload goes on from there, and each finishes via both nodes."""
    a, b = nodes.nodes
    repo = "cluster/restart"
    bearer = pull_push(nodes, a.url, repo)
    big = os.urandom(6 * MiB + 5 + 3 * MiB + 12 * MiB)  # a first chunk over the part size
    small = os.urandom(1 * MiB + 2 * MiB + 77)  # chunks that stay under it until the end
    empty_first = os.urandom(400_000)  # a session with no data yet when B restarts
    with api(a.url, bearer) as ca:
        loc_big, loc_small, loc_empty = (start_upload(ca, repo) for _ in range(3))
        r = patch(ca, loc_big, 0, big[:6 * MiB + 5])
        assert r.status_code == 202, r.text
        loc_big = path_of(r.headers["location"])
        r = patch(ca, loc_small, 0, small[:1 * MiB])
        assert r.status_code == 202, r.text
        loc_small = path_of(r.headers["location"])

    b.restart(signal.SIGTERM)  # a clean stop and start: its start-up purge runs
    with api(b.url, bearer) as cb:
        r = patch(cb, loc_big, 6 * MiB + 5, big[6 * MiB + 5:9 * MiB + 5])
        assert r.status_code == 202, r.text
        loc_big = path_of(r.headers["location"])
        r = patch(cb, loc_small, 1 * MiB, small[1 * MiB:3 * MiB])
        assert r.status_code == 202, r.text
        loc_small = path_of(r.headers["location"])

    # B crashes while it streams the last 12 MiB of `big` into the store (8 MiB of them sent)
    acked = 9 * MiB + 5
    pieces = staged_pieces(nodes, loc_big)
    conn = RawConn(b.port)
    conn.send_head("PATCH", loc_big, {"Authorization": f"Bearer {bearer}", "Content-Type": "application/octet-stream",
                                      "Content-Range": f"{acked}-{len(big) - 1}", "Content-Length": str(len(big) - acked)})
    conn.send(big[acked:acked + 8 * MiB])
    assert wait_until(lambda: staged_pieces(nodes, loc_big) > pieces, timeout=20, interval=0.1), "B wrote nothing"
    b.restart(signal.SIGKILL)
    conn.reset()
    with api(a.url, bearer) as ca, api(b.url, bearer) as cb:
        for loc, done in ((loc_big, acked), (loc_small, 3 * MiB), (loc_empty, 0)):
            for c in (ca, cb):
                status = c.get(loc)
                assert status.status_code == 204 and status.headers["range"] == f"0-{max(done - 1, 0)}", status.text
        # B's chunk claimed the session when it died: the upload takes chunks again once that
        # claim expires (registry/uploads.py CLAIM_SECONDS), and until then answers 416
        deadline = time.monotonic() + CLAIM_SECONDS + 10
        while (r := patch(ca, loc_big, acked, big[acked:])).status_code == 416 and time.monotonic() < deadline:
            assert "another request is writing" in r.text, r.text
            time.sleep(1)
        assert r.status_code == 202, r.text
        assert close_upload(cb, path_of(r.headers["location"]), sha256(big)).status_code == 201
        assert close_upload(ca, loc_small, sha256(small), small[3 * MiB:]).status_code == 201
        r = patch(cb, loc_empty, 0, empty_first)
        assert r.status_code == 202, r.text
        assert close_upload(ca, path_of(r.headers["location"]), sha256(empty_first)).status_code == 201
        for data in (big, small, empty_first):
            assert get_blob(ca, repo, sha256(data)) == data
            assert get_blob(cb, repo, sha256(data)) == data


def test_same_chunk_on_both_nodes_at_once_one_wins(nodes: Cluster) -> None:
    """Two PATCHes at the same offset of one upload, one on each node, at the same time: one is
    accepted, the other refused (416, the session moved meanwhile), and the blob is the winner's."""
    a, b = nodes.nodes
    repo = "cluster/race"
    bearer = pull_push(nodes, a.url, repo)
    head = os.urandom(1 * MiB)
    tails = {"a": os.urandom(6 * MiB), "b": os.urandom(6 * MiB)}
    with api(a.url, bearer) as ca, api(b.url, bearer) as cb:
        location = start_upload(ca, repo)
        r = patch(cb, location, 0, head)
        assert r.status_code == 202, r.text
        location = path_of(r.headers["location"])
        answers: dict[str, httpx.Response] = {}
        go = threading.Barrier(2, timeout=30)

        def send(name: str, c: httpx.Client) -> None:
            go.wait()
            answers[name] = patch(c, location, len(head), tails[name])

        racers = [threading.Thread(target=send, args=(n, c)) for n, c in (("a", ca), ("b", cb))]
        for t in racers:
            t.start()
        for t in racers:
            t.join(timeout=120)
        statuses = sorted((answers[n].status_code, n) for n in ("a", "b"))
        assert [s for s, _ in statuses] == [202, 416], {n: (r.status_code, r.text) for n, r in answers.items()}
        winner = statuses[0][1]
        loser = answers["b" if winner == "a" else "a"]
        assert loser.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID", loser.text
        data = head + tails[winner]
        assert cb.get(location).headers["range"] == f"0-{len(data) - 1}"
        assert close_upload(ca, location, sha256(data)).status_code == 201
        assert get_blob(cb, repo, sha256(data)) == data


# -- 4. GC once per interval, cluster-wide --------------------------------------------------------------
LEASE_RUNS = """
CREATE TABLE lease_runs (name text, holder text, last_run_at timestamptz, seen_at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION note_lease_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.last_run_at IS DISTINCT FROM OLD.last_run_at THEN
    INSERT INTO lease_runs (name, holder, last_run_at) VALUES (NEW.name, NEW.holder, NEW.last_run_at);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER note_lease_run AFTER UPDATE ON leases FOR EACH ROW EXECUTE FUNCTION note_lease_run();
"""


def _psycopg_url(db_url: str) -> str:
    return db_url.replace("postgresql+psycopg://", "postgresql://")


def gc_runs(db_url: str) -> list[tuple[str, datetime]]:
    """Every start of a GC run so far (holder, start), oldest first: the trigger records each UPDATE
    of the lease row that moved its last_run_at, i.e. each time a node took the lease."""
    with psycopg.connect(_psycopg_url(db_url)) as conn:
        rows = conn.execute("SELECT holder, last_run_at FROM lease_runs WHERE name = 'gc' ORDER BY last_run_at")
        return [(str(holder), at) for holder, at in rows.fetchall()]


def db_now(db_url: str) -> datetime:
    with psycopg.connect(_psycopg_url(db_url)) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def worker_of(db_url: str, lease_holder: str) -> str:
    """The worker (meta/leases.node_holder(): HOST:PID:RANDOM) that ran the GC job holding the
    lease as "job-ID" (jobs/kinds.py): the job row keeps the worker of its last attempt."""
    job_id = int(lease_holder.removeprefix("job-"))
    with psycopg.connect(_psycopg_url(db_url)) as conn:
        row = conn.execute("SELECT holder FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None and row[0], (lease_holder, row)
    return str(row[0])


def node_of(group: Cluster, worker: str) -> Node:
    """The node whose process is that worker."""
    pid = int(worker.split(":")[-2])
    return next(n for n in group.nodes if pid in n.worker_pids())


def test_gc_runs_once_per_interval_with_two_nodes_up(tmp_path: Path, ceph_rgw: S3Server) -> None:
    """GC every 2 s on both nodes; a trigger on the lease row counts the runs. Consecutive runs start
    at least an interval apart (two nodes each running GC would start two runs per interval), GC does
    its work (an unreferenced blob goes, a tagged image stays), and when the node that ran it stops the
    other takes over."""
    require_postgres()
    interval = 2
    db_url = _pg_database()
    database = Database(db_url)
    upgrade(database)  # the nodes find it migrated; the trigger must be there before their first GC
    database.dispose()
    with psycopg.connect(_psycopg_url(db_url), autocommit=True) as conn:
        conn.execute(LEASE_RUNS)
    with cluster(tmp_path, ceph_rgw, db_url=db_url, gc={"interval_seconds": interval, "grace_seconds": 3},
                 uploads={"purge_interval_seconds": 0}) as group:
        a, b = group.nodes
        repo = "cluster/gc"
        bearer = pull_push(group, a.url, repo)
        garbage, layer = os.urandom(100_000), os.urandom(300_000)
        config = b'{"architecture":"amd64","os":"linux","gc":true}'
        with api(a.url, bearer) as ca, api(b.url, bearer) as cb:
            for blob in (garbage, config, layer):
                assert push_monolithic(ca, repo, blob).status_code == 201
            assert put_manifest(cb, repo, "kept", manifest_for(config, [layer])).status_code == 201
            window = 4 * interval + 1
            since = db_now(db_url)
            time.sleep(window)
            runs = gc_runs(db_url)
            # at most one run per interval (plus the one the window may start on), and at least two
            counted = [at for _, at in runs if since <= at <= since + timedelta(seconds=window)]
            assert 2 <= len(counted) <= window // interval + 1, runs
            # two nodes that each ran GC would start two runs within some interval
            starts = [at for _, at in runs]
            gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
            # (runs are scheduled jobs: each is enqueued at least an interval after the last, and
            # starts when a worker picks it up, within a few ms; hence the small allowance)
            assert all(gap >= timedelta(seconds=interval - 0.25) for gap in gaps), gaps
            # GC did its work: the blob nobody references is gone from the bucket, the image stays
            key = f"blobs/sha256/{sha256(garbage)[7:9]}/{sha256(garbage)[7:]}"
            assert wait_until(lambda: key not in group.blob_keys(), timeout=3 * interval, interval=0.5)
            assert cb.head(f"/v2/{repo}/blobs/{sha256(garbage)}").status_code == 404
            assert get_blob(ca, repo, sha256(layer)) == layer and get_blob(cb, repo, sha256(config)) == config

            # Stop the node that ran GC last: the other one's worker runs the schedule from now on.
            ran_last = node_of(group, worker_of(db_url, runs[-1][0]))
            survivor = b if ran_last is a else a
            survivor_pids = survivor.worker_pids()
            ran_last.stop()
            before = len(gc_runs(db_url))
            time.sleep(2 * interval + 1)
            later = gc_runs(db_url)[before:]
            assert later and all(int(worker_of(db_url, h).split(":")[-2]) in survivor_pids for h, _ in later), later


# -- 5. real clients through the balancer ---------------------------------------------------------------
@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> cl.Images:
    return cl.build_images(tmp_path_factory.mktemp("images"), nonce=os.urandom(8))


def test_real_clients_push_and_pull_through_the_balancer(nodes: Cluster, images: cl.Images, tmp_path: Path) -> None:
    with balancer(nodes.addresses) as lb, cl.client_env() as env:
        # The challenge names the balancer's token endpoint (Host passes through nginx), whichever node answers.
        for _ in range(2):
            challenge = httpx.get(f"http://{lb}/v2/", timeout=10).headers["www-authenticate"]
            assert challenge.startswith(f'Bearer realm="http://{lb}/auth/token"'), challenge
        # skopeo login: GET /v2/, a token from one node, GET /v2/ with it on the other (round-robin)
        env.run("skopeo", "login", "--tls-verify=false", "-u", nodes.user, "--password-stdin", lb,
                input=nodes.password + "\n")
        env.run("skopeo", "copy", "--retry-times", "0", "--all", "--dest-tls-verify=false", images.ref("multi"),
                f"docker://{lb}/cluster/clients:multi")
        pulled = tmp_path / "pulled"
        env.run("skopeo", "copy", "--retry-times", "0", "--all", "--src-tls-verify=false",
                f"docker://{lb}/cluster/clients:multi", f"oci:{pulled}:multi")
        assert cl.verify_layout(pulled, "multi") == images.digests["multi"]
        inspect = json.loads(env.run("skopeo", "inspect", "--tls-verify=false",
                                     f"docker://{lb}/cluster/clients@{images.digests['amd64']}").stdout)
        assert inspect["Digest"] == images.digests["amd64"]
        # podman: login, pull by tag, tag and push again to another repository (mounts across repositories)
        env.run("podman", "login", "--tls-verify=false", "-u", nodes.user, "--password-stdin", lb,
                input=nodes.password + "\n")
        config = images.configs["amd64"].removeprefix("sha256:")
        out = env.run("podman", "pull", "--tls-verify=false", "--arch", "amd64", f"{lb}/cluster/clients:multi")
        assert out.stdout.strip().splitlines()[-1] == config
        env.run("podman", "tag", f"{lb}/cluster/clients:multi", f"{lb}/cluster/podman:1")
        env.run("podman", "push", "--tls-verify=false", f"{lb}/cluster/podman:1")
        env.run("skopeo", "logout", lb)
        # both nodes serve what went through the balancer, every manifest and blob hashing right
        for node in nodes.nodes:
            reg = cl.Registry(node.url, nodes.user, nodes.password)
            reg.verify_image("cluster/clients", "multi", images.digests["multi"])
            copied = reg.manifest("cluster/podman", "1")
            assert copied.json()["config"]["digest"] == images.configs["amd64"]
            reg.verify_image("cluster/podman", "1", sha256(copied.content))
        served = {line.split("up=")[1].split()[0] for line in access_log(lb) if "up=" in line}
        assert set(nodes.addresses) <= served, served  # round-robin really used both nodes


# -- 6. a node SIGKILLed in the middle of pushes; the shared harness ----------------------------------------
def kill_and_restart_during(group: Cluster, lb: str, repo: str, kill_when: Callable[[], bool], after: float,
                            during: threading.Thread | None = None, max_pushes: int = 200) -> Pusher:
    """Pushes through the balancer; once `kill_when()` holds (polled for 300 s at most), SIGKILL node b
    and start it again; push for `after` s more (nginx takes b back 5 s after it failed), and until
    `during` ends. Returns the stopped pusher."""
    pusher = Pusher(f"http://{lb}", group.user, group.password, repo, max_pushes=max_pushes, max_seconds=600)
    pusher.start()
    try:
        assert wait_until(kill_when, timeout=300, interval=0.1), "the moment to kill never came"
        killed_at = pusher.attempts
        group.nodes[1].restart(signal.SIGKILL)
        restarted_at = pusher.attempts
        time.sleep(after)
        if during is not None:
            during.join(timeout=900)
    finally:
        pusher.stop()
    assert killed_at >= 2 and pusher.attempts > restarted_at + 2, (killed_at, restarted_at, pusher.attempts)
    return pusher


def after_seconds(seconds: float) -> Callable[[], bool]:
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


def test_acknowledged_pushes_survive_a_node_sigkilled_mid_push(nodes: Cluster) -> None:
    with balancer(nodes.addresses) as lb:
        pusher = kill_and_restart_during(nodes, lb, "cluster/killed", after_seconds(3.0), after=6.0)
        assert len(pusher.acked) >= 5, (len(pusher.acked), pusher.failures)
        # only requests in flight at the kill fail (nginx retries no POST/PATCH/PUT; GETs go to the other node)
        assert len(pusher.failures) <= 3, pusher.failures
        assert pusher.check(f"http://{lb}") == []  # round-robin: about half from each node
    assert pusher.check(nodes.nodes[1].url) == []  # and all of it from the node that was killed


@pytest.mark.shared_harness
def test_shared_harness_through_the_balancer(nodes: Cluster) -> None:
    from tests.e2e.test_shared_harness import _fails, run_harness

    with balancer(nodes.addresses) as lb:
        passed, failed, output = run_harness(lb, nodes.user, nodes.password, "cluster")
    assert failed == 0, _fails(output)
    assert passed >= 60, output[-3000:]


def reached(lb: str, path_part: str) -> bool:
    return any(path_part in line for line in access_log(lb))


@pytest.mark.shared_harness
def test_shared_harness_while_a_node_is_sigkilled_and_restarted(nodes: Cluster) -> None:
    """run.sh through the balancer while node b is SIGKILLed and started again in the middle of it, and
    our own pushes beside it: every acknowledged push reads back byte for byte. run.sh's own checks
    may fail for the requests that were in flight on b (nginx passes no POST/PATCH/PUT on); its
    output is kept in test-artifacts/e2e-cluster-kill.txt."""
    from tests.e2e.test_shared_harness import run_harness

    result: dict[str, tuple[int, int, str]] = {}
    with balancer(nodes.addresses) as lb:
        harness = threading.Thread(target=lambda: result.update(run=run_harness(lb, nodes.user, nodes.password,
                                                                                 "cluster-kill", private=True)))
        harness.start()
        # in the middle of the run: once its podman checks (after skopeo's, before buildah's, ctr's
        # and curl's) have reached the registry
        pusher = kill_and_restart_during(nodes, lb, "cluster/killed-harness", lambda: reached(lb, "/podman/"),
                                         after=6.0, during=harness, max_pushes=120)
        assert not harness.is_alive()
        passed, failed, output = result["run"]
        assert re.search(r"^\d+ passed, \d+ failed", output, re.M) and passed >= 50, output[-3000:]
        assert len(pusher.acked) >= 5, pusher.failures
        assert pusher.check(f"http://{lb}") == []
    assert pusher.check(nodes.nodes[1].url) == []
