"""Real registry clients for the end-to-end tests, with nothing from outside the repository.

- `build_images(dir)` writes the test images as an OCI layout, in Python, from Debian's static
  busybox: tags `amd64` and `arm64` (a shared busybox layer plus a per-arch marker layer, so
  `RUN /bin/sh -c ...` works in a build) and `multi`, an OCI index of the two.
- `ClientEnv` runs skopeo, podman and buildah with all their state (containers/storage, auth file,
  registries.conf; skopeo also its signature policy) in a private directory: never /var/lib/containers or ~/.config.
- `containerd(root)` runs a private containerd daemon for `ctr` (root, state and socket under root).
- `Registry` talks to the Distribution API with httpx, fetching a Bearer token with exact scopes
  for each request, as the clients do.

The storage driver is vfs: overlay mounts fail in some containers and the images are small.
RUN steps use chroot isolation, because crun cannot create containers in every sandbox.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json"])
BUSYBOX_APPLETS = ("sh", "cat", "echo", "ls", "mkdir", "true", "test", "grep")
TIMEOUT = 180.0


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- images -------------------------------------------------------------------------------------------
def _tar(files: dict[str, bytes | str]) -> bytes:
    """A reproducible tar: bytes are regular files (0755), str values are symlink targets."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(p).parent) for p in files} - {"."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, content in sorted(files.items()):
            info = tarfile.TarInfo(path)
            if isinstance(content, str):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, content, 0o777
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o755
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


