"""POST /api/v1/send with a project's send key (the http_send door): a live project's message
runs the submission checks (verified identities, quota, DKIM) and is queued, or is refused with
a clear HTTP error; a capture project's message is captured as before. Real server, real HTTP
client, dkimpy fetching the key from the test DNS server."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from postroom.core.platform import ApiKey
from postroom.core.secrets import new_api_key
from tests.dnszone import dkimpy_verify

from .conftest import CREATED, Env


def send_key(env: Env, project: str) -> str:
    issued = new_api_key()
    env.platform.add_api_key(
        ApiKey(issued.key_id, project, "sender", ("send",), issued.digest, CREATED)
    )
    return issued.token


def body(sender: str = "app@example.com", **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "From": {"Email": sender, "Name": "App"},
        "To": [{"Email": "a@example.net"}],
        "Subject": "over HTTP",
        "Text": "Hello over HTTP\n",
    }
    values.update(extra)
    return values


async def post(env: Env, token: str, payload: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=env.server.base_url, timeout=30) as http:
        return await http.post(
            "/api/v1/send", json=payload, headers={"Authorization": f"Bearer {token}"}
        )


async def test_live_project_messages_are_signed_and_queued(env: Env) -> None:
    response = await post(env, send_key(env, "acme"), body())
    assert response.status_code == 200, response.text
    message_id = response.json()["ID"]
    [record] = env.messages()
    assert record.id == message_id and record.status == "queued"
    assert [entry.recipient for entry in env.queue(message_id)] == ["a@example.net"]
    raw = env.raw(record)
    assert b"DKIM-Signature:" in raw
    assert await asyncio.to_thread(dkimpy_verify, raw, env.zone)


async def test_live_project_refusals_are_clear_http_errors(env: Env) -> None:
    token = send_key(env, "acme")
    unverified = await post(env, token, body("ceo@elsewhere.example"))
    assert unverified.status_code == 403
    assert unverified.json() == {
        "Error": "Message rejected: Email address is not verified. The following identities "
        "failed the check: ceo@elsewhere.example",
        "Field": "From",
    }
    env.set_project(daily_quota=1)
    assert (await post(env, token, body())).status_code == 200
    over = await post(env, token, body())
    assert over.status_code == 429
    assert over.json() == {
        "Error": "Throttling failure: Daily message quota exceeded",
        "Field": "daily_quota",
    }
    assert int(over.headers["Retry-After"]) > 0
    assert len(env.messages()) == 1  # nothing refused was stored


async def test_capture_project_keeps_capturing(env: Env) -> None:
    response = await post(env, send_key(env, "sandbox"), body("anyone@unverified.example"))
    assert response.status_code == 200, response.text
    [record] = env.messages("sandbox")
    assert record.status == "captured"
    assert b"DKIM-Signature:" not in env.raw(record)
    assert env.queue(record.id) == []
