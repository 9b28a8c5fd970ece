"""A message spooled to a file by the SMTP edge is stored byte for byte by the whole server
(writer thread and writer process), read back over /api/v1, and its spool file is gone
(issue 9, item 3)."""

from __future__ import annotations

import base64
import os
import random
import smtplib
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.harness import ServerThread, make_config


def big_message() -> bytes:
    rng = random.Random(3)
    lines = [
        b"From: Big Sender <big@example.com>",
        b"To: reader@example.org",
        b"Subject: spooled",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="sep"',
        b"",
        b"--sep",
        b"Content-Type: text/plain",
        b"",
        b"the text of a message that went through a file",
        b".a line that starts with a dot",
        b"--sep",
        b"Content-Type: application/octet-stream",
        b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="noise.bin"',
        b"",
    ]
    noise = bytes(rng.getrandbits(8) for _ in range(600_000))
    encoded = base64.encodebytes(noise).rstrip(b"\n").split(b"\n")
    return b"\r\n".join([*lines, *encoded, b"--sep--", b""])


@pytest.mark.parametrize("writer_process", [False, True], ids=["writer-thread", "writer-process"])
def test_a_spooled_message_is_stored_byte_exact_and_its_file_deleted(
    tmp_path: Path, writer_process: bool
) -> None:
    data_dir = tmp_path / "data"
    config = make_config(data_dir, writer_process=writer_process, smtp_spool_threshold=64 * 1024)
    server = ServerThread(config).start()
    try:
        data = big_message()
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60) as client:
            client.sendmail("big@example.com", ["reader@example.org"], data)
        assert list((data_dir / "spool").iterdir()) == []
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            [listed] = http.get("/api/v1/messages").json()["messages"]
            raw = http.get(f"/api/v1/message/{listed['ID']}/raw").content
            assert raw.startswith(b"Received: ") and raw.endswith(data)
            assert raw[raw.index(b"\r\nFrom: Big Sender") + 2 :] == data
            assert listed["Size"] == len(raw)
            # The summary was parsed from the stream: sender, subject, attachment, text.
            assert listed["Subject"] == "spooled"
            assert listed["From"]["Address"] == "big@example.com"
            view = http.get(f"/api/v1/message/{listed['ID']}").json()
            assert view["Text"].startswith("the text of a message that went through a file")
            [attachment] = view["Attachments"]
            assert (attachment["FileName"], attachment["Size"]) == ("noise.bin", 600_000)
            found = http.get("/api/v1/search", params={"query": "went through a file"}).json()
            assert [m["ID"] for m in found["messages"]] == [listed["ID"]]
    finally:
        server.stop()


def test_leftover_spool_files_of_a_crash_are_deleted_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "spool").mkdir(parents=True)
    leftover = data_dir / "spool" / "smtp-abc.eml"
    leftover.write_bytes(b"half a message")
    other = data_dir / "spool" / "notes.txt"  # not ours: left alone
    other.write_text("keep")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = data_dir / "spool" / f"smtp-{gone.stdout.strip()}-x1.eml"  # its writer exited
    dead.write_bytes(b"half a message")
    running = data_dir / "spool" / f"smtp-{os.getppid()}-x2.eml"  # another server's, in use
    running.write_bytes(b"a message being received")
    server = ServerThread(make_config(data_dir)).start()
    try:
        assert not leftover.exists() and not dead.exists()
        assert other.exists() and running.exists()
    finally:
        server.stop()
