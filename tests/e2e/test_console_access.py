"""The web console with a keyboard only, on a narrow screen, and its basic accessibility, in Debian's
chromium (Playwright) against a real `dockyard serve` of this module's own.

- test_keyboard_only: log in, follow the skip link, walk the header in Tab order, change the
  registry address and copy commands (Enter and Space), delete a tag through its confirm() dialog:
  no mouse; every element focused by Tab shows a focus outline (:focus-visible, at least 2 px,
  3:1 against the background around it). 36-keyboard-focus-trail.txt lists where the focus went.
- test_narrow_screen: 390x844 pages (repositories, a repository, its versions with a multi-arch
  tag, a version, the same and the multi-arch one in Simplified Chinese) have no horizontal page
  scroll and nothing cut off (a table in a .table-wrap may scroll by itself); screenshots
  30-narrow-*.png to 35-narrow-*.png in test-artifacts/console/.
- test_basic_accessibility: on every main page (and the login, error and shown-once secret pages),
  form fields have accessible names, one <h1>, one <main>, <html lang>, images with alt, links and
  buttons with names, aria references that resolve, unique ids.

Run: .venv/bin/python -m pytest tests/e2e/test_console_access.py   (or scripts/test -k console)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ServerProcess
from tests.e2e.access_helpers import stores
from tests.e2e.browser import (
    log_in,
    skip_without_browser,
    EXPECT_TIMEOUT_MS,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Image,
    SCREENSHOTS,
    PageWatch,
    Registry,
    browsing_on,
    chromium_browser,
    console_server_process,
    descriptor,
    dumps,
    has_cjk,
    make_image,
    make_layer,
    path_of,
    screenshot,
    screenshot_on_failure,
    wait_until,
)

pytestmark = pytest.mark.e2e

skip_without_browser()

from playwright.sync_api import expect  # noqa: E402

VPC_HOST = "registry-vpc.access-e2e.test:5000"
NAMESPACE = "a11y"
REPO = f"{NAMESPACE}/storefront-web-frontend"
TAG = "2024.05.1-bookworm-slim"
MULTI_TAG = "multi"
DOOMED_TAG = "delete-me-by-keyboard"
NARROW = {"width": 390, "height": 844}
MAX_TABS = 40  # Tab presses to reach any one element (bounded)


# -- fixtures ---------------------------------------------------------------------------------------
def labelled_image() -> Image:
    """A single-arch image with what makes a version page wide: labels, a long layer command, Env."""
    command = ("/bin/sh -c apt-get update && apt-get install -y --no-install-recommends ca-certificates curl "
               "&& curl -fsSL https://downloads.example.com/releases/storefront/2024.05.1/"
               "storefront-web-frontend-2024.05.1-linux-amd64.tar.gz | tar -xz -C /usr/local/bin")
    layer, diff_id = make_layer({"srv/app.js": b"console.log('storefront');\n" * 4000})
    config = dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-05-01T12:00:00Z",
        "config": {"Cmd": ["/usr/local/bin/storefront", "--listen", "0.0.0.0:8080"], "WorkingDir": "/srv/app",
                   "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "STOREFRONT_UPSTREAM=https://api.internal.example.com/v2/storefront/catalogue"],
                   "Labels": {"org.opencontainers.image.source":
                              "https://github.com/example-organisation/storefront-web-frontend-service",
                              "org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567"}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2024-05-01T12:00:00Z", "created_by": command}],
    })
    manifest = dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                      "layers": [descriptor(OCI_LAYER, layer)]})
    return Image(manifest, config, [layer], {"os": "linux", "architecture": "amd64"})


@pytest.fixture(scope="module")
def access_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with two addresses (public, VPC), one repository, a tagged image, a multi-arch
    index and a tag to delete."""
    with console_server_process(tmp_path_factory.mktemp("console-access") / "data", VPC_HOST) as proc:
        with stores(proc) as svc:
            svc.namespaces.create(NAMESPACE, "Accessibility checks (browser e2e)", public=False, auto_create=True)
            svc.namespaces.create_repository(REPO, "The shop's web front end, checked with a keyboard and a phone",
                                             "Built by CI from the main branch.\nTags follow the release dates.",
                                             None)
        registry = Registry(proc.url, proc.user, proc.password)
        try:
            registry.push_image(REPO, TAG, labelled_image())
            amd = make_image("amd64", "RUN echo built for amd64", b"amd64 payload")
            arm = make_image("arm64", "RUN echo built for arm64", b"arm64 payload", variant="v8")
            registry.push_index(REPO, MULTI_TAG, [amd, arm])
            registry.put_manifest(REPO, DOOMED_TAG, amd.manifest, OCI_MANIFEST)
        finally:
            registry.close()
        yield proc


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture
def browsing(browser: Any, access_server: ServerProcess) -> Iterator[tuple[Any, Any, PageWatch]]:
    """(context, page, watch): a fresh profile on the server (1280x900, clipboard allowed), closed after."""
    with browsing_on(browser, access_server.url) as found:
        yield found


