"""Users (administrators only): list, create, reset a password, disable, grant administration."""

from __future__ import annotations

from starlette.responses import Response

from dockyard.management.errors import Invalid
from dockyard.management.service import ManagementService
from dockyard.web.framework import Console, Ctx, url


class UserViews:
    def __init__(self, console: Console, management: ManagementService) -> None:
        self.c = console
        self.m = management

    def index(self, ctx: Ctx) -> Response:
        page = self.m.list_users(ctx.actor, ctx.arg("after") or None, 200)
        return self.c.render(ctx, "users.html", page=page)

    def create(self, ctx: Ctx) -> Response:
        username = ctx.field("username").strip()
        if ctx.field("password") != ctx.field("confirm"):
            raise Invalid(ctx._("The two passwords differ."))
        self.m.create_user(ctx.actor, username, ctx.field("password"), ctx.field("is_admin") == "on")
        ctx.flash("ok", ctx._("User %(user)s created.", user=username))
        return self.c.redirect(url("/users"))

    def update(self, ctx: Ctx) -> Response:
        username = ctx.request.path_params["username"]
        change = ctx.field("change")
        if change == "password":
            if ctx.field("password") != ctx.field("confirm"):
                raise Invalid(ctx._("The two passwords differ."))
            self.m.update_user(ctx.actor, username, password=ctx.field("password"))
        elif change in ("disabled", "is_admin"):
            if ctx.field("value") not in ("true", "false"):
                raise Invalid(ctx._("The value must be true or false."))
            self.m.update_user(ctx.actor, username, **{change: ctx.field("value") == "true"})
            if username == ctx.username and (change == "disabled" or ctx.field("value") == "false"):
                # Stepped down (or out): the users page is no longer theirs to see.
                ctx.flash("ok", ctx._("User %(user)s saved.", user=username))
                return self.c.redirect(url("/repositories"))
        else:
            raise Invalid(ctx._("Nothing to change."))
        ctx.flash("ok", ctx._("User %(user)s saved.", user=username))
        return self.c.redirect(url("/users"))