@dataclass
class Layout:
    """An OCI image layout being written: blobs by digest and tagged descriptors in index.json."""

    path: Path
    refs: list[dict[str, Any]] = field(default_factory=list)

    def blob(self, data: bytes) -> str:
        digest = sha256(data)
        target = self.path / "blobs" / "sha256" / digest.removeprefix("sha256:")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return digest

    def tag(self, ref: str, media_type: str, data: bytes, **extra: Any) -> str:
        digest = self.blob(data)
        self.refs.append({"mediaType": media_type, "digest": digest, "size": len(data), **extra,
                          "annotations": {"org.opencontainers.image.ref.name": ref}})
        return digest

    def save(self) -> None:
        (self.path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        (self.path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": self.refs}))


@dataclass
class Images:
    """The built test images: `layout` holds tags amd64, arm64 and multi."""

    layout: Path
    digests: dict[str, str]  # tag -> manifest (or index) digest
    configs: dict[str, str]  # arch -> config digest

    def ref(self, tag: str) -> str:
        return f"oci:{self.layout}:{tag}"


def build_images(root: Path, nonce: bytes = b"") -> Images:
    """Writes the busybox OCI layout under root/busybox (about 0.2 s); `nonce` goes into a file of
    the marker layer, so different callers can have images no registry has seen yet."""
    busybox = Path(shutil.which("busybox") or "/bin/busybox").read_bytes()
    layout = Layout(root / "busybox")
    base = _tar({"bin/busybox": busybox, **{f"bin/{a}": "busybox" for a in BUSYBOX_APPLETS},
                 "etc/.keep": b"", "tmp/.keep": b"", "root/.keep": b""})
    base_gz = gzip.compress(base, compresslevel=6, mtime=0)
    base_desc = {"mediaType": OCI_LAYER, "digest": layout.blob(base_gz), "size": len(base_gz)}
    digests: dict[str, str] = {}
    configs: dict[str, str] = {}
    children: list[dict[str, Any]] = []
    for arch in ("amd64", "arm64"):
        marker = _tar({"etc/e2e-arch": f"e2e busybox linux/{arch}\n".encode() + nonce})
        marker_gz = gzip.compress(marker, mtime=0)
        config = json.dumps({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                       "Labels": {"org.opencontainers.image.title": "e2e-busybox", "e2e.arch": arch}},
            "rootfs": {"type": "layers", "diff_ids": [sha256(base), sha256(marker)]},
            "history": [{"created_by": "tests/e2e/clients.py"}, {"created_by": f"marker {arch}"}],
        }, sort_keys=True).encode()
        configs[arch] = layout.blob(config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": configs[arch], "size": len(config)},
            "layers": [base_desc, {"mediaType": OCI_LAYER, "digest": layout.blob(marker_gz), "size": len(marker_gz)}],
        }, sort_keys=True).encode()
        digests[arch] = layout.tag(arch, OCI_MANIFEST, manifest)
        children.append({"mediaType": OCI_MANIFEST, "digest": digests[arch], "size": len(manifest),
                         "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}, sort_keys=True).encode()
    digests["multi"] = layout.tag("multi", OCI_INDEX, index)
    layout.save()
    return Images(layout.path, digests, configs)


def verify_layout(path: Path, tag: str) -> str:
    """The digest of `tag` in a pulled OCI layout, after checking every blob hashes to its name."""
    for blob in (path / "blobs" / "sha256").iterdir():
        assert sha256(blob.read_bytes()) == "sha256:" + blob.name, f"corrupt blob {blob}"
    index = json.loads((path / "index.json").read_text())
    for desc in index["manifests"]:
        if desc.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return str(desc["digest"])
    raise AssertionError(f"{tag} not in {path}/index.json: {index}")


# -- containers/* tools ------------------------------------------------------------------------------
@dataclass
class ClientEnv:
    """skopeo, podman and buildah with their state under `root` (see the module docstring)."""

    root: Path

    def __post_init__(self) -> None:
        for d in ("storage/root", "storage/run", "tmp", "config"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{self.root}/storage/root"\nrunroot = "{self.root}/storage/run"\n')
        # no unqualified-search registries: a short name must never resolve to docker.io
        (self.root / "registries.conf").write_text(
            'unqualified-search-registries = []\nshort-name-mode = "permissive"\n')
        (self.root / "policy.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
        (self.root / "auth.json").write_text('{"auths": {}}')

    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_STORAGE_CONF": f"{self.root}/storage.conf",
                "CONTAINERS_REGISTRIES_CONF": f"{self.root}/registries.conf",
                "REGISTRY_AUTH_FILE": f"{self.root}/auth.json", "BUILDAH_ISOLATION": "chroot",
                "TMPDIR": f"{self.root}/tmp", "XDG_CONFIG_HOME": f"{self.root}/config"}

    def run(self, *args: str, timeout: float = TIMEOUT, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = list(args)
        if argv[0] == "skopeo":  # skopeo reads the policy from a flag, not the environment
            argv[1:1] = ["--policy", f"{self.root}/policy.json"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env(), input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)
        if check:
            assert proc.returncode == 0, \
                f"{' '.join(args)} -> {proc.returncode}\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        return proc

    def sh(self, script: str, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """`bash -c SCRIPT _ ARGS...` in this environment (arguments as $1, $2, ...); not checked."""
        return subprocess.run(["bash", "-c", script, "_", *args], capture_output=True, text=True, timeout=timeout,
                              env=self.env(), stdin=subprocess.DEVNULL)

    def fails(self, *args: str, timeout: float = TIMEOUT) -> str:
        """Runs a command that must fail; returns its stderr, lower-cased."""
        proc = self.run(*args, timeout=timeout, check=False)
        assert proc.returncode != 0, f"{' '.join(args)} succeeded:\n{proc.stdout[-2000:]}"
        return proc.stderr.lower()

    def cleanup(self) -> None:
        self.run("podman", "rmi", "-a", "-f", check=False, timeout=120)
        self.run("buildah", "rm", "--all", check=False, timeout=120)
        # vfs layers of a container's rootfs may be read-only directories
        subprocess.run(["chmod", "-R", "u+w", str(self.root)], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def client_env(prefix: str = "dy-e2e-") -> Iterator[ClientEnv]:
    # short path under /tmp: containerd's unix socket path must stay under 108 bytes
    import tempfile

    env = ClientEnv(Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp")))
    try:
        yield env
    finally:
        env.cleanup()


@contextlib.contextmanager
def containerd(root: Path) -> Iterator[list[str]]:
    """A private containerd (CRI plugin off); yields the `ctr` command prefix for it."""
    cd = root / "containerd"
    cd.mkdir(parents=True, exist_ok=True)
    sock = cd / "c.sock"
    (cd / "config.toml").write_text(
        f'version = 2\nroot = "{cd}/root"\nstate = "{cd}/state"\n'
        f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n[ttrpc]\n  address = "{sock}.ttrpc"\n'
        f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{cd}/opt"\n')
    log = open(cd / "containerd.log", "wb")
    proc = subprocess.Popen(["containerd", "--config", str(cd / "config.toml")], stdout=log, stderr=subprocess.STDOUT)
    ctr = ["ctr", "--address", str(sock), "-n", "e2e"]
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([*ctr, "version"], capture_output=True).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, \
                f"containerd did not start: {(cd / 'containerd.log').read_text()[-2000:]}"
            time.sleep(0.1)
        yield ctr
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# -- the Distribution API, as a token-auth client ----------------------------------------------------
@dataclass
class Registry:
    """httpx against a registry with token auth: one token per request, with exactly `scopes`."""

    url: str
    user: str | None
    password: str | None
    _challenge: dict[str, str] = field(default_factory=dict)

    def challenge(self) -> dict[str, str]:
        if not self._challenge:
            r = httpx.get(f"{self.url}/v2/", timeout=10)
            assert r.status_code == 401, r.status_code
            scheme, _, params = r.headers["www-authenticate"].partition(" ")
            assert scheme.lower() == "bearer", r.headers["www-authenticate"]
            for part in params.split(","):
                key, _, value = part.strip().partition("=")
                self._challenge[key] = value.strip('"')
        return self._challenge

    def token(self, *scopes: str) -> str:
        ch = self.challenge()
        auth = (self.user, self.password) if self.user and self.password else None
        r = httpx.get(ch["realm"], params=[("service", ch["service"]), *(("scope", s) for s in scopes)],
                      auth=auth, timeout=10)
        assert r.status_code == 200, (r.status_code, r.text)
        return str(r.json()["token"])

    def request(self, method: str, path: str, scopes: tuple[str, ...] | str, **kwargs: Any) -> httpx.Response:
        scopes = (scopes,) if isinstance(scopes, str) else scopes
        headers = {"Authorization": f"Bearer {self.token(*scopes)}", **kwargs.pop("headers", {})}
        url = path if path.startswith("http") else self.url + path
        return httpx.request(method, url, headers=headers, timeout=60, **kwargs)

    def manifest(self, repo: str, ref: str) -> httpx.Response:
        return self.request("GET", f"/v2/{repo}/manifests/{ref}", f"repository:{repo}:pull",
                            headers={"Accept": ACCEPT})

    def tags(self, repo: str) -> list[str] | None:
        r = self.request("GET", f"/v2/{repo}/tags/list", f"repository:{repo}:pull")
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        return sorted(r.json().get("tags") or [])

    def verify_image(self, repo: str, ref: str, want: str) -> None:
        """The manifest's bytes hash to `want`, and so does every child and blob it names."""
        r = self.manifest(repo, ref)
        assert r.status_code == 200, (repo, ref, r.status_code, r.text[:300])
        assert sha256(r.content) == want, f"{repo}:{ref} manifest hashes to {sha256(r.content)}, pushed {want}"
        assert r.headers.get("docker-content-digest", want) == want
        doc = r.json()
        for child in doc.get("manifests", []):
            self.verify_image(repo, child["digest"], child["digest"])
        for blob in ([doc["config"]] if "config" in doc else []) + doc.get("layers", []):
            b = self.request("GET", f"/v2/{repo}/blobs/{blob['digest']}", f"repository:{repo}:pull",
                             follow_redirects=True)
            assert b.status_code == 200 and sha256(b.content) == blob["digest"], (repo, blob, b.status_code)


def round_trip(env: ClientEnv, images: Images, url: str, user: str, password: str, ns: str) -> None:
    """What a CI credential does with every client, under namespace `ns`: push by tag and as a
    multi-arch index, pull by tag and by digest, copy to a new repository (cross-repository mounts),
    ctr pull and push, a chunked upload, tags list, and delete."""
    address, login = url.removeprefix("http://"), f"{user}:{password}"
    reg = Registry(url, user, password)
    sk = ["--dest-tls-verify=false", "--dest-creds", login]
    env.run("skopeo", "copy", "--retry-times", "0", *sk, images.ref("amd64"), f"docker://{address}/{ns}/app:1")
    env.run("skopeo", "copy", "--retry-times", "0", "--all", *sk, images.ref("multi"),
            f"docker://{address}/{ns}/app:multi")
    reg.verify_image(f"{ns}/app", "multi", images.digests["multi"])

    env.run("podman", "login", "--tls-verify=false", "-u", user, "--password-stdin", address, input=password + "\n")
    config = images.configs["amd64"].removeprefix("sha256:")
    for ref in (f"{address}/{ns}/app:1", f"{address}/{ns}/app@{images.digests['amd64']}"):
        assert env.run("podman", "pull", "--tls-verify=false", ref).stdout.strip().splitlines()[-1] == config
    env.run("podman", "tag", f"{address}/{ns}/app:1", f"{address}/{ns}/copy:1")
    env.run("podman", "push", "--tls-verify=false", f"{address}/{ns}/copy:1")
    env.run("podman", "logout", address)
    copied = reg.manifest(f"{ns}/copy", "1")  # podman writes a manifest of its own: same config
    assert copied.json()["config"]["digest"] == images.configs["amd64"]
    reg.verify_image(f"{ns}/copy", "1", sha256(copied.content))

    image = env.run("buildah", "pull", "--quiet", images.ref("arm64")).stdout.strip()
    env.run("buildah", "push", "--tls-verify=false", "--creds", login, image, f"docker://{address}/{ns}/buildah:arm64")
    assert reg.manifest(f"{ns}/buildah", "arm64").json()["config"]["digest"] == images.configs["arm64"]

    with containerd(env.root) as ctr:
        env.run(*ctr, "images", "pull", "--plain-http", "--all-platforms", "-u", login, f"{address}/{ns}/app:multi")
        env.run(*ctr, "images", "tag", f"{address}/{ns}/app:multi", f"{address}/{ns}/ctr:multi")
        env.run(*ctr, "images", "push", "--plain-http", "-u", login, f"{address}/{ns}/ctr:multi")
    reg.verify_image(f"{ns}/ctr", "multi", images.digests["multi"])

    data = os.urandom(1_500_000)
    pp = f"repository:{ns}/raw:pull,push"
    location = reg.request("POST", f"/v2/{ns}/raw/blobs/uploads/", pp).headers["location"]
    for start in (0, 1_000_000):
        chunk = data[start:start + 1_000_000]
        r = reg.request("PATCH", location, pp, content=chunk,
                        headers={"Content-Range": f"{start}-{start + len(chunk) - 1}"})
        assert r.status_code == 202, r.text
        location = r.headers["location"]
    sep = "&" if "?" in location else "?"
    assert reg.request("PUT", f"{location}{sep}digest={sha256(data)}", pp).status_code == 201

    assert reg.tags(f"{ns}/app") == ["1", "multi"]
    env.run("skopeo", "delete", "--tls-verify=false", "--creds", login, f"docker://{address}/{ns}/copy:1")
    assert reg.manifest(f"{ns}/copy", sha256(copied.content)).status_code == 404
