"""The image-versions use-cases (management/images.py) over real pushes: sizes and platforms of
images and indexes, sorting, paging and search, the detail of one version (layers with their
commands, labels, referrers), deleting a tag, who may see and delete, and the backfill of the
facts of manifests pushed before they were recorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from dockyard.auth.policy import Principal
from dockyard.management.errors import Forbidden, Invalid, NotFound
from dockyard.management.images import ImagesService
from dockyard.management.service import Actor
from dockyard.meta.tables import manifests, repositories, tag_pulls, tags
from dockyard.meta.versions import page_query
from tests.conftest import hashed
from tests.integration.helpers import (
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    dumps,
    image_manifest,
    index_manifest,
    no_server_errors,  # noqa: F401  (autouse)
    push_blob,
    put_manifest,
    sha256,
)

ARTIFACT = "application/vnd.example.sbom.v1+json"


@pytest.fixture
def images(services: Any) -> ImagesService:
    return services.images  # type: ignore[no-any-return]


def actor(services: Any, username: str, account_login: bool = True) -> Actor:
    return Actor(Principal(user=services.users.get(username), account_login=account_login), "10.1.2.3")


@pytest.fixture
def admin(services: Any) -> Actor:
    return actor(services, "admin")


def push(client: TestClient, repo: str, tag: str | None, arch: str = "amd64", variant: str | None = None,
         layers: int = 2, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
         seed: str = "") -> dict[str, Any]:
    """Push an image with a realistic config; returns its digest, manifest bytes and expected size."""
    blobs = [f"layer {i} of {repo}:{tag}:{arch}{seed}".encode() * (i + 1) for i in range(layers)]
    history: list[dict[str, Any]] = [{"created": "2024-05-01T10:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:base in / "},
                                     {"created": "2024-05-01T10:00:01Z", "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
                                      "empty_layer": True}]
    history += [{"created": f"2024-05-02T10:00:0{i}Z", "created_by": f"RUN step {i}", "comment": "buildkit.dockerfile.v0"}
                for i in range(1, layers)]
    config = dumps({"architecture": arch, "os": "linux", **({"variant": variant} if variant else {}),
                    "created": "2024-05-02T10:00:09Z", "author": "Team <team@example.com>",
                    "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["sh"], "WorkingDir": "/app",
                               "Labels": labels or {}, "ExposedPorts": {"8080/tcp": {}}},
                    "rootfs": {"type": "layers", "diff_ids": [sha256(b) for b in blobs]}, "history": history, "seed": seed})
    push_blob(client, repo, config)
    for blob in blobs:
        push_blob(client, repo, blob)
    extra: dict[str, Any] = {"annotations": annotations} if annotations else {}
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, b) for b in blobs], OCI_MANIFEST, **extra)
    digest = sha256(body)
    r = put_manifest(client, repo, tag or digest, body)
    assert r.status_code == 201, r.text
    return {"digest": digest, "body": body, "size": len(body) + len(config) + sum(len(b) for b in blobs),
            "blobs": blobs, "config": config}


def push_attestation(client: TestClient, repo: str, subject: str) -> dict[str, Any]:
    """What BuildKit puts in an index next to the images: platform unknown/unknown."""
    config = dumps({"architecture": "unknown", "os": "unknown", "rootfs": {"type": "layers", "diff_ids": []}})
    statement = b'{"_type": "https://in-toto.io/Statement/v0.1"}'
    push_blob(client, repo, config)
    push_blob(client, repo, statement)
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor("application/vnd.in-toto+json", statement)])
    digest = sha256(body)
    assert put_manifest(client, repo, digest, body).status_code == 201
    return {"digest": digest, "body": body, "size": len(body) + len(config) + len(statement)}


def push_multi(client: TestClient, repo: str, tag: str) -> dict[str, Any]:
    amd = push(client, repo, None, "amd64")
    arm = push(client, repo, None, "arm64", "v8")
    att = push_attestation(client, repo, amd["digest"])
    children = [descriptor(OCI_MANIFEST, amd["body"], platform={"architecture": "amd64", "os": "linux"}),
                descriptor(OCI_MANIFEST, arm["body"], platform={"architecture": "arm64", "os": "linux", "variant": "v8"}),
                descriptor(OCI_MANIFEST, att["body"], platform={"architecture": "unknown", "os": "unknown"},
                           annotations={"vnd.docker.reference.type": "attestation-manifest",
                                        "vnd.docker.reference.digest": amd["digest"]})]
    body = index_manifest(children, annotations={"org.opencontainers.image.version": "2.0"})
    assert put_manifest(client, repo, tag, body, OCI_INDEX).status_code == 201
    return {"digest": sha256(body), "body": body, "children": [amd, arm, att],
            "size": len(body) + amd["size"] + arm["size"] + att["size"]}


def set_pushed(services: Any, repo: str, times: dict[str, datetime]) -> None:
    with services.db.write() as conn:
        repo_id = conn.execute(select(repositories.c.id).where(repositories.c.name == repo)).scalar_one()
        for tag, at in times.items():
            conn.execute(update(tags).where(tags.c.repository_id == repo_id, tags.c.name == tag).values(updated_at=at))


def test_versions_sizes_and_platforms(app_client: TestClient, images: ImagesService, admin: Actor) -> None:
    one = push(app_client, "shop/web", "1.0", layers=3)
    arm = push(app_client, "shop/web", "1.0-arm", "arm64", "v8")
    multi = push_multi(app_client, "shop/web", "2.0")
    page = images.versions(admin, "shop/web", sort="name", order="asc")
    assert [v.tag for v in page.items] == ["1.0", "1.0-arm", "2.0"]
    assert (page.total, page.page, page.pages, page.per_page, page.sort, page.order) == (3, 1, 1, 50, "name", "asc")
    v1, v_arm, v2 = page.items
    assert (v1.digest, v1.size, v1.is_index, v1.artifact_type) == (one["digest"], one["size"], False, None)
    assert [(p.platform, p.digest, p.size) for p in v1.platforms] == [("linux/amd64", one["digest"], one["size"])]
    assert v_arm.platforms[0].platform == "linux/arm64/v8" and v_arm.size == arm["size"]
    assert v2.is_index and v2.media_type == OCI_INDEX and v2.size == multi["size"]
    assert [(p.platform, p.digest, p.size, p.media_type) for p in v2.platforms] == [
        ("linux/amd64", multi["children"][0]["digest"], multi["children"][0]["size"], OCI_MANIFEST),
        ("linux/arm64/v8", multi["children"][1]["digest"], multi["children"][1]["size"], OCI_MANIFEST),
        (None, multi["children"][2]["digest"], multi["children"][2]["size"], OCI_MANIFEST),
    ]
    assert v1.pushed_at.tzinfo is not None and v1.pulls == 0 and v1.last_pulled_at is None


def test_sort_order_paging_and_search(app_client: TestClient, services: Any, images: ImagesService,
                                      admin: Actor) -> None:
    sizes = {}
    for n, tag in enumerate(["a_b", "axb", "v1.0", "v1.1", "v2.0"]):
        sizes[tag] = push(app_client, "shop/app", tag, layers=n + 1)["size"]
    base = datetime(2025, 1, 1, tzinfo=UTC)
    set_pushed(services, "shop/app", {"v1.1": base, "a_b": base + timedelta(hours=1), "v2.0": base + timedelta(hours=2),
                                      "axb": base + timedelta(hours=3), "v1.0": base + timedelta(hours=4)})

    def tags_of(**kw: Any) -> list[str]:
        return [v.tag for v in images.versions(admin, "shop/app", **kw).items]

    assert tags_of() == ["v1.0", "axb", "v2.0", "a_b", "v1.1"]  # newest push first
    assert tags_of(order="asc") == ["v1.1", "a_b", "v2.0", "axb", "v1.0"]
    assert images.versions(admin, "shop/app").items[0].pushed_at == base + timedelta(hours=4)
    assert tags_of(sort="name", order="desc") == ["v2.0", "v1.1", "v1.0", "axb", "a_b"]
    assert tags_of(sort="size", order="asc") == sorted(sizes, key=sizes.__getitem__)
    assert tags_of(sort="size") == sorted(sizes, key=sizes.__getitem__, reverse=True)
    # pulls: counted from registry GETs by tag; never-pulled tags come last in both orders
    for tag, n in (("v2.0", 2), ("a_b", 1)):
        for _ in range(n):
            assert app_client.get(f"/v2/shop/app/manifests/{tag}").status_code == 200
    services.activity.flush()
    with services.db.write() as conn:  # make the order of the last pulls certain
        for tag, at in (("v2.0", base), ("a_b", base + timedelta(days=1))):
            conn.execute(update(tag_pulls).where(tag_pulls.c.tag == tag).values(last_pulled_at=at))
    page = images.versions(admin, "shop/app", sort="pulled")
    assert [(v.tag, v.pulls) for v in page.items] == [("a_b", 1), ("v2.0", 2), ("v1.1", 0), ("v1.0", 0), ("axb", 0)]
    assert page.items[0].last_pulled_at == base + timedelta(days=1)
    assert tags_of(sort="pulled", order="asc")[:2] == ["v2.0", "a_b"]
    assert tags_of(sort="pulled", order="asc")[2:] == ["axb", "v1.0", "v1.1"]
    # paging, clamped
    page = images.versions(admin, "shop/app", sort="name", order="asc", per_page=2, page=2)
    assert [v.tag for v in page.items] == ["v1.0", "v1.1"] and (page.total, page.pages, page.page) == (5, 3, 2)
    assert images.versions(admin, "shop/app", sort="name", per_page=2, page=99).page == 3
    assert [v.tag for v in images.versions(admin, "shop/app", sort="name", per_page=2, page=99).items] == ["a_b"]
    assert images.versions(admin, "shop/app", per_page=2, page=-5).page == 1
    # search: a substring, case-insensitive, LIKE wildcards taken literally
    assert tags_of(sort="name", order="asc", search="v1.") == ["v1.0", "v1.1"]
    assert tags_of(sort="name", order="asc", search="V2") == ["v2.0"]
    assert tags_of(search="_") == ["a_b"]
    assert tags_of(search="%") == []
    empty = images.versions(admin, "shop/app", search="nothing", page=3)
    assert (empty.items, empty.total, empty.page, empty.pages, empty.search) == ([], 0, 1, 1, "nothing")
    assert images.versions(admin, "shop/app", search="").search is None


def test_invalid_arguments(app_client: TestClient, images: ImagesService, admin: Actor) -> None:
    push(app_client, "shop/app", "v1")
    for kw in ({"sort": "date"}, {"order": "up"}, {"per_page": 0}, {"per_page": 201}):
        with pytest.raises(Invalid):
            images.versions(admin, "shop/app", **kw)
    assert len(images.versions(admin, "shop/app", per_page=200).items) == 1
    for reference in ("bad tag", "-x", "sha256:zz", "sha256:" + "0" * 63):
        with pytest.raises(Invalid):
            images.version(admin, "shop/app", reference)
    with pytest.raises(Invalid):
        images.versions(admin, "Shop/App")


def test_version_detail(app_client: TestClient, services: Any, images: ImagesService, admin: Actor) -> None:
    labels = {"org.opencontainers.image.source": "https://example.com/web", "maintainer": "team"}
    img = push(app_client, "shop/web", "1.0", layers=3, labels=labels, annotations={"org.example.build": "42"})
    body = img["body"]
    assert put_manifest(app_client, "shop/web", "stable", body).status_code == 201  # a second tag, same digest
    # an SBOM attached to the image (its `subject`)
    push_blob(app_client, "shop/web", b"{}")
    sbom = b'{"spdxVersion": "SPDX-2.3"}'
    push_blob(app_client, "shop/web", sbom)
    ref_body = image_manifest(descriptor(OCI_EMPTY, b"{}"), [descriptor(ARTIFACT, sbom)], artifactType=ARTIFACT,
                              subject=descriptor(OCI_MANIFEST, body), annotations={"org.example.kind": "sbom"})
    assert put_manifest(app_client, "shop/web", sha256(ref_body), ref_body).status_code == 201
    for _ in range(3):
        assert app_client.get("/v2/shop/web/manifests/1.0").status_code == 200

    d = images.version(admin, "shop/web", "1.0")  # flushes the buffered pulls first
    assert (d.repository, d.reference, d.digest, d.media_type, d.is_index) == ("shop/web", "1.0", img["digest"],
                                                                               OCI_MANIFEST, False)
    assert (d.manifest_size, d.size, d.tags, d.platform) == (len(body), img["size"], ["1.0", "stable"], "linux/amd64")
    assert d.children == [] and d.config_digest == sha256(img["config"])
    assert d.config is not None and d.config["Cmd"] == ["sh"] and d.config["WorkingDir"] == "/app"
    assert (d.created, d.author, d.labels) == ("2024-05-02T10:00:09Z", "Team <team@example.com>", labels)
    assert d.annotations == {"org.example.build": "42"}
    assert [(layer.digest, layer.size, layer.created_by) for layer in d.layers] == [
        (sha256(img["blobs"][0]), len(img["blobs"][0]), "/bin/sh -c #(nop) ADD file:base in / "),
        (sha256(img["blobs"][1]), len(img["blobs"][1]), "RUN step 1"),
        (sha256(img["blobs"][2]), len(img["blobs"][2]), "RUN step 2"),
    ]
    assert d.layers[1].created == "2024-05-02T10:00:01Z" and d.layers[0].urls == ()
    assert [h.empty_layer for h in d.history] == [False, True, False, False]
    assert [(r.digest, r.artifact_type, r.size, r.annotations) for r in d.referrers] == [
        (sha256(ref_body), ARTIFACT, len(ref_body), {"org.example.kind": "sbom"})]
    assert d.referrers[0].created_at.tzinfo is not None
    assert json.loads(d.manifest_json) == json.loads(body) and "\n  " in d.manifest_json
    assert (d.pulls, d.last_pulled_at is not None) == (3, True)
    by_digest = images.version(admin, "shop/web", img["digest"])
    assert by_digest.reference == img["digest"] and (by_digest.pulls, by_digest.last_pulled_at) == (0, None)
    assert by_digest.layers == d.layers
    # the referrer itself: an artifact, no platform, no config
    art = images.version(admin, "shop/web", sha256(ref_body))
    assert (art.platform, art.config, art.labels, art.tags, art.referrers) == (None, None, {}, [], [])
    assert [layer.created_by for layer in art.layers] == [None]
    # an index
    multi = push_multi(app_client, "shop/web", "2.0")
    m = images.version(admin, "shop/web", "2.0")
    assert (m.is_index, m.platform, m.size, m.config_digest, m.layers, m.config) == (True, None, multi["size"], None, [], None)
    assert [c.platform for c in m.children] == ["linux/amd64", "linux/arm64/v8", None]
    assert m.annotations == {"org.opencontainers.image.version": "2.0"}
    for reference in ("nope", "sha256:" + "1" * 64):
        with pytest.raises(NotFound):
            images.version(admin, "shop/web", reference)


def test_delete_tag_permissions(app_client: TestClient, services: Any, images: ImagesService, admin: Actor) -> None:
    for name in ("gina", "dave", "olga"):
        services.users.create(name, hashed("a-long-password"))
    services.management.create_namespace(admin, "team")
    services.management.set_member(admin, "team", "gina", "guest")
    services.management.set_member(admin, "team", "dave", "developer")
    img = push(app_client, "team/app", "v1")
    push(app_client, "team/app", "v2", seed="2")
    guest, dev, outsider = actor(services, "gina"), actor(services, "dave"), actor(services, "olga")
    read_only_admin = actor(services, "admin", account_login=False)  # e.g. its fixed registry password

    assert images.can_delete(admin, "team/app") and images.can_delete(dev, "team/app")
    assert not images.can_delete(guest, "team/app") and not images.can_delete(read_only_admin, "team/app")
    assert not images.can_delete(Actor(None), "team/app")
    assert images.versions(guest, "team/app").total == 2  # the guest may look, not delete
    for who in (guest, read_only_admin):
        with pytest.raises(Forbidden):
            images.delete_tag(who, "team/app", "v1")
    for call in (lambda: images.versions(outsider, "team/app"), lambda: images.version(outsider, "team/app", "v1"),
                 lambda: images.delete_tag(outsider, "team/app", "v1"), lambda: images.versions(Actor(None), "team/app"),
                 lambda: images.versions(admin, "team/nothing"), lambda: images.version(admin, "team/nothing", "v1")):
        with pytest.raises(NotFound):
            call()
    assert [e.action for e in services.audit.query(action="tag.")] == []

    images.delete_tag(admin, "team/app", "v1")
    assert [v.tag for v in images.versions(admin, "team/app").items] == ["v2"]
    assert app_client.get("/v2/team/app/manifests/v1").status_code == 404  # the registry's caches forgot it
    assert app_client.get(f"/v2/team/app/manifests/{img['digest']}").status_code == 200  # only the tag went
    services.events.dispatch_all()  # the tag.deleted event is the audit record
    event = services.audit.query(action="tag.delete")[0]
    assert (event.actor, event.target, event.detail, event.remote) == (
        "admin", "team/app:v1", {"tag": "v1", "digest": img["digest"]}, "10.1.2.3")  # as a DELETE through /v2 records it
    with pytest.raises(NotFound):
        images.delete_tag(admin, "team/app", "v1")
    with pytest.raises(Invalid):
        images.delete_tag(admin, "team/app", "bad tag")
    images.delete_tag(dev, "team/app", "v2")
    assert images.versions(dev, "team/app").total == 0


def test_public_repository_is_visible_to_anyone(app_client: TestClient, services: Any, images: ImagesService,
                                                admin: Actor) -> None:
    services.management.create_namespace(admin, "oss", public=True)
    push(app_client, "oss/tool", "v1")
    assert [v.tag for v in images.versions(Actor(None), "oss/tool").items] == ["v1"]
    assert not images.can_delete(Actor(None), "oss/tool")
    with pytest.raises(Forbidden):
        images.delete_tag(Actor(None), "oss/tool", "v1")


def test_backfill_restores_facts(app_client: TestClient, services: Any, images: ImagesService, admin: Actor) -> None:
    one = push(app_client, "shop/web", "1.0", layers=3)
    multi = push_multi(app_client, "shop/web", "2.0")
    nested = index_manifest([descriptor(OCI_INDEX, multi["body"]), descriptor(OCI_MANIFEST, one["body"])])
    assert put_manifest(app_client, "shop/web", "nested", nested, OCI_INDEX).status_code == 201
    columns = (manifests.c.digest, manifests.c.config_digest, manifests.c.image_size, manifests.c.platform)
    with services.db.read() as conn:
        before = sorted(conn.execute(select(*columns)).all())
    assert all(row.image_size for row in before) and sum(1 for row in before if row.platform) == 3
    assert images.version(admin, "shop/web", "nested").size == len(nested) + multi["size"] + one["size"]
    detail_before = images.version(admin, "shop/web", "1.0")
    pages_before = images.versions(admin, "shop/web", sort="name")
    with services.db.write() as conn:  # as if pushed before migration 0003
        conn.execute(update(manifests).values(config_digest=None, image_size=None, platform=None))
    assert [v.size for v in images.versions(admin, "shop/web").items] == [None] * 3
    assert images.version(admin, "shop/web", "1.0").size == detail_before.size  # summed on the fly meanwhile
    assert images.backfill(limit=2) == 2
    assert images.backfill() == len(before) - 2
    assert images.backfill() == 0
    with services.db.read() as conn:
        assert sorted(conn.execute(select(*columns)).all()) == before
    assert images.versions(admin, "shop/web", sort="name") == pages_before


def test_five_thousand_tags(app_client: TestClient, services: Any, images: ImagesService, admin: Actor) -> None:
    img = push(app_client, "big/app", "base")
    base = datetime(2025, 1, 1, tzinfo=UTC)
    with services.db.write() as conn:
        repo_id = conn.execute(select(repositories.c.id).where(repositories.c.name == "big/app")).scalar_one()
        conn.execute(tags.insert(), [{"repository_id": repo_id, "name": f"t{i:04d}", "manifest_digest": img["digest"],
                                      "updated_at": base + timedelta(seconds=i)} for i in range(5000)])
    page = images.versions(admin, "big/app", sort="name", order="asc", page=3, per_page=50)
    assert (page.total, page.pages) == (5001, 101)
    assert [v.tag for v in page.items] == [f"t{i:04d}" for i in range(99, 149)]  # "base" comes first
    assert all(v.size == img["size"] and v.platforms[0].platform == "linux/amd64" for v in page.items)
    newest = images.versions(admin, "big/app", sort="pushed", order="asc", page=2, per_page=100)
    assert [v.tag for v in newest.items] == [f"t{i:04d}" for i in range(100, 200)]
    found = images.versions(admin, "big/app", search="t49", sort="name", order="desc", per_page=7, page=2)
    assert found.total == 100 and [v.tag for v in found.items] == [f"t49{i}" for i in range(92, 85, -1)]
    if services.db.is_sqlite:  # the page query walks indexes, not the whole table
        with services.db.read() as conn:
            for sort in ("name", "pushed"):
                sql = page_query(repo_id, sort, True, None, 50, 100).compile(
                    services.db.engine, compile_kwargs={"literal_binds": True})
                plan = " | ".join(r[3] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
                assert "SCAN tags" not in plan and "USING" in plan, plan
