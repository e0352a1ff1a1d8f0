"""`dockyard vulndb import|update|status` (cli_vulndb.py), in-process through CliRunner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dockyard.cli import main
from tests.unit.scan.vulndb.vendored import VULNDATA, osv_zip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DOCKYARD_"):
            monkeypatch.delenv(name)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_import_and_status(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run("vulndb", "import", str(VULNDATA), "--data", str(data))
    assert result.exit_code == 0, result.output
    assert "osv:osv-pypi" in result.output and "debian:debian-vuln-list-tracker" in result.output
    assert "2 file(s) of no known format skipped" in result.output
    db = data / "vulndb" / "advisories.sqlite"
    assert db.exists()
    text = run("vulndb", "status", "--data", str(data))
    assert text.exit_code == 0 and "rustsec:rustsec" in text.output and "db_id" in text.output
    doc = json.loads(run("vulndb", "status", "--data", str(data), "--json").output)
    assert doc["exists"] and doc["path"] == str(db.resolve())
    assert {s["name"] for s in doc["sources"]} >= {"osv:osv-go", "wolfi:wolfi-advisories-apache2"}


def test_status_without_a_database(tmp_path: Path) -> None:
    result = run("vulndb", "status", "--data", str(tmp_path))
    assert result.exit_code == 0 and "no advisory database yet" in result.output
    assert json.loads(run("vulndb", "status", "--data", str(tmp_path), "--json").output)["exists"] is False


def test_import_of_nothing_known_fails(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = CliRunner().invoke(main, ["vulndb", "import", str(tmp_path), "--data", str(tmp_path / "data")])
    assert result.exit_code == 1 and "no advisory source found" in result.output
    missing = CliRunner().invoke(main, ["vulndb", "import", str(tmp_path / "absent")])
    assert missing.exit_code == 2


def test_update_uses_the_configured_feeds(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    osv_zip(root / "all.zip")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"scan:\n  db_path: {tmp_path / 'db.sqlite'}\n  feeds:\n    osv-go: {base}/all.zip\n"
                   f"    broken: {base}/nothing.zip\n")
    result = CliRunner().invoke(main, ["--config", str(cfg), "vulndb", "update"])
    assert result.exit_code == 0, result.output
    assert "osv-go" in result.output and "2 records" in result.output
    assert "broken" in result.output and "FAILED" in result.output
    assert (tmp_path / "db.sqlite").exists()
