"""Helpers for the web console's browser tests (tests/e2e/test_console_browser.py): Debian's
chromium driven by Playwright for Python (no browser is ever downloaded), screenshots under
test-artifacts/console/, hand-made OCI images (an OCI layout on disk for skopeo, and manifests
pushed straight over the registry API with httpx), and a small HTML form reader for the
console's CSRF checks through httpx.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.access_helpers import ARTIFACTS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
SCREENSHOTS = ARTIFACTS / "console"
# Every wait in the browser is bounded by these (milliseconds).
ACTION_TIMEOUT_MS = 15_000
NAVIGATION_TIMEOUT_MS = 20_000
EXPECT_TIMEOUT_MS = 10_000

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
HUMAN_SIZE = re.compile(r"^\d+(?:[.,]\d+)?\s*(?:B|kB|KB|MB|GB|KiB|MiB|GiB)$")


def chromium_missing_reason() -> str | None:
    """Why the browser tests cannot run here (None when they can). In CI they must not be skipped."""
    if CHROMIUM.exists():
        return None
    return f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk, or run through scripts/test)"


def launch_chromium(playwright: Any) -> Any:
    """Debian's chromium, headless, with nothing that reaches out to the network on its own."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                                      timeout=60_000)


@contextlib.contextmanager
def console_server_process(data: Path, vpc_host: str) -> Iterator[Any]:
    """A real `dockyard serve` on a free port whose one region has two addresses: itself (public)
    and `vpc_host` (VPC), so the console's address picker has something to switch to."""
    from tests.conftest import ServerProcess, free_port

    port = free_port()
    regions = [{"name": "local", "label": "Local test region", "public": f"127.0.0.1:{port}", "vpc": vpc_host}]
    proc = ServerProcess(data, port, "e2e-" + uuid.uuid4().hex[:12], env={"DOCKYARD_REGIONS": json.dumps(regions)})
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


@contextlib.contextmanager
def chromium_browser() -> Iterator[Any]:
    """Debian's chromium under Playwright, for a module-scoped fixture (fails when CI lacks it)."""
    reason = chromium_missing_reason()
    if reason:
        import pytest

        pytest.fail(f"CI is set and {reason}")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@contextlib.contextmanager
def browsing_on(browser: Any, base_url: str) -> Iterator[tuple[Any, Any, "PageWatch"]]:
    """(context, page, watch): a fresh profile on a server, closed afterwards."""
    context = new_context(browser, base_url)
    try:
        page = context.new_page()
        watch = PageWatch()
        watch.attach(page)
        yield context, page, watch
    finally:
        context.close()


def new_context(browser: Any, base_url: str, locale: str = "en-US") -> Any:
    """A fresh browser profile (cookies, storage) with bounded waits and clipboard access."""
    context = browser.new_context(base_url=base_url, locale=locale, viewport={"width": 1280, "height": 900},
                                  extra_http_headers={"Accept-Language": f"{locale},en;q=0.5"})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    return context


