"""Real clients (skopeo, podman, buildah, containerd's ctr, and httpx for what no client exposes)
against one real `dockyard serve` with token auth, with images the tests build themselves
(tests/e2e/clients.py). Nothing outside the repository is needed; no network but loopback.

oras is not packaged in Debian bookworm, so artifacts and the referrers API are driven through
the Distribution API directly (test_artifact_with_subject_is_listed_by_referrers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, free_port
from tests.e2e import clients as cl
from tests.e2e.clients import ClientEnv, Images, Registry, sha256

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module: each test uses repositories of its own."""
    proc = ServerProcess(tmp_path_factory.mktemp("clients") / "data", free_port(), "e2e-" + os.urandom(6).hex())
    yield proc.start()
    proc.stop()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    return cl.build_images(tmp_path_factory.mktemp("images"))


@pytest.fixture
def env() -> Iterator[ClientEnv]:
    with cl.client_env() as e:
        yield e


@pytest.fixture(scope="module")
def reg(server: ServerProcess) -> Registry:
    return Registry(server.url, server.user, server.password)


def creds(server: ServerProcess) -> str:
    return f"{server.user}:{server.password}"


def skopeo_push(env: ClientEnv, server: ServerProcess, src: str, ref: str, *flags: str) -> None:
    env.run("skopeo", "copy", "--retry-times", "0", "--dest-tls-verify=false", "--dest-creds", creds(server), *flags,
            src, f"docker://{server.address}/{ref}")


def test_skopeo_push_then_pull_by_tag_and_by_digest(server: ServerProcess, images: Images, env: ClientEnv,
                                                    reg: Registry, tmp_path: Path) -> None:
    skopeo_push(env, server, images.ref("amd64"), "clients/skopeo:v1")
    want = images.digests["amd64"]
    reg.verify_image("clients/skopeo", "v1", want)

    out = env.run("skopeo", "inspect", "--tls-verify=false", "--creds", creds(server),
                  f"docker://{server.address}/clients/skopeo:v1")
    info = json.loads(out.stdout)
    assert (info["Digest"], info["Architecture"], info["Os"]) == (want, "amd64", "linux")
    assert info["Labels"]["e2e.arch"] == "amd64"

    # pull by tag and by digest into OCI layouts: same manifest, every blob intact
    for ref in ("clients/skopeo:v1", f"clients/skopeo@{want}"):
        dest = tmp_path / ref.replace("/", "_").replace(":", "_").replace("@", "_")
        env.run("skopeo", "copy", "--src-tls-verify=false", "--src-creds", creds(server),
                f"docker://{server.address}/{ref}", f"oci:{dest}:pulled")
        assert cl.verify_layout(dest, "pulled") == want

    out = env.run("skopeo", "list-tags", "--tls-verify=false", "--creds", creds(server),
                  f"docker://{server.address}/clients/skopeo")
    assert json.loads(out.stdout)["Tags"] == ["v1"]


def test_skopeo_multi_arch_index(server: ServerProcess, images: Images, env: ClientEnv, reg: Registry,
                                 tmp_path: Path) -> None:
    skopeo_push(env, server, images.ref("multi"), "clients/multi:multi", "--all")
    reg.verify_image("clients/multi", "multi", images.digests["multi"])
    # the client resolves a platform through the index
    out = env.run("skopeo", "--override-arch", "arm64", "inspect", "--tls-verify=false", "--creds", creds(server),
                  f"docker://{server.address}/clients/multi:multi")
    info = json.loads(out.stdout)
    assert (info["Architecture"], info["Labels"]["e2e.arch"]) == ("arm64", "arm64")
    env.run("skopeo", "copy", "--all", "--src-tls-verify=false", "--src-creds", creds(server),
            f"docker://{server.address}/clients/multi:multi", f"oci:{tmp_path / 'pulled'}:multi")
    assert cl.verify_layout(tmp_path / "pulled", "multi") == images.digests["multi"]


