"""The web console in a real browser: Debian's chromium driven by Playwright, against a real
`dockyard serve`, with real clients (skopeo, podman) on the side.

The flow (test_console_flow): log in; create a namespace and a repository; read the `docker push`
line from the repository page and push an image there with skopeo; see the tag, its digest, size,
platform and layer command in the versions pages; push a multi-architecture index over the
registry API and see both platforms; create a temporary password, `podman login` with it, revoke it
in the console and see `podman login` fail; delete a tag; switch to Simplified Chinese and back;
find the deletion in the audit log; set the fixed registry password; log out.
Screenshots of each main page go to test-artifacts/console/ (NN-page.png, the zh-CN ones too).

test_console_http_checks covers what a browser hides, with httpx: the redirects, the session
cookie's attributes, a wrong password, and a form posted without its CSRF token.

Run: .venv/bin/python -m pytest tests/e2e/test_console_browser.py   (or scripts/test -k console)
"""

from __future__ import annotations

import json
import os
import re
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.e2e.access_helpers import Clients, private_clients
from tests.e2e.browser import (
    log_in,
    skip_without_browser,
    EXPECT_TIMEOUT_MS,
    HUMAN_SIZE,
    OCI_MANIFEST,
    PageWatch,
    Registry,
    browsing_on,
    chromium_browser,
    console_server_process,
    cookie_attributes,
    has_cjk,
    hidden_inputs,
    input_names,
    make_image,
    path_of,
    screenshot,
    screenshot_on_failure,
    set_cookie_headers,
    text_and_background,
    wait_until,
    write_oci_layout,
)

pytestmark = pytest.mark.e2e

skip_without_browser()

from playwright.sync_api import expect  # noqa: E402

VPC_HOST = "registry-vpc.console-e2e.test:5000"
NAMESPACE = "webteam"
REPO_NAME = "hello-app"
REPO = f"{NAMESPACE}/{REPO_NAME}"
CREATED_BY = "/bin/sh -c echo dockyard-console-e2e > /hello  # buildkit"
TAG = "1.0"
MULTI_TAG = "multi"


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module, with two addresses (public and VPC) in one region."""
    with console_server_process(tmp_path_factory.mktemp("console-browser") / "data", VPC_HOST) as proc:
        yield proc


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture
def browsing(browser: Any, console_server: ServerProcess) -> Iterator[tuple[Any, Any, PageWatch]]:
    """(context, page, watch): a fresh profile on the server, closed after the test."""
    with browsing_on(browser, console_server.url) as found:
        yield found


@pytest.fixture(scope="module")
def clients() -> Iterator[Clients]:
    with private_clients() as found:
        yield found


# -- helpers ----------------------------------------------------------------------------------------
def wait_for_path(page: Any, path: str) -> None:
    """Wait (bounded) until the page's URL path is `path` (query string ignored)."""
    page.wait_for_url(lambda url: path_of(url) == path)


def form_with(page: Any, testid: str) -> Any:
    """The <form> holding the button with this data-testid."""
    form = page.locator("form").filter(has=page.get_by_test_id(testid))
    expect(form).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    return form


def confirm_and_click(page: Any, button: Any) -> list[str]:
    """Click a button that asks with confirm(); accept it. Returns the dialog types seen."""
    seen: list[str] = []

    def accept(dialog: Any) -> None:
        seen.append(dialog.type)
        dialog.accept()

    page.once("dialog", accept)
    button.click()
    return seen


def copy_button_copies(page: Any, testid: str) -> str:
    """Click a copy button; what lands in the clipboard (the copy is asynchronous: bounded wait)."""
    page.evaluate("navigator.clipboard.writeText('')")
    page.get_by_test_id(testid).click()
    return str(wait_until(lambda: page.evaluate("navigator.clipboard.readText()").strip(), timeout=5))


def version_row(page: Any, tag: str) -> Any:
    return page.locator(f'[data-testid="version-row"][data-tag="{tag}"]')


