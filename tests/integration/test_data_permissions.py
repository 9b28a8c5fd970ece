"""The data directory is 0700 and the files in it 0600 (it holds every message and every
tenant's DKIM private keys); a looser one found at start is named in a warning."""

from __future__ import annotations

import logging
import os
import smtplib
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ServerThread, make_config


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def send_one(server: ServerThread) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
        client.sendmail("a@example.com", ["b@example.com"], "Subject: x\r\n\r\nbody\r\n")


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive common umask, so the modes below come from Postroom, not the umask."""
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_data_directory_and_its_files_are_private(
    tmp_path: Path, open_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    caplog.set_level(logging.WARNING, logger="postroom")
    server = ServerThread(make_config(data, smtp_tls=True)).start()
    try:
        send_one(server)
        assert mode(data) == 0o700
        db = data / "postroom.db"
        for path in (db, db.with_name("postroom.db-wal"), db.with_name("postroom.db-shm")):
            assert path.exists(), path
            assert mode(path) == 0o600, (path, oct(mode(path)))
        assert mode(data / "tls") == 0o700
        assert mode(data / "tls" / "key.pem") == 0o600
    finally:
        server.stop()
    assert not [r for r in caplog.records if "can read it" in r.getMessage()]


def test_a_loose_data_directory_is_named_in_a_warning_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    ServerThread(make_config(data, smtp_tls=True)).start().stop()
    os.chmod(data, 0o755)
    os.chmod(data / "postroom.db", 0o644)
    os.chmod(data / "tls" / "key.pem", 0o640)
    caplog.set_level(logging.WARNING, logger="postroom")
    server = ServerThread(make_config(data, smtp_tls=True)).start()
    server.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{data} is mode 0755: other users of this machine can read it" in "\n".join(warnings)
    assert any(f"{data / 'postroom.db'} is mode 0644" in w for w in warnings), warnings
    assert any(f"chmod 600 {data / 'tls' / 'key.pem'}" in w for w in warnings), warnings
    # warned about, not changed behind the operator's back
    assert mode(data) == 0o755 and mode(data / "postroom.db") == 0o644
    # once fixed, no warning
    os.chmod(data, 0o700)
    os.chmod(data / "postroom.db", 0o600)
    os.chmod(data / "tls" / "key.pem", 0o600)
    caplog.clear()
    ServerThread(make_config(data, smtp_tls=True)).start().stop()
    assert not [r for r in caplog.records if "can read it" in r.getMessage()]
