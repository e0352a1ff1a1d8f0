"""A repository's automated builds (the Builds tab): the build configuration form, a rule tester,
"Build now", the build history; a build's page with its live log, and cancelling.

The use-cases and their access checks are BuildUseCases' (management/builds.py): members of the
namespace see the history and logs, owners and developers read the configuration (secrets masked)
and start or cancel builds, owners and administrators change the configuration. This module reads
the forms and shapes the pages. The provider webhook's secret is shown in clear only on the page
that answers a save (nothing else shows it); invalid input comes back in the form with status 422.

The live log: build.html fills the log server-side; static/builds.js then asks
`/console/builds/ID/log?offset=N` (`log`, the session's cookie: /api/v1 takes no console session)
every second while the build is queued or running, and appends what came.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from dockyard.core import builds as cb
from dockyard.core.access import namespace_of
from dockyard.management.builds import ConfigView
from dockyard.management.errors import Invalid, NotFound
from dockyard.management.service import Actor, ManagementService
from dockyard.meta.builds import Build
from dockyard.meta.db import utcnow
from dockyard.web.framework import Console, Ctx, repo_url

HISTORY = 25
BLANK_ROWS = 3
# Fields per rule row x rows must stay within the console's form limit (framework.FORM_MAX_FIELDS).
ROW_FIELDS = ("kind", "match", "tags", "dockerfile", "context", "platforms", "extra")
MAX_ROWS = 26
SAMPLE_REVISION = "0123456789abcdef0123456789abcdef01234567"  # the rule tester's commit when none is given
ACTIVE = ("queued", "running")
EDITORS = ("admin", "owner")
PUSHERS = ("admin", "owner", "developer")


@dataclass(frozen=True, slots=True)
class RuleTest:
    """One rule against the tester's branch or tag: its tags, or None when it does not match."""

    number: int  # from 1
    rule: dict[str, Any]
    tags: list[str] | None


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _checked(ctx: Ctx, name: str) -> bool:
    return ctx.field(name) in ("on", "true", "1", "yes")


def _row_of(rule: dict[str, Any]) -> dict[str, str]:
    """A saved rule as the form's row shows it (build args and worker labels ride along, as JSON)."""
    extra = {k: rule[k] for k in ("build_args", "worker_labels") if rule.get(k)}
    return {"kind": rule.get("kind", "branch"), "match": rule.get("match", ""), "tags": ", ".join(rule.get("tags", [])),
            "dockerfile": rule.get("dockerfile", ""), "context": rule.get("context", ""),
            "platforms": ", ".join(rule.get("platforms", [])), "extra": json.dumps(extra) if extra else ""}


def _blank() -> dict[str, str]:
    return {"kind": "branch", **{f: "" for f in ROW_FIELDS if f != "kind"}}


def _values_of(config: Any) -> dict[str, Any]:
    if config is None:
        return {"provider": "github", "url": "", "auto_build": True, "cancel_superseded": True,
                "timeout_seconds": "", "poll_interval_seconds": ""}
    return {"provider": config.provider, "url": config.url, "auto_build": config.auto_build,
            "cancel_superseded": config.cancel_superseded, "timeout_seconds": str(config.timeout_seconds or ""),
            "poll_interval_seconds": str(config.poll_interval_seconds or "")}


def full_ref(ref: str) -> str:
    """What "Build now" asks for: refs/… and commits as given, a bare name is a branch."""
    ref = ref.strip()
    if not ref or ref.startswith("refs/") or cb.is_commit(ref):
        return ref
    return "refs/heads/" + ref