def digest_shown(cell: Any) -> str:
    """The full digest of a version-digest cell: its title attribute, else its text."""
    title = cell.get_attribute("title") or ""
    inner = cell.locator("[title^='sha256:']")
    if "sha256:" not in title and inner.count():
        title = inner.first.get_attribute("title") or ""
    return title if "sha256:" in title else cell.inner_text().strip()


def podman_login(clients: Clients, address: str, user: str, password: str) -> Any:
    """`podman login` with a throwaway auth file (and the harness's private storage config)."""
    authfile = clients.root / f"auth-{uuid.uuid4().hex[:8]}.json"
    return clients.sh('printf "%s\\n" "$2" | podman login --authfile "$4" --tls-verify=false -u "$1" '
                      '--password-stdin "$3"', user, password, address, str(authfile), timeout=60)


def registry_status(server: ServerProcess, user: str, password: str) -> int:
    return httpx.get(f"{server.url}/v2/", auth=(user, password), timeout=10).status_code


def redirected_to(web: httpx.Client, server: ServerProcess, path: str) -> str:
    """The path a GET of `path` redirects to (asserting it is a redirect)."""
    r = web.get(path)
    assert r.status_code in (302, 303, 307), (path, r.status_code, r.text[:200])
    return path_of(str(httpx.URL(server.url).join(r.headers["location"])))


# -- tests ------------------------------------------------------------------------------------------
def test_chromium_renders_a_server_page(browsing: tuple[Any, Any, PageWatch], console_server: ServerProcess) -> None:
    """The browser itself: Debian's chromium starts, loads a page of the server and screenshots it."""
    _, page, _ = browsing
    response = page.goto("/healthz")
    assert response is not None and response.status == 200
    assert '"status"' in page.inner_text("body")
    screenshot(page, "00-healthz")


@pytest.mark.timeout(300)
def test_console_flow(browsing: tuple[Any, Any, PageWatch], console_server: ServerProcess, clients: Clients,
                      tmp_path: Path) -> None:
    context, page, watch = browsing
    srv = console_server
    registry = Registry(srv.url, srv.user, srv.password)
    try:
        with screenshot_on_failure(page, "flow"):
            _flow(context, page, watch, srv, registry, clients, tmp_path)
        watch.assert_clean()
    finally:
        registry.close()


