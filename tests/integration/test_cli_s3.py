"""`dockyard check-config` and `dockyard migrate`/`serve`'s start-up against a real S3 server
(Ceph RGW): the bucket is checked (reachable, writable), created when missing, marked with the
installation, and a SQLite database is refused on a bucket another installation uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dockyard.cli import main
from tests.s3_support import S3Server

pytestmark = pytest.mark.s3


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def s3_env(server: S3Server, bucket: str, data: Path) -> dict[str, str]:
    return {
        "DOCKYARD_DATA_DIR": str(data),
        "DOCKYARD_STORAGE__DRIVER": "s3",
        "DOCKYARD_STORAGE__S3__ENDPOINT": server.endpoint,
        "DOCKYARD_STORAGE__S3__BUCKET": bucket,
        "DOCKYARD_STORAGE__S3__ACCESS_KEY_ID": server.access_key,
        "DOCKYARD_STORAGE__S3__SECRET_ACCESS_KEY": server.secret_key,
        "DOCKYARD_STORAGE__S3__PATH_STYLE": "true",
    }


def test_check_config_reaches_and_writes_the_bucket(s3_bucket: tuple[S3Server, str], tmp_path: Path) -> None:
    server, bucket = s3_bucket
    result = run(s3_env(server, bucket, tmp_path / "a"), "check-config")
    assert result.exit_code == 0, result.output
    assert f"bucket {bucket} at {server.endpoint}: reachable and writable" in result.output
    assert server.secret_key not in result.output
    objects = server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    assert objects == []  # the probe object is gone


def test_check_config_reports_a_wrong_secret(s3_bucket: tuple[S3Server, str], tmp_path: Path) -> None:
    server, bucket = s3_bucket
    env = {**s3_env(server, bucket, tmp_path / "a"), "DOCKYARD_STORAGE__S3__SECRET_ACCESS_KEY": "wrong-secret-0000"}
    result = run(env, "check-config")
    assert result.exit_code != 0
    assert "is not reachable" in result.output or "is not writable" in result.output


def test_check_config_says_serve_creates_a_missing_bucket(ceph_rgw: S3Server, tmp_path: Path) -> None:
    result = run(s3_env(ceph_rgw, "dockyard-not-there-yet", tmp_path / "a"), "check-config")
    assert result.exit_code == 0, result.output
    assert "does not exist yet; `dockyard serve` creates it" in result.output


def test_a_second_sqlite_installation_on_a_bucket_is_refused(ceph_rgw: S3Server, tmp_path: Path) -> None:
    bucket = f"dockyard-owner-{tmp_path.name[-8:].lower().replace('_', '-')}"
    first = s3_env(ceph_rgw, bucket, tmp_path / "first")
    try:
        assert run(first, "migrate").exit_code == 0  # creates the bucket and marks it
        assert ceph_rgw.client().head_bucket(Bucket=bucket)
        assert run(first, "check-config").exit_code == 0  # its own installation: fine
        second = s3_env(ceph_rgw, bucket, tmp_path / "second")
        refused = run(second, "check-config")
        assert refused.exit_code != 0
        assert "A SQLite database serves one node only" in refused.output
        started = run(second, "migrate")  # what `serve` does first: refused before anything runs
        assert started.exit_code != 0
        assert "another Dockyard installation" in started.output
    finally:
        from tests.s3_support import empty_and_delete

        empty_and_delete(ceph_rgw.client(), bucket)