def screenshot(page: Any, name: str) -> Path:
    """A full-page PNG under test-artifacts/console/ (name without the extension)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, timeout=ACTION_TIMEOUT_MS)
    assert path.stat().st_size > 1000, f"screenshot {path} is suspiciously small"
    return path


_OVERFLOW_JS = """() => Array.from(document.querySelectorAll("table"))
  .filter(t => t.offsetWidth > t.parentElement.clientWidth + 1)
  .map(t => `table "${(t.querySelector("th") || t).textContent.trim().slice(0, 20)}..." is ${t.offsetWidth}px `
          + `wide in a ${t.parentElement.clientWidth}px box`)"""


@dataclass
class PageWatch:
    """What went wrong in the page while a test drove it: uncaught script errors, console errors,
    server errors (5xx answers) and, at each screenshot, tables too wide for their box."""

    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    layout: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("console", lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None)
        page.on("response", lambda r: self.server_errors.append(f"{r.request.method} {r.url} -> {r.status}")
                if r.status >= 500 else None)

    def check_layout(self, page: Any, name: str) -> None:
        """Remember tables wider than the box they sit in (clipped columns) at this page."""
        self.layout += [f"{name} ({page.url}): {problem}" for problem in page.evaluate(_OVERFLOW_JS)]

    def assert_clean(self) -> None:
        assert not self.server_errors, f"server errors while browsing: {self.server_errors}"
        assert not self.page_errors, f"uncaught script errors in the console pages: {self.page_errors}"
        assert not self.layout, "tables wider than their box at 1280 px (columns clipped):\n" + "\n".join(self.layout)


@contextlib.contextmanager
def screenshot_on_failure(page: Any, name: str) -> Iterator[None]:
    """Save FAILED-NAME.png and .html (the page as it was) when the block raises."""
    for stale in (SCREENSHOTS / f"FAILED-{name}.png", SCREENSHOTS / f"FAILED-{name}.html"):
        stale.unlink(missing_ok=True)
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            screenshot(page, f"FAILED-{name}")
            (SCREENSHOTS / f"FAILED-{name}.html").write_text(page.content())
        raise


_COLORS_JS = """e => {
  const color = getComputedStyle(e).color;
  let node = e, background = "rgba(0, 0, 0, 0)";
  while (node && node.nodeType === 1) {
    const bg = getComputedStyle(node).backgroundColor;
    if (bg && bg !== "transparent" && !/^rgba\\(.*,\\s*0\\)$/.test(bg)) { background = bg; break; }
    node = node.parentElement;
  }
  return [color, background];
}"""


def text_and_background(locator: Any) -> tuple[str, str]:
    """The computed text colour of an element and the first opaque background behind it."""
    color, background = locator.evaluate(_COLORS_JS)
    return str(color), str(background)


def has_cjk(text: str) -> bool:
    return bool(CJK.search(text))


def path_of(url: str) -> str:
    return httpx.URL(url).path


# -- images ---------------------------------------------------------------------------------------
def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def make_layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzipped tar of `files` (reproducible); returns (blob, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o755, 1700000000
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), sha256(tar_bytes)


def make_config(os_: str, arch: str, diff_ids: list[str], created_by: list[str], variant: str | None = None) -> bytes:
    config: dict[str, Any] = {
        "architecture": arch, "os": os_, "created": "2024-05-01T12:00:00Z",
        "config": {"Cmd": ["/hello"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-05-01T12:00:00Z", "created_by": c} for c in created_by],
    }
    if variant:
        config["variant"] = variant
    return dumps(config)


@dataclass
class Image:
    """One image manifest and its blobs."""

    manifest: bytes
    config: bytes
    layers: list[bytes]
    platform: dict[str, str]

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def size(self) -> int:
        """Config plus layers (what registries show as an image's size)."""
        return len(self.config) + sum(len(layer) for layer in self.layers)

    def descriptor(self) -> dict[str, Any]:
        return descriptor(OCI_MANIFEST, self.manifest, platform=self.platform)


def make_image(arch: str, created_by: str, payload: bytes, variant: str | None = None) -> Image:
    layer, diff_id = make_layer({"hello": payload})
    config = make_config("linux", arch, [diff_id], [created_by], variant)
    manifest = dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                      "layers": [descriptor(OCI_LAYER, layer)]})
    platform = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
    return Image(manifest, config, [layer], platform)


