"""A repository's Builds tab in the web console (web/views/builds.py): the configuration form (the
provider webhook's secret shown once, then masked; errors back in the form with 422), the rule
tester, "Build now", the history, a build's page with its log and the console's log route that
static/builds.js follows, cancelling; who sees what; the Chinese page. On SQLite and PostgreSQL.

No build runs here: the settings turn the build worker and the job worker off, so a build started
stays queued; its log is written straight into the store (BuildStore.append_log), as a worker would.
Clone URLs are git:// on loopback (`outbound.allowed_networks` allows 127.0.0.0/8; nothing listens:
"Build now" of a commit does not ask the source).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dockyard.config import Settings, load_settings
from tests.integration.console_helpers import (  # noqa: F401  (app, registry, console are fixtures)
    PASSWORD,
    add_user,
    app,
    attr,
    console,
    elements,
    flashes,
    location,
    logged_in,
    make_namespace,
    make_repository,
    post,
    refusal,
    registry,
    set_member,
    texts,
)
from tests.integration.helpers import no_server_errors  # noqa: F401  (an autouse fixture)

REPO = "team/app"
TAB = f"/console/repo/{REPO}/-/builds"
SOURCE = "git://127.0.0.1:9/app.git"
COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """No build worker and no job worker (builds stay queued), loopback clone URLs allowed."""
    return load_settings(data_dir=tmp_path / "data", database={"url": db_url}, gc={"interval_seconds": 0},
                         uploads={"purge_interval_seconds": 0}, scan={"enabled": False},
                         jobs={"embedded_worker": False}, builds={"enabled": False},
                         outbound={"allowed_networks": ["127.0.0.0/8"]})


@pytest.fixture
def bob(app: Starlette, console: TestClient, services: Any) -> TestClient:
    add_user(services)
    return logged_in(app, "bob", PASSWORD)


def rule_fields(*rules: dict[str, str], rows: int = 3) -> dict[str, str]:
    """The form's rule rows: `rules` first, then empty rows up to `rows`."""
    fields = {"rows": str(max(rows, len(rules)))}
    for i, rule in enumerate(rules):
        fields.update({f"rule-{i}-{k}": v for k, v in rule.items()})
    return fields


def save(client: TestClient, *rules: dict[str, str], **fields: str) -> Any:
    data = {"provider": "github", "url": SOURCE, "auto_build": "on", "cancel_superseded": "on",
            **rule_fields(*rules), **fields}
    return post(client, TAB, **data)


MAIN = {"kind": "branch", "match": "main", "tags": "latest, main-${sha7}"}
RELEASE = {"kind": "tag", "match": "release-v(.*)", "tags": "${1}"}


def configured(console: TestClient) -> str:
    """Namespace team, repository team/app, a configuration with the rules MAIN and RELEASE; the secret."""
    make_namespace(console, "team")
    make_repository(console, "team", "app")
    r = save(console, MAIN, RELEASE)
    assert r.status_code == 200, r.text[:2000]
    [secret] = texts(r.text, "build-webhook-secret")
    return secret


