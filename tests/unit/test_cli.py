"""The `dockyard` command line: help, migrate, user management, check-config and gc.

Mostly in-process through click's CliRunner with --data pointing at a temporary directory; a few
checks run `python -m dockyard` as a real process to see real exit codes and streams.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import update

from dockyard.app import build_services
from dockyard.auth.passwords import verify_password
from dockyard.cli import main
from dockyard.config import load_settings
from dockyard.meta.db import utcnow
from dockyard.meta.migrate import upgrade
from dockyard.meta.tables import blobs, repository_blobs
from dockyard.storage.layout import blob_path


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DOCKYARD_* variable of the calling shell may leak into these tests."""
    for name in list(os.environ):
        if name.startswith("DOCKYARD_"):
            monkeypatch.delenv(name)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def cli(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    return subprocess.run([sys.executable, "-m", "dockyard", *args], input=input, capture_output=True, text=True,
                          timeout=120, env={**clean, **(env or {})})


def users_of(data: Path) -> dict[str, object]:
    svc = build_services(load_settings(data_dir=data))
    try:
        return {u.username: u for u in svc.users.list()}
    finally:
        svc.db.dispose()


# -- help and version ------------------------------------------------------------------------------

def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("serve", "check-config", "migrate", "user", "gc"):
        assert command in result.output
    assert run("-h").output == result.output
    sub = run("user", "--help")
    assert sub.exit_code == 0
    for command in ("add", "list", "passwd"):
        assert command in sub.output
    assert "--dry-run" in run("gc", "--help").output


def test_python_m_dockyard_help_and_version() -> None:
    proc = cli("--help")
    assert proc.returncode == 0, proc.stderr
    assert "Dockyard" in proc.stdout and "gc" in proc.stdout
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("dockyard, version ")


def test_unknown_command_fails() -> None:
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command" in result.output


# -- migrate ---------------------------------------------------------------------------------------

def test_migrate_creates_and_is_idempotent(data: Path) -> None:
    result = run("migrate", "--data", str(data))
    assert result.exit_code == 0, result.output
    assert "database is up to date" in result.output
    assert (data / "dockyard.db").is_file()
    again = run("migrate", "--data", str(data))
    assert again.exit_code == 0 and "up to date" in again.output


# -- users -----------------------------------------------------------------------------------------

def test_user_add_with_password_stdin(data: Path) -> None:
    result = run("user", "add", "alice", "--password-stdin", "--data", str(data), input="correct horse\n")
    assert result.exit_code == 0, result.output
    assert "created user alice" in result.output
    assert "correct horse" not in result.output
    alice = users_of(data)["alice"]
    assert verify_password(alice.password_hash, "correct horse")  # type: ignore[attr-defined]
    assert not alice.is_admin  # type: ignore[attr-defined]

    admin = run("user", "add", "root", "--admin", "--password-stdin", "--data", str(data), input="admin password\n")
    assert admin.exit_code == 0, admin.output
    assert users_of(data)["root"].is_admin  # type: ignore[attr-defined]


def test_user_add_refuses_duplicates_and_short_passwords(data: Path) -> None:
    assert run("user", "add", "bob", "--password-stdin", "--data", str(data), input="long enough\n").exit_code == 0
    dup = run("user", "add", "bob", "--password-stdin", "--data", str(data), input="another one\n")
    assert dup.exit_code == 1
    assert "user 'bob' exists already" in dup.output
    short = run("user", "add", "carol", "--password-stdin", "--data", str(data), input="short\n")
    assert short.exit_code == 1
    assert "at least 8 characters" in short.output
    assert "carol" not in users_of(data)


def test_user_add_prompts_twice_without_stdin_flag(data: Path) -> None:
    result = run("user", "add", "dave", "--data", str(data), input="prompted pw\nprompted pw\n")
    assert result.exit_code == 0, result.output
    assert verify_password(users_of(data)["dave"].password_hash, "prompted pw")  # type: ignore[attr-defined]


def test_user_list_json_and_table(data: Path) -> None:
    run("user", "add", "erin", "--admin", "--password-stdin", "--data", str(data), input="erin password\n")
    run("user", "add", "frank", "--password-stdin", "--data", str(data), input="frank password\n")
    result = run("user", "list", "--json", "--data", str(data))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["username"] for r in rows] == ["erin", "frank"]
    assert rows[0]["admin"] is True and rows[1]["admin"] is False
    assert all(r["disabled"] is False and r["created_at"] for r in rows)
    assert "password" not in result.output.lower()

    table = run("user", "list", "--data", str(data))
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split() == ["USERNAME", "ADMIN", "DISABLED", "CREATED"]
    assert lines[1].split()[:3] == ["erin", "true", "false"]


def test_user_list_on_empty_database(data: Path) -> None:
    result = run("user", "list", "--json", "--data", str(data))
    assert result.exit_code == 0
    assert json.loads(result.output) == []


