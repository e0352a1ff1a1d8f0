"""Webhooks: checking and storing them, turning events into deliveries, and delivering.

- **Checked when set**: the URL goes through the outbound guard (outbound/client.py: http(s),
  every address the host resolves to public or allowed), the events and format must fit, a
  repository glob must stay inside the namespace. A refusal is `WebhookInvalid` with the reason.
- **Secrets** are `whsec_…` (core/webhooks.py), sealed with the secrets key (core/secretbox.py)
  before they reach the database, and opened only to sign an attempt.
- **Deliveries** are made by `on_event`, an inline subscriber of the event outbox: in the
  dispatcher's transaction, one delivery row and one `webhook.deliver` job per matching enabled
  webhook, so an event is turned into deliveries exactly once, and never for a rolled-back change.
  The body is fixed then; every attempt sends the same bytes with the same `webhook-id`.
- **Attempts** (`deliver`, the job's handler): the URL is checked again (DNS may have changed
  since it was set), the request goes to the checked address (pinned), and the attempt is logged
  with its answer or error. A 2xx succeeds; anything else fails the attempt and the job retries
  with exponential backoff (jobs/kinds.py) until `MAX_ATTEMPTS`, and then the delivery is `failed`.
  A redelivery or a ping is one attempt, queued by hand.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from dockyard import __version__
from dockyard.core import webhooks as wh
from dockyard.core.access import matches, namespace_of
from dockyard.core.events import Event
from dockyard.core.secretbox import SecretBox, SecretBoxError
from dockyard.meta.db import utcnow
from dockyard.meta.webhooks import Delivery, Webhook, WebhookStore, new_delivery_id
from dockyard.outbound.client import Failed, OutboundClient, Refused

MAX_ATTEMPTS = 8  # with the job's backoff (30 s doubling, jitter): retried for about an hour
MAX_WEBHOOKS = 50  # per namespace: bounds the deliveries one push fans out to
MAX_URL = 2048
MAX_KEPT_BODY = 64 * 1024
SECRET_PURPOSE = "webhook-secret"
USER_AGENT = f"Dockyard-Webhook/{__version__}"
PATTERN = re.compile(r"^[a-z0-9*?][a-z0-9._/*?-]*$")
UNSET: Any = object()


class WebhookInvalid(ValueError):
    """A webhook's settings are refused; the message says why."""


class DeliveryFailed(Exception):
    """An attempt got no 2xx: the job fails it and retries."""


@dataclass(frozen=True, slots=True)
class NewSecret:
    webhook: Webhook
    secret: str  # shown once


