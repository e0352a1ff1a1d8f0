"""core/webhooks.py: which events become which webhook events, the two payload formats, and
Standard Webhooks signatures (checked against the specification's published test vector)."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest

from dockyard.core import events as ev
from dockyard.core import webhooks as wh

LINKS = wh.Links(registry="registry.example.com", base_url="https://registry.example.com")
AT = datetime(2026, 12, 8, 10, 0, 0, tzinfo=timezone.utc)
DIGEST = "sha256:" + "ab" * 32


def event(kind: str, detail: dict[str, object], repository: str | None = "team/app") -> ev.Event:
    return ev.Event(id=7, kind=kind, repository=repository, target="t", detail=detail, actor="alice", remote=None,
                    created_at=AT)


def test_the_specifications_test_vector() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert wh.signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}') == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signed_headers_and_new_secrets() -> None:
    secret = wh.new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert secret != wh.new_secret()
    headers = wh.signed_headers(secret, "msg_1", 1700000000, b"{}")
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"] == wh.signature(secret, "msg_1", 1700000000, b"{}")
    assert headers["Content-Type"] == "application/json"
    # Another timestamp, body or id signs differently.
    assert wh.signature(secret, "msg_1", 1700000001, b"{}") != headers["webhook-signature"]
    assert wh.signature(secret, "msg_2", 1700000000, b"{}") != headers["webhook-signature"]


@pytest.mark.parametrize("secret", ["nope", "whsec_", "whsec_!!!", "whsec_" + base64.b64encode(b"x" * 16).decode(),
                                    "whsec_" + base64.b64encode(b"x" * 65).decode()])
def test_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError):
        wh.secret_key(secret)


def test_which_events_are_delivered() -> None:
    assert wh.webhook_event(event(ev.MANIFEST_PUSHED, {"digest": DIGEST, "tags": ["1.0"]})) == wh.IMAGE_PUSHED
    assert wh.webhook_event(event(ev.MANIFEST_PUSHED, {"digest": DIGEST})) is None  # by digest only
    assert wh.webhook_event(event(ev.MANIFEST_PUSHED, {"digest": DIGEST, "tags": ["x"], "subject": DIGEST})) is None
    assert wh.webhook_event(event(ev.TAG_DELETED, {"tag": "1.0", "digest": DIGEST})) == wh.IMAGE_DELETED
    assert wh.webhook_event(event(ev.MANIFEST_DELETED, {"digest": DIGEST})) == wh.IMAGE_DELETED
    assert wh.webhook_event(event(ev.SCAN_FINISHED, {"digest": DIGEST, "status": "done"})) == wh.SCAN_FINISHED
    assert wh.webhook_event(event(ev.SCAN_FINISHED, {"digest": DIGEST}, repository=None)) is None
    assert wh.webhook_event(event(ev.TAG_MOVED, {"tag": "1.0"})) is None
    assert wh.webhook_event(event(ev.REPOSITORY_CREATED, {})) is None
    assert wh.webhook_event(event(ev.BUILD_SUCCEEDED, {"build": 1})) == wh.BUILD_SUCCEEDED
    assert wh.webhook_event(event(ev.BUILD_FAILED, {"build": 1, "status": "cancelled"})) == wh.BUILD_FAILED
    assert {ev.MANIFEST_PUSHED, ev.TAG_DELETED, ev.MANIFEST_DELETED, ev.SCAN_FINISHED, ev.BUILD_SUCCEEDED,
            ev.BUILD_FAILED} == wh.SOURCES


def test_dockyard_payload_of_a_build() -> None:
    detail = {"build": 7, "ref": "refs/tags/release-v1.2", "revision": "a" * 40, "tags": ["1.2"], "digest": DIGEST,
              "status": "succeeded", "error": None, "duration_seconds": 3.5}
    data = wh.event_data(wh.BUILD_SUCCEEDED, event(ev.BUILD_SUCCEEDED, detail), LINKS)
    assert data["build"] == 7 and data["tags"] == ["1.2"] and data["revision"] == "a" * 40
    assert data["pull"] == "registry.example.com/team/app:1.2"
    assert data["log_url"] == "https://registry.example.com/api/v1/builds/7/log"
    failed = wh.event_data(wh.BUILD_FAILED, event(ev.BUILD_FAILED, {**detail, "status": "failed", "error": "boom",
                                                                     "digest": None}), LINKS)
    assert failed["pull"] is None and failed["error"] == "boom" and failed["status"] == "failed"


def test_dockyard_payload_of_a_push() -> None:
    e = event(ev.MANIFEST_PUSHED, {"digest": DIGEST, "media_type": "application/vnd.oci.image.manifest.v1+json",
                                   "size": 1234, "tags": ["1.0"]})
    payload = wh.dockyard_payload("msg_1", wh.IMAGE_PUSHED, e.created_at, wh.event_data(wh.IMAGE_PUSHED, e, LINKS))
    assert payload == {"type": "image.pushed", "timestamp": "2026-12-08T10:00:00+00:00", "id": "msg_1", "data": {
        "repository": "team/app", "namespace": "team", "digest": DIGEST, "actor": "alice", "tag": "1.0", "tags": ["1.0"],
        "media_type": "application/vnd.oci.image.manifest.v1+json", "size": 1234,
        "pull": "registry.example.com/team/app:1.0"}}


def test_dockyard_payload_of_a_deletion_and_a_scan() -> None:
    deleted = wh.event_data(wh.IMAGE_DELETED, event(ev.TAG_DELETED, {"tag": "old", "digest": DIGEST}), LINKS)
    assert deleted["tag"] == "old" and deleted["tags"] == ["old"] and deleted["digest"] == DIGEST
    scan = wh.event_data(wh.SCAN_FINISHED, event(ev.SCAN_FINISHED, {
        "digest": DIGEST, "status": "done", "summary": {"critical": 1}, "error": None}), LINKS)
    assert scan["status"] == "done" and scan["summary"] == {"critical": 1}
    assert scan["report_url"] == f"https://registry.example.com/console/repo/team/app/-/versions/{DIGEST}/security"


def test_docker_hub_payload() -> None:
    e = event(ev.MANIFEST_PUSHED, {"digest": DIGEST, "media_type": "m", "size": 1, "tags": ["latest"]},
              repository="team/tools/app")
    payload = wh.dockerhub_payload(e, LINKS, "https://cb", True, AT)
    assert payload["callback_url"] == "https://cb"
    assert payload["push_data"] == {"pushed_at": int(AT.timestamp()), "pusher": "alice", "tag": "latest",
                                    "images": [DIGEST], "media_type": "m"}
    repo = payload["repository"]
    assert (repo["repo_name"], repo["name"], repo["namespace"], repo["status"]) == ("team/tools/app", "tools/app", "team",
                                                                                   "Active")
    assert repo["repo_url"] == "https://registry.example.com/console/repo/team/tools/app"
    assert repo["is_private"] is True and repo["date_created"] == int(AT.timestamp())
    library = wh.dockerhub_payload(event(ev.MANIFEST_PUSHED, {"digest": DIGEST, "tags": ["1"]}, "busybox"), LINKS,
                                   "", False, None)["repository"]
    assert (library["repo_name"], library["name"], library["namespace"]) == ("busybox", "busybox", "library")


def test_encoding_is_compact_utf8() -> None:
    assert wh.encode({"a": "é", "b": [1]}) == '{"a":"é","b":[1]}'.encode()
