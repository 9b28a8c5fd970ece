"""End to end against a real receiving MX: Debian's Postfix, a private instance on a loopback
port (tests/postfix.py) delivering into a local Maildir. A live project's message submitted
over SMTP is routed through the test DNS server to that Postfix; what lands in the mailbox is
what Postroom accepted, byte for byte, below the trace fields Postfix prepends (Return-Path,
Delivered-To, Received), and its DKIM signature verifies with dkimpy."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from postroom.core.types import DELIVERED
from tests.dnszone import DnsZone, dkimpy_verify
from tests.integration.submission.test_delivery_e2e import settled
from tests.postfix import ReceivingPostfix, postfix_absent, tail
from tests.services import SKIP_PREFIX

from .conftest import Env, start_env

MESSAGE = (
    b"From: App <app@example.com>\r\nTo: Reader <reader@example.net>, two@example.net\r\n"
    b"Subject: through Postfix\r\nMessage-ID: <pf-1@example.com>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    b"Delivered to a real MTA.\r\n.a line that starts with a dot\r\n..and one with two\r\n"
    b"caf\xc3\xa9 \xe2\x80\x94 8-bit body\r\n\r\n-- \r\nTrailing spaces  \r\n"
)


@pytest.fixture
def postfix() -> Iterator[ReceivingPostfix]:
    reason = postfix_absent()
    if reason is not None:
        pytest.skip(f"{SKIP_PREFIX} {reason}")
    # Postfix's daemons run as the postfix user and nobody: a directory they can enter.
    with tempfile.TemporaryDirectory(prefix="postroom-postfix-") as directory:
        workdir = Path(directory)
        workdir.chmod(0o755)
        with ReceivingPostfix(workdir / "postfix", ["example.net"], "mx.example.net") as started:
            yield started


@pytest.fixture
def delivering(
    tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone, postfix: ReceivingPostfix
) -> Iterator[Env]:
    env = start_env(
        tmp_path,
        ca,
        dns_zone,
        delivery=True,
        resolver=dns_zone.nameserver,
        delivery_allow_private=True,
        delivery_mx_port=postfix.port,
    )
    try:
        yield env
    finally:
        env.server.stop()


def trace_fields(prefix: bytes) -> list[bytes]:
    """The names of the header fields in `prefix` (CRLF lines, folded lines joined)."""
    assert prefix.endswith(b"\r\n"), prefix
    return [line.split(b":", 1)[0] for line in prefix.split(b"\r\n")[:-1] if line[:1] not in b" \t"]


def test_postfix_mailbox_holds_the_accepted_message(
    delivering: Env, postfix: ReceivingPostfix, dns_zone: DnsZone
) -> None:
    dns_zone.add_mx("example.net", 10, "mx.example.net")
    dns_zone.add_a("mx.example.net", "127.0.0.1")
    with delivering.smtp() as client:
        client.sendmail("app@example.com", ["reader@example.net", "two@example.net"], MESSAGE)
    (record,) = delivering.messages()
    accepted = delivering.raw(record)
    entries = settled(delivering, record.id)
    assert [e.status for e in entries] == [DELIVERED, DELIVERED], [e.last_error for e in entries]
    assert all("250" in (e.last_error or "250") for e in entries)
    arrived = postfix.wait_delivered(2)
    assert len(arrived) == 2, tail(postfix.maillog)
    recipients = set()
    for stored in arrived:
        # The Maildir file has LF line ends; on the wire (and in Postroom's store) it was CRLF.
        wire = stored.replace(b"\n", b"\r\n")
        # Byte-identical to what Postroom accepted and stored, below the trace fields Postfix
        # prepends: virtual(8)'s Return-Path, X-Original-To and Delivered-To, smtpd's Received.
        assert wire.endswith(accepted), wire[:1500]
        prefix = wire[: -len(accepted)]
        assert trace_fields(prefix) == [
            b"Return-Path",
            b"X-Original-To",
            b"Delivered-To",
            b"Received",
        ], prefix
        assert b"by mx.example.net (Postfix)" in prefix
        assert dkimpy_verify(wire[len(prefix) :], dns_zone)
        assert dkimpy_verify(wire, dns_zone)  # the trace fields are not signed
        # Postfix's own record of the envelope: the per-message (VERP) return path.
        return_path = re.search(rb"^Return-Path: <([^>]*)>", stored, re.MULTILINE)
        assert return_path is not None and return_path.group(1).endswith(b"@rp.example.com")
        delivered_to = re.search(rb"^Delivered-To: (\S+)", stored, re.MULTILINE)
        assert delivered_to is not None
        recipients.add(delivered_to.group(1))
    assert recipients == {b"reader@example.net", b"two@example.net"}
    # One connection for both recipients of the domain; a transaction each, since each
    # recipient has its own (VERP) return path. Stopping Postroom QUITs the kept connection.
    delivering.server.stop()
    pattern = r"disconnect from .* ehlo=1 mail=(\d+) rcpt=(\d+) data=(\d+)"
    deadline = time.monotonic() + 10
    while not re.search(pattern, log := postfix.maillog.read_text(errors="replace")):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    sessions = re.findall(pattern, log)
    assert sessions == [("2", "2", "2")], log
