"""`dockyard vulndb …`: import advisory data, update it from the public feeds, show what is loaded.

    dockyard vulndb import PATH… [--data DIR]     every source found under the paths
    dockyard vulndb update [--data DIR]           the feeds of `scan.feeds` (default: feeds.DEFAULT_FEEDS)
    dockyard vulndb status [--data DIR] [--json]

All write the database at `Settings.vulndb_path` (`scan.db_path`, default
DATA_DIR/vulndb/advisories.sqlite) by atomic replacement: a running server's next scan uses
the new data, no restart needed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from dockyard.config import Settings
from dockyard.scan.vulndb import import_paths, status, update

_DATA = click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False),
                     help="Data directory [default: ./data].")


def _settings(ctx: click.Context, data_dir: Path | None) -> Settings:
    """Config file < environment < --data, with the main CLI's error messages."""
    from dockyard.cli import _load  # the command group's own loader (imported late: it imports us)

    return _load(ctx, data_dir=data_dir)


def _age(when: datetime | None) -> str:
    if when is None:
        return "never"
    seconds = int((datetime.now(UTC) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


@click.group()
def vulndb() -> None:
    """The advisory database that image scans match packages against."""


@vulndb.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@_DATA
@click.pass_context
def import_command(ctx: click.Context, paths: tuple[Path, ...], data_dir: Path | None) -> None:
    """Import advisory files or trees (OSV, Debian, Alpine, Ubuntu, RustSec, npm, Wolfi, CSAF)."""
    settings = _settings(ctx, data_dir)
    try:
        report = import_paths(settings.vulndb_path, paths)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    for source in sorted(report.sources, key=lambda s: s.name):
        click.echo(f"{source.name:<44} {source.records:>7} records  {source.skipped:>5} skipped  "
                   f"{source.files:>6} files  {source.seconds:6.1f}s")
    click.echo(f"{report.unknown} file(s) of no known format skipped"
               + (f" (e.g. {report.unknown_examples[0]})" if report.unknown_examples else ""))
    if not report.sources:
        raise click.ClickException("no advisory source found under the given paths")
    click.echo(f"wrote {settings.vulndb_path} ({len(report.sources)} source(s), {report.seconds:.1f}s)")


@vulndb.command("update")
@_DATA
@click.pass_context
def update_command(ctx: click.Context, data_dir: Path | None) -> None:
    """Download the configured feeds (scan.feeds, else the public ones) and import them."""
    settings = _settings(ctx, data_dir)
    results = update(settings.vulndb_path, settings.scan.feeds or None)
    for res in results:
        if res.ok:
            records = sum(s.records for s in res.sources)
            click.echo(f"{res.name:<28} {records:>7} records  {len(res.sources)} source(s)  {res.seconds:6.1f}s")
        else:
            click.echo(f"{res.name:<28} FAILED: {res.error}", err=True)
    if not any(res.ok for res in results):
        raise click.ClickException("no feed could be updated")


@vulndb.command("status")
@_DATA
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status_command(ctx: click.Context, data_dir: Path | None, as_json: bool) -> None:
    """Show the database's sources, record counts and ages."""
    settings = _settings(ctx, data_dir)
    st = status(settings.vulndb_path)
    if as_json:
        doc: dict[str, Any] = {
            "path": str(st.path), "exists": st.exists, "db_id": st.db_id,
            "updated_at": st.updated_at.isoformat() if st.updated_at else None,
            "sources": [{"name": s.name, "kind": s.kind, "path": s.path, "records": s.records, "skipped": s.skipped,
                         "files": s.files, "imported_at": s.imported_at.isoformat(), "newest": s.newest}
                        for s in st.sources],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    if not st.exists:
        click.echo(f"{st.path}: no advisory database yet (run `dockyard vulndb import` or `update`)")
        return
    click.echo(f"{st.path}  db_id {st.db_id}  updated {_age(st.updated_at)}")
    for s in st.sources:
        click.echo(f"{s.name:<44} {s.records:>7} records  imported {_age(s.imported_at):<10} newest {s.newest or '-'}")
