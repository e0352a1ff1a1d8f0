"""The caller's access credentials (fixed registry password, temporary passwords) and the audit log."""

from __future__ import annotations

from starlette.responses import Response

from dockyard.api.credentials import request_host
from dockyard.management.errors import Invalid
from dockyard.management.service import ManagementService
from dockyard.web.addresses import addresses
from dockyard.web.framework import Console, Ctx, url

AUDIT_PAGE = 50


class AccountViews:
    def __init__(self, console: Console, management: ManagementService) -> None:
        self.c = console
        self.m = management

    def credentials(self, ctx: Ctx, created: object = None) -> Response:
        temps = sorted(self.m.list_temp_passwords(ctx.actor), key=lambda t: t.created_at, reverse=True)
        hosts = addresses(ctx.settings, request_host(ctx.request, "") or None)
        owned = [info.namespace.name for info in self.m.list_namespaces(ctx.actor, None, 500).items
                 if info.role == "owner" or ctx.actor.is_admin]
        return self.c.render(ctx, "credentials.html", temps=temps, created=created, host=hosts[0].host if hosts else "",
                             owned=owned,
                             default_ttl_minutes=ctx.settings.auth.temp_password_ttl_seconds // 60)

    def set_password(self, ctx: Ctx) -> Response:
        password = ctx.field("password")
        if ctx.field("remove") == "1":
            self.m.set_registry_password(ctx.actor, None)
            ctx.flash("ok", ctx._("The fixed password is removed."))
        else:
            if password != ctx.field("confirm"):
                raise Invalid(ctx._("The two passwords differ."))
            self.m.set_registry_password(ctx.actor, password)
            ctx.flash("ok", ctx._("The fixed password is set."))
        return self.c.redirect(url("/credentials"))

    def create_temp(self, ctx: Ctx) -> Response:
        minutes = ctx.field("ttl_minutes").strip()
        if minutes and not minutes.isdigit():
            raise Invalid(ctx._("Expiry must be a whole number of minutes."))
        ttl = int(minutes) * 60 if minutes else None
        created = self.m.create_temp_password(ctx.actor, ttl, ctx.field("description").strip() or None)
        ctx.flashes.append(("ok", ctx._("Temporary password created. Copy it now: it is shown only once.")))
        return self.credentials(ctx, created)

    def revoke_temp(self, ctx: Ctx) -> Response:
        self.m.revoke_temp_password(ctx.actor, ctx.request.path_params["id"])
        ctx.flash("ok", ctx._("Temporary password revoked."))
        return self.c.redirect(url("/credentials"))

    def audit(self, ctx: Ctx) -> Response:
        before = ctx.arg("before")
        page = self.m.query_audit(ctx.actor, ctx.arg("actor").strip() or None, ctx.arg("action").strip() or None,
                                  ctx.arg("target").strip() or None, int(before) if before.isdigit() and len(before) <= 9 else None,
                                  AUDIT_PAGE)
        return self.c.render(ctx, "audit.html", page=page, filters={k: ctx.arg(k) for k in ("actor", "action", "target")})
