"""The headers check over real HTTP on a running server, with mail captured over real SMTP and
DNS served by the loopback DNS server (tests/dnszone.py) named by --resolver: a message signed
with a DKIM key made here passes DKIM, SPF (for 127.0.0.1, the client Postroom's Received
header names) and DMARC; the same message changed in transit fails; the message JSON carries
the parse warnings of a bad Date and `To: <<not an address`; another project's key gets 404;
a d= naming an internal host makes one TXT query through the resolver and nothing else;
huge and garbage headers get an answer, never a 500."""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, make_msgid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from postroom.core.clock import SystemClock
from postroom.dns.dkim import DkimSigner, dns_record, generate_rsa
from postroom.platform import IssuedApiKey
from tests.dnszone import DnsZone, dns_zone
from tests.harness import ServerThread, make_config
from tests.integration.auth.conftest import create_admin, create_key

__all__ = ["dns_zone"]

KEY = generate_rsa(2048)


@dataclass
class Setup:
    server: ServerThread
    zone: DnsZone
    own: IssuedApiKey
    other: IssuedApiKey

    def client(self, key: IssuedApiKey | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key.token}"} if key else {}
        return httpx.Client(base_url=self.server.base_url, headers=headers, timeout=60)


@pytest.fixture
def setup(tmp_path: Path, dns_zone: DnsZone) -> Iterator[Setup]:
    dns_zone.add_txt("s1._domainkey.shop.test", dns_record(KEY))
    dns_zone.add_txt("shop.test", "v=spf1 ip4:127.0.0.0/8 -all")
    dns_zone.add_txt("_dmarc.shop.test", "v=DMARC1; p=reject; rua=mailto:d@shop.test")
    config = make_config(tmp_path / "data", resolver=dns_zone.nameserver)
    create_admin(config)
    own = create_key(config, "default", "read")
    other = create_key(config, "other-team", "read")
    server = ServerThread(config).start()
    try:
        yield Setup(server, dns_zone, own, other)
    finally:
        server.stop()


def newsletter(
    extra: str = "", date: str | None = None, to: str = "Ann <ann@example.com>"
) -> bytes:
    lines = [
        "From: Shop <news@shop.test>",
        f"To: {to}",
        "Subject: Spring sale",
        f"Date: {date or format_datetime(datetime.now(UTC))}",
        f"Message-ID: {make_msgid(domain='shop.test')}",
        "List-Unsubscribe: <https://shop.test/u/1>, <mailto:unsub@shop.test>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "Content-Type: text/plain; charset=utf-8",
        *([extra] if extra else []),
    ]
    return ("\r\n".join(lines) + "\r\n\r\nOur sale starts today.\r\n").encode()


def sign(data: bytes, domain: str = "shop.test") -> bytes:
    return DkimSigner(domain, "s1", KEY, SystemClock()).sign(data) + data


def capture(server: ServerThread, data: bytes, sender: str = "bounce@shop.test") -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
        smtp.sendmail(sender, ["ann@example.com"], data)


def latest(http: httpx.Client) -> str:
    return str(http.get("/api/v1/messages", params={"limit": 1}).json()["messages"][0]["ID"])


def findings(result: dict[str, object], check: str) -> list[tuple[str, str]]:
    items = result["Findings"]
    assert isinstance(items, list)
    return [(f["Level"], f["Text"]) for f in items if f["Check"] == check]


def test_a_signed_message_passes_and_a_changed_one_fails(setup: Setup) -> None:
    signed = sign(newsletter())
    capture(setup.server, signed)
    with setup.client(setup.own) as http:
        message_id = latest(http)
        answer = http.get(f"/api/v1/message/{message_id}/headers-check")
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert [d["Result"] for d in result["DKIM"]] == ["pass"]
        assert result["DKIM"][0]["Domain"] == "shop.test"
        assert {"list-unsubscribe", "list-unsubscribe-post"} <= set(
            result["DKIM"][0]["SignedHeaders"]
        )
        spf = result["SPF"]
        assert (spf["Result"], spf["Domain"], spf["ClientIP"]) == ("pass", "shop.test", "127.0.0.1")
        assert result["DMARC"]["Result"] == "pass" and result["DMARC"]["Policy"] == "reject"
        assert [lvl for lvl, _ in findings(result, "list-unsubscribe")] == ["pass"]
        assert result["Summary"]["Fail"] == 0, result["Findings"]
        assert result["HeaderWarnings"] == []
        assert http.get("/api/v1/message/latest/headers-check").json()["DKIM"] == result["DKIM"]
    asked = {(q.name, q.rtype) for q in setup.zone.queries}
    assert {
        ("s1._domainkey.shop.test", "TXT"),
        ("shop.test", "TXT"),
        ("_dmarc.shop.test", "TXT"),
    } <= asked

    capture(setup.server, signed.replace(b"starts today", b"ended"), sender="b@elsewhere.test")
    with setup.client(setup.own) as http:
        result = http.get(f"/api/v1/message/{latest(http)}/headers-check").json()
    assert [d["Result"] for d in result["DKIM"]] == ["fail"]
    assert "body hash mismatch" in result["DKIM"][0]["Reason"]
    assert result["SPF"]["Result"] == "none"  # elsewhere.test publishes nothing
    assert result["DMARC"]["Result"] == "fail"
    dmarc = findings(result, "dmarc")
    assert dmarc[0][0] == "fail" and "reject it (p=reject)" in dmarc[0][1]