# -- the tab and the configuration ------------------------------------------------------------------
def test_the_tab_and_saving_shows_the_secret_once(console: TestClient, services: Any) -> None:
    make_namespace(console, "team")
    make_repository(console, "team", "app")
    overview = console.get(f"/console/repo/{REPO}").text
    assert attr(overview, "tab-builds", "href") == [TAB]

    empty = console.get(TAB)
    assert empty.status_code == 200, empty.text[:1000]
    assert attr(empty.text, "tab-builds", "aria-current") == ["page"]
    assert elements(empty.text, "build-config-form") and elements(empty.text, "build-config-save")
    assert len(elements(empty.text, "build-rule-row")) == 3  # empty rows to fill
    assert texts(empty.text, "builds") and not elements(empty.text, "build-row")
    assert not elements(empty.text, "build-webhook-card") and not elements(empty.text, "build-now-form")

    r = save(console, MAIN, RELEASE, token="ghp_secret-token", timeout_seconds="600", poll_interval_seconds="")
    assert r.status_code == 200, r.text[:2000]
    assert texts(r.text, "flash-ok") == ["Build configuration saved."]
    [secret] = texts(r.text, "build-webhook-secret")
    assert secret.startswith("dkh_") and elements(r.text, "copy-build-webhook-secret")
    [hook_url] = texts(r.text, "build-webhook-url")
    assert hook_url.endswith(f"/api/v1/repositories/{REPO}/build-hook")
    assert "ghp_secret-token" not in r.text

    config = services.builds.store.config(REPO)
    assert config.provider == "github" and config.url == SOURCE and config.timeout_seconds == 600
    assert config.poll_interval_seconds is None and config.auto_build and config.cancel_superseded
    assert [(x["kind"], x["match"], x["tags"]) for x in config.rules] == [
        ("branch", "main", ["latest", "main-${sha7}"]), ("tag", "release-v(.*)", ["${1}"])]
    assert services.builds.webhook_secret(config) == secret and config.sealed_token

    page = console.get(TAB).text  # afterwards: masked
    assert secret not in page and not elements(page, "build-webhook-secret")
    assert elements(page, "build-webhook-secret-masked") and texts(page, "build-webhook-url") == [hook_url]
    assert elements(page, "build-has-token") and "ghp_secret-token" not in page
    assert attr(page, "rule-match", "value")[:2] == ["main", "release-v(.*)"]
    assert attr(page, "rule-tags", "value")[:2] == ["latest, main-${sha7}", "${1}"]
    assert len(elements(page, "build-rule-row")) == 5  # two rules and three empty rows
    assert attr(page, "build-timeout", "value") == ["600"] and attr(page, "build-url", "value") == [SOURCE]

    # saved again without a token: the token and the secret are kept; unticked boxes are off
    r = save(console, MAIN, auto_build="", cancel_superseded="")
    assert r.status_code == 200 and texts(r.text, "build-webhook-secret") == [secret]
    again = services.builds.store.config(REPO)
    assert again.sealed_token and not again.auto_build and not again.cancel_superseded and len(again.rules) == 1
    # a new secret on request, and the token removed
    r = save(console, MAIN, rotate="on", remove_token="on")
    [rotated] = texts(r.text, "build-webhook-secret")
    assert rotated != secret and not services.builds.store.config(REPO).sealed_token
    assert not elements(console.get(TAB).text, "build-has-token")


@pytest.mark.parametrize("fields, message", [
    ({"rule-0-match": "release-(", "rule-0-tags": "x"}, "not a valid regular expression"),
    ({"rule-0-match": "main", "rule-0-tags": "${2}"}, "match has 0 group(s)"),
    ({"rule-0-match": "main", "rule-0-tags": "x", "rule-0-platforms": "amd64"}, "not os/arch"),
    ({}, "build rules must be a list"),
    ({"rule-0-match": "main", "rule-0-tags": "x", "timeout_seconds": "ten"}, "whole number of seconds"),
])
def test_invalid_input_comes_back_in_the_form(console: TestClient, services: Any, fields: dict[str, str],
                                              message: str) -> None:
    make_namespace(console, "team")
    data = {"provider": "gitlab", "url": SOURCE, "rows": "3", "poll_interval_seconds": "120", **fields}
    r = post(console, TAB, **data)
    assert r.status_code == 422, r.text[:1000]
    [error] = texts(r.text, "build-config-error")
    assert message in error
    assert attr(r.text, "build-url", "value") == [SOURCE]
    assert attr(r.text, "build-poll", "value") == ["120"]
    assert attr(r.text, "rule-match", "value")[0] == fields.get("rule-0-match", "")
    assert 'value="gitlab" selected' in r.text
    assert services.builds.store.config(REPO) is None


def test_a_clone_url_the_server_may_not_reach_is_refused(console: TestClient, services: Any) -> None:
    make_namespace(console, "team")
    r = save(console, MAIN, url="http://10.1.2.3/app.git")
    assert r.status_code == 422 and "source.url" in texts(r.text, "build-config-error")[0]
    r = save(console, MAIN, url="file:///srv/app.git")
    assert r.status_code == 200  # file:// is for administrators, as this one is