def test_user_passwd(data: Path) -> None:
    run("user", "add", "gina", "--password-stdin", "--data", str(data), input="old password\n")
    result = run("user", "passwd", "gina", "--password-stdin", "--data", str(data), input="new password\n")
    assert result.exit_code == 0, result.output
    assert "password of gina changed" in result.output
    hashed = users_of(data)["gina"].password_hash  # type: ignore[attr-defined]
    assert verify_password(hashed, "new password")
    assert not verify_password(hashed, "old password")

    prompted = run("user", "passwd", "gina", "--data", str(data), input="third password\nthird password\n")
    assert prompted.exit_code == 0, prompted.output
    assert verify_password(users_of(data)["gina"].password_hash, "third password")  # type: ignore[attr-defined]

    mismatch = CliRunner().invoke(main, ["user", "passwd", "gina", "--data", str(data)],
                                  input="fourth password\nsomething else\nfourth password\nfourth password\n")
    assert mismatch.exit_code == 0
    assert "do not match" in mismatch.output.lower()


def test_user_passwd_errors(data: Path) -> None:
    missing = run("user", "passwd", "nobody", "--password-stdin", "--data", str(data), input="whatever pw\n")
    assert missing.exit_code == 1
    assert "user 'nobody' not found" in missing.output
    run("user", "add", "hank", "--password-stdin", "--data", str(data), input="hank password\n")
    short = run("user", "passwd", "hank", "--password-stdin", "--data", str(data), input="tiny\n")
    assert short.exit_code == 1 and "at least 8" in short.output
    assert verify_password(users_of(data)["hank"].password_hash, "hank password")  # type: ignore[attr-defined]


def test_user_add_and_passwd_apply_the_management_rules_and_are_audited(data: Path) -> None:
    """They go through the management use-cases, as `POST /api/v1/users` does: the same user name and
    password rules, and an audit record naming the operator at the server."""
    bad = run("user", "add", "no spaces!", "--password-stdin", "--data", str(data), input="long enough\n")
    assert bad.exit_code == 1 and "invalid username" in bad.output
    huge = run("user", "add", "kim", "--password-stdin", "--data", str(data), input="x" * 1025 + "\n")
    assert huge.exit_code == 1 and "at most 1024 characters" in huge.output
    assert users_of(data) == {}
    assert run("user", "add", "kim", "--admin", "--password-stdin", "--data", str(data), input="kim password\n").exit_code == 0
    assert run("user", "passwd", "kim", "--password-stdin", "--data", str(data), input="kim password 2\n").exit_code == 0
    svc = build_services(load_settings(data_dir=data))
    try:
        events = svc.audit.query()
    finally:
        svc.db.dispose()
    assert [(e.action, e.target, e.detail) for e in events] == [
        ("user.update", "user:kim", {"password": "changed"}), ("user.create", "user:kim", {"is_admin": True})]
    assert all(e.actor.startswith("local:") and e.remote == "cli" for e in events)


def test_user_add_through_a_real_process(data: Path) -> None:
    proc = cli("user", "add", "ivy", "--password-stdin", "--data", str(data), input="ivy password\n")
    assert proc.returncode == 0, proc.stderr
    proc = cli("user", "list", "--json", "--data", str(data))
    assert proc.returncode == 0, proc.stderr
    assert [r["username"] for r in json.loads(proc.stdout)] == ["ivy"]


# -- check-config ----------------------------------------------------------------------------------

def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_check_config_valid_file_hides_the_admin_password(tmp_path: Path) -> None:
    cfg = write(tmp_path / "ok.yaml", "admin_password: hunter2-hunter2\ngc:\n  grace_seconds: 60\n  delete_untagged: true\n")
    result = run("check-config", str(cfg))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("configuration is valid:")
    shown = json.loads(result.output.split("\n", 1)[1])
    assert shown["gc"] == {"interval_seconds": 86400, "delete_untagged": True, "grace_seconds": 60, "batch_size": 500}
    assert shown["admin_password"] == "***"
    assert "hunter2" not in result.output