def _flow(context: Any, page: Any, watch: PageWatch, srv: ServerProcess, registry: Registry, clients: Clients,
          tmp_path: Path) -> None:
    def shot(name: str) -> None:
        screenshot(page, name)
        watch.check_layout(page, name)

    # 1. `/` sends a visitor to the login page; log in.
    page.goto("/")
    wait_for_path(page, "/console/login")
    expect(page.locator("html")).to_have_attribute("lang", "en", timeout=EXPECT_TIMEOUT_MS)
    shot("01-login")
    log_in(page, srv.user, srv.password, go=False)
    expect(page.get_by_test_id("logout")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    session = [c for c in context.cookies() if c["httpOnly"]]
    assert session, f"no HttpOnly cookie after logging in: {context.cookies()}"
    assert all(c["sameSite"] == "Lax" for c in session), session

    # 2. Create a namespace.
    page.get_by_test_id("nav-namespaces").click()
    wait_for_path(page, "/console/namespaces")
    form = form_with(page, "namespace-create")
    form.locator("input[name=name]").fill(NAMESPACE)
    form.locator("textarea[name=description]").fill("Images of the web team (browser e2e)")
    form.get_by_test_id("namespace-create").click()
    wait_for_path(page, f"/console/namespaces/{NAMESPACE}")
    expect(page.locator("body")).to_contain_text("Images of the web team", timeout=EXPECT_TIMEOUT_MS)
    shot("02-namespace")

    # 3. Create a repository in it.
    page.get_by_test_id("nav-repositories").click()
    wait_for_path(page, "/console/repositories")
    form = form_with(page, "repository-create")
    form.locator("select[name=namespace]").select_option(NAMESPACE)
    form.locator("input[name=name]").fill(REPO_NAME)
    form.locator("input[name=summary]").fill("Hello app, pushed by the browser test")
    form.locator("textarea[name=description]").fill("A repository made in the console.")
    form.locator("select[name=visibility]").select_option("private")
    form.get_by_test_id("repository-create").click()
    wait_for_path(page, f"/console/repo/{REPO}")
    expect(page.locator("body")).to_contain_text("Hello app, pushed by the browser test", timeout=EXPECT_TIMEOUT_MS)

    # 4. The addresses: one per region x network; the commands for the chosen one.
    picker = page.locator("select[name=address]")
    values = picker.locator("option").evaluate_all("options => options.map(o => o.value)")
    assert len(values) == 2, f"expected one address option per network (public, vpc): {values}"
    commands = {k: page.get_by_test_id(f"cmd-{k}").inner_text().strip() for k in ("login", "tag", "push", "pull")}
    assert commands["push"] == f"docker push {srv.address}/{REPO}:[tag]", commands
    assert commands["pull"] == f"docker pull {srv.address}/{REPO}:[tag]", commands
    assert commands["login"].startswith("docker login") and srv.address in commands["login"], commands
    assert f"{srv.address}/{REPO}:[tag]" in commands["tag"], commands
    assert copy_button_copies(page, "copy-push") == commands["push"]
    shot("03-repository")
    vpc = next(v for v in values if v.endswith(":vpc") or "vpc" in v)
    picker.select_option(vpc)
    expect(page.get_by_test_id("cmd-push")).to_have_text(f"docker push {VPC_HOST}/{REPO}:[tag]",
                                                         timeout=EXPECT_TIMEOUT_MS)
    shot("04-repository-vpc")
    image_ref = commands["push"].removeprefix("docker push ").replace("[tag]", TAG)

    # 5. The repository list and its search box.
    page.get_by_test_id("nav-repositories").click()
    wait_for_path(page, "/console/repositories")
    repo_link = page.locator(f'a[href$="/console/repo/{REPO}"]')
    expect(repo_link.first).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    page.locator("main input[name=q]").fill("hello")
    page.locator("main input[name=q]").press("Enter")
    page.wait_for_url(lambda url: "q=hello" in url)
    expect(repo_link.first).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    shot("05-repositories")
    page.locator("main input[name=q]").fill("no-such-repository-zz")
    page.locator("main input[name=q]").press("Enter")
    page.wait_for_url(lambda url: "q=no-such-repository-zz" in url)
    expect(repo_link).to_have_count(0, timeout=EXPECT_TIMEOUT_MS)

    # 6. Push an image with skopeo, to the reference the console printed.
    image = make_image("amd64", CREATED_BY, os.urandom(1_200_000))
    layout = write_oci_layout(tmp_path / "layout", TAG, image)
    digest_file = tmp_path / "pushed.digest"
    push = clients.sh('skopeo copy --quiet --dest-tls-verify=false --dest-creds "$1" --digestfile "$2" '
                      '"oci:$3:$4" "docker://$5"', f"{srv.user}:{srv.password}", str(digest_file), str(layout), TAG,
                      image_ref, timeout=120)
    assert push.returncode == 0, push.stderr
    pushed = digest_file.read_text().strip()
    inspect = clients.sh('skopeo inspect --tls-verify=false --creds "$1" "docker://$2"',
                         f"{srv.user}:{srv.password}", image_ref, timeout=60)
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["Digest"] == pushed

    # 7. The versions page: the tag, its digest, size and platform; then its layers.
    page.goto(f"/console/repo/{REPO}")
    page.get_by_test_id("tab-versions").click()
    wait_for_path(page, f"/console/repo/{REPO}/-/versions")
    row = version_row(page, TAG)
    expect(row).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    assert pushed in digest_shown(row.get_by_test_id("version-digest"))
    size = row.get_by_test_id("version-size").inner_text().strip()
    assert HUMAN_SIZE.match(size), size
    assert re.fullmatch(r"1[.,]2\d*\s*MB", size), f"{size!r} for a 1.2 MB image"
    assert row.get_by_test_id("platform").all_inner_texts() == ["linux/amd64"]
    shot("06-versions")
    row.get_by_test_id("version-link").click()
    wait_for_path(page, f"/console/repo/{REPO}/-/versions/{TAG}")
    layers = page.get_by_test_id("layer-row")
    expect(layers).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    expect(layers.first.get_by_test_id("layer-command")).to_contain_text("echo dockyard-console-e2e",
                                                                          timeout=EXPECT_TIMEOUT_MS)
    shot("07-version")

    # 8. A multi-architecture index: both platforms in the list and on its page.
    amd = make_image("amd64", "RUN echo built for amd64", b"amd64 payload")
    arm = make_image("arm64", "RUN echo built for arm64", b"arm64 payload", variant="v8")
    index_digest, _ = registry.push_index(REPO, MULTI_TAG, [amd, arm])
    page.goto(f"/console/repo/{REPO}/-/versions")
    row = version_row(page, MULTI_TAG)
    expect(row).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    assert index_digest in digest_shown(row.get_by_test_id("version-digest"))
    platforms = sorted(text.split()[0] for text in row.get_by_test_id("platform").all_inner_texts())
    assert platforms == ["linux/amd64", "linux/arm64/v8"], row.get_by_test_id("platform").all_inner_texts()
    for sort in ("name", "pushed"):
        page.get_by_test_id(f"sort-{sort}").first.click()
        page.wait_for_url(lambda url: f"sort={sort}" in url)
        expect(version_row(page, TAG)).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
        expect(version_row(page, MULTI_TAG)).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    shot("08-versions-two-tags")
    version_row(page, MULTI_TAG).get_by_test_id("version-link").click()
    wait_for_path(page, f"/console/repo/{REPO}/-/versions/{MULTI_TAG}")
    children = page.get_by_test_id("child-platform")
    expect(children).to_have_count(2, timeout=EXPECT_TIMEOUT_MS)
    texts = " | ".join(children.all_inner_texts())
    assert "linux/amd64" in texts and "linux/arm64/v8" in texts, texts
    shot("09-version-index")

    # 9. A temporary password: shown once, works for podman login, and stops working once revoked.
    page.get_by_test_id("nav-credentials").click()
    wait_for_path(page, "/console/credentials")
    form = form_with(page, "temp-create")
    form.locator("input[name=ttl_minutes]").fill("30")
    form.locator("input[name=description]").fill("browser e2e podman login")
    form.get_by_test_id("temp-create").click()
    secret_box = page.get_by_test_id("temp-secret")
    expect(secret_box).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    secret = secret_box.inner_text().strip()
    assert re.fullmatch(r"dkt_[0-9a-f]{32}_\S+", secret), secret
    temp_id = secret.split("_")[1]
    temp_row = page.locator(f'[data-testid="temp-row"][data-id="{temp_id}"]')
    expect(temp_row).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    expect(temp_row).to_contain_text("browser e2e podman login", timeout=EXPECT_TIMEOUT_MS)
    shot("10-credentials-temp")
    assert copy_button_copies(page, "copy-temp") == secret
    page.goto("/console/credentials")  # shown once: not on the next visit
    expect(page.get_by_test_id("temp-secret")).to_have_count(0, timeout=EXPECT_TIMEOUT_MS)
    assert secret not in page.content()
    login = podman_login(clients, srv.address, srv.user, secret)
    assert login.returncode == 0, f"podman login with the new temporary password: {login.stderr}"
    dialogs = confirm_and_click(page, temp_row.get_by_test_id("temp-revoke"))
    page.wait_for_load_state()
    expect(page.locator(f'[data-testid="temp-row"][data-id="{temp_id}"] [data-testid="temp-revoke"]')) \
        .to_have_count(0, timeout=EXPECT_TIMEOUT_MS)
    assert dialogs == ["confirm"], dialogs
    shot("11-credentials-revoked")
    login = podman_login(clients, srv.address, srv.user, secret)
    assert login.returncode != 0, f"podman login with a revoked temporary password succeeded: {login.stdout}"
    assert registry_status(srv, srv.user, secret) == 401

    # 10. Delete a tag from the versions page.
    page.goto(f"/console/repo/{REPO}/-/versions")
    expect(version_row(page, TAG)).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    dialogs = confirm_and_click(page, version_row(page, TAG).get_by_test_id("tag-delete"))
    expect(version_row(page, TAG)).to_have_count(0, timeout=EXPECT_TIMEOUT_MS)
    assert dialogs == ["confirm"], dialogs
    expect(version_row(page, MULTI_TAG)).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    assert registry.tags(REPO) == [MULTI_TAG]
    page.reload()
    expect(version_row(page, TAG)).to_have_count(0, timeout=EXPECT_TIMEOUT_MS)
    shot("12-versions-after-delete")

    # Pagination: 21 more tags (of the amd64 image) make two pages of 20.
    for i in range(21):
        registry.put_manifest(REPO, f"p{i:02d}", amd.manifest, OCI_MANIFEST)
    page.goto(f"/console/repo/{REPO}/-/versions?sort=name&order=asc&per_page=20")
    rows = page.get_by_test_id("version-row")
    expect(rows).to_have_count(20, timeout=EXPECT_TIMEOUT_MS)
    tags = [MULTI_TAG] + [f"p{i:02d}" for i in range(21)]
    assert [r.get_attribute("data-tag") for r in rows.all()] == tags[:20]
    # (the "Next →" link shares the page number's data-testid: click the number)
    page.get_by_test_id("page-2").filter(has_text=re.compile(r"^\s*2\s*$")).click()
    page.wait_for_url(lambda url: "page=2" in url)
    expect(rows).to_have_count(2, timeout=EXPECT_TIMEOUT_MS)
    assert [r.get_attribute("data-tag") for r in rows.all()] == tags[20:]
    shot("13-versions-page-2")

    # 11. Simplified Chinese, then back to English. The switch must be readable.
    switch = page.get_by_test_id("lang-switch")
    assert has_cjk(switch.inner_text()), f"the switch to Chinese is labelled {switch.inner_text()!r}"
    switch_colors = text_and_background(switch)  # checked at the end, so the rest of the flow runs first
    page.get_by_test_id("lang-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN", timeout=EXPECT_TIMEOUT_MS)
    wait_for_path(page, f"/console/repo/{REPO}/-/versions")  # the switch keeps the page
    assert has_cjk(page.inner_text("body"))
    assert has_cjk(page.get_by_test_id("nav-repositories").inner_text())
    shot("14-versions-zh")
    for path, name in ((f"/console/repo/{REPO}", "15-repository-zh"), ("/console/repositories", "16-repositories-zh"),
                       (f"/console/repo/{REPO}/-/versions/{MULTI_TAG}", "17-version-index-zh"),
                       ("/console/credentials", "18-credentials-zh"), ("/console/audit", "19-audit-zh")):
        page.goto(path)
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN", timeout=EXPECT_TIMEOUT_MS)
        assert has_cjk(page.inner_text("body")), path
        shot(name)
    page.get_by_test_id("lang-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", "en", timeout=EXPECT_TIMEOUT_MS)
    assert not has_cjk(page.get_by_test_id("nav-repositories").inner_text())

    # 12. The audit log has the tag deletion (and the filter finds it).
    page.get_by_test_id("nav-audit").click()
    wait_for_path(page, "/console/audit")
    rows = page.get_by_test_id("audit-row")
    expect(rows.first).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    # The console records the repository as the target and the tag in the details (the registry API
    # writes "NS/NAME:TAG" as the target); accept either.
    deletion = rows.filter(has_text="tag.delete").filter(has_text=REPO).filter(has_text=re.compile(rf"\b{re.escape(TAG)}\b"))
    expect(deletion).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    shot("20-audit")
    page.locator("input[name=action]").fill("tag.delete")
    page.locator("input[name=action]").press("Enter")
    page.wait_for_url(lambda url: "action=tag.delete" in url)
    expect(rows).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    expect(rows.first).to_contain_text(REPO, timeout=EXPECT_TIMEOUT_MS)
    expect(rows.first).to_contain_text("tag.delete", timeout=EXPECT_TIMEOUT_MS)

    # 13. The fixed registry password.
    page.get_by_test_id("nav-credentials").click()
    wait_for_path(page, "/console/credentials")
    fixed = "fixed-" + secrets.token_urlsafe(12)
    form = form_with(page, "password-set")
    form.locator("input[name=password]").fill(fixed)
    if form.locator("input[name=confirm]").count():  # the console asks for it twice
        form.locator("input[name=confirm]").fill(fixed)
    with page.expect_response(lambda r: r.request.method == "POST" and "/console/credentials/password" in r.url):
        form.get_by_test_id("password-set").click()
    page.wait_for_load_state()
    assert registry_status(srv, srv.user, fixed) == 200

    # 14. Log out: the console asks for a login again.
    page.get_by_test_id("logout").click()
    wait_for_path(page, "/console/login")
    page.goto("/console/repositories")
    wait_for_path(page, "/console/login")
    shot("21-logged-out")
    color, background = switch_colors
    assert color != background, f"the language switch's label is invisible: text {color} on {background}"


def test_console_http_checks(console_server: ServerProcess) -> None:
    """Redirects, a wrong password, the session cookie's attributes and CSRF, over plain HTTP."""
    srv = console_server
    with httpx.Client(base_url=srv.url, timeout=15, follow_redirects=False) as web:
        # `/` and `/console/` lead into the console (a visitor straight to the login page).
        for path in ("/", "/console/", "/console/repositories"):
            assert redirected_to(web, srv, path) == "/console/login", path

        page = web.get("/console/login")
        assert page.status_code == 200 and {"username", "password"} <= input_names(page.text)
        before = dict(web.cookies)

        # The right password: a session cookie, HttpOnly and SameSite=Lax.
        r = web.post("/console/login", data={**hidden_inputs(page.text), "username": srv.user,
                                             "password": srv.password})
        assert r.status_code in (302, 303), (r.status_code, r.text[:500])
        cookies = [cookie_attributes(h) for h in set_cookie_headers(r)]
        session = [c for c in cookies if c[0] not in before and c[1] and "httponly" in c[2]]
        assert session, f"no HttpOnly cookie set by logging in: {set_cookie_headers(r)}"
        for name, _, attrs in session:
            assert attrs.get("samesite", "").lower() == "lax", (name, attrs)
        session_names = {c[0] for c in session}
        r = web.get("/console/repositories")
        assert r.status_code == 200, (r.status_code, r.headers.get("location"))
        for path in ("/", "/console/"):
            target = redirected_to(web, srv, path)
            assert target.startswith("/console/") and target != "/console/login", (path, target)

        # A wrong password: the form again, with an error, and no session.
        with httpx.Client(base_url=srv.url, timeout=15, follow_redirects=False) as stranger:
            page = stranger.get("/console/login")
            r = stranger.post("/console/login", data={**hidden_inputs(page.text), "username": srv.user,
                                                      "password": "not-the-password"})
            assert r.status_code in (200, 400, 401, 403, 422), (r.status_code, r.headers.get("location"))
            assert {"username", "password"} <= input_names(r.text)
            assert 'data-testid="login-error"' in r.text, r.text[:2000]
            set_now = [cookie_attributes(h) for h in set_cookie_headers(r)]
            assert not [c for c in set_now if c[0] in session_names and c[1]], set_now
            assert not session_names & set(stranger.cookies.keys())
            r = stranger.get("/console/repositories")
            assert r.status_code in (302, 303, 307) and "/console/login" in r.headers["location"]

        # A form posted without its CSRF token (or with a wrong one) is refused.
        page = web.get("/console/namespaces")
        assert page.status_code == 200
        tokens = {k: v for k, v in hidden_inputs(page.text).items() if "csrf" in k.lower()}
        assert tokens, "no CSRF field on /console/namespaces"
        r = web.post("/console/namespaces", data={"name": "csrf-probe", "description": "must not exist"})
        assert r.status_code == 403, (r.status_code, r.text[:300])
        r = web.post("/console/namespaces", data={**{k: "x" + v for k, v in tokens.items()}, "name": "csrf-probe"})
        assert r.status_code == 403, (r.status_code, r.text[:300])
        r = web.post("/console/logout")
        assert r.status_code == 403, (r.status_code, r.text[:300])
        r = web.get("/console/namespaces/csrf-probe")
        assert r.status_code == 404, (r.status_code, r.text[:300])
        r = web.get("/console/repositories")
        assert r.status_code == 200, "the refused logout must not have ended the session"
