"""End to end on the real server: `--ip-pools` configures a pool of loopback addresses, the
project picks it through the API (`ip_pool` of its delivery settings; another project's key
cannot, an unknown pool is a 400 naming the field), and the receiving MX sees the delivery
come from the pool's address with its EHLO name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from postroom.core.types import DELIVERED
from tests.dnszone import DnsZone
from tests.integration.submission.test_delivery_e2e import Receiver, settled

from .conftest import Env, start_env
from .test_queue_api import call, client

MESSAGE = b"From: App <app@example.com>\r\nTo: x\r\nSubject: pooled\r\n\r\nFrom a pool.\r\n"
S = "/api/v2/projects/{project}/delivery-settings"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def pooled(tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone, receiver: Receiver) -> Iterator[Env]:
    env = start_env(
        tmp_path,
        ca,
        dns_zone,
        delivery=True,
        resolver=dns_zone.nameserver,
        delivery_allow_private=True,
        delivery_mx_port=receiver.port,
        ip_pools="dedicated=127.0.0.2/out2.example.com; other=127.0.0.3/out3.example.com",
    )
    try:
        yield env
    finally:
        env.server.stop()


def test_project_delivers_from_its_pool(pooled: Env, receiver: Receiver, dns_zone: DnsZone) -> None:
    dns_zone.add_a("example.net", "127.0.0.1")
    with client(pooled, "acme") as api:
        stored = call(api, "PUT", S, 200, {"ip_pool": "Dedicated"}, project="acme")
        assert stored == {"project": "acme", "bounce_notices": True, "ip_pool": "dedicated"}
        refused = call(api, "PUT", S, 400, {"ip_pool": "nope"}, project="acme")
        assert refused["Field"] == "ip_pool" and "dedicated, other" in refused["Error"]
        assert call(api, "GET", S, 200, project="acme")["ip_pool"] == "dedicated"
    with client(pooled, "sandbox") as other:
        response = other.put(S.format(project="acme"), json={"ip_pool": "other"})
        assert response.status_code == 403
    with pooled.smtp() as smtp:
        smtp.sendmail("app@example.com", ["reader@example.net"], MESSAGE)
    (record,) = pooled.messages()
    assert [e.status for e in settled(pooled, record.id)] == [DELIVERED]
    (got,) = receiver.messages
    assert (got.session.peer_host, got.session.helo) == ("127.0.0.2", "out2.example.com")