class WebhookService:
    def __init__(self, store: WebhookStore, box: SecretBox, client: OutboundClient, links: wh.Links) -> None:
        self.store = store
        self.box = box
        self.client = client
        self.links = links

    # -- checks --------------------------------------------------------------------------------------
    def check_url(self, url: str) -> str:
        url = url.strip()
        if not url or len(url) > MAX_URL:
            raise WebhookInvalid(f"url: 1 to {MAX_URL} characters")
        try:
            self.client.target(url)
        except (Refused, Failed) as exc:
            raise WebhookInvalid(f"url: {exc}") from None
        return url

    @staticmethod
    def _events(events: list[str], fmt: str) -> list[str]:
        if fmt not in wh.FORMATS:
            raise WebhookInvalid(f"format is one of {', '.join(wh.FORMATS)}")
        chosen = list(dict.fromkeys(events))
        unknown = [e for e in chosen if e not in wh.EVENT_TYPES]
        if not chosen or unknown:
            raise WebhookInvalid(f"events: one or more of {', '.join(wh.EVENT_TYPES)}"
                                 + (f" (not {', '.join(unknown)})" if unknown else ""))
        if fmt == wh.DOCKERHUB and not set(chosen) <= wh.DOCKERHUB_EVENTS:
            raise WebhookInvalid("the dockerhub format describes pushes only: events must be [image.pushed]")
        return chosen

    @staticmethod
    def _repository(namespace: str, pattern: str | None) -> str | None:
        if pattern is None or not pattern.strip():
            return None
        pattern = pattern.strip()
        if len(pattern) > 255 or not PATTERN.match(pattern) or namespace_of(pattern) != namespace:
            raise WebhookInvalid(f"repository: a repository name or glob inside {namespace!r}, e.g. {namespace}/app "
                                 f"or {namespace}/app-*")
        return pattern

    @staticmethod
    def _secret(secret: str | None) -> str:
        if secret is None:
            return wh.new_secret()
        try:
            wh.secret_key(secret)
        except ValueError as exc:
            raise WebhookInvalid(f"secret: {exc}") from None
        return secret

    # -- webhooks ------------------------------------------------------------------------------------
    def create(self, namespace: str, *, url: str, events: list[str], format: str = wh.DOCKYARD,
               repository: str | None = None, enabled: bool = True, description: str | None = None,
               secret: str | None = None, created_by: str) -> NewSecret | None:
        """None when the namespace does not exist."""
        if self.store.count(namespace) >= MAX_WEBHOOKS:
            raise WebhookInvalid(f"a namespace has at most {MAX_WEBHOOKS} webhooks")
        chosen = self._events(events, format)
        pattern = self._repository(namespace, repository)
        secret = self._secret(secret)
        hook = self.store.create(namespace, repository=pattern, url=self.check_url(url), events=chosen, format=format,
                                 enabled=enabled, description=description, created_by=created_by,
                                 sealed_secret=self.box.seal(secret, SECRET_PURPOSE))
        return NewSecret(hook, secret) if hook is not None else None

    def update(self, hook: Webhook, *, url: str = UNSET, events: list[str] = UNSET, format: str = UNSET,
               repository: str | None = UNSET, enabled: bool = UNSET, description: str | None = UNSET) -> Webhook | None:
        """Change the fields given; the result is checked as a whole (format and events together)."""
        changes: dict[str, Any] = {}
        fmt = hook.format if format is UNSET else format
        if events is not UNSET or format is not UNSET:
            changes.update(format=fmt, events=self._events(hook.events if events is UNSET else events, fmt))
        if repository is not UNSET:
            changes["repository"] = self._repository(hook.namespace, repository)
        if url is not UNSET:
            changes["url"] = self.check_url(url)
        if enabled is not UNSET:
            changes["enabled"] = bool(enabled)
        if description is not UNSET:
            changes["description"] = description
        return self.store.update(hook.namespace, hook.id, **changes) if changes else hook

    def rotate(self, hook: Webhook, secret: str | None = None) -> NewSecret | None:
        """A new signing secret, used from the next attempt on (retries of older deliveries too)."""
        secret = self._secret(secret)
        updated = self.store.update(hook.namespace, hook.id, sealed_secret=self.box.seal(secret, SECRET_PURPOSE))
        return NewSecret(updated, secret) if updated is not None else None

    # -- deliveries ----------------------------------------------------------------------------------
    def callback_url(self, hook: Webhook, delivery_id: str) -> str:
        return f"{self.links.base_url}/api/v1/namespaces/{hook.namespace}/webhooks/{hook.id}/deliveries/{delivery_id}"

    def on_event(self, conn: Any, event: Event) -> None:
        """The outbox subscriber: a delivery (and its job) per matching webhook, in `conn` (the
        dispatcher's transaction)."""
        event_type = wh.webhook_event(event)
        if event_type is None or event.repository is None:
            return
        repository, namespace = event.repository, namespace_of(event.repository)
        hooks = [h for h in self.store.enabled_in(conn, namespace)
                 if event_type in h.events and (h.repository is None or matches(h.repository, repository))]
        if not hooks:
            return
        data = wh.event_data(event_type, event, self.links)
        facts = None
        for hook in hooks:
            delivery_id = new_delivery_id()
            if hook.format == wh.DOCKERHUB:
                facts = facts or self.store.repository_facts(conn, repository, namespace)
                payload = wh.dockerhub_payload(event, self.links, self.callback_url(hook, delivery_id), *facts)
            else:
                payload = wh.dockyard_payload(delivery_id, event_type, event.created_at, data)
            self.store.add_delivery(conn, hook.id, delivery_id, event_type, event.id, wh.encode(payload),
                                    max_attempts=MAX_ATTEMPTS)

    def ping(self, hook: Webhook) -> Delivery:
        """A `ping` delivery (Dockyard's format whatever the webhook's), one attempt, queued now."""
        def body(delivery_id: str) -> bytes:
            data = {"webhook": hook.id, "namespace": hook.namespace, "url": hook.url, "events": list(hook.events)}
            return wh.encode(wh.dockyard_payload(delivery_id, wh.PING, utcnow(), data))

        delivery = self.store.delivery(self.store.create_delivery(hook.id, wh.PING, body, max_attempts=1))
        assert delivery is not None
        return delivery

    def redeliver(self, hook: Webhook, delivery_id: str) -> Delivery | None:
        return self.store.redeliver(hook.id, delivery_id)

    def deliver(self, delivery_id: str, *, last_attempt: bool, manual: bool = False) -> dict[str, Any]:
        """One attempt of a delivery (the `webhook.deliver` job); raises DeliveryFailed when it failed."""
        delivery = self.store.delivery(delivery_id)
        hook = self.store.get(None, delivery.webhook_id) if delivery is not None else None
        if delivery is None or hook is None:
            return {"skipped": "the delivery is gone (its webhook was deleted)"}
        if delivery.status == "succeeded" and not manual:
            return {"skipped": "delivered already"}  # a job run twice (its worker died after the attempt)
        if not hook.enabled and not manual:
            self.store.set_status(delivery_id, "failed")
            return {"skipped": "the webhook is disabled"}
        body = delivery.body.encode()
        started = time.monotonic()
        answer, headers = None, {"User-Agent": USER_AGENT}
        try:
            secret = self.box.open(hook.sealed_secret, SECRET_PURPOSE)
            headers.update(wh.signed_headers(secret, delivery.id, int(time.time()), body))
            answer = self.client.post(self.client.target(hook.url), body, headers)  # checked again: DNS may change
            error = None if 200 <= answer.status < 300 else f"the receiver answered {answer.status}"
        except SecretBoxError as exc:  # nothing is sent unsigned
            error = f"the signing secret cannot be read: {exc}"
        except (Refused, Failed) as exc:
            error = str(exc)
        duration_ms = int((time.monotonic() - started) * 1000)
        status = "succeeded" if error is None else "failed" if last_attempt else "pending"
        self.store.record_attempt(
            delivery_id, request_headers=headers, response_status=answer.status if answer else None,
            response_headers=answer.headers[:100] if answer else None,
            response_body=_text(answer.body) if answer else None, truncated=bool(answer and answer.truncated),
            duration_ms=duration_ms, error=error, status=status)
        if error is not None:
            raise DeliveryFailed(error)
        return {"status": answer.status if answer else None, "duration_ms": duration_ms}


def _text(body: bytes) -> str:
    # PostgreSQL's text holds no NUL characters.
    return body[:MAX_KEPT_BODY].decode("utf-8", "replace").replace("\x00", "\ufffd")
