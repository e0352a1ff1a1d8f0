"""`dockyard scan REPO:TAG [--wait] [--fail-on high] [--json]`: an image's vulnerabilities, for
people and for CI pipelines (the exit code says whether the threshold was reached)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from dockyard.cli_manage.common import clip, print_json, print_table, remote, when

if TYPE_CHECKING:
    from dockyard.client import Client

SEVERITIES = ("critical", "high", "medium", "low", "unknown")
FINAL = ("done", "failed", "unsupported")
EXIT_FOUND = 1  # a vulnerability at or above --fail-on
EXIT_NOT_SCANNED = 3  # the scan failed, is unsupported, or did not finish in time


def split_reference(value: str) -> tuple[str, str]:
    """"repo:tag" / "repo@sha256:…" / "repo" (latest) → (repository, reference)."""
    if "@" in value:
        name, _, ref = value.partition("@")
        return name, ref
    name, sep, tag = value.rpartition(":")
    if sep and "/" not in tag:
        return name, tag
    return value, "latest"


def _path(api: Client, repository: str, reference: str, what: str) -> str:
    from dockyard.client import repo_path, seg

    return f"/repositories/{repo_path(repository)}/manifests/{seg(reference)}/{what}"


def _reports(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc.get("platforms") or [doc]


def _status(doc: dict[str, Any]) -> str:
    return str(doc.get("status"))


def render(doc: dict[str, Any], repository: str) -> None:
    for report in _reports(doc):
        title = f"{repository}@{report.get('digest')}"
        if report.get("platform"):
            title += f" ({report['platform']})"
        os_ = report.get("os") or {}
        click.echo(f"{title}: {report.get('status')}" + (f", {os_.get('id')} {os_.get('version') or ''}".rstrip()
                                                          if os_ else "")
                   + (f", scanned {when(report.get('scanned_at'))}" if report.get("scanned_at") else ""))
        if report.get("error"):
            click.echo(f"  {report['error']}")
        summary = report.get("summary") or {}
        click.echo("  " + ", ".join(f"{summary.get(s, 0)} {s}" for s in SEVERITIES))
        rows = [(v["id"], v["severity"] + (" (allowlisted)" if v.get("allowlisted") else ""), v["package"],
                 v["installed_version"], v.get("fixed_version") or "-", clip(v.get("layer") or "-", 19))
                for v in report.get("vulnerabilities") or []]
        if rows:
            print_table(["VULNERABILITY", "SEVERITY", "PACKAGE", "INSTALLED", "FIXED", "LAYER"], rows, "")
        click.echo("")


def over_threshold(doc: dict[str, Any], threshold: str) -> int:
    """Vulnerabilities (not allowlisted) at or above `threshold`."""
    rank = SEVERITIES.index(threshold)
    return sum(1 for r in _reports(doc) for v in r.get("vulnerabilities") or []
               if not v.get("allowlisted") and v.get("severity") in SEVERITIES[:rank + 1])


@click.command("scan")
@click.argument("image", metavar="REPOSITORY[:TAG|@DIGEST]")
@click.option("--wait", is_flag=True, help="Wait until the scan has finished.")
@click.option("--timeout", type=click.IntRange(1, 86400), default=600, show_default=True,
              help="With --wait: give up after this many seconds (exit code 3).")
@click.option("--rescan", is_flag=True, help="Scan again even when a finished report exists.")
@click.option("--fail-on", type=click.Choice(SEVERITIES[:4]), default=None,
              help="Exit with code 1 when a vulnerability of this severity or higher is found (allowlisted ones "
                   "do not count).")
@remote(json=True)
def scan(api: Client, image: str, wait: bool, timeout: int, rescan: bool, fail_on: str | None, as_json: bool) -> None:
    """An image's vulnerabilities: queue a scan when there is none (or with --rescan), and print
    the report. Exit codes: 0, 1 (--fail-on reached), 3 (scan failed, unsupported or not finished)."""
    repository, reference = split_reference(image)
    doc = api.request("GET", _path(api, repository, reference, "vulnerabilities"))
    if rescan or _status(doc) in ("not_scanned", "failed"):
        api.request("POST", _path(api, repository, reference, "scan"))
        doc = api.request("GET", _path(api, repository, reference, "vulnerabilities"))
    deadline = time.monotonic() + timeout
    while wait and _status(doc) not in FINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        doc = api.request("GET", _path(api, repository, reference, "vulnerabilities"))
    if as_json:
        print_json(doc)
    else:
        render(doc, repository)
    status = _status(doc)
    if status != "done":
        click.echo(f"{repository}@{doc.get('digest')}: the scan is {status}"
                   + (f" after {timeout} s" if wait and status not in FINAL else ""), err=True)
        sys.exit(EXIT_NOT_SCANNED)
    if fail_on is not None:
        found = over_threshold(doc, fail_on)
        if found:
            click.echo(f"{found} vulnerabilit{'y' if found == 1 else 'ies'} of severity {fail_on} or higher", err=True)
            sys.exit(EXIT_FOUND)
