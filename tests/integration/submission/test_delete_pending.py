"""Deleting a live project's messages through the real HTTP API never cancels a delivery: a
request that targets messages with recipients still to deliver to is refused whole with 409,
naming them; once their recipients are done, they delete as usual. The deliveries come from
real SMTP submissions, DSN parameters and all."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from postroom.core.types import DELIVERED, Delivery

from .conftest import Env

MESSAGE = (
    b"From: App <app@example.com>\r\n"
    b"To: Ann <ann@example.net>\r\n"
    b"Subject: Receipt %d\r\n"
    b"\r\n"
    b"Thank you.\r\n"
)
LEASE = timedelta(minutes=5)


@pytest.fixture
def api(env: Env) -> Iterator[httpx.Client]:
    """httpx with a read key of the live project "acme" (its /api/v1 inbox)."""
    service = env.server.app.platform_service
    assert service is not None
    issued = service.create_api_key("acme", "reader", ["read"])
    with httpx.Client(
        base_url=env.server.base_url,
        headers={"Authorization": f"Bearer {issued.token}"},
        timeout=30,
    ) as client:
        yield client


def delete(api: httpx.Client, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return api.request("DELETE", path, json=body)


def listed(api: httpx.Client) -> list[str]:
    response = api.get("/api/v1/messages")
    assert response.status_code == 200
    return sorted(m["ID"] for m in response.json()["messages"])


def finish(env: Env, message_id: str) -> None:
    """A delivery worker's part: claim the message's entries and report them delivered."""
    queue = env.store.queue
    now = env.clock.now()
    wanted = {e.id for e in queue.entries(message_id)}
    for entry in queue.claim("test-worker", now, LEASE, 100):
        if entry.id in wanted:
            assert queue.complete(entry.id, "test-worker", now)
        else:
            assert queue.release(entry.id, "test-worker")


def test_deleting_messages_with_pending_deliveries_is_refused_with_409(
    env: Env, api: httpx.Client
) -> None:
    with env.smtp() as client:
        client.sendmail(
            "app@example.com",
            ["ann@example.net", "Bob@Example.ORG"],
            MESSAGE % 1,
            mail_options=["RET=HDRS", "ENVID=order-1"],
            rcpt_options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;ann@example.net"],
        )
        client.sendmail("app@example.com", ["carl@example.net"], MESSAGE % 2)
    by_subject = {r.summary.subject: r.id for r in env.messages()}
    pending, done = by_subject["Receipt 1"], by_subject["Receipt 2"]
    # The pipeline built one delivery per recipient, with its domain and DSN parameters.
    assert [e.delivery for e in env.queue(pending)] == [
        Delivery(
            "ann@example.net",
            "example.net",
            "FAILURE,DELAY",
            "rfc822;ann@example.net",
            "HDRS",
            "order-1",
        ),
        Delivery(
            "Bob@Example.ORG",
            "example.org",
            "FAILURE,DELAY",
            "rfc822;ann@example.net",
            "HDRS",
            "order-1",
        ),
    ]
    finish(env, done)
    assert [e.status for e in env.queue(done)] == [DELIVERED]

    refused = delete(api, "/api/v1/messages", {"IDs": [done, pending]})
    assert refused.status_code == 409
    body = refused.json()
    assert body["Field"] == "IDs"
    assert body["PendingMessages"] == 1 and body["PendingDeliveries"] == 2
    assert body["Pending"] == [
        {"ID": pending, "Count": 2, "Recipients": ["ann@example.net", "Bob@Example.ORG"]}
    ]
    assert body["Error"].startswith("Nothing was deleted: 1 message has 2 deliveries pending")
    assert f"{pending} to ann@example.net, Bob@Example.ORG" in body["Error"]
    # Refused whole: the deletable message is still there too.
    assert listed(api) == sorted([done, pending])

    everything = delete(api, "/api/v1/messages")
    assert everything.status_code == 409 and "Field" not in everything.json()
    assert [p["ID"] for p in everything.json()["Pending"]] == [pending]
    search = delete(api, "/api/v1/search?query=subject:receipt")
    assert search.status_code == 409 and search.json()["Field"] == "query"
    assert listed(api) == sorted([done, pending])
    assert len(env.queue(pending)) == 2

    # Without the pending message the request goes through, finished entries and all.
    ok = delete(api, "/api/v1/messages", {"IDs": [done]})
    assert ok.status_code == 200
    assert listed(api) == [pending] and env.queue(done) == []
    # Once every recipient is done, it deletes like any other message.
    finish(env, pending)
    assert delete(api, "/api/v1/search?query=subject:receipt").status_code == 200
    assert listed(api) == [] and env.queue() == []


def test_retention_skips_live_messages_with_pending_deliveries(env: Env) -> None:
    with env.smtp() as client:
        client.sendmail("app@example.com", ["ann@example.net"], MESSAGE % 1)
    [record] = env.messages()
    assert env.store.prune("acme", 0, env.clock.now() + timedelta(days=1)) == []
    assert [r.id for r in env.messages()] == [record.id]
    finish(env, record.id)
    assert env.store.prune("acme", 0, None) == [record.id]
