"""Issue 12's build figure: the time from a provider's webhook to the pushed image, against
running the same `git clone` + `buildah bud` + `buildah push` by hand (goal: overhead ≤ 2 s).

A real `dockyard serve` (SQLite, local disk, its embedded workers) builds from a repository served
by `git daemon` on loopback; each round commits a change (a new 1 MiB file and a new line in a
small one), pushes it, and then, interleaved and in alternating order:

- **dockyard**: POSTs the GitHub-signed push event to the build hook and waits until the build is
  `succeeded` (the build's own `finished_at` against the moment the hook was sent);
- **by hand**: `git clone --depth 1` of the same commit, `buildah bud --layers --isolation chroot`
  with the same Dockerfile and a layer cache of its own kept between rounds, and `buildah push` to
  the same server (another repository), as the same user the builds run as (dockyard-builder
  when it exists and this runs as root, else this user).

    python bench/builds.py [--rounds 7] [--json bench/results/builds.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.conftest import ServerProcess, free_port  # noqa: E402
from tests.git_server import GitServer, encode, github_headers, github_push  # noqa: E402

DOCKERFILE = "FROM scratch\nCOPY data.bin /data.bin\nCOPY hello.txt /hello.txt\nLABEL purpose=bench\n"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def build_user() -> tuple[dict[str, object], str]:
    """Popen arguments that run a command as the build user, and its name."""
    try:
        entry = pwd.getpwnam("dockyard-builder")
    except KeyError:
        return {}, pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() != 0:
        return {}, pwd.getpwuid(os.geteuid()).pw_name
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}, entry.pw_name


def by_hand(url: str, sha: str, work: Path, cache: Path, server: ServerProcess, tag: str, as_user: dict[str, object]) -> float:
    src = work / f"src-{uuid.uuid4().hex[:8]}"
    env = {"PATH": os.environ["PATH"], "HOME": str(work), "XDG_RUNTIME_DIR": str(work / "xdg")}
    started = time.perf_counter()
    steps = [
        ["git", "clone", "-q", "--depth", "1", "--branch", "main", url, str(src)],
        ["git", "-C", str(src), "-c", "advice.detachedHead=false", "checkout", "-q", sha],
        ["buildah", "--root", str(cache / "root"), "--runroot", str(work / "run"), "bud", "--isolation", "chroot",
         "--layers", "-q", "-t", "localhost/bench-hand", str(src)],
        ["buildah", "--root", str(cache / "root"), "--runroot", str(work / "run"), "push", "-q", "--tls-verify=false",
         "--creds", f"{server.user}:{server.password}", "localhost/bench-hand",
         f"docker://{server.address}/team/hand:{tag}"],
    ]
    for argv in steps:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, **as_user)  # type: ignore[call-overload]
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} {argv[1]} failed: {done.stderr[-1000:]}")
    elapsed = time.perf_counter() - started
    shutil.rmtree(src, ignore_errors=True)
    return elapsed


def by_dockyard(api: httpx.Client, server: ServerProcess, secret: str, sha: str) -> tuple[float, float]:
    """(seconds from the hook to the build's end, the build's own duration)."""
    body = encode(github_push("refs/heads/main", sha))
    sent = datetime.now().astimezone()
    answer = httpx.post(f"{server.url}/api/v1/repositories/team/app/build-hook", content=body,
                        headers=github_headers(secret, body), timeout=30)
    answer.raise_for_status()
    (build_id,) = answer.json()["builds"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        build = api.get(f"/builds/{build_id}").json()
        if build["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    if build["status"] != "succeeded":
        raise RuntimeError(f"build {build_id} {build['status']}: {api.get(f'/builds/{build_id}/log').text[-2000:]}")
    finished = datetime.fromisoformat(build["finished_at"])
    return (finished - sent).total_seconds(), float(build["duration_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    as_user, user_name = build_user()
    tmp = Path(tempfile.mkdtemp(prefix="bench-builds-"))
    hand = Path(tempfile.mkdtemp(prefix="bench-builds-hand-"))  # readable by the build user
    for path in (hand, hand / "cache", hand / "xdg"):
        path.mkdir(exist_ok=True)
        if as_user:
            os.chown(path, int(as_user["user"]), int(as_user["group"]))  # type: ignore[call-overload]
    env = {"DOCKYARD_OUTBOUND__ALLOWED_NETWORKS": '["127.0.0.0/8"]', "DOCKYARD_SCAN__ENABLED": "false",
           "DOCKYARD_SERVER__LOG_LEVEL": "warning"}
    samples: dict[str, list[float]] = {"dockyard": [], "hand": [], "build_duration": []}
    try:
        with GitServer(tmp) as git:
            repo = git.repository("app")
            repo.commit({"Dockerfile": DOCKERFILE, "data.bin": os.urandom(1 << 20), "hello.txt": "0\n"}, "first")
            repo.push("main")
            server = ServerProcess(tmp / "data", free_port(), "bench-" + uuid.uuid4().hex[:12], env=env).start()
            try:
                api = httpx.Client(base_url=server.url + "/api/v1", auth=(server.user, server.password), timeout=30)
                api.post("/namespaces", json={"name": "team"}).raise_for_status()
                config = api.put("/repositories/team/app/build-config", json={
                    "source": {"provider": "github", "url": repo.url},
                    "rules": [{"kind": "branch", "match": "main", "tags": ["latest", "main-${sha7}"]}]})
                config.raise_for_status()
                secret = config.json()["webhook_secret"]
                # A warm-up of each (first layer cache, first connections), not counted.
                head = subprocess.run(["git", "-C", str(repo.work), "rev-parse", "HEAD"], capture_output=True,
                                      text=True, check=True).stdout.strip()
                by_dockyard(api, server, secret, head)
                by_hand(repo.url, head, hand, hand / "cache", server, "warm", as_user)
                for n in range(options.rounds):
                    sha = repo.commit({"data.bin": os.urandom(1 << 20), "hello.txt": f"{n}\n"}, f"round {n}")
                    repo.push("main")
                    order = ("dockyard", "hand") if n % 2 == 0 else ("hand", "dockyard")
                    for who in order:
                        if who == "dockyard":
                            total, duration = by_dockyard(api, server, secret, sha)
                            samples["dockyard"].append(total)
                            samples["build_duration"].append(duration)
                        else:
                            samples["hand"].append(by_hand(repo.url, sha, hand, hand / "cache", server, f"r{n}", as_user))
                    print(f"round {n}: dockyard {samples['dockyard'][-1]:.2f} s, by hand {samples['hand'][-1]:.2f} s",
                          flush=True)
            finally:
                server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(hand, ignore_errors=True)
    overheads = [d - h for d, h in zip(samples["dockyard"], samples["hand"])]
    result = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "build_user": user_name},
        "rounds": options.rounds,
        "median": {k: statistics.median(v) for k, v in samples.items()},
        "overhead_median": statistics.median(overheads),
        "overhead_range": [min(overheads), max(overheads)],
        "samples": samples,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))
    if options.json:
        options.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
