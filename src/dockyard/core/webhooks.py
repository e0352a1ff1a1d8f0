"""Webhooks' vocabulary, payloads and signatures (pure: no I/O).

**Event types** a webhook subscribes to, each made from the registry's events (core/events.py):

| type            | from                                        | data                                           |
|-----------------|---------------------------------------------|------------------------------------------------|
| `image.pushed`  | `manifest.pushed` with tags, not a referrer | repository, tag(s), digest, media type, size, pull reference |
| `image.deleted` | `manifest.deleted`, `tag.deleted`           | repository, digest, tag(s)                     |
| `scan.finished` | `scan.finished`                             | repository, digest, status, summary, error, report URL |
| `build.succeeded` | `build.succeeded`                         | repository, build id, ref, revision, tags, digest, log URL |
| `build.failed`  | `build.failed` (also a cancelled build)     | repository, build id, ref, revision, tags, status, error, log URL |
| `ping`          | `POST …/webhooks/{id}/ping`                 | the webhook's id and namespace                 |

**Payload formats**: `dockyard` (`{"type", "timestamp", "id", "data"}`, the shape Standard Webhooks
recommends) and `dockerhub` (Docker Hub's push payload, for receivers written for it; pushes only).
A ping is always in Dockyard's format: a push-shaped ping could start a deployment.

**Signatures** follow Standard Webhooks (https://www.standardwebhooks.com/): the secret is
`whsec_` + base64 of 24 to 64 random bytes; each attempt carries `webhook-id` (the delivery's id,
the same on every retry, so receivers can drop duplicates), `webhook-timestamp` (unix seconds of
the attempt, so receivers can refuse replays) and `webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}" keyed with the decoded secret>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dockyard.core import events as ev
from dockyard.core.access import DEFAULT_NAMESPACE, namespace_of

IMAGE_PUSHED = "image.pushed"
IMAGE_DELETED = "image.deleted"
SCAN_FINISHED = "scan.finished"
BUILD_SUCCEEDED = "build.succeeded"
BUILD_FAILED = "build.failed"
PING = "ping"
EVENT_TYPES = (IMAGE_PUSHED, IMAGE_DELETED, SCAN_FINISHED, BUILD_SUCCEEDED, BUILD_FAILED)

# The registry's event kinds webhooks hear of (the dispatcher's subscriber takes these).
SOURCES = frozenset({ev.MANIFEST_PUSHED, ev.MANIFEST_DELETED, ev.TAG_DELETED, ev.SCAN_FINISHED,
                     ev.BUILD_SUCCEEDED, ev.BUILD_FAILED})

DOCKYARD = "dockyard"
DOCKERHUB = "dockerhub"
FORMATS = (DOCKYARD, DOCKERHUB)
DOCKERHUB_EVENTS = frozenset({IMAGE_PUSHED})  # Docker Hub's format describes pushes only

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64


@dataclass(frozen=True, slots=True)
class Links:
    """Where this registry is, for the references and links in payloads."""

    registry: str  # HOST[:PORT] of image references: registry.example.com/team/app:1.0
    base_url: str  # https://registry.example.com: console and API links


# -- events ----------------------------------------------------------------------------------------
def webhook_event(event: ev.Event) -> str | None:
    """The webhook event type `event` is delivered as, or None when webhooks do not hear of it."""
    if event.repository is None:
        return None
    detail = event.detail
    if event.kind == ev.MANIFEST_PUSHED:
        # A push by digest only (the platforms of an index, before the index's tag) is not a
        # version anyone deploys, and referrers (signatures, SBOMs) are not images.
        return IMAGE_PUSHED if detail.get("tags") and not detail.get("subject") else None
    if event.kind in (ev.MANIFEST_DELETED, ev.TAG_DELETED):
        return IMAGE_DELETED
    if event.kind == ev.SCAN_FINISHED:
        return SCAN_FINISHED
    if event.kind in (ev.BUILD_SUCCEEDED, ev.BUILD_FAILED):
        return BUILD_SUCCEEDED if event.kind == ev.BUILD_SUCCEEDED else BUILD_FAILED
    return None


def _tags(detail: dict[str, Any]) -> list[str]:
    tags = detail.get("tags") or ([detail["tag"]] if detail.get("tag") else [])
    return [str(t) for t in tags]


def event_data(event_type: str, event: ev.Event, links: Links) -> dict[str, Any]:
    """The `data` of a Dockyard payload."""
    repository = event.repository or ""
    detail = event.detail
    data: dict[str, Any] = {"repository": repository, "namespace": namespace_of(repository),
                            "digest": detail.get("digest"), "actor": event.actor}
    if event_type in (IMAGE_PUSHED, IMAGE_DELETED):
        tags = _tags(detail)
        data.update(tag=tags[0] if tags else None, tags=tags)
    if event_type == IMAGE_PUSHED:
        data.update(media_type=detail.get("media_type"), size=detail.get("size"),
                    pull=f"{links.registry}/{repository}:{tags[0]}" if tags else None)
    elif event_type == SCAN_FINISHED:
        data.update(status=detail.get("status"), summary=detail.get("summary"), error=detail.get("error"),
                    report_url=f"{links.base_url}/console/repo/{repository}/-/versions/{detail.get('digest')}/security")
    elif event_type in (BUILD_SUCCEEDED, BUILD_FAILED):
        tags = _tags(detail)
        data.update(build=detail.get("build"), ref=detail.get("ref"), revision=detail.get("revision"), tags=tags,
                    status=detail.get("status"), error=detail.get("error"),
                    duration_seconds=detail.get("duration_seconds"),
                    pull=f"{links.registry}/{repository}:{tags[0]}" if tags and event_type == BUILD_SUCCEEDED else None,
                    log_url=f"{links.base_url}/api/v1/builds/{detail.get('build')}/log")
    return data


def dockyard_payload(delivery_id: str, event_type: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "timestamp": at.isoformat(), "id": delivery_id, "data": data}


def dockerhub_payload(event: ev.Event, links: Links, callback_url: str, is_private: bool,
                      created_at: datetime | None) -> dict[str, Any]:
    """Docker Hub's webhook payload for a push. Dockyard takes no callback: `callback_url` names the
    delivery in the management API."""
    repository = event.repository or ""
    namespace = namespace_of(repository)
    name = repository if namespace == DEFAULT_NAMESPACE and "/" not in repository else repository.partition("/")[2]
    tags = _tags(event.detail)
    return {
        "callback_url": callback_url,
        "push_data": {"pushed_at": int(event.created_at.timestamp()), "pusher": event.actor,
                      "tag": tags[0] if tags else None, "images": [event.detail.get("digest")],
                      "media_type": event.detail.get("media_type")},
        "repository": {"repo_name": repository, "name": name, "namespace": namespace, "owner": namespace,
                       "status": "Active", "repo_url": f"{links.base_url}/console/repo/{repository}",
                       "is_private": is_private, "is_official": False, "is_trusted": False,
                       "date_created": int(created_at.timestamp()) if created_at else None,
                       "description": "", "full_description": "", "dockerfile": "", "star_count": 0,
                       "comment_count": 0},
    }


def encode(payload: dict[str, Any]) -> bytes:
    """The body sent (and signed): fixed when the delivery is made, the same on every attempt."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


# -- secrets and signatures ------------------------------------------------------------------------
def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret; raises ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except ValueError:
        raise ValueError(f"a webhook secret is {SECRET_PREFIX} followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {len(key)}")
    return key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of "{id}.{timestamp}.{body}"."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret_key(secret), signed, hashlib.sha256).digest()).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, message_id, timestamp, body),
            "Content-Type": "application/json"}