# -- helpers ----------------------------------------------------------------------------------------
_FOCUSED_JS = """() => {
  const e = document.activeElement;
  if (!e || e === document.body || e === document.documentElement) return null;
  const s = getComputedStyle(e), r = e.getBoundingClientRect();
  const row = e.closest("[data-tag]");
  // The outline is drawn around the element: on the background of what is shown just beside it
  // (for a positioned element such as the skip link, not necessarily its parent).
  const gap = (parseFloat(s.outlineOffset) || 0) + (parseFloat(s.outlineWidth) || 0) / 2;
  const y = Math.min(Math.max(r.top + r.height / 2, 0), innerHeight - 1);
  const x = r.left - gap >= 0 ? r.left - gap : Math.min(r.right + gap, innerWidth - 1);
  let around = "rgb(255, 255, 255)";
  for (let n = document.elementFromPoint(x, y) || e.parentElement; n && n.nodeType === 1; n = n.parentElement) {
    const bg = getComputedStyle(n).backgroundColor;
    if (n !== e && bg && bg !== "transparent" && !/^rgba\\(.*,\\s*0\\)$/.test(bg)) { around = bg; break; }
  }
  return {tag: e.tagName.toLowerCase(), testid: e.getAttribute("data-testid"), id: e.id || null,
          name: e.getAttribute("name"), cls: e.getAttribute("class") || "", href: e.getAttribute("href"),
          text: (e.innerText || e.value || "").trim().slice(0, 60), row: row ? row.getAttribute("data-tag") : null,
          focusVisible: e.matches(":focus-visible"), outlineStyle: s.outlineStyle,
          outlineWidth: parseFloat(s.outlineWidth) || 0, outlineColor: s.outlineColor, around: around,
          onScreen: r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0
                    && r.left < innerWidth && r.top < innerHeight};
}"""


def focused(page: Any) -> dict[str, Any] | None:
    """What has the focus (None for the document itself), with its focus styling."""
    return page.evaluate(_FOCUSED_JS)  # type: ignore[no-any-return]


def _luminance(css_color: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"[\d.]+", css_color)[:3])
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two computed colours (rgb()/rgba(), alpha ignored)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def describe(f: dict[str, Any] | None) -> str:
    if f is None:
        return "<body>"
    return f"<{f['tag']}{' ' + f['testid'] if f['testid'] else ''}{' #' + f['id'] if f['id'] else ''}> {f['text']!r}"


