"""Repositories: list and search, create, the overview with addresses and commands, edit, delete;
and the dispatch of `/console/repo/NAME/-/…` to the version pages."""

from __future__ import annotations

from starlette.responses import Response

from dockyard.api.credentials import request_host
from dockyard.core.access import namespace_of
from dockyard.management.errors import NotFound
from dockyard.management.images import ImagesService
from dockyard.management.service import ManagementService
from dockyard.web.addresses import addresses, commands, pick
from dockyard.web.framework import Console, Ctx, repo_url, url
from dockyard.web.views.security import SecurityViews
from dockyard.web.views.versions import VersionViews

PAGE = 50
SEARCH_PAGE = 25


class RepositoryViews:
    def __init__(self, console: Console, management: ManagementService, images: ImagesService,
                 security: SecurityViews) -> None:
        self.c = console
        self.m = management
        self.images = images
        self.security = security
        self.versions = VersionViews(console, images, security)

    def index(self, ctx: Ctx) -> Response:
        namespace = ctx.arg("namespace") or None
        search = ctx.arg("q").strip() or None
        page = self.m.list_repositories(ctx.actor, namespace, search, ctx.arg("after") or None, PAGE)
        if ctx.htmx and ctx.request.headers.get("hx-target") == "repo-list":
            return self.c.render(ctx, "_repository_list.html", page=page, q=search or "", namespace=namespace or "")
        writable = self._writable_namespaces(ctx)
        return self.c.render(ctx, "repositories.html", page=page, q=search or "", namespace=namespace or "",
                             writable=writable)

    def _writable_namespaces(self, ctx: Ctx) -> list[str]:
        if ctx.actor.read_only:
            return []
        names = [info.namespace.name for info in self.m.list_namespaces(ctx.actor, None, 500).items
                 if ctx.actor.is_admin or info.role in ("owner", "developer")]
        return names

    def create(self, ctx: Ctx) -> Response:
        namespace = ctx.field("namespace").strip()
        name = f"{namespace}/{ctx.field('name').strip()}" if namespace else ctx.field("name").strip()
        self.m.create_repository(ctx.actor, name, ctx.field("summary").strip() or None,
                                 ctx.field("description").strip() or None, ctx.field("visibility") or None)
        ctx.flash("ok", ctx._("Repository %(name)s created.", name=name))
        return self.c.redirect(repo_url(name))

    # -- /console/repo/NAME[/-/…] --------------------------------------------------------------------
    def dispatch(self, ctx: Ctx) -> Response:
        path = ctx.request.path_params["path"]
        name, _, rest = path.partition("/-/")
        parts = rest.split("/") if rest else []
        post = ctx.request.method == "POST"
        if not parts:
            return self.overview(ctx, name) if not post else self._not_found(ctx)
        if parts == ["versions"] and not post:
            return self.versions.index(ctx, name)
        if len(parts) == 2 and parts[0] == "versions" and not post:
            return self.versions.show(ctx, name, parts[1])
        if len(parts) >= 3 and parts[0] == "versions":
            return self._security(ctx, name, parts[1], parts[2:], post)
        if len(parts) == 3 and parts[0] == "tags" and parts[2] == "delete" and post:
            return self.versions.delete(ctx, name, parts[1])
        if parts == ["settings"] and not post:
            return self.settings_page(ctx, name)
        if parts == ["settings"] and post:
            return self.update(ctx, name)
        if parts == ["delete"] and post:
            return self.delete(ctx, name)
        if parts == ["star"] and post:
            return self.star(ctx, name)
        return self._not_found(ctx)

    def _security(self, ctx: Ctx, name: str, reference: str, rest: list[str], post: bool) -> Response:
        """/versions/REF/security[.json|.csv|/scan] and /versions/REF/sbom.{cdx,spdx}.json."""
        sec = self.security
        if rest == ["security", "scan"] and post:
            return sec.scan(ctx, name, reference)
        if post or len(rest) != 1:
            return self._not_found(ctx)
        page = rest[0]
        if page == "security":
            return sec.show(ctx, name, reference)
        if page == "security.json":
            return sec.export_json(ctx, name, reference)
        if page == "security.csv":
            return sec.export_csv(ctx, name, reference)
        if page in ("sbom.cdx.json", "sbom.spdx.json"):
            return sec.sbom(ctx, name, reference, "cyclonedx" if page == "sbom.cdx.json" else "spdx")
        return self._not_found(ctx)

    def _not_found(self, ctx: Ctx) -> Response:
        raise NotFound(ctx._("No such page."))

    def _header(self, ctx: Ctx, name: str) -> dict[str, object]:
        repo = self.m.get_repository(ctx.actor, name)
        return {"repo": repo, "repo_name": name, "namespace": namespace_of(name),
                "can_delete": self.images.can_delete(ctx.actor, name)}

    def overview(self, ctx: Ctx, name: str) -> Response:
        header = self._header(ctx, name)
        found = addresses(ctx.settings, request_host(ctx.request, "") or None)
        chosen = pick(found, ctx.arg("address") or None)
        cmds = commands(chosen, name, ctx.username) if chosen else None
        if ctx.htmx and ctx.request.headers.get("hx-target") == "commands":
            return self.c.render(ctx, "_commands.html", addresses=found, address=chosen, commands=cmds, **header)
        latest = self.images.versions(ctx.actor, name, sort="pushed", order="desc", per_page=5)
        stars, starred = self.m.stars(ctx.actor, name)
        return self.c.render(ctx, "repository.html", tab="overview", addresses=found, address=chosen, commands=cmds,
                             latest=latest, stars=stars, starred=starred, can_star=not ctx.actor.read_only, **header)

    def star(self, ctx: Ctx, name: str) -> Response:
        """Star the repository (or, with on=0, take the star back)."""
        on = ctx.field("on") != "0"
        self.m.star(ctx.actor, name, on)
        ctx.flash("ok", ctx._("Starred %(name)s.", name=name) if on else ctx._("Star taken back from %(name)s.", name=name))
        return self.c.redirect(repo_url(name))

    def search(self, ctx: Ctx) -> Response:
        """Search as `docker search` does: exact names first, then name prefixes, then descriptions."""
        q = ctx.arg("q").strip()
        try:
            page_number = max(1, int(ctx.arg("page") or 1))
        except ValueError:
            page_number = 1
        found = self.m.search(ctx.actor, q, SEARCH_PAGE, page_number) if q else None
        return self.c.render(ctx, "search.html", q=q, found=found)

    def settings_page(self, ctx: Ctx, name: str) -> Response:
        return self.c.render(ctx, "repository_settings.html", tab="settings", **self._header(ctx, name))

    def update(self, ctx: Ctx, name: str) -> Response:
        self.m.update_repository(ctx.actor, name, summary=ctx.field("summary").strip() or None,
                                 description=ctx.field("description").strip() or None,
                                 visibility=ctx.field("visibility") or None)
        ctx.flash("ok", ctx._("Repository %(name)s saved.", name=name))
        return self.c.redirect(repo_url(name, "settings"))

    def delete(self, ctx: Ctx, name: str) -> Response:
        self.m.delete_repository(ctx.actor, name)
        ctx.flash("ok", ctx._("Repository %(name)s deleted.", name=name))
        return self.c.redirect(url("/repositories", namespace=namespace_of(name)))
