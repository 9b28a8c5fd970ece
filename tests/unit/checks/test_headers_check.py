"""The headers check (checks/headers_check.py) on fixtures, DNS from an in-memory resolver that
records every query: DKIM signed by Postroom's signer and verified by dkimpy (good, body or
header changed, wrong key, revoked key, Ed25519), SPF pass/fail/softfail/none, DMARC aligned
and not, List-Unsubscribe good and malformed, a bad Date, `To: <<not an address`, a d= that
is no DNS name (nothing asked), and huge or garbage headers (findings, no exception)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postroom.checks.headers_check import Connection, HeadersCheck, Limits, check_headers
from postroom.core.clock import SystemClock
from postroom.dns.dkim import DkimSigner, dns_record, generate_ed25519, generate_rsa
from postroom.dns.resolver import DnsError
from postroom.pipeline.received import read_own_received

NOW = datetime.now(UTC).replace(microsecond=0)


class RecordingResolver:
    """A Resolver over dicts that records every (type, name) asked; names in `failing` raise."""

    def __init__(self) -> None:
        self.txt_records: dict[str, list[str]] = {}
        self.a_records: dict[str, list[str]] = {}
        self.mx_records: dict[str, list[tuple[int, str]]] = {}
        self.failing: set[str] = set()
        self.asked: list[tuple[str, str]] = []

    def _ask(self, rtype: str, name: str) -> None:
        self.asked.append((rtype, name))
        if name in self.failing:
            raise DnsError(f"DNS query for {name} {rtype} timed out", name, rtype)

    async def txt(self, name: str) -> list[str]:
        self._ask("TXT", name)
        return list(self.txt_records.get(name, []))

    async def mx(self, name: str) -> list[tuple[int, str]]:
        self._ask("MX", name)
        return list(self.mx_records.get(name, []))

    async def a(self, name: str) -> list[str]:
        self._ask("A", name)
        return list(self.a_records.get(name, []))

    async def aaaa(self, name: str) -> list[str]:
        self._ask("AAAA", name)
        return []


@cache
def rsa_key() -> Any:
    return generate_rsa(2048)


def message(
    extra: str = "", *, date: str | None = None, to: str = "Ann <ann@example.com>"
) -> bytes:
    lines = [
        "From: Shop <news@shop.test>",
        f"To: {to}",
        "Subject: Spring sale",
        f"Date: {date if date is not None else format_datetime(NOW)}",
        "Message-ID: <abc.123@shop.test>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    if extra:
        lines.extend(extra.split("\n"))
    return ("\r\n".join(lines) + "\r\n\r\nHello Ann,\r\nour sale starts today.\r\n").encode()


def signed(data: bytes, domain: str = "shop.test", selector: str = "s1", key: Any = None) -> bytes:
    signer = DkimSigner(domain, selector, key or rsa_key(), SystemClock())
    return signer.sign(data) + data


def zone(
    resolver: RecordingResolver,
    *,
    spf: str | None = "v=spf1 ip4:192.0.2.0/24 -all",
    dmarc: str | None = "v=DMARC1; p=reject",
    key: Any = None,
) -> RecordingResolver:
    resolver.txt_records["s1._domainkey.shop.test"] = [dns_record(key or rsa_key())]
    if spf is not None:
        resolver.txt_records["shop.test"] = [spf]
    if dmarc is not None:
        resolver.txt_records["_dmarc.shop.test"] = [dmarc]
    return resolver


def connection(ip: str = "192.0.2.7", mail_from: str = "bounce@shop.test") -> Connection:
    return Connection(client_ip=ip, helo="mail.shop.test", mail_from=mail_from, received=NOW)


async def run(
    data: bytes, resolver: RecordingResolver, conn: Connection | None = None
) -> HeadersCheck:
    return await check_headers(data, conn or connection(), resolver)


def levels(result: HeadersCheck, check: str) -> list[str]:
    return [f.level for f in result.findings if f.check == check]


def texts(result: HeadersCheck, check: str) -> str:
    return " | ".join(f.text for f in result.findings if f.check == check)


async def test_a_good_signed_message_passes_dkim_spf_and_dmarc() -> None:
    resolver = zone(RecordingResolver())
    result = await run(signed(message()), resolver)
    assert [v.result for v in result.dkim] == ["pass"]
    assert result.dkim[0].domain == "shop.test" and "from" in result.dkim[0].signed
    assert levels(result, "dkim") == ["pass"]
    assert result.spf is not None and result.spf["Result"] == "pass"
    assert levels(result, "spf") == ["pass"]
    assert result.dmarc is not None and result.dmarc["Result"] == "pass"
    assert result.dmarc["DKIMAligned"] and result.dmarc["SPFAligned"]
    assert "DKIM d=shop.test and SPF shop.test aligned" in texts(result, "dmarc")
    assert levels(result, "from") == ["pass"] and levels(result, "date") == ["pass"]
    assert levels(result, "message-id") == ["pass"]
    assert not [f for f in result.findings if f.level == "fail"]
    assert result.warnings == ()
    summary = result.as_json()["Summary"]
    assert summary["Fail"] == 0 and summary["Pass"] >= 6


async def test_an_ed25519_signature_verifies() -> None:
    key = generate_ed25519()
    resolver = zone(RecordingResolver(), key=key)
    result = await run(signed(message(), key=key), resolver)
    assert [v.result for v in result.dkim] == ["pass"], result.dkim


async def test_a_changed_body_or_header_fails_with_the_reason() -> None:
    resolver = zone(RecordingResolver())
    good = signed(message())
    body_changed = good.replace(b"sale starts", b"sale ended")
    result = await run(body_changed, resolver)
    assert [v.result for v in result.dkim] == ["fail"]
    assert "body hash mismatch" in result.dkim[0].reason
    assert levels(result, "dkim") == ["fail"]
    header_changed = good.replace(b"Subject: Spring sale", b"Subject: Autumn sale")
    result = await run(header_changed, resolver)
    assert [v.result for v in result.dkim] == ["fail"]
    assert "signed header fields" in result.dkim[0].reason
    # DKIM failed, SPF from an address outside the record: DMARC fails, p=reject said
    result = await run(header_changed, resolver, connection(ip="198.51.100.9"))
    assert result.dmarc is not None and result.dmarc["Result"] == "fail"
    assert levels(result, "dmarc") == ["fail"]
    assert "a receiver would reject it (p=reject)" in texts(result, "dmarc")


async def test_a_key_that_is_not_the_signer_and_a_revoked_key() -> None:
    resolver = zone(RecordingResolver(), key=generate_rsa(2048))
    result = await run(signed(message()), resolver)
    assert [v.result for v in result.dkim] == ["fail"]
    resolver.txt_records["s1._domainkey.shop.test"] = ["v=DKIM1; k=rsa; p="]
    result = await run(signed(message()), resolver)
    assert result.dkim[0].result == "fail" and "revoked" in result.dkim[0].reason
    del resolver.txt_records["s1._domainkey.shop.test"]
    result = await run(signed(message()), resolver)
    assert result.dkim[0].result == "permerror"
    assert result.dkim[0].reason == "no DKIM key is published at s1._domainkey.shop.test"
    resolver.failing.add("s1._domainkey.shop.test")
    result = await run(signed(message()), resolver)
    assert result.dkim[0].result == "temperror" and levels(result, "dkim") == ["warn"]


async def test_an_unsigned_message_is_a_warning() -> None:
    result = await run(message(), zone(RecordingResolver()))
    assert result.dkim == []
    assert levels(result, "dkim") == ["warn"]
    assert "not DKIM-signed" in texts(result, "dkim")


@pytest.mark.parametrize(
    ("record", "expected", "level"),
    [
        ("v=spf1 ip4:192.0.2.0/24 -all", "pass", "pass"),
        ("v=spf1 ip4:203.0.113.0/24 -all", "fail", "fail"),
        ("v=spf1 ip4:203.0.113.0/24 ~all", "softfail", "warn"),
        (None, "none", "warn"),
        ("v=spf1 include:nowhere.test -all", "permerror", "fail"),
    ],
)
async def test_spf_results(record: str | None, expected: str, level: str) -> None:
    resolver = zone(RecordingResolver(), spf=record)
    result = await run(message(), resolver)
    assert result.spf is not None
    assert result.spf["Result"] == expected, result.spf
    assert result.spf["Domain"] == "shop.test" and result.spf["ClientIP"] == "192.0.2.7"
    assert levels(result, "spf") == [level]


async def test_spf_uses_helo_for_the_null_sender_and_says_when_the_ip_is_unknown() -> None:
    resolver = zone(RecordingResolver())
    resolver.txt_records["mail.shop.test"] = ["v=spf1 ip4:192.0.2.7 -all"]
    result = await run(message(), resolver, connection(mail_from=""))
    assert result.spf is not None
    assert (result.spf["Result"], result.spf["Identity"]) == ("pass", "HELO")
    unknown = await run(message(), resolver, connection(ip=""))
    assert unknown.spf is None and levels(unknown, "spf") == ["info"]


async def test_dmarc_alignment() -> None:
    # SPF passes for another domain (the envelope of an ESP), DKIM signs for the ESP: not
    # aligned with shop.test, relaxed or strict.
    resolver = zone(RecordingResolver())
    esp_key = generate_rsa(2048)
    resolver.txt_records["s1._domainkey.esp.test"] = [dns_record(esp_key)]
    resolver.txt_records["esp.test"] = ["v=spf1 ip4:192.0.2.0/24 -all"]
    data = signed(message(), domain="esp.test", key=esp_key)
    result = await run(data, resolver, connection(mail_from="b@esp.test"))
    assert result.dkim[0].result == "pass" and result.spf is not None
    assert result.spf["Result"] == "pass"
    assert result.dmarc is not None and result.dmarc["Result"] == "fail"
    assert not result.dmarc["DKIMAligned"] and not result.dmarc["SPFAligned"]
    assert "DKIM d=esp.test is not aligned with shop.test" in texts(result, "dmarc")
    # A subdomain's signature aligns in relaxed mode, not in strict.
    resolver.txt_records["s1._domainkey.mail.shop.test"] = [dns_record(esp_key)]
    data = signed(message(), domain="mail.shop.test", key=esp_key)
    relaxed = await run(data, resolver, connection(mail_from="b@esp.test"))
    assert relaxed.dmarc is not None and relaxed.dmarc["Result"] == "pass"
    resolver.txt_records["_dmarc.shop.test"] = ["v=DMARC1; p=quarantine; adkim=s"]
    strict = await run(data, resolver, connection(mail_from="b@esp.test"))
    assert strict.dmarc is not None and strict.dmarc["Result"] == "fail"
    assert "put it in spam (p=quarantine)" in texts(strict, "dmarc")
    # No record: a warning naming where it was looked for.
    del resolver.txt_records["_dmarc.shop.test"]
    none = await run(data, resolver, connection(mail_from="b@esp.test"))
    assert none.dmarc is not None and none.dmarc["Result"] == "none"
    assert levels(none, "dmarc") == ["warn"] and "_dmarc.shop.test" in texts(none, "dmarc")


ONE_CLICK = (
    "List-Unsubscribe: <https://shop.test/u/123>, <mailto:unsub@shop.test?subject=123>\n"
    "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
)


async def test_one_click_unsubscribe_signed_by_dkim_passes() -> None:
    result = await run(signed(message(ONE_CLICK)), zone(RecordingResolver()))
    assert levels(result, "list-unsubscribe") == ["pass"], texts(result, "list-unsubscribe")
    assert "https://shop.test/u/123" in texts(result, "list-unsubscribe")


async def test_one_click_unsubscribe_without_dkim_covering_it_fails() -> None:
    result = await run(message(ONE_CLICK), zone(RecordingResolver()))
    assert levels(result, "list-unsubscribe") == ["fail"]
    assert "RFC 8058 §4" in texts(result, "list-unsubscribe")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("List-Unsubscribe: https://shop.test/u/123", "angle brackets"),
        ("List-Unsubscribe: <https://shop.test/u/1> <mailto:u@shop.test>", "separated by commas"),
        ("List-Unsubscribe: <ftp://shop.test/u>", "neither https nor mailto"),
        ("List-Unsubscribe: <mailto:nobody>", "not a valid mailto"),
        ("List-Unsubscribe: <http://shop.test/u>", "plain http"),
        (
            "List-Unsubscribe: <https://shop.test/u>\nList-Unsubscribe-Post: One-Click",
            "must be exactly List-Unsubscribe=One-Click",
        ),
        (
            "List-Unsubscribe: <mailto:u@shop.test>\nList-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "needs an https URI",
        ),
        ("List-Unsubscribe-Post: List-Unsubscribe=One-Click", "no List-Unsubscribe header"),
        ("List-Unsubscribe: <https://a.test/u>\nList-Unsubscribe: <https://b.test/u>", "2 times"),
    ],
)
async def test_malformed_list_unsubscribe(headers: str, expected: str) -> None:
    result = await run(signed(message(headers)), zone(RecordingResolver()))
    found = texts(result, "list-unsubscribe")
    assert expected in found
    assert set(levels(result, "list-unsubscribe")) & {"fail", "warn"}


async def test_no_list_unsubscribe_is_information_only() -> None:
    result = await run(message(), zone(RecordingResolver()))
    assert levels(result, "list-unsubscribe") == ["info"]


async def test_a_bad_date_is_a_failure_and_a_parse_warning() -> None:
    result = await run(message(date="yesterday at noon"), zone(RecordingResolver()))
    assert levels(result, "date") == ["fail"]
    assert "'yesterday at noon' cannot be read as a date" in texts(result, "date")
    assert [(w.header, w.value) for w in result.warnings] == [("Date", "yesterday at noon")]
    assert "when Postroom received" in result.warnings[0].text


async def test_dates_in_the_future_without_a_zone_and_missing() -> None:
    future = format_datetime(NOW + timedelta(days=3))
    result = await run(message(date=future), zone(RecordingResolver()))
    assert levels(result, "date") == ["warn"] and "3 days after" in texts(result, "date")
    zoneless = (NOW - timedelta(minutes=1)).strftime("%a, %d %b %Y %H:%M:%S")
    result = await run(message(date=zoneless), zone(RecordingResolver()))
    assert "no time zone" in texts(result, "date")
    no_date = message().replace(b"Date: ", b"X-Old-Date: ")
    result = await run(no_date, zone(RecordingResolver()))
    assert levels(result, "date") == ["fail"] and "no Date header" in texts(result, "date")


async def test_a_malformed_to_is_shown_as_written_with_a_warning() -> None:
    result = await run(message(to="<<not an address"), zone(RecordingResolver()))
    assert [(w.header, w.value) for w in result.warnings] == [("To", "<<not an address")]
    assert levels(result, "addresses") == ["warn"]
    assert "'<<not an address'" in texts(result, "addresses")
    groups = await run(message(to="undisclosed-recipients:;"), zone(RecordingResolver()))
    assert groups.warnings == ()


@pytest.mark.parametrize(
    ("change", "level", "expected"),
    [
        ((b"From: Shop <news@shop.test>", b""), "fail", "no From header"),
        ((b"From: Shop <news@shop.test>", b"From: a@shop.test, b@shop.test"), "fail", "Sender"),
        ((b"From: Shop <news@shop.test>", b"From: Shop <news at shop>"), "fail", "cannot be read"),
        ((b"Message-ID: <abc.123@shop.test>", b"Message-ID: abc123"), "warn", "<unique@domain>"),
        ((b"Message-ID: <abc.123@shop.test>", b"X-Id: 1"), "fail", "no Message-ID"),
    ],
)
async def test_from_and_message_id_sanity(
    change: tuple[bytes, bytes], level: str, expected: str
) -> None:
    data = message().replace(*change)
    result = await run(data, zone(RecordingResolver()))
    matching = [f for f in result.findings if expected in f.text]
    assert matching and matching[0].level == level, [f.text for f in result.findings]


async def test_a_d_that_is_no_dns_name_asks_nothing() -> None:
    """d= naming an address, a URL or an internal name with odd characters: no query at all
    for it; a private-looking DNS name is only ever asked as one TXT query through the resolver."""
    resolver = zone(RecordingResolver())
    good = signed(message())
    for bad in (b"127.0.0.1]", b"http://169.254.169.254/latest", b"a..b", b"x" * 300):
        data = good.replace(b"d=shop.test;", b"d=" + bad + b";", 1)
        resolver.asked.clear()
        result = await run(data, resolver)
        assert result.dkim[0].result == "permerror", bad
        assert not [q for q in resolver.asked if "_domainkey" in q[1]], resolver.asked
    resolver.txt_records["s1._domainkey.metadata.internal"] = [dns_record(rsa_key())]
    data = signed(message(), domain="metadata.internal")
    resolver.asked.clear()
    result = await run(data, resolver)
    assert result.dkim[0].result == "pass"
    dkim_queries = [q for q in resolver.asked if "_domainkey" in q[1]]
    assert dkim_queries == [("TXT", "s1._domainkey.metadata.internal")]


async def test_own_received_header_gives_the_client() -> None:
    raw = (
        b"Received: from app.example ([192.0.2.7])\r\n\tby postroom.test (Postroom)\r\n"
        b"\twith ESMTP id X; Thu, 3 Dec 2026 10:00:00 +0000\r\n" + message()
    )
    facts = read_own_received(raw)
    assert facts is not None and (facts.client_ip, facts.helo) == ("192.0.2.7", "app.example")
    assert read_own_received(message()) is None
    odd = b"Received: from a ([x]) ([::1])\r\n\tby h (Postroom)\r\n" + message()
    facts = read_own_received(odd)
    assert facts is not None and (facts.client_ip, facts.helo) == ("::1", "a ([x])")


async def test_huge_and_garbage_headers_give_findings() -> None:
    resolver = zone(RecordingResolver())
    huge_to = "To: " + ", ".join(f"user{i}@example.com" for i in range(20000))
    colons = "From: <a@b.test>" + ":" * 200_000
    for data in (
        message().replace(b"To: Ann <ann@example.com>", huge_to.encode()),
        message().replace(b"From: Shop <news@shop.test>", colons.encode()),
        b"\x00\xff garbage\r\n\r\n",
        b"",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=shop.test; s=s1; h=from; bh=; b=\r\n\r\n",
        b"DKIM-Signature: \xff\xfe\r\nFrom: \xff@\xfe\r\nDate: \xff\r\n\r\nx",
        message("X-Long: " + "x" * 3_000_000),
    ):
        result = await run(data, resolver)
        assert result.findings
        result.as_json()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
async def test_any_bytes_after_a_signature_give_a_result(noise: bytes) -> None:
    resolver = zone(RecordingResolver())
    data = signed(message())
    head, _, body = data.partition(b"\r\n\r\n")
    result = await run(head + b"\r\n" + noise + b"\r\n\r\n" + body, resolver)
    assert result.as_json()["Findings"]


class HangingResolver(RecordingResolver):
    """Answers nothing, ever (a DNS server that drops the queries, a resolver without timeout)."""

    async def _wait(self) -> None:
        await asyncio.Event().wait()

    async def txt(self, name: str) -> list[str]:
        self._ask("TXT", name)
        await self._wait()
        return []


async def test_dns_that_never_answers_is_bounded_and_said() -> None:
    limits = Limits(spf=0.2, dkim=0.2, dmarc=0.2)
    resolver = HangingResolver()
    result = await check_headers(signed(message()), connection(), resolver, limits=limits)
    assert "Looking up the DKIM keys took more than 0.2 s" in texts(result, "dkim")
    assert result.spf is not None and result.spf["Result"] == "temperror"
    assert result.dmarc is not None and result.dmarc["Result"] == "temperror"
    assert levels(result, "spf") == ["warn"] and levels(result, "dmarc") == ["warn"]
    assert {q[1] for q in resolver.asked} == {
        "s1._domainkey.shop.test",
        "shop.test",
        "_dmarc.shop.test",
    }
