"""`GET /api/v2/projects/{project}/events` on the real server: mail submitted over SMTP to a live
project shows as `send` events, delivery reports as theirs; filters and paging work; every
response validates against the served OpenAPI document; bad parameters are 400 naming the
parameter; and another project's events are never reachable, by path, message id or recipient,
nor by a later project that takes a deleted project's id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import jsonschema

from postroom.core.events import EventQuery
from postroom.core.types import Attempt

from .conftest import Env

MESSAGE = (
    b"From: App <app@example.com>\r\nTo: Ann <ann@example.net>\r\nSubject: Receipt\r\n\r\n"
    b"Thank you.\r\n"
)
PATH = "/api/v2/projects/{project}/events"


def client(env: Env, project: str | None) -> httpx.Client:
    headers = {}
    if project is not None:
        service = env.server.app.platform_service
        assert service is not None
        issued = service.create_api_key(project, "events", ["manage"])
        headers["Authorization"] = f"Bearer {issued.token}"
    return httpx.Client(base_url=env.server.base_url, headers=headers, timeout=30)


def checked(api: httpx.Client, project: str, status: int, **params: Any) -> Any:
    """GET the events and validate the response against the OpenAPI document."""
    response = api.get(PATH.format(project=project), params=params)
    assert response.status_code == status, response.text
    doc = api.get("/api/v2/openapi.json").json()
    operation = doc["paths"][PATH]["get"]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(
        response.json()
    )
    return response.json()


def test_events_through_the_api(env: Env) -> None:
    with env.smtp() as smtp:
        smtp.sendmail("app@example.com", ["ann@example.net", "Bob@Example.net"], MESSAGE)
        smtp.sendmail("app@example.com", ["cy@example.net"], MESSAGE)
    by_count = {len(m.envelope.recipients): m for m in env.messages()}
    first, second = by_count[2], by_count[1]
    queue = env.store.queue
    claimed = queue.claim("w", env.clock.now(), timedelta(minutes=5), 10)
    ann = next(e for e in claimed if e.recipient == "ann@example.net")
    assert queue.complete(ann.id, "w", env.clock.now(), {"code": 250, "text": "OK"})
    with client(env, "acme") as api:
        everything = checked(api, "acme", 200)
        assert [(e["type"], e["recipient"]) for e in everything["events"]] == [
            ("send", "ann@example.net"),
            ("send", "Bob@Example.net"),
            ("send", "cy@example.net"),
            ("delivery", "ann@example.net"),
        ]
        assert everything["next"] is None and everything["project"] == "acme"
        delivered = checked(api, "acme", 200, type="delivery")["events"]
        assert delivered[0]["detail"] == {"code": 250, "text": "OK"}
        assert delivered[0]["message"] == first.id
        by_recipient = checked(api, "acme", 200, recipient="bob@example.NET")["events"]
        assert [e["message"] for e in by_recipient] == [first.id]
        assert len(checked(api, "acme", 200, message=second.id)["events"]) == 1
        page = checked(api, "acme", 200, limit=3, type="send,delivery")
        assert len(page["events"]) == 3 and page["next"] == page["events"][-1]["id"]
        rest = checked(api, "acme", 200, limit=3, after=page["next"])
        assert [e["type"] for e in rest["events"]] == ["delivery"] and rest["next"] is None
        later = (env.clock.now() + timedelta(seconds=1)).isoformat()
        assert checked(api, "acme", 200, since=later)["events"] == []
        for params, field in (
            ({"type": "delivered"}, "type"),
            ({"limit": "0"}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"after": "-1"}, "after"),
            ({"since": "yesterday"}, "since"),
            ({"since": "2026-01-01T00:00:00"}, "since"),
            ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
            ({"colour": "red"}, "colour"),
        ):
            assert checked(api, "acme", 400, **params)["Field"] == field
    with client(env, None) as open_mode:
        assert checked(open_mode, "nope", 404)["Error"]


def test_another_projects_events_are_never_reachable(env: Env) -> None:
    with env.smtp() as smtp:
        smtp.sendmail("app@example.com", ["secret@example.net"], MESSAGE)
    (theirs,) = env.messages()
    with client(env, "sandbox") as other:
        refused = other.get(PATH.format(project="acme"))
        assert refused.status_code == 403 and "acme" in refused.json()["Error"]
        for params in ({"message": theirs.id}, {"recipient": "secret@example.net"}, {}):
            assert checked(other, "sandbox", 200, **params)["events"] == []
        # Path tricks reach the key's own project or nothing.
        for path in (
            "/api/v2/projects/sandbox/../acme/events",
            "/api/v2/projects/sandbox%2F..%2Facme/events",
            "/api/v2/projects/ACME/events",
        ):
            response = other.get(path)
            assert response.status_code in (403, 404), path
    with client(env, "acme") as own:
        assert len(checked(own, "acme", 200)["events"]) == 1
    # A project deleted takes its log along: a new project of the same id starts empty.
    service = env.server.app.platform_service
    assert service is not None
    service.delete_project("acme")
    service.create_project("acme", "Acme again", "capture")
    with client(env, "acme") as newcomer:
        assert checked(newcomer, "acme", 200)["events"] == []


DELIVERIES = "/api/v2/projects/{project}/messages/{message}/deliveries"


def deliveries(api: httpx.Client, project: str, message: str, status: int) -> Any:
    response = api.get(DELIVERIES.format(project=project, message=message))
    assert response.status_code == status, response.text
    doc = api.get("/api/v2/openapi.json").json()
    operation = doc["paths"][DELIVERIES]["get"]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(
        response.json()
    )
    return response.json()


def test_a_messages_deliveries_through_the_api(env: Env) -> None:
    with env.smtp() as smtp:
        smtp.sendmail("app@example.com", ["ann@example.net", "bob@example.net"], MESSAGE)
    (record,) = env.messages()
    queue = env.store.queue
    ann, bob = queue.claim("w", env.clock.now(), timedelta(minutes=5), 10)
    tried = Attempt(
        env.clock.now(),
        0.5,
        250,
        "2.0.0",
        "250 2.0.0 OK",
        "mx.example.net",
        "192.0.2.1",
        25,
        "192.0.2.9:4000",
        "TLSv1.3",
        "TLS_AES_128_GCM_SHA256",
    )
    queue.complete(ann.id, "w", env.clock.now(), {}, attempt=tried)
    later = env.clock.now() + timedelta(minutes=1)
    queue.defer(bob.id, "w", later, "451 4.2.2 full", {}, attempt=tried)
    with client(env, "acme") as api:
        found = deliveries(api, "acme", record.id, 200)
        assert found["status"] == "delivering" and found["message"] == record.id
        by = {r["recipient"]: r for r in found["recipients"]}
        assert by["ann@example.net"]["state"] == "delivered"
        assert by["ann@example.net"]["next_attempt"] is None
        (history,) = by["ann@example.net"]["history"]
        assert history["tls_version"] == "TLSv1.3" and history["duration_ms"] == 500
        assert history["mx_host"] == "mx.example.net" and history["outcome"] == "delivery"
        assert by["bob@example.net"]["state"] == "deferred"
        assert by["bob@example.net"]["last_error"] == "451 4.2.2 full"
        assert by["bob@example.net"]["history"][0]["outcome"] == "deferred"
        assert deliveries(api, "acme", "01NOSUCHMESSAGE00000000000", 404)["Error"]
    with client(env, "sandbox") as other:
        assert deliveries(other, "sandbox", record.id, 404)["Error"]
        refused = other.get(DELIVERIES.format(project="acme", message=record.id))
        assert refused.status_code == 403


def test_the_send_apis_metadata_comes_back_with_events_and_webhook_payloads(env: Env) -> None:
    from postroom.events.payload import build_payload
    from postroom.events.webhook_worker import mail_from_store

    from .test_native_send import key

    body = {
        "from": "App <app@example.com>",
        "to": ["ann@example.net"],
        "subject": "Receipt",
        "text": "Thank you.",
        "metadata": {"user_id": "42", "order": "A-7"},
    }
    with httpx.Client(base_url=env.server.base_url, timeout=30) as http:
        sent = http.post(
            "/api/v2/messages", json=body, headers={"Authorization": f"Bearer {key(env)}"}
        )
        assert sent.status_code == 200, sent.text
        plain = http.post(
            "/api/v2/messages",
            json={**body, "metadata": None},
            headers={"Authorization": f"Bearer {key(env)}"},
        )
        assert plain.status_code == 200, plain.text
    with_meta, without = sent.json()["id"], plain.json()["id"]
    # The metadata is kept beside the message, not in it.
    record = next(m for m in env.messages() if m.id == with_meta)
    assert b"A-7" not in env.raw(record) and record.metadata == body["metadata"]
    queue = env.store.queue
    claimed = queue.claim("w", env.clock.now(), timedelta(minutes=5), 10)
    for entry in claimed:
        assert queue.complete(entry.id, "w", env.clock.now(), {"code": 250, "text": "OK"})
    with client(env, "acme") as api:
        events = checked(api, "acme", 200)["events"]
    mine = [e for e in events if e["message"] == with_meta]
    assert [e["type"] for e in mine] == ["send", "delivery"]
    assert all(e["metadata"] == {"user_id": "42", "order": "A-7"} for e in mine)
    assert all("metadata" not in e for e in events if e["message"] == without)
    # Webhook payloads: the worker reads the message's facts from the store.
    mail_of = mail_from_store(env.store)
    stored = env.store.events.query("acme", EventQuery(message_id=with_meta, limit=10)).events
    delivery = next(e for e in stored if e.type == "delivery")
    payload = build_payload(delivery, mail_of("acme", with_meta, False))
    assert payload["eventType"] == "Delivery"
    assert payload["metadata"] == {"user_id": "42", "order": "A-7"}
    other = env.store.events.query("acme", EventQuery(message_id=without, limit=10)).events[0]
    assert "metadata" not in build_payload(other, mail_of("acme", without, False))
    # Another project's key never reads it.
    with client(env, "sandbox") as other_api:
        assert checked(other_api, "sandbox", 200, message=with_meta)["events"] == []
