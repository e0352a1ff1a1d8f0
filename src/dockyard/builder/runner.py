"""The build child: `python -m dockyard.builder.runner --result-fd N`, the spec as JSON on stdin.

Started by the build job (builder/process.py) with an environment of its own (PATH, HOME and
TMPDIR inside the build's work directory, nothing of the registry's: no database URL, no storage
keys, no settings), it:

1. joins the build's cgroups when it was given some, lowers its own limits (file size, core
   dumps, open files), asks to die when its parent does, and becomes a subreaper so nothing it
   starts escapes its process tree;
2. fetches the source with git (`init` + `fetch --depth 1` of the ref or commit, pinned to the
   address the registry checked; the token as an HTTP header in git's environment, never in the
   URL or the command line);
3. builds with `buildah bud` (the isolation the settings name; a layer cache per repository;
   the OCI source and revision labels; one image per platform and a manifest list when several);
4. pushes every tag with `buildah push` / `buildah manifest push --all` using the short-lived
   push credential, and writes `{"digest", "revision"}` (or `{"error"}`) to the result pipe.

Everything git and buildah print goes to stdout, which the parent turns into the build's log.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dockyard.builder.gitenv import git_environment
from dockyard.builder.process import descendants

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


class StepFailed(Exception):
    pass


STARTED = time.monotonic()


def say(line: str) -> None:
    """A line of the runner's own in the log, with the seconds since the build child started."""
    sys.stdout.write(f"[dockyard {time.monotonic() - STARTED:6.2f}s] {line}\n")
    sys.stdout.flush()


RUN_AS: dict[str, int] = {}  # {"uid", "gid"}: git and buildah run as this user (builder/users.py)


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, quiet: bool = False,
        what: str | None = None) -> str:
    """Run a step (as the build user, when there is one), its output into the log (or, `quiet`,
    returned); raises StepFailed."""
    if not quiet:
        say("$ " + " ".join(argv))
    user = {"user": RUN_AS["uid"], "group": RUN_AS["gid"], "extra_groups": []} if RUN_AS else {}
    proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT, text=True, **user)
    if proc.returncode != 0:
        if quiet and proc.stdout:
            sys.stdout.write(proc.stdout)
        raise StepFailed(f"{what or argv[0]} failed (exit status {proc.returncode})")
    return proc.stdout or ""


def give(path: Path, recursive: bool = False) -> None:
    """Hand a path (and, `recursive`, all under it) to the build user."""
    if not RUN_AS:
        return
    os.chown(path, RUN_AS["uid"], RUN_AS["gid"])
    if recursive:
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(root, name), RUN_AS["uid"], RUN_AS["gid"], follow_symlinks=False)


def confine(spec: dict[str, Any]) -> None:
    limits = spec.get("limits", {})
    for path in spec.get("cgroups", []):
        try:
            Path(path, "cgroup.procs").write_text(str(os.getpid()))
        except OSError as exc:
            say(f"could not join cgroup {path}: {exc}")
    if limits.get("file_bytes"):
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before the request took effect
        sys.exit(1)


def kill_everything(spec: dict[str, Any]) -> None:
    """On SIGTERM (the worker died: PR_SET_PDEATHSIG, or it stops the build): every process of the
    build, then this one. Not only the process group: buildah's rootless and RUN processes may
    start sessions of their own, but they stay descendants (this process is their subreaper) and in
    the build's cgroups; nobody else is left to kill them once the worker is gone."""
    me = os.getpid()
    targets = set(descendants(me))
    for path in spec.get("cgroups", []):
        try:
            targets |= {int(p) for p in Path(path, "cgroup.procs").read_text().split()}
        except (OSError, ValueError):
            pass
    targets.discard(me)
    for pid in targets:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os.killpg(0, signal.SIGKILL)  # the group, this process too


def git_env(spec: dict[str, Any], home: Path) -> dict[str, str]:
    return git_environment(spec["source"], home, os.environ, give)


def fetch(spec: dict[str, Any], src: Path, home: Path) -> str:
    """Fetch the ref (and the announced revision) into `src`; returns the revision checked out."""
    source = spec["source"]
    env = git_env(spec, home)
    git = ["git", "-C", str(src)]
    run(["git", "init", "-q", str(src)], env=env)
    run([*git, "remote", "add", "origin", source["url"]], env=env, quiet=True)
    ref, revision = spec["ref"], spec.get("revision")
    say(f"fetching {ref} from {source['display']}")
    try:
        run([*git, "fetch", "--depth", "1", "--no-tags", "origin", ref], env=env, what="git fetch")
    except StepFailed:
        if not spec.get("ref_is_commit"):
            raise
        say("the server does not serve single commits: fetching its history")
        run([*git, "fetch", "--no-tags", "origin"], env=env, what="git fetch")
        revision = ref
    head = run([*git, "rev-parse", "FETCH_HEAD"], env=env, quiet=True).strip()
    target = head
    if revision and not head.startswith(revision) and not spec.get("ref_is_commit"):
        try:
            run([*git, "fetch", "--depth", "1", "--no-tags", "origin", revision], env=env, what="git fetch")
            target = revision
        except StepFailed:
            say(f"{ref} has moved on from {revision[:12]} and the server does not serve that commit: "
                f"building {head[:12]}, its newest")
    elif spec.get("ref_is_commit"):
        target = revision or head
    run([*git, "-c", "advice.detachedHead=false", "checkout", "-q", "--detach", target], env=env, what="git checkout")
    return run([*git, "rev-parse", "HEAD"], env=env, quiet=True).strip()


