"""Namespaces: list, create, edit, delete; members and their roles; robot accounts; the scan policy
and allowlist (their forms are SecurityViews')."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.responses import Response

from dockyard.core.access import ROLES
from dockyard.core.scopes import ALL_REPOSITORY_ACTIONS
from dockyard.management.errors import Forbidden, Invalid
from dockyard.management.service import ManagementService
from dockyard.meta.db import utcnow
from dockyard.web.framework import Console, Ctx, url
from dockyard.web.views.security import SecurityViews


def _checked(ctx: Ctx, name: str) -> bool:
    return ctx.field(name) in ("on", "true", "1", "yes")


def _ttl_days(ctx: Ctx, name: str) -> int | None:
    value = ctx.field(name).strip()
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 3650:
        raise Invalid(ctx._("Expiry must be a number of days between 1 and 3650."))
    return int(value) * 86400


class NamespaceViews:
    def __init__(self, console: Console, management: ManagementService, security: SecurityViews) -> None:
        self.c = console
        self.m = management
        self.security = security

    def index(self, ctx: Ctx) -> Response:
        page = self.m.list_namespaces(ctx.actor, ctx.arg("after") or None, 100)
        return self.c.render(ctx, "namespaces.html", page=page)

    def create(self, ctx: Ctx) -> Response:
        name = ctx.field("name").strip()
        self.m.create_namespace(ctx.actor, name, ctx.field("description").strip() or None, _checked(ctx, "public"),
                                ctx.field("auto_create", "on") == "on")
        ctx.flash("ok", ctx._("Namespace %(name)s created.", name=name))
        return self.c.redirect(url(f"/namespaces/{name}"))

    def _page(self, ctx: Ctx, name: str, **extra: Any) -> Response:
        info = self.m.get_namespace(ctx.actor, name)
        owner = ctx.actor.is_admin or info.role == "owner"
        try:
            members = self.m.list_members(ctx.actor, name)
        except Forbidden:
            members = []
        robots = self.m.list_robots(ctx.actor, name) if owner and not ctx.actor.read_only else []
        repos = self.m.list_repositories(ctx.actor, name, None, None, 100)
        return self.c.render(ctx, "namespace.html", ns=info.namespace, role=info.role, owner=owner, members=members,
                             robots=robots, repositories=repos, roles=ROLES, actions=ALL_REPOSITORY_ACTIONS,
                             **self.security.namespace_values(ctx, name), **extra)

    def show(self, ctx: Ctx) -> Response:
        return self._page(ctx, ctx.request.path_params["name"])

    def update(self, ctx: Ctx) -> Response:
        name = ctx.request.path_params["name"]
        self.m.update_namespace(ctx.actor, name, description=ctx.field("description").strip() or None,
                                public=_checked(ctx, "public"), auto_create=_checked(ctx, "auto_create"))
        ctx.flash("ok", ctx._("Namespace %(name)s saved.", name=name))
        return self.c.redirect(url(f"/namespaces/{name}"))

    def delete(self, ctx: Ctx) -> Response:
        name = ctx.request.path_params["name"]
        removed = self.m.delete_namespace(ctx.actor, name)
        ctx.flash("ok", ctx._("Namespace %(name)s deleted with %(count)s repositories.", name=name, count=len(removed)))
        return self.c.redirect(url("/namespaces"))

    def set_member(self, ctx: Ctx) -> Response:
        name = ctx.request.path_params["name"]
        username = ctx.field("username").strip()
        self.m.set_member(ctx.actor, name, username, ctx.field("role"))
        ctx.flash("ok", ctx._("%(user)s is now %(role)s of %(name)s.", user=username, role=ctx._(ctx.field("role")),
                              name=name))
        return self.c.redirect(url(f"/namespaces/{name}"))

    def remove_member(self, ctx: Ctx) -> Response:
        name = ctx.request.path_params["name"]
        username = ctx.request.path_params["username"]
        self.m.remove_member(ctx.actor, name, username)
        ctx.flash("ok", ctx._("%(user)s removed from %(name)s.", user=username, name=name))
        return self.c.redirect(url(f"/namespaces/{name}"))

    # -- robots -----------------------------------------------------------------------------------
    def _permissions(self, ctx: Ctx) -> list[dict[str, Any]]:
        actions = [a for a in ALL_REPOSITORY_ACTIONS if _checked(ctx, f"action_{a}")]
        if not actions:
            raise Invalid(ctx._("Choose at least one permission."))
        return [{"repositories": ctx.field("repositories").strip() or "*", "actions": actions}]

    def create_robot(self, ctx: Ctx) -> Response:
        name = ctx.request.path_params["name"]
        created = self.m.create_robot(ctx.actor, name, ctx.field("robot").strip(), self._permissions(ctx),
                                      ctx.field("description").strip() or None, _ttl_days(ctx, "ttl_days"))
        ctx.flashes.append(("ok", ctx._("Robot %(robot)s created.", robot=created.robot.username)))
        return self._page(ctx, name, secret=created)

    def rotate_robot(self, ctx: Ctx) -> Response:
        name, robot = ctx.request.path_params["name"], ctx.request.path_params["robot"]
        rotated = self.m.rotate_robot(ctx.actor, name, robot)
        ctx.flashes.append(("ok", ctx._("New secret for %(robot)s.", robot=rotated.robot.username)))
        return self._page(ctx, name, secret=rotated)

    def toggle_robot(self, ctx: Ctx) -> Response:
        name, robot = ctx.request.path_params["name"], ctx.request.path_params["robot"]
        self.m.update_robot(ctx.actor, name, robot, disabled=_checked(ctx, "disabled"))
        return self.c.redirect(url(f"/namespaces/{name}"))

    def edit_robot(self, ctx: Ctx) -> Response:
        name, robot = ctx.request.path_params["name"], ctx.request.path_params["robot"]
        ttl = _ttl_days(ctx, "ttl_days")
        self.m.update_robot(ctx.actor, name, robot, permissions=self._permissions(ctx),
                            description=ctx.field("description").strip() or None,
                            expires_at=utcnow() + timedelta(seconds=ttl) if ttl else None)
        ctx.flash("ok", ctx._("Robot %(robot)s saved.", robot=robot))
        return self.c.redirect(url(f"/namespaces/{name}"))

    def delete_robot(self, ctx: Ctx) -> Response:
        name, robot = ctx.request.path_params["name"], ctx.request.path_params["robot"]
        self.m.delete_robot(ctx.actor, name, robot)
        ctx.flash("ok", ctx._("Robot %(robot)s deleted.", robot=robot))
        return self.c.redirect(url(f"/namespaces/{name}"))
