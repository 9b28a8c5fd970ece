"""The webhook sender against a real receiver on loopback: loopback and private targets are
refused unless the server allows them (literal addresses and names that resolve to them), the
request goes to the address that was checked with the URL's Host kept, an answer's body is
read only up to the cap, a silent receiver costs at most the timeout, redirects are not
followed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from postroom.core.clock import SystemClock
from postroom.events.webhook_sender import SenderSettings, WebhookSender
from tests.webhook_receiver import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as opened:
        yield opened


def sender(client: httpx.AsyncClient, allow_private: bool, **names: list[str]) -> WebhookSender:
    async def resolve(host: str, port: int) -> list[str]:
        return names.get(host.replace(".", "_"), [])

    settings = SenderSettings(timeout=0.5, max_response_bytes=1000, allow_private=allow_private)
    return WebhookSender(client, SystemClock(), settings, resolve)


async def test_private_targets_are_refused_unless_allowed(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    strict = sender(client, False, hooks_example=["127.0.0.1"], mixed_example=["10.0.0.7"])
    for url in (
        receiver.url,
        f"http://hooks.example:{receiver.port}/hook",
        f"http://mixed.example:{receiver.port}/hook",
        f"http://[::1]:{receiver.port}/hook",
    ):
        result = await strict.post(url, b"{}", {})
        assert result.status_code is None and not result.succeeded
        assert "--webhook-allow-private" in (result.error or "")
    nowhere = await strict.post("http://unknown.example/hook", b"{}", {})
    assert nowhere.error == "unknown.example has no address"
    assert receiver.requests == []

    # Allowed, a name goes to the address that was checked, with its own Host.
    allowed = sender(client, True, hooks_example=["127.0.0.1"])
    result = await allowed.post(f"http://hooks.example:{receiver.port}/hook?x=1", b"{}", {})
    assert result.succeeded and result.status_code == 200 and result.response_body == "received"
    (request,) = receiver.requests
    assert request.headers["host"] == f"hooks.example:{receiver.port}"
    assert request.path == "/hook?x=1" and request.body == b"{}"


async def test_answers_are_capped_silence_times_out_redirects_fail(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.reply_body = b"x" * 1_000_000
    receiver.script = lambda n: [200, "hang", 302, 500][n]
    allowed = sender(client, True)
    big = await allowed.post(receiver.url, b"{}", {"X-Extra": "1"})
    assert big.succeeded and len(big.response_body) == 1000
    silent = await allowed.post(receiver.url, b"{}", {})
    assert silent.status_code is None and silent.error == "no answer within 0.5 seconds"
    assert 400 <= silent.latency_ms < 2000
    moved = await allowed.post(receiver.url, b"{}", {})
    assert moved.status_code == 302 and not moved.succeeded and moved.error == "HTTP 302"
    failed = await allowed.post(receiver.url, b"{}", {})
    assert failed.status_code == 500 and failed.response_body == "not today"
    assert receiver.requests[0].headers["x-extra"] == "1"
    assert receiver.requests[0].headers["user-agent"] == "Postroom-Webhooks/1"
    await receiver.stop()
    async with httpx.AsyncClient() as fresh:  # no kept-alive connection to the old server
        refused = await sender(fresh, True).post(receiver.url, b"{}", {})
    assert refused.status_code is None and refused.error and "ConnectError" in refused.error