class Keyboard:
    """Tab through a page like a keyboard user, remembering every element the focus visited."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.visited: list[dict[str, Any]] = []

    def tab(self) -> dict[str, Any] | None:
        self.page.keyboard.press("Tab")
        now = focused(self.page)
        if now is not None:
            self.visited.append(now)
        return now

    def tab_to(self, wanted: Any, what: str) -> dict[str, Any]:
        """Press Tab until `wanted(focused)` holds (at most MAX_TABS presses); returns the element."""
        now = focused(self.page)
        trail = []
        for _ in range(MAX_TABS):
            if now is not None and wanted(now):
                return now
            now = self.tab()
            trail.append(describe(now))
        if now is not None and wanted(now):
            return now
        raise AssertionError(f"{MAX_TABS} Tabs on {self.page.url} never reached {what}; focus went: "
                             + " -> ".join(trail))

    def unstyled(self) -> list[str]:
        """Elements that had the keyboard focus without a visible focus outline: none, thinner than
        2 px, off screen, or under 3:1 against the background around it (WCAG 1.4.11)."""
        return [f"{describe(f)}: :focus-visible={f['focusVisible']}, outline {f['outlineStyle']} "
                f"{f['outlineWidth']}px {f['outlineColor']} on {f['around']} "
                f"({contrast(f['outlineColor'], f['around']):.1f}:1), on screen={f['onScreen']}"
                for f in self.visited
                if not (f["focusVisible"] and f["outlineStyle"] != "none" and f["outlineWidth"] >= 2
                        and f["onScreen"] and contrast(f["outlineColor"], f["around"]) >= 3)]


def by_testid(testid: str) -> Any:
    return lambda f: f["testid"] == testid


def login_with_mouse(page: Any, srv: ServerProcess) -> None:
    log_in(page, srv.user, srv.password)


def clipboard(page: Any) -> str:
    return str(page.evaluate("navigator.clipboard.readText()")).strip()


def clipboard_becomes(page: Any, expected: str) -> str:
    """The clipboard once it holds `expected` (the copy is asynchronous: bounded wait)."""
    return str(wait_until(lambda: clipboard(page) == expected and expected, timeout=5) or clipboard(page))


# What a narrow screen must not do: widen the page, or cut something off. An element may stick out
# of a box that scrolls by itself (a .table-wrap, a command line); not out of the page, nor out of a
# box that hides its overflow.
_NARROW_JS = """() => {
  const problems = [], width = document.documentElement.clientWidth;
  const doc = document.documentElement;
  if (doc.scrollWidth > innerWidth + 1)
    problems.push(`the page scrolls sideways: scrollWidth ${doc.scrollWidth} > innerWidth ${innerWidth}`);
  const label = e => `<${e.tagName.toLowerCase()}${e.className && typeof e.className === "string" ? "." +
    e.className.trim().replace(/\\s+/g, ".") : ""}> "${(e.innerText || "").trim().slice(0, 40)}"`;
  // Hidden on purpose (screen-reader text, the skip link until focused): may be clipped, but must
  // not widen the page either.
  const hidden = e => e.closest(".visually-hidden, .skip, [hidden]") !== null;
  for (const e of document.body.querySelectorAll("*")) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const s = getComputedStyle(e);
    if (s.display === "none") continue;
    // The box that clips it: an ancestor whose overflow is not visible, on its containing-block
    // chain (an absolutely positioned box escapes a scroller that is not positioned).
    let clipper = null;
    const start = s.position === "fixed" ? null : s.position === "absolute" ? e.offsetParent : e.parentElement;
    for (let p = start; p && p !== document.body && p !== doc; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible") { clipper = p; break; }
    }
    if (clipper === null) {
      if (r.right > width + 1 || (r.left < -1 && !hidden(e)))
        problems.push(`${label(e)} sticks out of the page: ${Math.round(r.left)}..${Math.round(r.right)} `
                      + `of ${width}px`);
    } else if (!hidden(e)) {
      const c = clipper.getBoundingClientRect(), o = getComputedStyle(clipper).overflowX;
      if ((o === "hidden" || o === "clip") && (r.right > c.right + 1 || r.left < c.left - 1))
        problems.push(`${label(e)} is cut off by ${label(clipper)} (overflow ${o})`);
    }
    if (!hidden(e) && (s.overflowX === "hidden" || s.overflowX === "clip") && e.scrollWidth > e.clientWidth + 1)
      problems.push(`${label(e)} hides ${e.scrollWidth - e.clientWidth}px of its content`);
  }
  // A table may scroll inside a .table-wrap; elsewhere it must fit its box.
  for (const t of document.querySelectorAll("table")) {
    if (!t.closest(".table-wrap") && t.offsetWidth > t.parentElement.clientWidth + 1)
      problems.push(`${label(t)} is ${t.offsetWidth}px wide in a ${t.parentElement.clientWidth}px box `
                    + "(not in a .table-wrap)");
  }
  return problems;
}"""


_A11Y_JS = """() => {
  const problems = [];
  const text = n => (n ? n.textContent : "").replace(/\\s+/g, " ").trim();
  const label = e => `<${e.tagName.toLowerCase()}${e.name ? " name=" + e.name : ""}${e.id ? " #" + e.id : ""}>`;
  const lang = document.documentElement.getAttribute("lang");
  if (!lang || !lang.trim()) problems.push("<html> has no lang");
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(`${h1} <h1> elements (want exactly one)`);
  const mains = document.querySelectorAll("main").length;
  if (mains !== 1) problems.push(`${mains} <main> elements (want exactly one)`);
  if (!document.title.trim()) problems.push("no <title>");
  for (const img of document.querySelectorAll("img"))
    if (!img.hasAttribute("alt")) problems.push(`<img src=${img.getAttribute("src")}> has no alt`);
  // The name of a field: aria-labelledby, aria-label, or a <label> (wrapping it or for= it),
  // counting only the label's own words (not the options of a <select> it wraps).
  const labelText = l => {
    const copy = l.cloneNode(true);
    copy.querySelectorAll("input, select, textarea").forEach(n => n.remove());
    return text(copy);
  };
  for (const f of document.querySelectorAll("input, select, textarea")) {
    if (f.type === "hidden") continue;
    const by = (f.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean)
      .map(id => text(document.getElementById(id))).join(" ").trim();
    const aria = (f.getAttribute("aria-label") || "").trim();
    const labels = Array.from(f.labels || []).map(labelText).join(" ").trim();
    if (!by && !aria && !labels) problems.push(`${label(f)} has no accessible name (no <label>, no aria-label)`);
  }
  for (const e of document.querySelectorAll("a[href], button, summary")) {
    const name = (e.getAttribute("aria-label") || "").trim() || text(e) || (e.getAttribute("title") || "").trim();
    if (!name) problems.push(`${label(e)} (a link or button) has no name`);
  }
  for (const e of document.querySelectorAll("[aria-labelledby], [aria-describedby], [aria-controls]"))
    for (const attr of ["aria-labelledby", "aria-describedby", "aria-controls"])
      for (const id of (e.getAttribute(attr) || "").split(/\\s+/).filter(Boolean))
        if (!document.getElementById(id)) problems.push(`${label(e)} has ${attr}="${id}": no such element`);
  const ids = {};
  for (const e of document.querySelectorAll("[id]")) ids[e.id] = (ids[e.id] || 0) + 1;
  for (const [id, n] of Object.entries(ids)) if (n > 1) problems.push(`id "${id}" is used ${n} times`);
  return problems;
}"""


# -- tests ------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_keyboard_only(browsing: tuple[Any, Any, PageWatch], access_server: ServerProcess) -> None:
    _, page, watch = browsing
    with screenshot_on_failure(page, "access-keyboard"):
        _keyboard(page, access_server)
    watch.assert_clean()


def _keyboard(page: Any, srv: ServerProcess) -> None:
    keys = Keyboard(page)

    # 1. Log in: the user name field has the focus (autofocus); type, Tab, type, Enter.
    page.goto("/console/login")
    expect(page.locator("input[name=username]")).to_be_focused(timeout=EXPECT_TIMEOUT_MS)
    page.keyboard.type(srv.user)
    password_field = keys.tab()
    assert password_field is not None and password_field["name"] == "password", describe(password_field)
    page.keyboard.type(srv.password)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: not path_of(url).startswith("/console/login"))
    expect(page.get_by_test_id("logout")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)

    # 2. The first Tab on a page focuses "Skip to content", shown on screen; Enter moves the focus
    # to <main>, and the next Tab lands inside it.
    page.goto("/console/repositories")
    first = keys.tab()
    assert first is not None and "skip" in first["cls"].split(), f"first Tab focused {describe(first)}"
    assert first["href"] == "#main" and first["onScreen"], first
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused(timeout=EXPECT_TIMEOUT_MS)
    inside = keys.tab()
    assert inside is not None and page.evaluate("document.querySelector('main').contains(document.activeElement)"), \
        f"Tab after the skip link went to {describe(inside)}, outside <main>"

    # 3. The header in Tab order: the nav links, the language switch, the log-out button.
    page.goto("/console/repositories")
    header: list[str] = []
    for _ in range(MAX_TABS):
        now = keys.tab()
        assert now is not None, f"Tab left the page after {header}"
        if now["testid"]:
            header.append(now["testid"])
        if now["testid"] == "logout":
            break
    wanted = ["nav-repositories", "nav-namespaces", "nav-credentials", "nav-audit", "nav-users", "lang-switch",
              "logout"]
    assert [t for t in header if t in wanted] == wanted, f"header Tab order: {header}"
    logout_focus = focused(page)
    assert logout_focus is not None and logout_focus["testid"] == "logout"

    # 4. A repository: pick the VPC address with the arrow keys, copy commands with Enter and Space.
    page.goto(f"/console/repo/{REPO}")
    select = page.get_by_test_id("address-select")
    push = page.get_by_test_id("cmd-push")
    expect(push).to_have_text(f"docker push {srv.address}/{REPO}:[tag]", timeout=EXPECT_TIMEOUT_MS)
    before = select.input_value()  # the public address first, then the VPC one
    keys.tab_to(by_testid("address-select"), "the address select")
    page.keyboard.press("ArrowDown")
    assert select.input_value() != before, "ArrowDown did not change the address select"
    expect(push).to_have_text(f"docker push {VPC_HOST}/{REPO}:[tag]", timeout=EXPECT_TIMEOUT_MS)
    expect(select).to_be_focused(timeout=EXPECT_TIMEOUT_MS)  # the swap of the commands keeps the focus
    page.evaluate("navigator.clipboard.writeText('')")
    keys.tab_to(by_testid("copy-push"), "the push command's copy button")
    # A screen reader hears which command a copy button copies (its description).
    expect(page.get_by_test_id("copy-push")).to_have_accessible_description(push.inner_text().strip(),
                                                                            timeout=EXPECT_TIMEOUT_MS)
    page.keyboard.press("Enter")
    assert clipboard_becomes(page, push.inner_text().strip()) == push.inner_text().strip()
    pull = page.get_by_test_id("cmd-pull").inner_text().strip()
    assert VPC_HOST in pull, pull
    keys.tab_to(by_testid("copy-pull"), "the pull command's copy button")
    page.keyboard.press("Space")
    assert clipboard_becomes(page, pull) == pull
    screenshot(page, "36-keyboard-repository-copied")

    # 5. Delete a tag: Tab to its Delete button, Enter, accept the confirm().
    page.goto(f"/console/repo/{REPO}/-/versions?sort=name&order=asc")
    doomed = page.locator(f'[data-testid="version-row"][data-tag="{DOOMED_TAG}"]')
    expect(doomed).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)
    keys.tab_to(lambda f: f["testid"] == "tag-delete" and f["row"] == DOOMED_TAG, f"the Delete button of {DOOMED_TAG}")
    dialogs: list[tuple[str, str]] = []

    def accept(dialog: Any) -> None:
        dialogs.append((dialog.type, dialog.message))
        dialog.accept()

    page.once("dialog", accept)
    page.keyboard.press("Enter")
    expect(doomed).to_have_count(0, timeout=EXPECT_TIMEOUT_MS)
    assert len(dialogs) == 1 and dialogs[0][0] == "confirm" and DOOMED_TAG in dialogs[0][1], dialogs
    expect(page.locator(f'[data-testid="version-row"][data-tag="{TAG}"]')).to_have_count(1, timeout=EXPECT_TIMEOUT_MS)

    # Every element the keyboard focused showed it (the trail is kept next to the screenshots).
    (SCREENSHOTS / "36-keyboard-focus-trail.txt").write_text("".join(
        f"{describe(f)}  outline {f['outlineStyle']} {f['outlineWidth']}px {f['outlineColor']} on {f['around']} "
        f"({contrast(f['outlineColor'], f['around']):.1f}:1)\n" for f in keys.visited))
    assert len(keys.visited) >= 15, [describe(f) for f in keys.visited]
    problems = keys.unstyled()
    assert not problems, "focused without a visible outline:\n" + "\n".join(problems)


@pytest.mark.timeout(120)
def test_narrow_screen(browsing: tuple[Any, Any, PageWatch], access_server: ServerProcess) -> None:
    _, page, watch = browsing
    page.set_viewport_size(NARROW)
    with screenshot_on_failure(page, "access-narrow"):
        login_with_mouse(page, access_server)
        problems: list[str] = []
        pages = [("/console/repositories", "30-narrow-repositories"),
                 (f"/console/repo/{REPO}", "31-narrow-repository"),
                 (f"/console/repo/{REPO}/-/versions", "32-narrow-versions"),
                 (f"/console/repo/{REPO}/-/versions/{TAG}", "33-narrow-version"),
                 (f"/console/lang/zh-CN?next=/console/repo/{REPO}/-/versions/{TAG}", "34-narrow-version-zh"),
                 (f"/console/repo/{REPO}/-/versions/{MULTI_TAG}", "35-narrow-version-index-zh")]
        for path, name in pages:
            page.goto(path)
            expect(page.locator("main h1")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
            if name.endswith("-zh"):
                expect(page.locator("html")).to_have_attribute("lang", "zh-CN", timeout=EXPECT_TIMEOUT_MS)
                assert has_cjk(page.inner_text("main")), path
            if "versions" in name:
                expect(page.locator(f'[data-testid="version-row"][data-tag="{MULTI_TAG}"]')).to_have_count(1)
            assert page.evaluate("innerWidth") == NARROW["width"]
            problems += [f"{name}: {p}" for p in page.evaluate(_NARROW_JS)]
            screenshot(page, name)
    assert not problems, "at 390 px wide:\n" + "\n".join(problems)
    assert not watch.server_errors and not watch.page_errors, (watch.server_errors, watch.page_errors)


@pytest.mark.timeout(120)
def test_basic_accessibility(browsing: tuple[Any, Any, PageWatch], access_server: ServerProcess) -> None:
    _, page, watch = browsing
    problems: list[str] = []

    def check(path: str | None, lang: str = "en") -> None:
        if path is not None:
            page.goto(path)
        expect(page.locator("html")).to_have_attribute("lang", lang, timeout=EXPECT_TIMEOUT_MS)
        problems.extend(f"{path_of(page.url)}: {p}" for p in page.evaluate(_A11Y_JS))

    with screenshot_on_failure(page, "access-a11y"):
        check("/console/login")
        login_with_mouse(page, access_server)
        for path in ("/console/repositories", f"/console/repositories?namespace={NAMESPACE}", "/console/namespaces",
                     f"/console/namespaces/{NAMESPACE}", f"/console/repo/{REPO}", f"/console/repo/{REPO}/-/versions",
                     f"/console/repo/{REPO}/-/versions/{TAG}", f"/console/repo/{REPO}/-/versions/{MULTI_TAG}",
                     f"/console/repo/{REPO}/-/settings", "/console/credentials", "/console/audit", "/console/users"):
            check(path)
        # The pages that show a secret once: a new temporary password, a new robot account.
        page.goto("/console/credentials")
        page.locator("input[name=description]").fill("a11y check")
        page.get_by_test_id("temp-create").click()
        expect(page.get_by_test_id("temp-secret")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
        check(None)
        page.goto(f"/console/namespaces/{NAMESPACE}")
        page.locator("input[name=robot]").fill("a11y-bot")
        page.get_by_test_id("robot-create").click()
        expect(page.get_by_test_id("robot-secret")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
        check(None)
        # An error page, and a page in Chinese.
        response = page.goto(f"/console/repo/{NAMESPACE}/no-such-repository")
        assert response is not None and response.status == 404, response and response.status
        check(None)
        page.goto(f"/console/lang/zh-CN?next=/console/repo/{REPO}/-/versions")
        check(None, "zh-CN")
        assert re.search(r"[\u4e00-\u9fff]", page.inner_text("main"))
    assert not problems, "accessibility problems:\n" + "\n".join(problems)
    assert not watch.server_errors and not watch.page_errors, (watch.server_errors, watch.page_errors)
