"""dockyard.config: defaults, environment and YAML sources, validation, and `dockyard check-config`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr, ValidationError

from dockyard.cli import main
from dockyard.config import Settings, load_settings, settings_from_json, settings_to_json

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DOCKYARD_* variable of the caller's shell (or of scripts/test) leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("DOCKYARD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def check_config(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check-config", *args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is never a readable message
    return result.exit_code, result.output


# -- defaults -----------------------------------------------------------------------------------------
def test_defaults() -> None:
    s = load_settings()
    assert s.data_dir == Path("data")
    assert s.admin_password is None
    assert (s.server.listen, s.server.host, s.server.port) == ("127.0.0.1:5000", "127.0.0.1", 5000)
    assert (s.server.engine, s.server.workers, s.server.public_url) == ("granian", 1, None)
    assert s.storage.driver == "fs" and s.storage.fsync is True
    assert s.auth.token_ttl_seconds == 300 and s.auth.basic_on_registry is True
    assert s.gc.grace_seconds == 3600 and s.gc.delete_untagged is False


def test_derived_paths_default_under_the_data_dir(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path / "d")
    assert s.database_url == f"sqlite:///{tmp_path / 'd' / 'dockyard.db'}"
    assert s.blob_root == tmp_path / "d" / "blobs"
    assert s.upload_root == tmp_path / "d" / "uploads"
    assert s.key_path == tmp_path / "d" / "keys" / "token-signing.pem"
    s = load_settings(data_dir=tmp_path / "d", storage={"root": str(tmp_path / "elsewhere")},
                      database={"url": "postgresql+psycopg://u@h/db"})
    assert s.blob_root == tmp_path / "elsewhere"
    assert s.database_url == "postgresql+psycopg://u@h/db"


# -- environment -------------------------------------------------------------------------------------
def test_environment_overrides_with_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_AUTH__TOKEN_TTL_SECONDS", "600")
    monkeypatch.setenv("DOCKYARD_SERVER__LISTEN", "0.0.0.0:6000")
    monkeypatch.setenv("DOCKYARD_GC__DELETE_UNTAGGED", "true")
    monkeypatch.setenv("DOCKYARD_DATA_DIR", "/srv/dockyard")
    monkeypatch.setenv("DOCKYARD_ADMIN_PASSWORD", "from-the-environment")
    s = load_settings()
    assert s.auth.token_ttl_seconds == 600
    assert (s.server.host, s.server.port) == ("0.0.0.0", 6000)
    assert s.gc.delete_untagged is True
    assert s.data_dir == Path("/srv/dockyard")
    assert s.admin_password is not None and s.admin_password.get_secret_value() == "from-the-environment"
    assert s.auth.service == "dockyard"  # the rest of the section keeps its defaults


def test_misspelt_environment_variable_inside_a_section_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_SERVER__LISEN", "0.0.0.0:6000")
    with pytest.raises(ValidationError) as info:
        load_settings()
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("server", "lisen"), "extra_forbidden")]


def test_invalid_environment_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_AUTH__TOKEN_TTL_SECONDS", "5")
    with pytest.raises(ValidationError, match="greater than or equal to 30"):
        load_settings()


# -- YAML file ----------------------------------------------------------------------------------------
def test_yaml_file_is_loaded(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "data_dir: /srv/d\nserver:\n  listen: '[::1]:5050'\n  workers: 2\n"
                                        "auth:\n  token_ttl_seconds: 120\n")
    s = load_settings(config)
    assert s.data_dir == Path("/srv/d")
    assert (s.server.host, s.server.port, s.server.workers) == ("::1", 5050, 2)
    assert s.auth.token_ttl_seconds == 120


def test_precedence_defaults_file_environment_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path / "c.yaml", "server:\n  listen: 127.0.0.1:7000\n  workers: 2\n"
                                        "auth:\n  token_ttl_seconds: 120\n")
    monkeypatch.setenv("DOCKYARD_SERVER__WORKERS", "3")
    s = load_settings(config)
    # environment beats the file key by key: the file's server.listen survives a DOCKYARD_SERVER__* variable
    assert (s.server.listen, s.server.workers, s.auth.token_ttl_seconds) == ("127.0.0.1:7000", 3, 120)
    s = load_settings(config, data_dir=tmp_path / "flag")
    assert s.data_dir == tmp_path / "flag" and s.server.workers == 3


def test_empty_yaml_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path / "empty.yaml", "")) == load_settings()


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


# -- validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("where, text", [
    ("server.lisen", "server:\n  lisen: 127.0.0.1:5000\n"),
    ("serverr", "serverr:\n  listen: 127.0.0.1:5000\n"),
    ("auth.token_ttl", "auth:\n  token_ttl: 60\n"),
])
def test_unknown_key_is_rejected(tmp_path: Path, where: str, text: str) -> None:
    with pytest.raises(ValidationError) as info:
        load_settings(write(tmp_path / "c.yaml", text))
    errors = info.value.errors()
    assert [(".".join(map(str, e["loc"])), e["type"]) for e in errors] == [(where, "extra_forbidden")]


def test_unknown_key_is_rejected_in_code_too() -> None:
    with pytest.raises(ValidationError):
        Settings(server={"listen": "127.0.0.1:5000", "lisen": "x"})  # type: ignore[arg-type]


@pytest.mark.parametrize("listen", ["5000", "localhost", ":5000", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                                    "127.0.0.1:http", "127.0.0.1:-1"])
def test_bad_listen_value(listen: str) -> None:
    with pytest.raises(ValidationError, match=r"expected HOST:PORT such as 127.0.0.1:5000"):
        load_settings(server={"listen": listen})


@pytest.mark.parametrize("listen, host, port", [("0.0.0.0:80", "0.0.0.0", 80), ("[::]:5000", "::", 5000),
                                                ("registry.local:65535", "registry.local", 65535)])
def test_good_listen_values(listen: str, host: str, port: int) -> None:
    server = load_settings(server={"listen": listen}).server
    assert (server.host, server.port) == (host, port)


@pytest.mark.parametrize("section, values", [
    ("server", {"engine": "hypercorn"}), ("server", {"workers": 0}), ("server", {"log_level": "verbose"}),
    ("storage", {"driver": "gcs"}), ("auth", {"token_ttl_seconds": 10}), ("limits", {"manifest_max_bytes": 1}),
])
def test_out_of_range_values_are_rejected(section: str, values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        load_settings(**{section: values})


def test_resolved_settings_survive_the_trip_to_a_worker() -> None:
    s = load_settings(admin_password="pw", server={"listen": "127.0.0.1:5001"})
    back = settings_from_json(settings_to_json(s))
    assert back == s
    assert isinstance(back.admin_password, SecretStr) and back.admin_password.get_secret_value() == "pw"


# -- dockyard check-config ----------------------------------------------------------------------------
def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"config-minimal.yaml", "config-postgres.yaml"} <= names


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_each_example_validates(example: Path) -> None:
    load_settings(example)
    code, output = check_config(str(example))
    assert code == 0, output
    assert output.startswith("configuration is valid:")
    assert json.loads(output.split("\n", 1)[1]) == load_settings(example).model_dump(mode="json")


def test_postgres_example_sets_what_it_is_named_after() -> None:
    s = load_settings(next(p for p in EXAMPLES if p.name == "config-postgres.yaml"))
    assert s.database_url.startswith("postgresql+psycopg://")
    assert s.server.public_url and s.server.public_url.startswith("https://")
    assert s.auth.token_ttl_seconds != Settings.model_fields["auth"].default.token_ttl_seconds


def test_check_config_reads_the_global_config_option_and_environment() -> None:
    minimal = str(next(p for p in EXAMPLES if p.name == "config-minimal.yaml"))
    code, output = check_config(env={"DOCKYARD_CONFIG": minimal, "DOCKYARD_SERVER__WORKERS": "2"})
    assert code == 0, output
    shown = json.loads(output.split("\n", 1)[1])
    assert shown["data_dir"] == "/var/lib/dockyard" and shown["server"]["workers"] == 2
    result = CliRunner().invoke(main, ["--config", minimal, "check-config"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.split("\n", 1)[1])["data_dir"] == "/var/lib/dockyard"


def test_check_config_hides_the_admin_password() -> None:
    code, output = check_config(env={"DOCKYARD_ADMIN_PASSWORD": "hunter2-hunter2"})
    assert code == 0
    assert "hunter2" not in output and '"admin_password": "***"' in output


def test_check_config_explains_a_typo(tmp_path: Path) -> None:
    config = write(tmp_path / "typo.yaml", "server:\n  listen: 127.0.0.1:5000\n  wokers: 2\n")
    code, output = check_config(str(config))
    assert code == 1
    assert "invalid configuration:" in output
    assert "server.wokers: unknown setting (check the spelling; see the README's settings table)" in output
    assert "Traceback" not in output


def test_check_config_explains_a_bad_value(tmp_path: Path) -> None:
    config = write(tmp_path / "bad.yaml", "server:\n  listen: localhost\n")
    code, output = check_config(str(config))
    assert code == 1
    assert "server.listen:" in output and "expected HOST:PORT" in output


def test_check_config_explains_broken_yaml(tmp_path: Path) -> None:
    config = write(tmp_path / "broken.yaml", "server: [1\n")
    code, output = check_config(str(config))
    assert code == 1
    assert "broken.yaml" in output and "line 1" in output


def test_check_config_explains_a_missing_file(tmp_path: Path) -> None:
    code, output = check_config(str(tmp_path / "nope.yaml"))
    assert code == 1
    assert "nope.yaml does not exist" in output


def test_an_s3_store_gets_the_node_cache_unless_switched_off_or_redirected(tmp_path: Path) -> None:
    from dockyard.app import open_store
    from dockyard.storage.cache import CachedStore
    from dockyard.storage.s3 import S3BlobStore

    s3 = {"driver": "s3", "s3": {"endpoint": "http://127.0.0.1:9", "bucket": "b-cache", "path_style": True}}
    store = open_store(Settings(data_dir=tmp_path, storage=s3), durable_dirs=True)
    assert isinstance(store, CachedStore) and store.kind == "s3" and store.shared
    assert store.cache.root == (tmp_path / "blob-cache").resolve() and store.cache.max_bytes == 20 << 30
    sized = open_store(Settings(data_dir=tmp_path, storage={**s3, "cache_gib": 0.5, "cache_dir": str(tmp_path / "c")}), True)
    assert isinstance(sized, CachedStore) and sized.cache.max_bytes == 512 << 20 and sized.cache.root == tmp_path / "c"
    for off in ({**s3, "cache_gib": 0}, {**s3, "redirect": True}):
        assert isinstance(open_store(Settings(data_dir=tmp_path, storage=off), durable_dirs=True), S3BlobStore)
    assert isinstance(open_store(Settings(data_dir=tmp_path, storage=s3), durable_dirs=True, cache=False), S3BlobStore)


def test_outbound_allowed_networks_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().outbound.allowed_networks == []
    monkeypatch.setenv("DOCKYARD_OUTBOUND__ALLOWED_NETWORKS", '["127.0.0.0/8", "10.20.0.0/16"]')
    assert load_settings().outbound.allowed_networks == ["127.0.0.0/8", "10.20.0.0/16"]
    monkeypatch.setenv("DOCKYARD_OUTBOUND__ALLOWED_NETWORKS", '["10.0.0.0/33"]')
    with pytest.raises(ValidationError, match="expected an IP address or network"):
        load_settings()