class BuildViews:
    def __init__(self, console: Console, management: ManagementService) -> None:
        self.c = console
        self.m = management
        console.env.globals["builds_tab"] = self.tab_visible  # macros.html's repository tabs

    # -- who ----------------------------------------------------------------------------------------
    def _role(self, actor: Actor, name: str) -> str | None:
        """"admin", the caller's role in the repository's namespace, or None."""
        if actor.is_admin and not actor.read_only:
            return "admin"
        user = actor.user
        if user is None:
            return None
        return self.m.namespaces.roles_of(user.username).get(namespace_of(name))

    def tab_visible(self, actor: Actor, name: str) -> bool:
        return self.m.builds is not None and self._role(actor, name) is not None

    @staticmethod
    def _id(ctx: Ctx, value: str) -> int:
        if not value.isdigit() or len(value) > 18:
            raise NotFound(ctx._("Build %(id)s not found.", id=value[:40]))
        return int(value)

    def _duration(self, ctx: Ctx, build: Build) -> str:
        if build.started_at is None:
            return ""
        seconds = max(0, int(((build.finished_at or utcnow()) - build.started_at).total_seconds()))
        if seconds < 60:
            return ctx._("%(s)s s", s=seconds)
        if seconds < 3600:
            return ctx._("%(m)s min %(s)s s", m=seconds // 60, s=seconds % 60)
        return ctx._("%(h)s h %(m)s min", h=seconds // 3600, m=seconds % 3600 // 60)

    # -- the Builds tab -------------------------------------------------------------------------------
    def index(self, ctx: Ctx, name: str, *, saved: ConfigView | None = None, form: dict[str, Any] | None = None,
              rows: list[dict[str, str]] | None = None, error: str | None = None, status: int = 200) -> Response:
        before = ctx.arg("before")
        history = self.m.list_builds(ctx.actor, name, HISTORY, int(before) if before.isdigit() and len(before) < 19
                                     else None)  # the access check: members of the namespace
        role = self._role(ctx.actor, name)
        view = saved
        if view is None and role in PUSHERS:
            try:
                view = self.m.get_build_config(ctx.actor, name)
            except NotFound:
                view = None
        config = view.config if view else None
        if rows is None:
            rows = [_row_of(r) for r in (config.rules if config else [])]
            rows += [_blank() for _ in range(max(0, min(BLANK_ROWS, MAX_ROWS - len(rows))))]
        return self.c.render(
            ctx, "builds.html", status, tab="builds", repo_name=name, namespace=namespace_of(name), builds=history,
            older=history[-1].id if len(history) == HISTORY else None, view=view, config=config,
            secret=saved.webhook_secret if saved else None, values=form or _values_of(config), rows=rows,
            error=error, can_edit=role in EDITORS and len(rows) <= MAX_ROWS, too_many=len(rows) > MAX_ROWS,
            can_push=role in PUSHERS, providers=cb.PROVIDERS, kinds=cb.KINDS,
            test=self._test(ctx, config), duration=lambda b: self._duration(ctx, b), active=ACTIVE)

    def _test(self, ctx: Ctx, config: Any) -> dict[str, Any]:
        """The rule tester's question (?test_name=…&test_kind=…[&test_commit=…]) and its answer
        (`results` None when nothing was asked)."""
        name = ctx.arg("test_name").strip()[:cb.MAX_REF]
        kind = ctx.arg("test_kind", "branch")
        commit = ctx.arg("test_commit").strip()
        asked = {"name": name, "kind": kind if kind in cb.KINDS else "branch", "commit": commit}
        if not name or config is None:
            return {**asked, "results": None, "error": None}
        if commit and not cb.is_commit(commit):
            return {**asked, "results": None, "error": ctx._("The commit must be 7 to 64 hexadecimal digits.")}
        ref = ("refs/heads/" if asked["kind"] == "branch" else "refs/tags/") + name
        results = []
        for number, raw in enumerate(config.rules, 1):
            try:
                tags = cb.tags_for(cb.parse_rule(raw), ref, commit or SAMPLE_REVISION)
            except ValueError:
                tags = None
            results.append(RuleTest(number, raw, tags))
        return {**asked, "results": results, "error": None}

    @staticmethod
    def _read_form(ctx: Ctx) -> tuple[dict[str, Any], list[dict[str, str]]]:
        """The posted configuration form's values and rule rows, as typed (not the token)."""
        values = {"provider": ctx.field("provider"), "url": ctx.field("url").strip(),
                  "auto_build": _checked(ctx, "auto_build"), "cancel_superseded": _checked(ctx, "cancel_superseded"),
                  "timeout_seconds": ctx.field("timeout_seconds").strip(),
                  "poll_interval_seconds": ctx.field("poll_interval_seconds").strip()}
        count = ctx.field("rows")
        rows = []
        for i in range(min(int(count), MAX_ROWS) if count.isdigit() and len(count) < 4 else 0):
            row = {f: ctx.field(f"rule-{i}-{f}").strip() for f in ROW_FIELDS}
            row["kind"] = row["kind"] or "branch"
            rows.append(row)
        return values, rows

    def _body(self, ctx: Ctx, values: dict[str, Any], rows: list[dict[str, str]]) -> dict[str, Any]:
        """The API's body (management/builds.py put_build_config) of the form; Invalid for what it cannot say."""
        rules = []
        for row in rows:
            if not row["match"] and not row["tags"]:  # an empty row (clearing both removes a rule)
                continue
            rule: dict[str, Any] = {"kind": row["kind"], "match": row["match"], "tags": _split(row["tags"]),
                                    "platforms": _split(row["platforms"])}
            for key in ("dockerfile", "context"):
                if row[key]:
                    rule[key] = row[key]
            if row["extra"]:
                try:
                    extra = json.loads(row["extra"])
                except ValueError:
                    extra = None
                if not isinstance(extra, dict):
                    raise Invalid(ctx._("Rule %(n)s: its build arguments and worker labels could not be read.",
                                        n=len(rules) + 1))
                rule.update({k: extra[k] for k in ("build_args", "worker_labels") if k in extra})
            rules.append(rule)
        source: dict[str, Any] = {"provider": values["provider"], "url": values["url"]}
        if _checked(ctx, "remove_token"):
            source["token"] = None
        elif ctx.field("token"):
            source["token"] = ctx.field("token")
        return {"source": source, "rules": rules, "auto_build": values["auto_build"],
                "cancel_superseded": values["cancel_superseded"], "rotate_webhook_secret": _checked(ctx, "rotate"),
                "timeout_seconds": self._seconds(ctx, values["timeout_seconds"], ctx._("Timeout")),
                "poll_interval_seconds": self._seconds(ctx, values["poll_interval_seconds"], ctx._("Poll interval"))}

    @staticmethod
    def _seconds(ctx: Ctx, value: str, label: str) -> int | None:
        if not value:
            return None
        if not value.isdigit() or len(value) > 9:
            raise Invalid(ctx._("%(field)s: a whole number of seconds.", field=label))
        return int(value)

    def save(self, ctx: Ctx, name: str) -> Response:
        values, rows = self._read_form(ctx)
        try:
            view = self.m.put_build_config(ctx.actor, name, self._body(ctx, values, rows))
        except Invalid as exc:  # back to the form, with what was typed
            return self.index(ctx, name, form=values, rows=rows, error=exc.message, status=422)
        ctx.flashes.append(("ok", ctx._("Build configuration saved.")))
        return self.index(ctx, name, saved=view)

    def run(self, ctx: Ctx, name: str) -> Response:
        ref = full_ref(ctx.field("ref"))
        if not ref:
            raise Invalid(ctx._("Give a branch, a tag (refs/tags/NAME) or a commit to build."))
        started = self.m.start_build(ctx.actor, name, ref)
        if len(started) == 1:
            ctx.flash("ok", ctx._("Build %(id)s queued.", id=started[0].id))
        else:
            ctx.flash("ok", ctx._("%(count)s builds queued.", count=len(started)))
        return self.c.redirect(repo_url(name, "builds", str(started[0].id)))

    # -- one build --------------------------------------------------------------------------------------
    def _build_of(self, ctx: Ctx, name: str, value: str) -> Build:
        build = self.m.get_build(ctx.actor, self._id(ctx, value))
        if build.repository != name:
            raise NotFound(ctx._("Build %(id)s not found.", id=build.id))
        return build

    def show(self, ctx: Ctx, name: str, value: str) -> Response:
        build = self._build_of(ctx, name, value)
        _, text, _ = self.m.build_log(ctx.actor, build.id, 0)
        return self.c.render(ctx, "build.html", tab="builds", repo_name=name, namespace=namespace_of(name), b=build,
                             log=text, offset=len(text), can_push=self._role(ctx.actor, name) in PUSHERS,
                             duration=self._duration(ctx, build), active=ACTIVE,
                             labels=json.dumps({s: ctx._(s) for s in ("queued", "running", "succeeded", "failed",
                                                                      "cancelled")}, ensure_ascii=False))

    def cancel(self, ctx: Ctx, name: str, value: str) -> Response:
        build = self._build_of(ctx, name, value)
        ended = self.m.cancel_build(ctx.actor, build.id)
        ctx.flash("ok", ctx._("Build %(id)s cancelled.", id=build.id) if ended.status == "cancelled"
                  else ctx._("Build %(id)s is stopping.", id=build.id) if ended.status in ACTIVE
                  else ctx._("Build %(id)s had ended.", id=build.id))
        return self.c.redirect(repo_url(name, "builds", str(build.id)))

    def log(self, ctx: Ctx) -> Response:
        """The log from ?offset=N as text, with X-Log-Size and X-Build-Status (as the API's)."""
        offset = ctx.arg("offset", "0")
        build, text, size = self.m.build_log(ctx.actor, self._id(ctx, ctx.request.path_params["id"]),
                                             int(offset) if offset.isdigit() and len(offset) < 12 else 0)
        return Response(text.encode(), media_type="text/plain; charset=utf-8",
                        headers={"X-Log-Size": str(size), "X-Build-Status": build.status})

    # -- routes (web/routes.py) ---------------------------------------------------------------------
    def tab(self, ctx: Ctx) -> Response:
        return self.index(ctx, ctx.request.path_params["name"])

    def save_config(self, ctx: Ctx) -> Response:
        return self.save(ctx, ctx.request.path_params["name"])

    def build_now(self, ctx: Ctx) -> Response:
        return self.run(ctx, ctx.request.path_params["name"])

    def build_page(self, ctx: Ctx) -> Response:
        return self.show(ctx, ctx.request.path_params["name"], ctx.request.path_params["id"])

    def build_cancel(self, ctx: Ctx) -> Response:
        return self.cancel(ctx, ctx.request.path_params["name"], ctx.request.path_params["id"])
