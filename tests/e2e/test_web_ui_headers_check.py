"""The Headers check tab and the parse warnings of the message head in headless Chromium, DNS
served by the loopback DNS server (--resolver): a newsletter signed with a DKIM key made here
shows DKIM, SPF and DMARC pass and one-click unsubscribe; a message with a Date that cannot
be read and `To: <<not an address` shows the receive time with a warning beside Date and the
To as written with its warning, and its tab lists the failures. Screenshots:
headers-check-pass, headers-check-warnings."""

from __future__ import annotations

import re
import smtplib
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import pytest

from postroom.config import HostPort
from postroom.core.clock import SystemClock
from postroom.dns.dkim import DkimSigner, dns_record, generate_rsa
from tests.dnszone import DnsZone, dns_zone
from tests.e2e.conftest import PageProblems, Shots, free_port
from tests.harness import ServerThread, make_config

__all__ = ["dns_zone"]

pytestmark = pytest.mark.chromium
ROWS = "#message-list a.row"


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def message(subject: str, date: str, to: str, extra: list[str]) -> bytes:
    lines = [
        "From: Shop <news@shop.test>",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {date}",
        f"Message-ID: {make_msgid(domain='shop.test')}",
        *extra,
        "Content-Type: text/plain; charset=utf-8",
    ]
    return ("\r\n".join(lines) + "\r\n\r\nOur sale starts today.\r\n").encode()


def capture(port: int, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail("bounce@shop.test", ["ann@example.com"], data)


def test_headers_check_tab_and_parse_warnings(
    tmp_path: Path, dns_zone: DnsZone, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    key = generate_rsa(2048)
    dns_zone.add_txt("s1._domainkey.shop.test", dns_record(key))
    dns_zone.add_txt("shop.test", "v=spf1 ip4:127.0.0.1 -all")
    dns_zone.add_txt("_dmarc.shop.test", "v=DMARC1; p=reject")
    config = make_config(
        tmp_path / "data", smtp=HostPort("127.0.0.1", free_port()), resolver=dns_zone.nameserver
    )
    server = ServerThread(config).start()
    try:
        good = message(
            "Spring sale",
            format_datetime(datetime.now(UTC)),
            "Ann <ann@example.com>",
            [
                "List-Unsubscribe: <https://shop.test/u/1>, <mailto:unsub@shop.test>",
                "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            ],
        )
        capture(
            server.smtp_port, DkimSigner("shop.test", "s1", key, SystemClock()).sign(good) + good
        )
        capture(
            server.smtp_port,
            message("Broken headers", "sometime next week", "<<not an address", []),
        )
        page.goto(server.base_url + "/")
        page.locator(ROWS, has_text="Spring sale").click()
        page.get_by_role("tab", name="Headers check").click()
        check(page.locator("#headers-check-score")).to_have_text("All good")
        for verdict in ("#hc-dkim", "#hc-spf", "#hc-dmarc"):
            check(page.locator(verdict)).to_have_class(re.compile(r"\bgood\b"))
            check(page.locator(verdict)).to_contain_text("pass")
        check(page.locator("#hc-spf")).to_contain_text("shop.test from 127.0.0.1")
        check(page.locator("#hc-dmarc")).to_contain_text("p=reject")
        rows = page.locator("#headers-check-table tbody tr")
        check(rows.filter(has_text="One-click unsubscribe (RFC 8058)")).to_have_class(
            re.compile(r"\bhc-pass\b")
        )
        check(page.locator(".header-warning")).to_have_count(0)
        shots.take(page, "headers-check-pass", full_page=True)

        page.locator(ROWS, has_text="Broken headers").click()
        check(page.locator("#message-subject")).to_have_text("Broken headers")
        to = page.locator(".msg-head dd.msg-to")
        check(to.locator(".header-raw")).to_have_text("<<not an address")
        check(to.locator(".header-warning")).to_contain_text("To cannot be read as addresses")
        date = page.locator(".msg-head dd.msg-date")
        check(date.locator("time")).to_be_visible()
        check(date.locator(".header-warning")).to_contain_text(
            "the date shown is when Postroom received the message"
        )
        page.get_by_role("tab", name="Headers check").click()  # the tab stays chosen: it shows
        check(page.locator("#headers-check-score")).to_have_text(re.compile(r"^\d+ failures?$"))
        check(page.locator("#hc-dkim")).to_contain_text("not signed")
        date_row = rows.filter(has_text="cannot be read as a date")
        check(date_row).to_have_class(re.compile(r"\bhc-fail\b"))
        check(date_row).to_contain_text("sometime next week")
        check(rows.filter(has_text="'<<not an address'")).to_have_class(re.compile(r"\bhc-warn\b"))
        check(page.locator("#message-panel")).not_to_contain_text("undefined")
        shots.take(page, "headers-check-warnings", full_page=True)
        assert problems.errors == []
        assert [line for line in problems.console if "Content Security Policy" in line] == []
    finally:
        server.stop()