def buildah_base(spec: dict[str, Any]) -> list[str]:
    store = spec["storage"]
    return [spec.get("buildah", "buildah"), "--root", store["root"], "--runroot", store["runroot"]]


def build(spec: dict[str, Any], src: Path, revision: str) -> tuple[str, bool]:
    """Build the image (one platform) or a manifest list (several); returns (local name, is a list)."""
    b = spec["build"]
    context = (src / b["context"]).resolve()
    dockerfile = (src / b["dockerfile"]).resolve()
    for path, what in ((context, "context"), (dockerfile, "Dockerfile")):
        if not path.is_relative_to(src.resolve()):
            raise StepFailed(f"the {what} path leaves the repository")
    if not dockerfile.is_file():
        raise StepFailed(f"{b['dockerfile']} is not in the repository at {revision[:12]}")
    name = f"localhost/dockyard-build-{spec['build_id']}"
    args = [*buildah_base(spec), "bud", "--isolation", b.get("isolation", "chroot"), "--layers", "-f", str(dockerfile)]
    for key, value in {**b.get("labels", {}), "org.opencontainers.image.revision": revision}.items():
        args += ["--label", f"{key}={value}"]
    for key, value in b.get("build_args", {}).items():
        args += ["--build-arg", f"{key}={value}"]
    if b.get("ulimits"):
        for u in b["ulimits"]:
            args += ["--ulimit", u]
    platforms = b.get("platforms") or []
    if len(platforms) > 1:
        missing = [p for p in platforms if p in spec.get("no_emulation", [])]
        if missing:
            say(f"no emulator is registered on this worker for {', '.join(missing)} (binfmt_misc): RUN steps of those "
                "platforms cannot run here; steps that only copy files still build")
        run([*buildah_base(spec), "manifest", "create", name], quiet=True, what="buildah manifest create")
        # Without the layer cache: buildah (1.28) matches cached steps across platforms, so every
        # platform after the first would get the first one's image.
        args = [a if a != "--layers" else "--layers=false" for a in args]
        run([*args, "--platform", ",".join(platforms), "--manifest", name, str(context)], what="buildah bud")
        return name, True
    if platforms:
        args += ["--platform", platforms[0]]
    run([*args, "-t", name, str(context)], what="buildah bud")
    return name, False


def push(spec: dict[str, Any], name: str, is_list: bool, work: Path) -> str:
    target = spec["push"]
    auth = work / "auth.json"  # the credential in a file of its own, not on the command line
    basic = base64.b64encode(f"{target['username']}:{target['password']}".encode()).decode()
    auth.write_text(json.dumps({"auths": {target["registry"]: {"auth": basic}}}))
    auth.chmod(0o600)
    give(auth)
    digest = ""
    for tag in target["tags"]:
        dest = f"docker://{target['registry']}/{target['repository']}:{tag}"
        digestfile = work / "digest"
        common = ["--authfile", str(auth), "--digestfile", str(digestfile), f"--tls-verify={str(target['tls_verify']).lower()}"]
        if is_list:
            run([*buildah_base(spec), "manifest", "push", "--all", *common, name, dest], what="buildah manifest push")
        else:
            run([*buildah_base(spec), "push", *common, name, dest], what="buildah push")
        digest = digestfile.read_text().strip()
        say(f"pushed {target['registry']}/{target['repository']}:{tag} {digest}")
    return digest


def clean(spec: dict[str, Any], name: str) -> None:
    try:
        run([*buildah_base(spec), "rmi", "-f", name], quiet=True)
    except StepFailed:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--result-fd", type=int, required=True)
    options = parser.parse_args()
    result = os.fdopen(options.result_fd, "w")
    spec = json.load(sys.stdin)
    signal.signal(signal.SIGTERM, lambda *_: kill_everything(spec))
    confine(spec)
    work = Path(spec["workdir"])
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    if spec.get("run_as"):
        RUN_AS.update(uid=int(spec["run_as"]["uid"]), gid=int(spec["run_as"]["gid"]))
        os.environ["XDG_RUNTIME_DIR"] = str(work / "xdg")
        (work / "xdg").mkdir(mode=0o700, exist_ok=True)
        give(work, recursive=True)
        storage = Path(spec["storage"]["root"])
        storage.mkdir(parents=True, exist_ok=True)
        if storage.stat().st_uid != RUN_AS["uid"]:
            give(storage, recursive=True)
    outcome: dict[str, Any]
    name = ""
    try:
        with tempfile.TemporaryDirectory(dir=work, prefix="src-") as tmp:
            src = Path(tmp)
            give(src)
            revision = fetch(spec, src, home)
            result.write(json.dumps({"revision": revision}) + "\n")
            result.flush()
            say(f"building {revision[:12]}")
            name, is_list = build(spec, src, revision)
            digest = push(spec, name, is_list, work)
            outcome = {"digest": digest, "revision": revision}
    except StepFailed as exc:
        say(f"error: {exc}")
        outcome = {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 — the parent must hear why
        say(f"error: {type(exc).__name__}: {exc}")
        outcome = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        if name:
            clean(spec, name)
    result.write(json.dumps(outcome) + "\n")
    result.close()
    return 0 if "digest" in outcome else 1


if __name__ == "__main__":
    sys.exit(main())
