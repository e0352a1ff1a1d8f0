"""The console's route table, under /console (and `/`, which redirects there)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dockyard.auth.service import AuthService
from dockyard.config import Settings
from dockyard.management.images import ImagesService
from dockyard.management.jobs import JobsService
from dockyard.management.scans import ScansService
from dockyard.management.service import ManagementService
from dockyard.meta.sessions import SessionStore
from dockyard.web.framework import Console
from dockyard.web.views.account import AccountViews
from dockyard.web.views.auth import AuthViews
from dockyard.web.views.builds import BuildViews
from dockyard.web.views.jobs import JobViews
from dockyard.web.views.namespaces import NamespaceViews
from dockyard.web.views.repositories import RepositoryViews
from dockyard.web.views.security import SecurityViews
from dockyard.web.views.users import UserViews
from dockyard.web.views.webhooks import WebhookViews

STATIC = Path(__file__).parent / "static"


def console_routes(settings: Settings, auth: AuthService, sessions: SessionStore, management: ManagementService,
                   images: ImagesService, jobs: JobsService, scans: ScansService,
                   vulndb_status: Callable[[], dict[str, Any]]) -> list[BaseRoute]:
    c = Console(settings, auth, sessions)
    a = AuthViews(c)
    sec = SecurityViews(c, scans, vulndb_status)
    ns = NamespaceViews(c, management, sec)
    repos = RepositoryViews(c, management, images, sec)
    acct = AccountViews(c, management)
    users = UserViews(c, management)
    hooks = WebhookViews(c, management)
    job_views = JobViews(c, jobs)
    builds = BuildViews(c, management)
    r = c.route
    get, post = ["GET"], ["POST"]
    return [
        Route("/", r(a.root, public=True), methods=get),
        Mount("/console", routes=[
            Route("/", r(a.root, public=True), methods=get),
            Route("/login", r(a.login_page, public=True), methods=get),
            Route("/login", r(a.login, public=True), methods=post),
            Route("/logout", r(a.logout), methods=post),
            Route("/lang/{code}", r(a.language, public=True), methods=get),
            Route("/namespaces", r(ns.index), methods=get),
            Route("/namespaces", r(ns.create), methods=post),
            Route("/namespaces/{name}", r(ns.show), methods=get),
            Route("/namespaces/{name}", r(ns.update), methods=post),
            Route("/namespaces/{name}/delete", r(ns.delete), methods=post),
            Route("/namespaces/{name}/members", r(ns.set_member), methods=post),
            Route("/namespaces/{name}/members/{username}/remove", r(ns.remove_member), methods=post),
            Route("/namespaces/{name}/robots", r(ns.create_robot), methods=post),
            Route("/namespaces/{name}/robots/{robot}/rotate", r(ns.rotate_robot), methods=post),
            Route("/namespaces/{name}/robots/{robot}/disable", r(ns.toggle_robot), methods=post),
            Route("/namespaces/{name}/robots/{robot}/edit", r(ns.edit_robot), methods=post),
            Route("/namespaces/{name}/robots/{robot}/delete", r(ns.delete_robot), methods=post),
            Route("/namespaces/{name}/security", r(sec.set_policy), methods=post),
            Route("/namespaces/{name}/allowlist", r(sec.allow), methods=post),
            Route("/namespaces/{name}/allowlist/{id}/remove", r(sec.disallow), methods=post),
            Route("/namespaces/{name}/webhooks", r(hooks.index), methods=get),
            Route("/namespaces/{name}/webhooks", r(hooks.create), methods=post),
            Route("/namespaces/{name}/webhooks/{id}", r(hooks.show), methods=get),
            Route("/namespaces/{name}/webhooks/{id}/enable", r(hooks.toggle), methods=post),
            Route("/namespaces/{name}/webhooks/{id}/delete", r(hooks.delete), methods=post),
            Route("/namespaces/{name}/webhooks/{id}/rotate", r(hooks.rotate), methods=post),
            Route("/namespaces/{name}/webhooks/{id}/ping", r(hooks.ping), methods=post),
            Route("/namespaces/{name}/webhooks/{id}/deliveries/{delivery}/redeliver", r(hooks.redeliver), methods=post),
            Route("/repositories", r(repos.index), methods=get),
            Route("/search", r(repos.search), methods=get),
            Route("/repositories", r(repos.create), methods=post),
            # A repository's Builds tab (before /repo/{path:path}, which would take these paths too).
            Route("/repo/{name:path}/-/builds", r(builds.tab), methods=get),
            Route("/repo/{name:path}/-/builds", r(builds.save_config), methods=post),
            Route("/repo/{name:path}/-/builds/run", r(builds.build_now), methods=post),
            Route("/repo/{name:path}/-/builds/{id}", r(builds.build_page), methods=get),
            Route("/repo/{name:path}/-/builds/{id}/cancel", r(builds.build_cancel), methods=post),
            Route("/builds/{id}/log", r(builds.log), methods=get),
            Route("/repo/{path:path}", r(repos.dispatch), methods=["GET", "POST"]),
            Route("/credentials", r(acct.credentials), methods=get),
            Route("/credentials/password", r(acct.set_password), methods=post),
            Route("/credentials/temp", r(acct.create_temp), methods=post),
            Route("/credentials/temp/{id}/revoke", r(acct.revoke_temp), methods=post),
            Route("/audit", r(acct.audit), methods=get),
            Route("/users", r(users.index), methods=get),
            Route("/users", r(users.create), methods=post),
            Route("/users/{username}", r(users.update), methods=post),
            Route("/jobs", r(job_views.index), methods=get),
            Route("/jobs/gc", r(job_views.gc), methods=post),
            Route("/jobs/{id}/cancel", r(job_views.cancel), methods=post),
            Route("/security", r(sec.admin), methods=get),
            Route("/security/allowlist", r(sec.admin_allow), methods=post),
            Route("/security/allowlist/{id}/remove", r(sec.admin_disallow), methods=post),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        ]),
    ]
