"""`postroom version|send|ingest|fulltext` through the real entry point."""

from __future__ import annotations

import mailbox
import sqlite3
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from postroom.cli import main
from tests.harness import ServerThread, make_config


def eml(subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg["To"] = "b@example.com"
    msg["Subject"] = subject
    msg.set_content("body of " + subject)
    return msg.as_bytes()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("postroom 0.")


def test_send_quick_message_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = ServerThread(make_config(tmp_path / "data")).start()
    try:
        target = f"127.0.0.1:{server.smtp_port}"
        assert (
            main(["send", "--server", target, "--to", "x@example.com", "--subject", "quick"]) == 0
        )
        file = tmp_path / "m.eml"
        file.write_bytes(eml("from a file"))
        assert main(["send", str(file), "--server", target, "--to", "y@example.com"]) == 0
        with httpx.Client(base_url=server.base_url) as http:
            subjects = [m["Subject"] for m in http.get("/api/v1/messages").json()["messages"]]
        assert subjects == ["from a file", "quick"]
    finally:
        server.stop()
    assert "sent to y@example.com" in capsys.readouterr().out


def test_send_with_starttls_and_bare_lf_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ServerThread(make_config(tmp_path / "data", smtp_tls=True)).start()
    try:
        target = f"127.0.0.1:{server.smtp_port}"
        file = tmp_path / "lf.eml"
        file.write_bytes(b"From: a@example.com\nSubject: lf only\n\n.dot line\n")
        args = ["send", str(file), "--server", target, "--to", "z@example.com"]
        # The generated certificate is self-signed: refused unless --insecure.
        assert main([*args, "--tls", "starttls"]) == 1
        assert "TLS handshake failed" in capsys.readouterr().err
        assert main([*args, "--tls", "starttls", "--insecure"]) == 0
        with httpx.Client(base_url=server.base_url) as http:
            latest = http.get("/api/v1/message/latest/raw").content
    finally:
        server.stop()
    assert latest.endswith(b"From: a@example.com\r\nSubject: lf only\r\n\r\n.dot line\r\n")


def test_send_errors_are_clear(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "--server", "nonsense", "--to", "a@b.c"]) == 2
    assert "--server: expected HOST:PORT" in capsys.readouterr().err
    assert main(["send", "--server", "127.0.0.1:1", "--to", "a@b.c", "--timeout", "2"]) == 1
    assert "postroom:" in capsys.readouterr().err


def test_ingest_eml_maildir_and_mbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    single = tmp_path / "one.eml"
    single.write_bytes(eml("single file"))
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.eml").write_bytes(eml("folder a"))
    maildir = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    maildir.add(eml("maildir one"))
    mbox = mailbox.mbox(str(tmp_path / "box.mbox"), create=True)
    mbox.add(eml("mbox one"))
    mbox.add(eml("mbox two"))
    mbox.flush()
    data = tmp_path / "data"
    args = [str(single), str(folder), str(tmp_path / "Maildir"), str(tmp_path / "box.mbox")]
    assert main(["ingest", "--data-dir", str(data), *args]) == 0
    assert "imported 5 message(s)" in capsys.readouterr().out

    server = ServerThread(make_config(data)).start()
    try:
        with httpx.Client(base_url=server.base_url) as http:
            listing = http.get("/api/v1/messages").json()
    finally:
        server.stop()
    assert sorted(m["Subject"] for m in listing["messages"]) == [
        "folder a",
        "maildir one",
        "mbox one",
        "mbox two",
        "single file",
    ]
    assert main(["ingest", "--data-dir", str(data), str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err


def _fts_tables(data: Path) -> set[str]:
    """The full-text index's tables (the FTS5 table, the waiting list, the vocab table)."""
    with sqlite3.connect(data / "postroom.db") as conn:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'messages_fts%'"
        names = {r[0] for r in conn.execute(sql)}
    conn.close()
    return names & _FTS_TABLES


_FTS_TABLES = {"messages_fts", "messages_fts_pending", "messages_fts_vi"}  # FTS5's own aside


def test_fulltext_on_status_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    files = []
    for n in range(3):
        file = tmp_path / f"{n}.eml"
        file.write_bytes(eml(f"report quokka-{n:03d}"))
        files.append(str(file))
    assert main(["ingest", "--data-dir", str(data), *files]) == 0
    assert main(["fulltext", "status", "--data-dir", str(data)]) == 0  # on in a new database
    assert _fts_tables(data) == _FTS_TABLES
    assert main(["fulltext", "off", "--data-dir", str(data)]) == 0
    assert _fts_tables(data) == set()
    assert main(["fulltext", "status", "--data-dir", str(data)]) == 0
    assert main(["fulltext", "on", "--data-dir", str(data)]) == 0
    assert _fts_tables(data) == _FTS_TABLES
    assert main(["fulltext", "status", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert (
        "full-text index: on\nfull-text index: off\nfull-text index: off\n"
        "full-text index: on\nfull-text index: on\n"
    ) in out

    server = ServerThread(make_config(data)).start()
    try:
        with httpx.Client(base_url=server.base_url) as http:
            found = http.get("/api/v1/search", params={"query": "quokka-001"}).json()
            assert [m["Subject"] for m in found["messages"]] == ["report quokka-001"]
            assert main(["fulltext", "off", "--data-dir", str(data)]) == 0
            found = http.get("/api/v1/search", params={"query": "subject:QUOKKA-002"}).json()
            assert [m["Subject"] for m in found["messages"]] == ["report quokka-002"]
    finally:
        server.stop()
    assert capsys.readouterr().out.endswith("full-text index: off\n")
