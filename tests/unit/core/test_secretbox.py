"""core/secretbox.py and the secrets key file (auth/keyfiles.py)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from dockyard.auth.keyfiles import load_or_create_secrets_key
from dockyard.config import load_settings
from dockyard.core.secretbox import SecretBox, SecretBoxError


def test_sealed_secrets_open_with_the_same_key_and_purpose_only() -> None:
    key = os.urandom(32)
    box = SecretBox(key)
    sealed = box.seal("whsec_abc", "webhook-secret")
    assert "whsec_abc" not in sealed and sealed.startswith(f"v1.{box.key_id}.")
    assert sealed != box.seal("whsec_abc", "webhook-secret")  # a new nonce each time
    assert SecretBox(key).open(sealed, "webhook-secret") == "whsec_abc"
    with pytest.raises(SecretBoxError, match="another secrets key"):
        SecretBox(os.urandom(32)).open(sealed, "webhook-secret")
    with pytest.raises(SecretBoxError, match="does not open"):
        box.open(sealed, "build-token")
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SecretBoxError):
        box.open(tampered, "webhook-secret")
    with pytest.raises(SecretBoxError, match="not a sealed secret"):
        box.open("whsec_abc", "webhook-secret")


def test_a_key_is_32_bytes() -> None:
    with pytest.raises(ValueError):
        SecretBox(b"short")


def test_the_key_file_is_made_once_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "secrets.key"
    barrier = threading.Barrier(6)
    keys: list[bytes] = []

    def node() -> None:
        barrier.wait(10)
        keys.append(load_or_create_secrets_key(path))

    threads = [threading.Thread(target=node) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(keys) == 6 and len(set(keys)) == 1 and len(keys[0]) == 32
    assert load_or_create_secrets_key(path) == keys[0]
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secrets.key"]


def test_a_damaged_key_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    path.write_text("not base64 of 32 bytes\n")
    with pytest.raises(ValueError, match="is not a secrets key"):
        load_or_create_secrets_key(path)


def test_the_setting_names_the_key_file(tmp_path: Path) -> None:
    assert load_settings(data_dir=tmp_path).secrets_key_path == (tmp_path / "keys" / "secrets.key").resolve()
    shared = tmp_path / "elsewhere.key"
    assert load_settings(data_dir=tmp_path, auth={"secrets_key_file": str(shared)}).secrets_key_path == shared.resolve()
