"""The spam check against a real spamd (Debian's spamd package), started here on a loopback
port with local tests only (-L): the GTUBE message is spam with the GTUBE rule, an ordinary
one is not; another project's key gets 404; without --spamassassin the endpoint says how to
enable it. Skips with the reason when spamd is not installed (CI installs it through
scripts/test-services.sh)."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from postroom.platform import IssuedApiKey
from tests.harness import ServerThread, make_config
from tests.integration.auth.conftest import create_admin, create_key
from tests.spamd import running_spamd

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@pytest.fixture(scope="module")
def spamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_spamd(tmp_path_factory.mktemp("spamd")) as address:
        yield address


def message(subject: str, body: str) -> bytes:
    return (
        f"From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: {subject}\r\n"
        "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.com>\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def capture(server: ServerThread, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
        smtp.sendmail("ann@example.com", ["bob@example.com"], data)


def client(server: ServerThread, key: IssuedApiKey) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key.token}"}, timeout=60
    )


def test_spam_check_with_a_real_spamd(spamd: str, tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", spamassassin=spamd)
    create_admin(config)
    own = create_key(config, "default", "read")
    other = create_key(config, "other-team", "read")
    server = ServerThread(config).start()
    try:
        capture(server, message("hello", "See you at lunch tomorrow, the usual place."))
        capture(server, message("test", f"This is the GTUBE test.\r\n{GTUBE}"))
        with client(server, own) as http:
            assert http.get("/api/v1/webui").json()["SpamAssassin"] is True
            listed = http.get("/api/v1/messages").json()["messages"]
            ids = {m["Subject"]: m["ID"] for m in listed}
            spam = http.get(f"/api/v1/message/{ids['test']}/sa-check")
            assert spam.status_code == 200, spam.text
            result = spam.json()
            assert result["Error"] == "" and result["IsSpam"] is True
            gtube = [r for r in result["Rules"] if r["Name"] == "GTUBE"]
            assert gtube and gtube[0]["Score"] >= 1000 and "Generic Test" in gtube[0]["Description"]
            # the total is GTUBE's 1000 plus or minus the other rules that hit (ALL_TRUSTED: -1)
            others = sum(r["Score"] for r in result["Rules"] if r["Name"] != "GTUBE")
            assert result["Score"] == pytest.approx(gtube[0]["Score"] + others, abs=0.01)
            ham = http.get(f"/api/v1/message/{ids['hello']}/sa-check").json()
            assert ham["Error"] == "" and ham["IsSpam"] is False and ham["Score"] < 5
            assert all(r["Name"] != "GTUBE" for r in ham["Rules"])
        with client(server, other) as http:
            assert http.get(f"/api/v1/message/{ids['test']}/sa-check").status_code == 404
    finally:
        server.stop()


def test_without_spamassassin_the_check_says_how_to_enable_it(tmp_path: Path) -> None:
    server = ServerThread(make_config(tmp_path / "data")).start()
    try:
        capture(server, message("hello", "hi"))
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            answer = http.get("/api/v1/message/latest/sa-check")
            assert answer.status_code == 400
            assert answer.json() == {
                "Error": "SpamAssassin is not enabled: start Postroom with --spamassassin "
                "HOST:PORT (the address of a running spamd)",
                "Field": "spamassassin",
            }
            assert http.get("/api/v1/webui").json()["SpamAssassin"] is False
            assert http.get("/api/v1/message/NOSUCH/sa-check").status_code == 404
    finally:
        server.stop()