def test_build_arguments_set_through_the_api_are_kept(console: TestClient, services: Any) -> None:
    configured(console)
    config = services.builds.store.config(REPO)
    rules = [dict(config.rules[0], build_args={"GO_VERSION": "1.22"}, worker_labels={"arch": "arm64"}), config.rules[1]]
    services.builds.store.put_config("team", REPO, {
        "provider": config.provider, "url": config.url, "rules": rules, "auto_build": True, "timeout_seconds": None,
        "cancel_superseded": True, "poll_interval_seconds": None, "webhook_secret": config.sealed_webhook_secret,
        "token": None, "ssh_key": None}, "admin")
    page = console.get(TAB).text
    [extra] = texts(page, "rule-extra")
    assert "GO_VERSION" in extra and "arm64" in extra
    form = {k: v for k, v in _form_values(page).items() if k.startswith("rule-")}
    r = post(console, TAB, provider="github", url=SOURCE, rows="5", **form)
    assert r.status_code == 200, texts(r.text, "build-config-error")
    kept = services.builds.store.config(REPO).rules
    assert kept[0]["build_args"] == {"GO_VERSION": "1.22"} and kept[0]["worker_labels"] == {"arch": "arm64"}
    assert kept[1]["build_args"] == {}


def _form_values(html: str) -> dict[str, str]:
    """name -> value of the inputs of the page (enough for the rule rows: inputs and selected options)."""
    values = {name: value for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html)}
    for name, body in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]+)" selected', body)
        values[name] = chosen.group(1) if chosen else ""
    return {k: v.replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&") for k, v in values.items()}


# -- the rule tester -------------------------------------------------------------------------------------
def test_the_rule_tester(console: TestClient) -> None:
    configured(console)
    page = console.get(TAB, params={"test_kind": "tag", "test_name": "release-v1.2"})
    assert page.status_code == 200
    rows = elements(page.text, "rule-test-row")
    assert [r["attrs"]["data-matches"] for r in rows] == ["false", "true"]
    assert texts(page.text, "rule-test-tags") == ["does not match", "1.2"]
    assert attr(page.text, "rule-test-name", "value") == ["release-v1.2"]

    branch = console.get(TAB, params={"test_kind": "branch", "test_name": "main", "test_commit": "abcdef1234567"}).text
    assert texts(branch, "rule-test-tags") == ["latest main-abcdef1", "does not match"]
    sample = console.get(TAB, params={"test_kind": "branch", "test_name": "main"}).text
    assert texts(sample, "rule-test-tags")[0] == "latest main-0123456"
    bad = console.get(TAB, params={"test_kind": "branch", "test_name": "main", "test_commit": "xyz"}).text
    assert "hexadecimal" in texts(bad, "rule-test-error")[0] and not elements(bad, "rule-test-row")
    neither = console.get(TAB, params={"test_kind": "branch", "test_name": "develop"}).text
    assert texts(neither, "rule-test-tags") == ["does not match", "does not match"]


# -- building ------------------------------------------------------------------------------------------------
def test_build_now_history_build_page_log_and_cancel(console: TestClient, services: Any) -> None:
    configured(console)
    r = post(console, f"{TAB}/run", ref=COMMIT, back=TAB)
    [build] = services.builds.store.list(REPO)
    assert location(r) == f"{TAB}/{build.id}"
    assert build.status == "queued" and build.ref == COMMIT and build.tags == [f"sha-{COMMIT[:12]}"]
    assert build.trigger == "manual" and build.triggered_by == "admin"

    page = console.get(location(r))
    assert page.status_code == 200, page.text[:1000]
    assert texts(page.text, "flash-ok") == [f"Build {build.id} queued."]
    assert attr(page.text, "build-status", "data-status") == ["queued"]
    [log] = elements(page.text, "build-log")
    assert log["text"] == "" and log["attrs"]["data-log-url"] == f"/console/builds/{build.id}/log"
    assert elements(page.text, "build-log-waiting") and elements(page.text, "build-cancel")
    assert "/static/builds.js" in page.text

    services.builds.store.append_log(build.id, "STEP 1/2: FROM scratch\n")
    services.builds.store.append_log(build.id, "STEP 2/2: COPY hello.txt /hello.txt\n")
    page = console.get(f"{TAB}/{build.id}").text
    [log] = elements(page, "build-log")
    assert "STEP 1/2: FROM scratch" in log["text"] and "STEP 2/2" in log["text"]
    offset = int(log["attrs"]["data-offset"])
    assert offset == len("STEP 1/2: FROM scratch\nSTEP 2/2: COPY hello.txt /hello.txt\n")

    # the route the page's script follows
    services.builds.store.append_log(build.id, "pushing… 完成\n")
    follow = console.get(f"/console/builds/{build.id}/log", params={"offset": offset})
    assert follow.status_code == 200 and follow.headers["content-type"].startswith("text/plain")
    assert follow.text == "pushing… 完成\n" and follow.headers["x-build-status"] == "queued"
    assert int(follow.headers["x-log-size"]) == offset + len("pushing… 完成\n")
    assert console.get(f"/console/builds/{build.id}/log").text.startswith("STEP 1/2")
    assert console.get("/console/builds/999999/log").status_code == 404
    assert console.get("/console/builds/abc/log").status_code == 404

    # the history
    tab = console.get(TAB).text
    [row] = elements(tab, "build-row")
    assert row["attrs"]["data-status"] == "queued" and f"sha-{COMMIT[:12]}" in texts(tab, "build-tags")[0]
    assert attr(tab, "build-link", "href") == [f"{TAB}/{build.id}"]
    assert texts(tab, "build-ref") == [f"{COMMIT[:12]} commit"]

    # a branch name asks the source for its commit: nothing listens there, so it is refused
    r = post(console, f"{TAB}/run", ref="main", back=TAB)
    assert location(r) == TAB and "git ls-remote failed" in refusal(console, r)
    r = post(console, f"{TAB}/run", ref="refs/pull/1", back=TAB)
    assert "ref:" in refusal(console, r)

    # cancel
    r = post(console, f"{TAB}/{build.id}/cancel", back=f"{TAB}/{build.id}")
    assert location(r) == f"{TAB}/{build.id}"
    assert flashes(console, r, "ok") == [f"Build {build.id} cancelled."]
    ended = console.get(f"{TAB}/{build.id}").text
    assert attr(ended, "build-status", "data-status") == ["cancelled"] and not elements(ended, "build-cancel")
    assert "/static/builds.js" not in ended
    assert console.get(f"/console/builds/{build.id}/log").headers["x-build-status"] == "cancelled"


def test_a_finished_build_links_its_image(console: TestClient, services: Any) -> None:
    configured(console)
    post(console, f"{TAB}/run", ref=COMMIT, back=TAB)
    [build] = services.builds.store.list(REPO)
    services.builds.store.start(build.id, "node-1", 1)
    digest = "sha256:" + "ab" * 32
    services.builds.store.finish(build.id, "succeeded", digest=digest)
    tab = console.get(TAB).text
    assert attr(tab, "build-digest", "href") == [f"/console/repo/{REPO}/-/versions/sha256%3A{'ab' * 32}"]
    assert texts(tab, "build-digest") == ["ab" * 6]
    page = console.get(f"{TAB}/{build.id}").text
    assert attr(page, "build-status", "data-status") == ["succeeded"] and texts(page, "build-digest") == [digest]
    assert elements(page, "build-duration") and not elements(page, "build-cancel")


def test_build_pages_of_another_repository_or_no_build(console: TestClient, services: Any) -> None:
    configured(console)
    post(console, f"{TAB}/run", ref=COMMIT, back=TAB)
    [build] = services.builds.store.list(REPO)
    make_repository(console, "team", "other")
    assert console.get(f"/console/repo/team/other/-/builds/{build.id}").status_code == 404
    assert console.get(f"{TAB}/999999").status_code == 404
    assert console.get(f"{TAB}/nope").status_code == 404


# -- who sees what ---------------------------------------------------------------------------------------------
def test_a_guest_sees_the_history_but_not_the_configuration(console: TestClient, services: Any,
                                                             bob: TestClient) -> None:
    secret = configured(console)
    post(console, f"{TAB}/run", ref=COMMIT, back=TAB)
    [build] = services.builds.store.list(REPO)
    services.builds.store.append_log(build.id, "hello from the build\n")
    set_member(console, "team", "bob", "guest")

    page = bob.get(TAB)
    assert page.status_code == 200 and attr(page.text, "tab-builds", "href") == [TAB]
    assert attr(page.text, "build-row", "data-id") == [str(build.id)]
    assert elements(page.text, "build-config-hidden") and not elements(page.text, "build-config-form")
    assert not elements(page.text, "build-now-form") and SOURCE not in page.text and secret not in page.text
    detail = bob.get(f"{TAB}/{build.id}").text
    assert "hello from the build" in texts(detail, "build-log")[0] and not elements(detail, "build-cancel")

    r = post(bob, TAB, provider="github", url="git://127.0.0.1:9/evil.git", **rule_fields(MAIN))
    assert "may not configure builds" in refusal(bob, r)
    assert services.builds.store.config(REPO).url == SOURCE
    r = post(bob, f"{TAB}/run", ref=COMMIT, back=TAB)
    assert "may not start builds" in refusal(bob, r)
    r = post(bob, f"{TAB}/{build.id}/cancel", back=TAB)
    assert "may not cancel builds" in refusal(bob, r)
    assert services.builds.store.get(build.id).status == "queued"


def test_a_developer_reads_the_configuration_and_builds(console: TestClient, services: Any, bob: TestClient) -> None:
    configured(console)
    set_member(console, "team", "bob", "developer")
    page = bob.get(TAB).text
    assert elements(page, "build-config-readonly") and attr(page, "build-url", "value") == [SOURCE]
    assert "disabled" in page and not elements(page, "build-config-save")
    assert elements(page, "build-webhook-secret-masked") and elements(page, "build-now-form")
    r = post(bob, f"{TAB}/run", ref=COMMIT, back=TAB)
    [build] = services.builds.store.list(REPO)
    assert location(r) == f"{TAB}/{build.id}" and build.triggered_by == "bob"
    r = post(bob, TAB, provider="github", url=SOURCE, **rule_fields(MAIN))
    assert "may not configure builds" in refusal(bob, r)


def test_strangers_see_no_tab_and_no_builds(console: TestClient, services: Any, bob: TestClient) -> None:
    configured(console)
    post(console, f"{TAB}/run", ref=COMMIT, back=TAB)
    [build] = services.builds.store.list(REPO)
    assert bob.get(TAB).status_code == 404  # a private namespace: not even that it exists
    assert bob.get(f"{TAB}/{build.id}").status_code == 404
    assert bob.get(f"/console/builds/{build.id}/log").status_code == 404

    assert location(post(console, "/console/namespaces/team", public="on")) == "/console/namespaces/team"
    overview = bob.get(f"/console/repo/{REPO}")  # public: the repository is visible, its builds are not
    assert overview.status_code == 200 and not elements(overview.text, "tab-builds")
    assert bob.get(TAB).status_code == 403
    anonymous = TestClient(bob.app, base_url="http://registry.test", follow_redirects=False)
    assert location(anonymous.get(f"/console/builds/{build.id}/log")).startswith("/console/login")


# -- languages -----------------------------------------------------------------------------------------------------
def test_chinese_builds_tab(console: TestClient, services: Any) -> None:
    configured(console)
    post(console, f"{TAB}/run", ref=COMMIT, back=TAB)
    [build] = services.builds.store.list(REPO)
    console.cookies.set("dockyard_lang", "zh-CN")
    page = console.get(TAB, params={"test_kind": "tag", "test_name": "release-v1.2"}).text
    assert texts(page, "tab-builds") == ["构建"]
    assert "构建历史" in page and "构建配置" in page and "立即构建" in page and "测试规则" in page
    assert texts(page, "build-status") == ["排队中"]
    assert texts(page, "rule-test-tags") == ["不匹配", "1.2"]
    detail = console.get(f"{TAB}/{build.id}").text
    assert "日志" in detail and "取消构建" in detail
    r = post(console, TAB, provider="github", url=SOURCE, **rule_fields({"match": "(", "tags": "x"}))
    assert r.status_code == 422 and "保存构建配置" in r.text


def test_csrf_is_checked(console: TestClient, services: Any) -> None:
    make_namespace(console, "team")
    r = console.post(TAB, data={"provider": "github", "url": SOURCE, **rule_fields(MAIN), "csrf": "wrong"})
    assert r.status_code == 403 and services.builds.store.config(REPO) is None


def test_more_rules_than_the_form_holds_are_read_only(console: TestClient, services: Any) -> None:
    configured(console)
    config = services.builds.store.config(REPO)
    rules = [dict(config.rules[0], match=f"branch-{n}") for n in range(30)]  # the API allows 50
    services.builds.store.put_config("team", REPO, {
        "provider": config.provider, "url": config.url, "rules": rules, "auto_build": True, "timeout_seconds": None,
        "cancel_superseded": True, "poll_interval_seconds": None, "webhook_secret": config.sealed_webhook_secret,
        "token": None, "ssh_key": None}, "admin")
    page = console.get(TAB).text
    assert elements(page, "build-config-too-many") and not elements(page, "build-config-save")
    assert len(elements(page, "build-rule-row")) == 30
