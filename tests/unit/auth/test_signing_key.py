"""auth.signing_key_file: nodes that share the file sign with one key, even when they all start
at once and the file does not exist yet."""

from __future__ import annotations

import threading
from pathlib import Path

from dockyard.auth.tokens import _key_id, load_or_create_key
from dockyard.config import load_settings


def test_nodes_starting_at_once_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "signing.pem"
    barrier = threading.Barrier(8)
    kids: list[str] = []

    def node() -> None:
        barrier.wait(10)
        kids.append(_key_id(load_or_create_key(path)))

    threads = [threading.Thread(target=node) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(kids) == 8 and len(set(kids)) == 1
    assert _key_id(load_or_create_key(path)) == kids[0]  # and the file keeps it
    assert [p.name for p in path.parent.iterdir()] == ["signing.pem"]  # no temporary file left
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_setting_names_the_key_file(tmp_path: Path) -> None:
    assert load_settings(data_dir=tmp_path).key_path == (tmp_path / "keys" / "token-signing.pem").resolve()
    shared = tmp_path / "elsewhere.pem"
    assert load_settings(data_dir=tmp_path, auth={"signing_key_file": str(shared)}).key_path == shared.resolve()
