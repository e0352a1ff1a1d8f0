"""The build API: a repository's build configuration and builds, build logs and cancelling
(management/builds.py), and the provider webhook that starts builds (`POST
/api/v1/repositories/{name}/build-hook`: no credentials; the provider's signature instead)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from dockyard.api.bodies import BodyTooLarge, read_limited
from dockyard.api.management import build_schemas as bs
from dockyard.api.management.openapi import Endpoint, path_id
from dockyard.api.threads import run_sync
from dockyard.management.service import ManagementService
from dockyard.registry.builds import MAX_HOOK_BODY, BuildInvalid, BuildService, HookRefused

if TYPE_CHECKING:
    from dockyard.api.management.routes import Call

REPO = (("name", "Repository name (namespace/repository)."),)
BUILD = (("id", "Build id."),)


class BuildEndpoints:
    def __init__(self, service: ManagementService, builds: BuildService) -> None:
        self.service = service
        self.builds = builds

    def put_build_config(self, c: Call) -> bs.BuildConfigOut:
        """Create or replace the repository's build configuration (owners, administrators). The
        answer is the only one that shows the provider webhook's secret in clear."""
        view = self.service.put_build_config(c.actor, c.path["name"], c.fields)
        return bs.BuildConfigOut.of(view)

    def get_build_config(self, c: Call) -> bs.BuildConfigOut:
        """Secrets masked."""
        return bs.BuildConfigOut.of(self.service.get_build_config(c.actor, c.path["name"]))

    def delete_build_config(self, c: Call) -> None:
        self.service.delete_build_config(c.actor, c.path["name"])

    def start_build(self, c: Call) -> bs.BuildsStarted:
        """Build now: a branch, a tag (one build per matching rule) or a commit."""
        b = c.body
        started = self.service.start_build(c.actor, c.path["name"], b.ref, b.tags, b.rule)
        return bs.BuildsStarted(id=started[0].id, builds=[bs.BuildOut.of(x) for x in started])

    def list_builds(self, c: Call) -> bs.BuildList:
        q = c.query
        return bs.BuildList(builds=[bs.BuildOut.of(b) for b in self.service.list_builds(c.actor, c.path["name"], q.limit, q.before)])

    def get_build(self, c: Call) -> bs.BuildOut:
        return bs.BuildOut.of(self.service.get_build(c.actor, path_id(c.path["id"], "build")))

    def build_log(self, c: Call) -> Response:
        """The build's log as text (from `offset`); follow it by asking again from X-Log-Size
        while X-Build-Status is queued or running."""
        build, text, size = self.service.build_log(c.actor, path_id(c.path["id"], "build"), c.query.offset)
        return Response(text.encode(), media_type="text/plain; charset=utf-8",
                        headers={"X-Log-Size": str(size), "X-Build-Status": build.status, "Cache-Control": "no-store"})

    def cancel_build(self, c: Call) -> bs.BuildOut:
        """A queued build ends at once; a running one is stopped (every process of it) within seconds."""
        return bs.BuildOut.of(self.service.cancel_build(c.actor, path_id(c.path["id"], "build")))

    def build_hook(self, c: Call) -> None:
        """A provider's push or tag event (GitHub, GitLab, Gitea/Forgejo, Bitbucket, as configured):
        no credentials, the provider's signature instead, verified before the body is read. 202 with
        the builds started; 200 when nothing starts (a ping, a replayed delivery, no matching rule);
        401 for a missing or wrong signature (also when the repository has no build configuration)."""
        raise AssertionError("served by hook_route")

    def repository_endpoints(self) -> list[Endpoint]:
        """Before /repositories/{name:path}, which would swallow these suffixes."""
        E = Endpoint
        base = "/repositories/{name:path}"
        return [
            E("POST", base + "/build-hook", self.build_hook, "Receive a provider webhook", "builds", auth=False,
              body=bs.ProviderEvent, response=bs.HookAnswer, status=202, params=REPO, route=self.hook_route()),
            E("PUT", base + "/build-config", self.put_build_config, "Set a repository's build configuration", "builds",
              body=bs.BuildConfigIn, response=bs.BuildConfigOut, params=REPO),
            E("GET", base + "/build-config", self.get_build_config, "Get a repository's build configuration", "builds",
              response=bs.BuildConfigOut, params=REPO),
            E("DELETE", base + "/build-config", self.delete_build_config, "Delete a repository's build configuration",
              "builds", status=204, params=REPO),
            E("POST", base + "/builds", self.start_build, "Start a build", "builds", body=bs.BuildStart,
              response=bs.BuildsStarted, status=202, params=REPO),
            E("GET", base + "/builds", self.list_builds, "List a repository's builds", "builds", query=bs.BuildQuery,
              response=bs.BuildList, params=REPO),
        ]

    def other_endpoints(self) -> list[Endpoint]:
        E = Endpoint
        return [
            E("GET", "/builds/{id}", self.get_build, "Get a build", "builds", response=bs.BuildOut, params=BUILD),
            E("GET", "/builds/{id}/log", self.build_log, "Get a build's log", "builds", query=bs.LogQuery,
              content_type="text/plain", params=BUILD),
            E("POST", "/builds/{id}/cancel", self.cancel_build, "Cancel a build", "builds", response=bs.BuildOut,
              params=BUILD),
        ]

    def hook_route(self) -> BaseRoute:
        builds = self.builds

        async def build_hook(request: Request) -> Response:
            name = request.path_params["name"]
            try:
                body = await read_limited(request, MAX_HOOK_BODY)
            except BodyTooLarge:
                return _answer(413, f"the body is larger than {MAX_HOOK_BODY} bytes")

            def receive() -> Response:
                config = builds.store.config(name)
                if config is None:  # the same answer as a wrong signature: says nothing of the repository
                    return _answer(401, "the signature is missing or wrong")
                try:
                    result = builds.receive_hook(config, request.headers, body)
                except HookRefused as exc:
                    return _answer(exc.status, str(exc))
                except BuildInvalid as exc:  # signed and a push, but nothing can be built of it
                    return _answer(422, str(exc))
                return JSONResponse({"note": result.note, "builds": [b.id for b in result.builds]},
                                    status_code=202 if result.builds else 200)

            return await run_sync(receive)

        return Route("/repositories/{name:path}/build-hook", build_hook, methods=["POST"])


def _answer(status: int, message: str) -> Response:
    return JSONResponse({"error": {"code": "unauthenticated" if status == 401 else "invalid", "message": message}},
                        status_code=status)