def test_parse_warnings_in_the_message_and_the_check(setup: Setup) -> None:
    capture(setup.server, newsletter(date="the day after tomorrow", to="<<not an address"))
    with setup.client(setup.own) as http:
        message_id = latest(http)
        message = http.get(f"/api/v1/message/{message_id}").json()
        warnings = {w["Header"]: w for w in message["HeaderWarnings"]}
        assert set(warnings) == {"Date", "To"}
        assert warnings["To"]["Value"] == "<<not an address"
        # the summary (list rows, search) keeps the field as written, not a fragment of it
        assert [a["Address"] for a in message["To"]] == ["<<not an address"]
        assert warnings["Date"]["Value"] == "the day after tomorrow"
        assert "when Postroom received" in warnings["Date"]["Warning"]
        # the documented fields are unchanged: the Date shown is the receive time
        shown = datetime.fromisoformat(message["Date"])
        assert abs(datetime.now(UTC) - shown) < timedelta(minutes=10)
        result = http.get(f"/api/v1/message/{message_id}/headers-check").json()
        assert result["HeaderWarnings"] == message["HeaderWarnings"]
        assert findings(result, "date")[0][0] == "fail"
        assert findings(result, "addresses")[0][0] == "warn"
        # unsigned, yet one-click is claimed: RFC 8058 §4
        assert any("RFC 8058 §4" in text for _, text in findings(result, "list-unsubscribe"))


def test_another_projects_key_gets_404(setup: Setup) -> None:
    capture(setup.server, sign(newsletter()))
    with setup.client(setup.own) as http:
        message_id = latest(http)
    with setup.client(setup.other) as http:
        for path in (
            f"/api/v1/message/{message_id}/headers-check",
            "/api/v1/message/latest/headers-check",
            "/api/v1/message/NOSUCHID/headers-check",
        ):
            answer = http.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["Error"]
    with setup.client() as http:  # no key at all (an admin exists): refused like html-check
        answers = [
            http.get(f"/api/v1/message/{message_id}/{check}").status_code
            for check in ("headers-check", "html-check")
        ]
        assert answers[0] == answers[1] and answers[0] in (401, 403)


class Hits(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    do_HEAD = do_POST = do_GET

    def log_message(self, *args: object) -> None:
        return None


def test_a_d_naming_an_internal_host_asks_one_txt_through_the_resolver(setup: Setup) -> None:
    """The key's name resolves (A) to a web server on loopback standing for private data;
    the check asks the configured DNS server for that name's TXT key and nothing more: no
    other query about it, no connection to it."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hits)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        for name in ("internal.test", "s1._domainkey.internal.test"):
            setup.zone.add_a(name, "127.0.0.1")
        data = sign(newsletter(), domain="internal.test")
        data = data.replace(
            b"d=internal.test;", f"d=internal.test:{httpd.server_address[1]};".encode()
        )
        capture(setup.server, sign(newsletter(), domain="internal.test"))
        capture(setup.server, data)
        before = len(setup.zone.queries)
        with setup.client(setup.own) as http:
            ids = [
                m["ID"]
                for m in http.get("/api/v1/messages", params={"limit": 2}).json()["messages"]
            ]
            results = [http.get(f"/api/v1/message/{i}/headers-check").json() for i in ids]
        port_name, plain = results
        assert port_name["DKIM"][0]["Result"] == "permerror"  # d= with a port: no lookup
        assert plain["DKIM"][0]["Result"] == "permerror"
        assert (
            plain["DKIM"][0]["Reason"] == "no DKIM key is published at s1._domainkey.internal.test"
        )
        internal = [q for q in setup.zone.queries[before:] if "internal" in q.name]
        assert [(q.name, q.rtype) for q in internal] == [("s1._domainkey.internal.test", "TXT")]
        assert Hits.hits == []
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_huge_and_garbage_headers_get_an_answer(setup: Setup) -> None:
    # SMTP lines hold at most 998 characters: the long fields are folded.
    recipients = ",\r\n ".join(f"user{i}@example.com" for i in range(5000))
    bad = [
        newsletter(extra="X-Huge: " + "\r\n ".join(["y" * 900] * 450)),
        newsletter(to=recipients),
        newsletter(extra="DKIM-Signature: \x7f; d=; s=; b=; bh=;"),
        b"From: <a@b.test>"
        + b"\r\n ".join([b":" * 900] * 110)
        + b"\r\nDate: \xff\xfe\r\n\r\nx\r\n",
        b"no header at all\r\n",
    ]
    for data in bad:
        capture(setup.server, data)
    with setup.client(setup.own) as http:
        ids = [
            m["ID"] for m in http.get("/api/v1/messages", params={"limit": 10}).json()["messages"]
        ]
        assert len(ids) == len(bad)
        for message_id in ids:
            answer = http.get(f"/api/v1/message/{message_id}/headers-check")
            assert answer.status_code == 200, answer.text[:300]
            assert answer.json()["Findings"]
            view = http.get(f"/api/v1/message/{message_id}")
            assert view.status_code == 200