def test_skopeo_delete_then_the_manifest_is_unknown(server: ServerProcess, images: Images, env: ClientEnv,
                                                   reg: Registry) -> None:
    skopeo_push(env, server, images.ref("arm64"), "clients/delete-me:gone")
    assert reg.tags("clients/delete-me") == ["gone"]
    env.run("skopeo", "delete", "--tls-verify=false", "--creds", creds(server),
            f"docker://{server.address}/clients/delete-me:gone")
    r = reg.manifest("clients/delete-me", images.digests["arm64"])
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN", r.text
    assert not reg.tags("clients/delete-me")
    stderr = env.fails("skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", creds(server),
                       f"docker://{server.address}/clients/delete-me:gone")
    assert "manifest unknown" in stderr or "not found" in stderr, stderr


def test_podman_login_pull_push_and_manifest_list(server: ServerProcess, images: Images, env: ClientEnv,
                                                  reg: Registry) -> None:
    skopeo_push(env, server, images.ref("amd64"), "clients/base:amd64")
    reg_ = server.address
    stderr = env.fails("podman", "login", "--tls-verify=false", "-u", server.user, "-p", "wrong-" + server.password,
                       reg_)
    assert "unauthorized" in stderr or "invalid username/password" in stderr, stderr
    env.run("podman", "login", "--tls-verify=false", "-u", server.user, "--password-stdin", reg_,
            input=server.password + "\n")

    # pull by tag and by digest: the image ID is the config digest that was pushed
    config = images.configs["amd64"].removeprefix("sha256:")
    for ref in (f"{reg_}/clients/base:amd64", f"{reg_}/clients/base@{images.digests['amd64']}"):
        out = env.run("podman", "pull", "--tls-verify=false", ref)
        assert out.stdout.strip().splitlines()[-1] == config, out.stdout

    # tag + push to a new repository (podman mounts the blobs across repositories)
    env.run("podman", "tag", f"{reg_}/clients/base:amd64", f"{reg_}/clients/podman:copied")
    env.run("podman", "push", "--tls-verify=false", f"{reg_}/clients/podman:copied")
    assert json.loads(reg.manifest("clients/podman", "copied").content)["config"]["digest"] == images.configs["amd64"]

    # a manifest list made by podman from the registry and from the local layout
    env.run("podman", "manifest", "create", "e2e-list")
    env.run("podman", "manifest", "add", "--tls-verify=false", "e2e-list", f"docker://{reg_}/clients/base:amd64")
    env.run("podman", "manifest", "add", "--arch", "arm64", "e2e-list", images.ref("arm64"))
    env.run("podman", "manifest", "push", "--all", "--tls-verify=false", "e2e-list",
            f"docker://{reg_}/clients/podman:multi")
    index = reg.manifest("clients/podman", "multi").json()
    by_arch = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    assert sorted(by_arch) == ["amd64", "arm64"]
    assert by_arch["amd64"] == images.digests["amd64"]
    for digest in by_arch.values():
        assert reg.manifest("clients/podman", digest).status_code == 200
    assert reg.tags("clients/podman") == ["copied", "multi"]
    env.run("podman", "logout", reg_)


def test_buildah_push_and_build_from_a_registry_image(server: ServerProcess, images: Images, env: ClientEnv,
                                                      reg: Registry, tmp_path: Path) -> None:
    reg_ = server.address
    image = env.run("buildah", "pull", "--quiet", images.ref("amd64")).stdout.strip()
    digestfile = tmp_path / "digest"
    env.run("buildah", "push", "--tls-verify=false", "--creds", creds(server), "--digestfile", str(digestfile),
            image, f"docker://{reg_}/clients/buildah:pushed")
    reg.verify_image("clients/buildah", "pushed", digestfile.read_text().strip())

    # a build whose base image really comes from the registry, with a RUN step
    nonce = os.urandom(8).hex()
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(f"FROM {reg_}/clients/buildah:pushed\n"
                                       f'RUN echo "built {nonce}" > /built.txt && cat /etc/e2e-arch\n'
                                       f"LABEL e2e.built={nonce}\n")
    env.run("buildah", "rmi", "-a", "-f")
    env.run("buildah", "build", "--pull-always", "--isolation", "chroot", "--tls-verify=false",
            "--creds", creds(server), "-t", f"{reg_}/clients/buildah:built", str(ctx), timeout=300)
    env.run("buildah", "push", "--tls-verify=false", "--creds", creds(server), f"{reg_}/clients/buildah:built")

    # podman pulls it back: the label and the RUN step's file are there
    env.run("podman", "rmi", "-a", "-f")
    env.run("podman", "pull", "--tls-verify=false", "--creds", creds(server), f"{reg_}/clients/buildah:built")
    label = env.run("podman", "image", "inspect", "--format", '{{index .Labels "e2e.built"}}',
                    f"{reg_}/clients/buildah:built").stdout.strip()
    assert label == nonce
    mnt = env.run("podman", "image", "mount", f"{reg_}/clients/buildah:built").stdout.strip()
    try:
        assert (Path(mnt) / "built.txt").read_text() == f"built {nonce}\n"
    finally:
        env.run("podman", "image", "unmount", f"{reg_}/clients/buildah:built", check=False)


