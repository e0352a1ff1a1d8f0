"""Webhooks of a namespace: who may manage them, and the audit records of changes.

Only owners of the namespace and administrators see or change its webhooks (their URLs may carry
tokens, their deliveries show what was sent). Developers and guests are told no (403); anyone
else, for a namespace they cannot see, hears that it does not exist (404). Robots and temporary
passwords may not (they only read the registry).

Audit records (`webhook.create`, `webhook.update`, `webhook.delete`, `webhook.rotate_secret`) are
on the namespace with the webhook's id in `detail`; a URL is recorded without its query string,
where tokens tend to be, and a secret never.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from dockyard.management.base import Actor, Page, _ServiceBase
from dockyard.management.errors import Forbidden, Invalid, NotFound
from dockyard.meta.webhooks import Delivery, Webhook
from dockyard.registry.webhooks import UNSET, NewSecret, WebhookInvalid, WebhookService

MAX_DELIVERIES_PAGE = 100


def _shown_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class WebhookUseCases(_ServiceBase):
    def _webhook_service(self) -> WebhookService:
        if self.webhooks is None:
            raise NotFound("webhooks are not available on this server")
        return self.webhooks

    def _webhook_owner(self, actor: Actor, namespace: str) -> WebhookService:
        service = self._webhook_service()
        user = self._writer(actor)
        ns = self._namespace(namespace)
        if user.is_admin:
            return service
        role = self._role(actor, namespace)
        if role is None and not ns.public:
            raise NotFound(f"namespace {namespace!r} not found")
        if role != "owner":
            raise Forbidden(f"only an owner of {namespace!r} or an administrator may manage its webhooks")
        return service

    def _hook(self, actor: Actor, namespace: str, webhook_id: int) -> tuple[WebhookService, Webhook]:
        service = self._webhook_owner(actor, namespace)
        hook = service.store.get(namespace, webhook_id)
        if hook is None:
            raise NotFound(f"webhook {webhook_id} not found in {namespace!r}")
        return service, hook

    # -- webhooks ------------------------------------------------------------------------------------
    def list_webhooks(self, actor: Actor, namespace: str) -> list[Webhook]:
        return self._webhook_owner(actor, namespace).store.list(namespace)

    def get_webhook(self, actor: Actor, namespace: str, webhook_id: int) -> Webhook:
        return self._hook(actor, namespace, webhook_id)[1]

    def create_webhook(self, actor: Actor, namespace: str, *, url: str, events: list[str], format: str,
                       repository: str | None = None, enabled: bool = True, description: str | None = None,
                       secret: str | None = None) -> NewSecret:
        service = self._webhook_owner(actor, namespace)
        try:
            created = service.create(namespace, url=url, events=events, format=format, repository=repository,
                                     enabled=enabled, description=description, secret=secret, created_by=actor.name)
        except WebhookInvalid as exc:
            raise Invalid(str(exc)) from None
        if created is None:
            raise NotFound(f"namespace {namespace!r} not found")
        hook = created.webhook
        self._record(actor, "webhook.create", namespace, {
            "webhook": hook.id, "url": _shown_url(hook.url), "events": list(hook.events), "format": hook.format,
            "repository": hook.repository, "enabled": hook.enabled})
        return created

    def update_webhook(self, actor: Actor, namespace: str, webhook_id: int, **fields: Any) -> Webhook:
        service, hook = self._hook(actor, namespace, webhook_id)
        given = {k: v for k, v in fields.items()
                 if k in ("url", "events", "format", "repository", "enabled", "description") and v is not UNSET}
        try:
            updated = service.update(hook, **given)
        except WebhookInvalid as exc:
            raise Invalid(str(exc)) from None
        if updated is None:
            raise NotFound(f"webhook {webhook_id} not found in {namespace!r}")
        if given:
            detail = {k: (_shown_url(v) if k == "url" else v) for k, v in given.items()}
            self._record(actor, "webhook.update", namespace, {"webhook": webhook_id, **detail})
        return updated

    def delete_webhook(self, actor: Actor, namespace: str, webhook_id: int) -> None:
        service, hook = self._hook(actor, namespace, webhook_id)
        if not service.store.delete(namespace, webhook_id):
            raise NotFound(f"webhook {webhook_id} not found in {namespace!r}")
        self._record(actor, "webhook.delete", namespace, {"webhook": webhook_id, "url": _shown_url(hook.url)})

    def rotate_webhook_secret(self, actor: Actor, namespace: str, webhook_id: int, secret: str | None = None) -> NewSecret:
        service, hook = self._hook(actor, namespace, webhook_id)
        try:
            rotated = service.rotate(hook, secret)
        except WebhookInvalid as exc:
            raise Invalid(str(exc)) from None
        if rotated is None:
            raise NotFound(f"webhook {webhook_id} not found in {namespace!r}")
        self._record(actor, "webhook.rotate_secret", namespace, {"webhook": webhook_id})
        return rotated

    # -- deliveries ----------------------------------------------------------------------------------
    def ping_webhook(self, actor: Actor, namespace: str, webhook_id: int) -> Delivery:
        service, hook = self._hook(actor, namespace, webhook_id)
        return service.ping(hook)

    def list_deliveries(self, actor: Actor, namespace: str, webhook_id: int, before: str | None,
                        limit: int) -> Page[Delivery]:
        service, hook = self._hook(actor, namespace, webhook_id)
        if not 1 <= limit <= MAX_DELIVERIES_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_DELIVERIES_PAGE}")
        found = service.store.deliveries(hook.id, before, limit + 1)
        return Page(found[:limit], found[limit - 1].id if len(found) > limit else None)

    def get_delivery(self, actor: Actor, namespace: str, webhook_id: int, delivery_id: str) -> Delivery:
        service, hook = self._hook(actor, namespace, webhook_id)
        found = service.store.deliveries(hook.id, only=delivery_id, limit=1)
        if not found:
            raise NotFound(f"delivery {delivery_id} not found")
        return found[0]

    def redeliver(self, actor: Actor, namespace: str, webhook_id: int, delivery_id: str) -> Delivery:
        service, hook = self._hook(actor, namespace, webhook_id)
        if service.redeliver(hook, delivery_id) is None:
            raise NotFound(f"delivery {delivery_id} not found")
        return service.store.deliveries(hook.id, only=delivery_id, limit=1)[0]