def write_oci_layout(root: Path, tag: str, image: Image) -> Path:
    """An OCI image layout at `root` holding `image` under `tag` (for `skopeo copy oci:ROOT:TAG`)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for blob in (image.manifest, image.config, *image.layers):
        (blobs / sha256(blob).removeprefix("sha256:")).write_bytes(blob)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [descriptor(OCI_MANIFEST, image.manifest,
                                      annotations={"org.opencontainers.image.ref.name": tag})]}
    (root / "index.json").write_text(json.dumps(index))
    return root


class Registry:
    """The /v2 API of a running server, with Basic credentials."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.client = httpx.Client(base_url=url, auth=(user, password), timeout=30)

    def close(self) -> None:
        self.client.close()

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        if self.client.head(f"/v2/{repo}/blobs/{digest}").status_code == 200:
            return digest
        r = self.client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data,
                             headers={"Content-Type": "application/octet-stream"})
        if r.status_code == 202:  # no monolithic POST: finish the session with a PUT
            location = r.headers["location"]
            r = self.client.put(location, params={"digest": digest}, content=data,
                                headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, (r.status_code, r.text)
        return digest

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        r = self.client.put(f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type})
        assert r.status_code == 201, (r.status_code, r.text)
        assert r.headers["docker-content-digest"] == sha256(body)
        return sha256(body)

    def push_image(self, repo: str, reference: str, image: Image) -> str:
        for blob in (image.config, *image.layers):
            self.push_blob(repo, blob)
        return self.put_manifest(repo, reference, image.manifest, OCI_MANIFEST)

    def push_index(self, repo: str, tag: str, images: list[Image]) -> tuple[str, bytes]:
        for image in images:
            self.push_image(repo, image.digest, image)
        body = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [i.descriptor() for i in images]})
        return self.put_manifest(repo, tag, body, OCI_INDEX), body

    def tags(self, repo: str) -> list[str]:
        r = self.client.get(f"/v2/{repo}/tags/list")
        assert r.status_code == 200, (r.status_code, r.text)
        return list(r.json().get("tags") or [])

    def manifest_digest(self, repo: str, reference: str) -> str:
        r = self.client.head(f"/v2/{repo}/manifests/{reference}",
                             headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"})
        assert r.status_code == 200, (r.status_code, r.text)
        return r.headers["docker-content-digest"]


# -- forms, for the httpx checks ------------------------------------------------------------------
class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hidden: dict[str, str] = {}
        self.names: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("input", "textarea", "select") and a.get("name"):
            self.names.add(str(a["name"]))
            if tag == "input" and (a.get("type") or "").lower() == "hidden":
                self.hidden[str(a["name"])] = a.get("value") or ""


def hidden_inputs(html: str) -> dict[str, str]:
    """name -> value of every hidden input on a page (the CSRF token among them)."""
    parser = _Inputs()
    parser.feed(html)
    return parser.hidden


def input_names(html: str) -> set[str]:
    parser = _Inputs()
    parser.feed(html)
    return parser.names


def csrf_fields(html: str) -> dict[str, str]:
    """The hidden inputs that look like a CSRF token."""
    return {k: v for k, v in hidden_inputs(html).items() if "csrf" in k.lower() or "token" in k.lower()}


def set_cookie_headers(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def cookie_attributes(header: str) -> tuple[str, str, dict[str, str]]:
    """`name=value; Attr; Attr=x` -> (name, value, {attr lowercased: value})."""
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    attrs = {}
    for part in rest:
        key, _, val = part.partition("=")
        attrs[key.strip().lower()] = val.strip()
    return name, value, attrs


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something truthy (bounded); returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def running_in_ci() -> bool:
    return bool(os.environ.get("CI"))


def skip_without_browser() -> None:
    """At the top of a browser test module: outside CI, skip it when Debian's chromium or the
    playwright package is missing (in CI they are installed, and a missing one fails)."""
    import pytest

    if chromium_missing_reason() and not running_in_ci():
        pytest.skip(chromium_missing_reason() or "", allow_module_level=True)
    if not running_in_ci():
        pytest.importorskip("playwright", reason="playwright is not installed (pip install -e '.[test]')")


def log_in(page: Any, username: str, password: str, go: bool = True) -> None:
    """Sign in through the console's login form (`go`: open it first) and wait to leave it."""
    if go:
        page.goto("/console/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(lambda url: not path_of(url).startswith("/console/login"))