@pytest.mark.parametrize(("text", "expected"), [
    ("gc:\n  grace_secs: 10\n", ["gc.grace_secs", "unknown setting"]),
    ("gc:\n  grace_seconds: soon\n", ["gc.grace_seconds", "integer"]),
    ("gc:\n  grace_seconds: -1\n", ["gc.grace_seconds", "greater than or equal to 0"]),
    ("server:\n  listen: nowhere\n", ["server.listen", "HOST:PORT"]),
    ("server:\n  engine: apache\n", ["server.engine", "granian"]),
    ("nonsense_top_level: 1\n", ["nonsense_top_level", "unknown setting"]),
    ("gc: [1, 2\n", []),  # malformed YAML
    ("gc:\n\tgrace_seconds: 1\n", []),  # a tab: malformed YAML
])
def test_check_config_bad_file_is_explained(tmp_path: Path, text: str, expected: list[str]) -> None:
    cfg = write(tmp_path / "bad.yaml", text)
    result = CliRunner().invoke(main, ["check-config", str(cfg)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")
    for fragment in expected:
        assert fragment in result.output
    if expected:
        assert "invalid configuration:" in result.output


def test_check_config_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check-config", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_check_config_bad_file_through_a_real_process(tmp_path: Path) -> None:
    cfg = write(tmp_path / "bad.yaml", "storage:\n  drivr: fs\n")
    proc = cli("check-config", str(cfg))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "storage.drivr" in proc.stderr and "unknown setting" in proc.stderr
    assert proc.stdout == ""
    # the same file through --config, and a bad environment variable
    assert cli("--config", str(cfg), "check-config").returncode == 1
    proc = cli("check-config", env={"DOCKYARD_GC__GRACE_SECONDS": "later"})
    assert proc.returncode == 1 and "gc.grace_seconds" in proc.stderr


def test_bad_config_stops_other_commands_too(tmp_path: Path, data: Path) -> None:
    cfg = write(tmp_path / "bad.yaml", "gc:\n  grace: 0\n")
    result = CliRunner().invoke(main, ["--config", str(cfg), "gc", "--dry-run", "--data", str(data)])
    assert result.exit_code == 1
    assert "gc.grace" in result.output
    assert not (data / "dockyard.db").exists()


# -- gc --------------------------------------------------------------------------------------------

@pytest.fixture
def gc_env(db_url: str, monkeypatch: pytest.MonkeyPatch, data: Path) -> Iterator[Path]:
    """The CLI on the database of the run (SQLite, and PostgreSQL when configured)."""
    monkeypatch.setenv("DOCKYARD_DATABASE__URL", db_url)
    yield data


def _seed_old_blob(data: Path, db_url: str, content: bytes) -> str:
    """A blob pushed two hours ago that no manifest references."""
    data.mkdir(parents=True, exist_ok=True)
    svc = build_services(load_settings(data_dir=data, database={"url": db_url}))
    upgrade(svc.db)
    try:
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        staged = svc.settings.upload_root / "seed"
        staged.write_bytes(content)
        svc.content.add_blob("cli/repo", digest, len(content), lambda: svc.blobs.store.session_stage("seed", None, len(content)).place(digest))
        past = utcnow() - timedelta(hours=2)
        with svc.db.write() as conn:
            conn.execute(update(blobs).values(created_at=past))
            conn.execute(update(repository_blobs).values(linked_at=past))
        return digest
    finally:
        svc.db.dispose()


def test_gc_dry_run_prints_a_summary_line(gc_env: Path) -> None:
    result = run("gc", "--dry-run", "--data", str(gc_env))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == (
        "would remove 0 manifest(s), 0 blob(s) (0.0 MiB), 0 orphan file(s), 0 stale upload(s)")


def test_gc_dry_run_then_real_run(gc_env: Path, db_url: str) -> None:
    data = gc_env
    assert run("migrate", "--data", str(data)).exit_code == 0
    content = b"x" * (3 * 1048576)
    digest = _seed_old_blob(data, db_url, content)
    path = blob_path(load_settings(data_dir=data).blob_root, digest)
    orphan = b"left by a crash"
    orphan_path = blob_path(load_settings(data_dir=data).blob_root, "sha256:" + hashlib.sha256(orphan).hexdigest())
    orphan_path.parent.mkdir(parents=True, exist_ok=True)
    orphan_path.write_bytes(orphan)
    old = time.time() - 7200
    os.utime(orphan_path, (old, old))

    dry = run("gc", "--dry-run", "--data", str(data))
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.strip().splitlines()[-1] == (
        "would remove 0 manifest(s), 1 blob(s) (3.0 MiB), 1 orphan file(s), 0 stale upload(s)")
    assert "checking blobs" in dry.stderr  # progress goes to stderr, the summary to stdout
    assert path.exists() and orphan_path.exists()

    real = run("gc", "--data", str(data))
    assert real.exit_code == 0, real.output
    assert real.stdout.strip().splitlines()[-1].startswith(
        "removed 0 manifest(s), 1 blob(s) (3.0 MiB), 1 orphan file(s)")
    assert not path.exists() and not orphan_path.exists()
    again = run("gc", "--dry-run", "--data", str(data))
    assert again.stdout.strip().splitlines()[-1].startswith("would remove 0 manifest(s), 0 blob(s)")


def test_gc_honours_the_config_file(gc_env: Path, db_url: str, tmp_path: Path) -> None:
    data = gc_env
    digest = _seed_old_blob(data, db_url, b"kept by a long grace period")
    cfg = write(tmp_path / "long-grace.yaml", "gc:\n  grace_seconds: 86400\n")
    result = run("--config", str(cfg), "gc", "--data", str(data))
    assert result.exit_code == 0, result.output
    assert "removed 0 manifest(s), 0 blob(s)" in result.stdout
    assert blob_path(load_settings(data_dir=data).blob_root, digest).exists()


def test_gc_through_a_real_process(data: Path) -> None:
    proc = cli("gc", "--dry-run", "--keep-untagged", "--data", str(data))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("would remove 0 manifest(s)")
    assert "Traceback" not in proc.stderr
