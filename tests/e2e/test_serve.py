"""`dockyard serve` as an operator sees it: what it prints at start and how it stops.

granian runs embedded in the serve process (one process, measured in the README's "Choosing the
HTTP stack"); granian announces that mode with a warning of its own that Dockyard filters, so
a production log starts without anything alarming in it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, free_port

pytestmark = pytest.mark.e2e


def test_start_and_stop_print_no_warning(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", free_port(), "a-password-for-the-log-test").start()
    proc = server.proc
    assert proc is not None
    server.stop(signal.SIGTERM)
    assert proc.returncode == 0
    log = server.log.read_text()
    assert "listening on http://" in log
    assert "experimental" not in log
    assert "WARNING" not in log and "ERROR" not in log, log