def test_containerd_pull_and_push(server: ServerProcess, images: Images, env: ClientEnv, reg: Registry) -> None:
    skopeo_push(env, server, images.ref("amd64"), "clients/ctr-src:amd64")
    skopeo_push(env, server, images.ref("multi"), "clients/ctr-src:multi", "--all")
    reg_, user = server.address, ["-u", creds(server)]
    with cl.containerd(env.root) as ctr:
        # containerd asks the realm with the OAuth2 password grant (POST) first
        env.run(*ctr, "images", "pull", "--plain-http", *user, f"{reg_}/clients/ctr-src:amd64")
        env.run(*ctr, "images", "pull", "--plain-http", "--all-platforms", *user, f"{reg_}/clients/ctr-src:multi")
        listing = env.run(*ctr, "images", "ls").stdout
        pulled = {line.split()[0]: line.split()[2] for line in listing.splitlines()[1:] if line.strip()}
        assert pulled[f"{reg_}/clients/ctr-src:multi"] == images.digests["multi"], listing
        assert pulled[f"{reg_}/clients/ctr-src:amd64"] == images.digests["amd64"], listing
        env.run(*ctr, "images", "tag", f"{reg_}/clients/ctr-src:multi", f"{reg_}/clients/ctr:multi")
        env.run(*ctr, "images", "push", "--plain-http", *user, f"{reg_}/clients/ctr:multi")
    reg.verify_image("clients/ctr", "multi", images.digests["multi"])


def test_chunked_upload_and_cross_repository_mount(server: ServerProcess, reg: Registry) -> None:
    src, dst = "clients/raw-src", "clients/raw-dst"
    pp = f"repository:{src}:pull,push"
    data = os.urandom(2_621_440)
    digest = sha256(data)
    r = reg.request("POST", f"/v2/{src}/blobs/uploads/", pp)
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    size = max(1_048_576, int(r.headers.get("oci-chunk-min-length", 0)))
    for n, start in enumerate(range(0, len(data), size)):
        chunk = data[start:start + size]
        end = start + len(chunk) - 1
        r = reg.request("PATCH", location, pp, content=chunk,
                        headers={"Content-Type": "application/octet-stream", "Content-Range": f"{start}-{end}"})
        assert r.status_code == 202 and r.headers["range"] == f"0-{end}", (r.status_code, r.headers, r.text)
        location = r.headers["location"]
        if n == 0:  # resumable status between chunks
            status = reg.request("GET", location, pp)
            assert status.status_code == 204 and status.headers["range"] == f"0-{end}"
            # and a chunk out of order is refused
            bad = reg.request("PATCH", location, pp, content=b"x" * 1000,
                              headers={"Content-Type": "application/octet-stream", "Content-Range": "9000000-9000999"})
            assert bad.status_code == 416, bad.text
    sep = "&" if "?" in location else "?"
    r = reg.request("PUT", f"{location}{sep}digest={digest}", pp)
    assert r.status_code == 201 and r.headers["docker-content-digest"] == digest, r.text
    r = reg.request("GET", f"/v2/{src}/blobs/{digest}", f"repository:{src}:pull", follow_redirects=True)
    assert sha256(r.content) == digest

    # mount into another repository: 201, then the blob is there
    both = (f"repository:{dst}:pull,push", f"repository:{src}:pull")
    r = reg.request("POST", f"/v2/{dst}/blobs/uploads/?mount={digest}&from={src}", both)
    assert r.status_code == 201 and r.headers["location"], (r.status_code, r.text)
    assert reg.request("HEAD", f"/v2/{dst}/blobs/{digest}", both[0]).status_code == 200
    # an unknown blob falls back to an upload session
    r = reg.request("POST", f"/v2/{dst}/blobs/uploads/?mount={sha256(os.urandom(9))}&from={src}", both)
    assert r.status_code == 202 and r.headers["location"], (r.status_code, r.text)


