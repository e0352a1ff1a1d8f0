"""The webhook API under /api/v1/namespaces/{ns}/webhooks: webhooks, their secrets, pings,
deliveries and redeliveries. Owners of the namespace and administrators (management/webhooks.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.api.management import webhook_schemas as ws
from dockyard.api.management.openapi import Endpoint, path_id
from dockyard.management.service import ManagementService

if TYPE_CHECKING:
    from dockyard.api.management.routes import Call

NS = (("ns", "Namespace name."),)
HOOK = (("ns", "Namespace name."), ("id", "Webhook id."))
DELIVERY = (*HOOK, ("delivery_id", "Delivery id (msg_…), as sent in webhook-id."))


class WebhookEndpoints:
    def __init__(self, service: ManagementService) -> None:
        self.service = service

    @staticmethod
    def _id(c: Call) -> int:
        return path_id(c.path["id"], "webhook")

    def list_webhooks(self, c: Call) -> ws.WebhookList:
        """The namespace's webhooks (never their secrets)."""
        return ws.WebhookList(items=[ws.WebhookOut.of(w) for w in self.service.list_webhooks(c.actor, c.path["ns"])])

    def create_webhook(self, c: Call) -> ws.WebhookCreated:
        """The secret is shown only in this answer. A URL whose host is (or resolves to) a loopback,
        private, link-local or otherwise non-public address is refused (422) unless an administrator
        allowed its network."""
        b = c.body
        new = self.service.create_webhook(c.actor, c.path["ns"], url=b.url, events=list(b.events), format=b.format,
                                          repository=b.repository, enabled=b.enabled, description=b.description,
                                          secret=b.secret)
        return ws.WebhookCreated(**ws.WebhookOut.fields_of(new.webhook), secret=new.secret)

    def get_webhook(self, c: Call) -> ws.WebhookOut:
        return ws.WebhookOut.of(self.service.get_webhook(c.actor, c.path["ns"], self._id(c)))

    def update_webhook(self, c: Call) -> ws.WebhookOut:
        """Only the fields given change; the URL is checked again."""
        fields = {k: v for k, v in c.fields.items() if v is not None or k in ("repository", "description")}
        return ws.WebhookOut.of(self.service.update_webhook(c.actor, c.path["ns"], self._id(c), **fields))

    def delete_webhook(self, c: Call) -> None:
        """With its deliveries; queued attempts are dropped."""
        self.service.delete_webhook(c.actor, c.path["ns"], self._id(c))

    def rotate_webhook_secret(self, c: Call) -> ws.WebhookCreated:
        """A new signing secret (generated unless given), used from the next attempt on."""
        secret = c.body.secret if c.body is not None else None
        new = self.service.rotate_webhook_secret(c.actor, c.path["ns"], self._id(c), secret)
        return ws.WebhookCreated(**ws.WebhookOut.fields_of(new.webhook), secret=new.secret)

    def ping_webhook(self, c: Call) -> ws.DeliveryOut:
        """Queue a `ping` delivery (Dockyard's format, one attempt); its outcome is in the deliveries."""
        return ws.DeliveryOut.of(self.service.ping_webhook(c.actor, c.path["ns"], self._id(c)))

    def list_deliveries(self, c: Call) -> ws.DeliveryList:
        """Newest first, each with every attempt: request headers, response status, headers and body
        (truncated), duration and error."""
        q = c.query
        page = self.service.list_deliveries(c.actor, c.path["ns"], self._id(c), q.before, q.limit)
        return ws.DeliveryList(items=[ws.DeliveryOut.of(d) for d in page.items], next=page.next)

    def get_delivery(self, c: Call) -> ws.DeliveryOut:
        return ws.DeliveryOut.of(self.service.get_delivery(c.actor, c.path["ns"], self._id(c), c.path["delivery_id"]))

    def redeliver(self, c: Call) -> ws.DeliveryOut:
        """Queue one more attempt of the delivery: the same body and webhook-id, a new timestamp
        and signature."""
        return ws.DeliveryOut.of(self.service.redeliver(c.actor, c.path["ns"], self._id(c), c.path["delivery_id"]))

    def endpoints(self) -> list[Endpoint]:
        E = Endpoint
        base = "/namespaces/{ns}/webhooks"
        return [
            E("GET", base, self.list_webhooks, "List a namespace's webhooks", "webhooks", response=ws.WebhookList,
              params=NS),
            E("POST", base, self.create_webhook, "Create a webhook", "webhooks", body=ws.WebhookCreate,
              response=ws.WebhookCreated, status=201, params=NS),
            E("GET", base + "/{id}", self.get_webhook, "Get a webhook", "webhooks", response=ws.WebhookOut,
              params=HOOK),
            E("PATCH", base + "/{id}", self.update_webhook, "Change a webhook", "webhooks", body=ws.WebhookUpdate,
              response=ws.WebhookOut, params=HOOK),
            E("DELETE", base + "/{id}", self.delete_webhook, "Delete a webhook", "webhooks", status=204, params=HOOK),
            E("POST", base + "/{id}/rotate-secret", self.rotate_webhook_secret, "Rotate a webhook's secret",
              "webhooks", body=ws.SecretRotate, response=ws.WebhookCreated, params=HOOK),
            E("POST", base + "/{id}/ping", self.ping_webhook, "Ping a webhook", "webhooks", response=ws.DeliveryOut,
              status=202, params=HOOK),
            E("GET", base + "/{id}/deliveries", self.list_deliveries, "List a webhook's deliveries", "webhooks",
              query=ws.DeliveryQuery, response=ws.DeliveryList, params=HOOK),
            E("GET", base + "/{id}/deliveries/{delivery_id}", self.get_delivery, "Get a delivery", "webhooks",
              response=ws.DeliveryOut, params=DELIVERY),
            E("POST", base + "/{id}/deliveries/{delivery_id}/redeliver", self.redeliver, "Redeliver", "webhooks",
              response=ws.DeliveryOut, status=202, params=DELIVERY),
        ]
