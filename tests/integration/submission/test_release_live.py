"""A live project's message cannot be released (Mailpit's release is for captured mail): the
queue delivers it, after its quota and suppression checks, and a release must not go around
them."""

from __future__ import annotations

from pathlib import Path

import httpx
import trustme

from tests.dnszone import DnsZone

from .conftest import start_env

MESSAGE = b"From: App <app@example.com>\r\nTo: x\r\nSubject: Live\r\n\r\nHello.\r\n"


def test_a_live_message_is_not_released(tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone) -> None:
    env = start_env(tmp_path, ca, dns_zone, relay="smtp+plain://127.0.0.9:9")
    try:
        with env.smtp() as smtp:
            smtp.sendmail("app@example.com", ["ann@example.net"], MESSAGE)
        (record,) = env.messages()
        service = env.server.app.platform_service
        assert service is not None
        key = service.create_api_key("acme", "sender", ["send", "read"])
        with httpx.Client(
            base_url=env.server.base_url,
            headers={"Authorization": f"Bearer {key.token}"},
            timeout=30,
        ) as http:
            response = http.post(
                f"/api/v1/message/{record.id}/release", json={"To": ["eve@example.org"]}
            )
        assert response.status_code == 400 and response.json()["Field"] == "ID"
        assert "captured" in response.json()["Error"]
    finally:
        env.server.stop()
