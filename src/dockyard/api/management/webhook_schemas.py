"""Bodies of the webhook API (pydantic models; the OpenAPI document is generated from them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from dockyard.api.management.schemas import Request, Response, ts
from dockyard.meta.webhooks import Attempt, Delivery, Webhook

EventType = Literal["image.pushed", "image.deleted", "scan.finished", "build.succeeded", "build.failed"]
Format = Literal["dockyard", "dockerhub"]

URL = Field(max_length=2048, description="Where deliveries are POSTed: http(s), to a public address unless an "
            "administrator allowed its network (outbound.allowed_networks). Checked when set and again at each attempt.")
EVENTS = Field(min_length=1, description="image.pushed (a tagged push), image.deleted (a tag or manifest deleted), "
               "scan.finished, build.succeeded, build.failed (also a cancelled build).")
FORMAT = Field(description="dockyard: {type, timestamp, id, data}; dockerhub: Docker Hub's push payload "
               "(image.pushed only).")
REPOSITORY = Field(max_length=255, description="Only this repository, or those matching a glob, inside the namespace "
                   "(`team/app`, `team/app-*`); null: every repository of the namespace.")
SECRET = Field(max_length=200, description="Signing secret, `whsec_` + base64 of 24 to 64 bytes; generated when not given.")


class WebhookCreate(Request):
    url: str = URL
    events: list[EventType] = EVENTS
    format: Format = Field("dockyard", description=FORMAT.description)
    repository: str | None = Field(None, max_length=255, description=REPOSITORY.description)
    enabled: bool = True
    description: str | None = Field(None, max_length=255)
    secret: str | None = Field(None, max_length=200, description=SECRET.description)


class WebhookUpdate(Request):
    url: str | None = Field(None, max_length=2048, description=URL.description)
    events: list[EventType] | None = Field(None, min_length=1, description=EVENTS.description)
    format: Format | None = Field(None, description=FORMAT.description)
    repository: str | None = Field(None, max_length=255, description=REPOSITORY.description + " Given as null: all.")
    enabled: bool | None = None
    description: str | None = Field(None, max_length=255)


class SecretRotate(Request):
    secret: str | None = Field(None, max_length=200, description=SECRET.description)


class WebhookOut(Response):
    id: int
    namespace: str
    repository: str | None
    url: str
    events: list[str]
    format: Format
    enabled: bool
    description: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def fields_of(w: Webhook) -> dict[str, Any]:
        return {"id": w.id, "namespace": w.namespace, "repository": w.repository, "url": w.url, "events": list(w.events),
                "format": w.format, "enabled": w.enabled, "description": w.description, "created_by": w.created_by,
                "created_at": ts(w.created_at), "updated_at": ts(w.updated_at)}

    @classmethod
    def of(cls, w: Webhook) -> WebhookOut:
        return cls(**cls.fields_of(w))


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret: shown only in this answer (and when rotated).")


class WebhookList(Response):
    items: list[WebhookOut]


class AttemptOut(Response):
    id: int
    attempted_at: datetime
    request_headers: dict[str, str] = Field(description="As sent (the body is the delivery's `body`).")
    response_status: int | None = Field(description="null: no answer (see error).")
    response_headers: list[tuple[str, str]] | None
    response_body: str | None = Field(description="At most 64 KiB of the answer.")
    response_truncated: bool
    duration_ms: int
    error: str | None = Field(description="Why the attempt failed: a status other than 2xx, a refused address, "
                              "a timeout, a connection error.")

    @classmethod
    def of(cls, a: Attempt) -> AttemptOut:
        return cls(id=a.id, attempted_at=ts(a.attempted_at), request_headers=a.request_headers,  # type: ignore[arg-type]
                   response_status=a.response_status,
                   response_headers=a.response_headers if a.response_status is not None else None,
                   response_body=a.response_body, response_truncated=a.response_truncated, duration_ms=a.duration_ms,
                   error=a.error)


class DeliveryOut(Response):
    id: str = Field(description="Sent as webhook-id, the same on every attempt.")
    event: str
    status: Literal["pending", "succeeded", "failed"]
    body: str = Field(description="The request body, the same on every attempt.")
    created_at: datetime
    last_attempt_at: datetime | None
    attempts: list[AttemptOut] = Field(description="Oldest first (empty in the answer to a ping or redelivery "
                                       "request: the attempt is queued).")

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(id=d.id, event=d.event, status=d.status, body=d.body, created_at=ts(d.created_at),  # type: ignore[arg-type]
                   last_attempt_at=ts(d.last_attempt_at), attempts=[AttemptOut.of(a) for a in d.log])


class DeliveryList(Response):
    items: list[DeliveryOut]
    next: str | None


class DeliveryQuery(Request):
    before: str | None = Field(None, max_length=40, description="Cursor: the `next` value of the previous page.")
    limit: int = Field(20, ge=1, le=100, description="Deliveries per page (at most 100), newest first.")
