"""A namespace's webhooks: list, create, enable / disable, delete, rotate the secret, ping; a
webhook's deliveries with their attempts, and redelivery.

The use-cases and their access checks are WebhookUseCases' (management/webhooks.py: owners of the
namespace and administrators); this module only reads the forms and shapes the pages. A new or
rotated secret is shown once, on the page the POST answers with (nothing stores it).
"""

from __future__ import annotations

import json
from starlette.responses import Response

from dockyard.core import webhooks as wh
from dockyard.management.errors import NotFound
from dockyard.management.service import ManagementService
from dockyard.management.webhooks import NewSecret
from dockyard.meta.webhooks import Delivery
from dockyard.web.framework import Console, Ctx, safe_next, url

DELIVERIES_PAGE = 50


def _checked(ctx: Ctx, name: str) -> bool:
    return ctx.field(name) in ("on", "true", "1", "yes")


def pretty_json(body: str) -> str:
    """A delivery's body, indented for reading (as sent when it is not JSON)."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


class WebhookViews:
    def __init__(self, console: Console, management: ManagementService) -> None:
        self.c = console
        self.m = management

    @staticmethod
    def _ids(ctx: Ctx) -> tuple[str, int]:
        name, value = ctx.request.path_params["name"], ctx.request.path_params["id"]
        if not value.isdigit() or len(value) > 18:
            raise NotFound(ctx._("Webhook %(id)s not found.", id=value))
        return name, int(value)

    def _list_url(self, name: str) -> str:
        return url(f"/namespaces/{name}/webhooks")

    def _back(self, ctx: Ctx, name: str) -> str:
        back = ctx.field("back")
        return safe_next(back) if back else self._list_url(name)

    # -- pages --------------------------------------------------------------------------------------
    def _index(self, ctx: Ctx, name: str, secret: NewSecret | None = None, status: int = 200) -> Response:
        hooks = self.m.list_webhooks(ctx.actor, name)  # the access check (owners and administrators)
        info = self.m.get_namespace(ctx.actor, name)
        # The last delivery of each (the store's: the access check above covers the namespace).
        last: dict[int, Delivery | None] = {}
        for hook in hooks:
            found = self.m.webhooks.store.deliveries(hook.id, limit=1) if self.m.webhooks else []
            last[hook.id] = found[0] if found else None
        return self.c.render(ctx, "webhooks.html", status, ns=info.namespace, hooks=hooks, last=last, secret=secret,
                             event_types=wh.EVENT_TYPES, formats=wh.FORMATS)

    def index(self, ctx: Ctx) -> Response:
        return self._index(ctx, ctx.request.path_params["name"])

    def show(self, ctx: Ctx) -> Response:
        name, hook_id = self._ids(ctx)
        hook = self.m.get_webhook(ctx.actor, name, hook_id)
        page = self.m.list_deliveries(ctx.actor, name, hook_id, ctx.arg("before") or None, DELIVERIES_PAGE)
        return self.c.render(ctx, "webhook.html", ns_name=name, hook=hook, deliveries=page.items, next=page.next,
                             pretty_json=pretty_json)

    # -- forms --------------------------------------------------------------------------------------
    def create(self, ctx: Ctx) -> Response:
        name = ctx.request.path_params["name"]
        created = self.m.create_webhook(
            ctx.actor, name, url=ctx.field("url").strip(),
            events=[e for e in wh.EVENT_TYPES if _checked(ctx, f"event_{e}")],
            format=ctx.field("format", wh.DOCKYARD), repository=ctx.field("repository").strip() or None,
            enabled=True, description=ctx.field("description").strip() or None)
        ctx.flashes.append(("ok", ctx._("Webhook %(id)s created.", id=created.webhook.id)))
        return self._index(ctx, name, secret=created)

    def toggle(self, ctx: Ctx) -> Response:
        name, hook_id = self._ids(ctx)
        enabled = _checked(ctx, "enabled")
        self.m.update_webhook(ctx.actor, name, hook_id, enabled=enabled)
        ctx.flash("ok", ctx._("Webhook %(id)s enabled.", id=hook_id) if enabled
                  else ctx._("Webhook %(id)s disabled.", id=hook_id))
        return self.c.redirect(self._back(ctx, name))

    def delete(self, ctx: Ctx) -> Response:
        name, hook_id = self._ids(ctx)
        self.m.delete_webhook(ctx.actor, name, hook_id)
        ctx.flash("ok", ctx._("Webhook %(id)s deleted.", id=hook_id))
        return self.c.redirect(self._list_url(name))

    def rotate(self, ctx: Ctx) -> Response:
        name, hook_id = self._ids(ctx)
        rotated = self.m.rotate_webhook_secret(ctx.actor, name, hook_id)
        ctx.flashes.append(("ok", ctx._("New secret for webhook %(id)s.", id=hook_id)))
        return self._index(ctx, name, secret=rotated)

    def ping(self, ctx: Ctx) -> Response:
        name, hook_id = self._ids(ctx)
        self.m.ping_webhook(ctx.actor, name, hook_id)
        ctx.flash("ok", ctx._("Ping queued: its delivery is listed below once sent."))
        return self.c.redirect(url(f"/namespaces/{name}/webhooks/{hook_id}"))

    def redeliver(self, ctx: Ctx) -> Response:
        name, hook_id = self._ids(ctx)
        delivery_id = ctx.request.path_params["delivery"]
        self.m.redeliver(ctx.actor, name, hook_id, delivery_id)
        ctx.flash("ok", ctx._("Delivery %(id)s queued again.", id=delivery_id))
        return self.c.redirect(url(f"/namespaces/{name}/webhooks/{hook_id}"))

