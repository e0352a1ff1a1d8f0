"""Image versions: the tags of a repository (sortable, paginated, searchable), one version's
layers, config, labels, annotations and referrers, and deleting a tag."""

from __future__ import annotations

from starlette.responses import Response

from dockyard.api.credentials import request_host
from dockyard.core.access import namespace_of
from dockyard.management.images import ImagesService
from dockyard.web.addresses import addresses
from dockyard.web.framework import Console, Ctx, repo_url
from dockyard.web.views.security import SecurityViews

PER_PAGE = (20, 50, 100)


def _int(value: str, default: int) -> int:
    return int(value) if value.isdigit() and len(value) < 9 else default


class VersionViews:
    def __init__(self, console: Console, images: ImagesService, security: SecurityViews) -> None:
        self.c = console
        self.images = images
        self.security = security

    def index(self, ctx: Ctx, name: str) -> Response:
        sort = ctx.arg("sort", "pushed")  # ImagesService refuses an unknown one
        order = ctx.arg("order", "asc" if sort == "name" else "desc")
        per_page = _int(ctx.arg("per_page"), 50)
        if per_page not in PER_PAGE:
            per_page = 50
        page = self.images.versions(ctx.actor, name, sort=sort, order=order, page=_int(ctx.arg("page"), 1),
                                    per_page=per_page, search=ctx.arg("q").strip() or None)
        values = {"repo_name": name, "namespace": namespace_of(name), "versions": page, "tab": "versions",
                  "can_delete": self.images.can_delete(ctx.actor, name), "scan_enabled": self.security.enabled,
                  # one batch for the page's "Vulnerabilities" column
                  "vulns": self.security.summaries(name, page.items) if self.security.enabled else {}}
        if ctx.htmx and ctx.request.headers.get("hx-target") == "versions":
            return self.c.render(ctx, "_versions_table.html", **values)
        return self.c.render(ctx, "versions.html", **values)

    def show(self, ctx: Ctx, name: str, reference: str) -> Response:
        detail = self.images.version(ctx.actor, name, reference)
        found = addresses(ctx.settings, request_host(ctx.request, "") or None)
        vulns = self.security.summary_of(name, detail.digest, detail.is_index, detail.children)
        return self.c.render(ctx, "version.html", repo_name=name, namespace=namespace_of(name), v=detail,
                             tab="versions", can_delete=self.images.can_delete(ctx.actor, name), host=found[0].host if found else "",
                             vulns=vulns)

    def delete(self, ctx: Ctx, name: str, tag: str) -> Response:
        self.images.delete_tag(ctx.actor, name, tag)
        ctx.flash("ok", ctx._("Tag %(tag)s deleted.", tag=tag))
        back = ctx.field("back")
        return self.c.redirect(back if back.startswith(repo_url(name, "versions")) else repo_url(name, "versions"))