def test_artifact_with_subject_is_listed_by_referrers(server: ServerProcess, images: Images, env: ClientEnv,
                                                      reg: Registry) -> None:
    repo = "clients/artifacts"
    pp = f"repository:{repo}:pull,push"
    skopeo_push(env, server, images.ref("amd64"), f"{repo}:app")
    subject = images.digests["amd64"]
    subject_size = len(reg.manifest(repo, subject).content)

    def upload(data: bytes) -> dict[str, object]:
        r = reg.request("POST", f"/v2/{repo}/blobs/uploads/", pp)
        sep = "&" if "?" in r.headers["location"] else "?"
        r = reg.request("PUT", f"{r.headers['location']}{sep}digest={sha256(data)}", pp, content=data,
                        headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        return {"digest": sha256(data), "size": len(data)}

    sbom_type = "application/vnd.e2e.sbom.v1+json"
    config = {"mediaType": "application/vnd.oci.empty.v1+json", **upload(b"{}")}
    layer = {"mediaType": "application/spdx+json", **upload(json.dumps({"spdxVersion": "SPDX-2.3"}).encode())}
    body = json.dumps({"schemaVersion": 2, "mediaType": cl.OCI_MANIFEST, "artifactType": sbom_type, "config": config,
                       "layers": [layer], "subject": {"mediaType": cl.OCI_MANIFEST, "digest": subject,
                                                      "size": subject_size}}).encode()
    r = reg.request("PUT", f"/v2/{repo}/manifests/{sha256(body)}", pp, content=body,
                    headers={"Content-Type": cl.OCI_MANIFEST})
    assert r.status_code == 201 and r.headers.get("oci-subject") == subject, (r.status_code, r.headers, r.text)

    r = reg.request("GET", f"/v2/{repo}/referrers/{subject}", f"repository:{repo}:pull")
    assert r.status_code == 200 and r.headers["content-type"].startswith(cl.OCI_INDEX), r.text
    # (The SBOMs Dockyard's own scanner pushes for the image, marked by an annotation, are left out.)
    theirs = [m for m in r.json()["manifests"] if "dev.dockyard.sbom.generator" not in (m.get("annotations") or {})]
    assert [(m["digest"], m["artifactType"]) for m in theirs] == [(sha256(body), sbom_type)]
    r = reg.request("GET", f"/v2/{repo}/referrers/{subject}?artifactType=application/other",
                    f"repository:{repo}:pull")
    if r.headers.get("oci-filters-applied") == "artifactType":
        assert r.json()["manifests"] == []
    # the artifact itself pulls back byte for byte
    assert reg.manifest(repo, sha256(body)).content == body


def test_tags_list_is_paginated(server: ServerProcess, images: Images, env: ClientEnv, reg: Registry) -> None:
    repo = "clients/tags"
    for tag in ("a", "b", "c"):
        skopeo_push(env, server, images.ref("amd64"), f"{repo}:{tag}")
    seen: list[str] = []
    url = f"/v2/{repo}/tags/list?n=1"
    while url:
        r = reg.request("GET", url, f"repository:{repo}:pull")
        assert r.status_code == 200 and len(r.json()["tags"]) == 1, r.text
        seen += r.json()["tags"]
        link = r.headers.get("link", "")
        url = link[link.index("<") + 1:link.index(">")] if link else ""
    assert seen == ["a", "b", "c"]
