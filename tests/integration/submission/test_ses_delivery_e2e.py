"""End to end through the SES-compatible API: boto3's SendEmail into a live project, the
delivery worker delivers it to the recipient's MX on loopback (found through the test DNS
server), byte for byte as accepted, with a DKIM signature that verifies; the native API's
message likewise."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import trustme

from postroom.config import HostPort
from postroom.core.clock import FakeClock
from postroom.core.types import DELIVERED
from tests.dnszone import DnsZone, dkimpy_verify

from .conftest import Env, start_env
from .test_delivery_e2e import Receiver, receiver, settled
from .test_native_send import key
from .test_ses_api import client, ses_key

__all__ = ["receiver"]


@pytest.fixture
def delivering(
    tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone, receiver: Receiver
) -> Iterator[Env]:
    environment = start_env(
        tmp_path,
        ca,
        dns_zone,
        FakeClock(datetime.now(UTC).replace(microsecond=0)),  # boto3 signs with the real time
        ses=HostPort("127.0.0.1", 0),
        delivery=True,
        resolver=dns_zone.nameserver,
        delivery_allow_private=True,
        delivery_mx_port=receiver.port,
    )
    try:
        yield environment
    finally:
        environment.server.stop()


def test_ses_and_native_sends_are_delivered_signed(
    delivering: Env, receiver: Receiver, dns_zone: DnsZone
) -> None:
    dns_zone.add_mx("example.net", 10, "mx.example.net")
    dns_zone.add_a("mx.example.net", "127.0.0.1")
    ses = client(delivering, "sesv2", ses_key(delivering))
    sent = ses.send_email(
        FromEmailAddress="App <app@example.com>",
        Destination={"ToAddresses": ["reader@example.net"]},
        Content={
            "Simple": {
                "Subject": {"Data": "through SES"},
                "Body": {"Text": {"Data": "Delivered for real."}},
            }
        },
    )
    assert [e.status for e in settled(delivering, sent["MessageId"])] == [DELIVERED]
    with httpx.Client(base_url=delivering.server.base_url, timeout=30) as http:
        native = http.post(
            "/api/v2/messages",
            json={
                "from": "app@example.com",
                "to": "reader@example.net",
                "subject": "through the native API",
                "html": "<p>Delivered</p>",
            },
            headers={"Authorization": f"Bearer {key(delivering)}"},
        )
    assert native.status_code == 200, native.text
    assert [e.status for e in settled(delivering, native.json()["id"])] == [DELIVERED]
    records = {r.id: r for r in delivering.messages()}
    assert len(receiver.messages) == 2
    for got in receiver.messages:
        assert got.envelope.recipients == ("reader@example.net",)
        assert any(got.data == delivering.raw(r) for r in records.values())  # byte-identical
        assert dkimpy_verify(got.data, dns_zone)
