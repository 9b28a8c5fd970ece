"""A project's webhooks through the real server's `/api/v2/projects/{project}/webhooks`: created
with a secret shown once, listed, changed, rotated, deleted; bad input a 400 naming the field;
every response checked against the served OpenAPI document; loopback URLs refused unless the
server allows them; and no route reaches another project's webhook."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import trustme
from sqlalchemy import insert

from postroom.core.ids import new_id
from postroom.storage import codec
from postroom.storage.webhooks import webhook_outbox, webhook_requests
from tests.dnszone import DnsZone

from .conftest import Env, start_env

WH = "/api/v2/projects/{project}/webhooks"
ONE = WH + "/{webhook}"


@pytest.fixture
def private_env(tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone) -> Iterator[Env]:
    """The server with --webhook-allow-private (receivers on loopback) and no worker."""
    environment = start_env(tmp_path, ca, dns_zone, webhook_allow_private=True, webhooks=False)
    try:
        yield environment
    finally:
        environment.server.stop()


def client(env: Env, project: str | None) -> httpx.Client:
    headers = {}
    if project is not None:
        service = env.server.app.platform_service
        assert service is not None
        issued = service.create_api_key(project, "hooks", ["manage"])
        headers["Authorization"] = f"Bearer {issued.token}"
    return httpx.Client(base_url=env.server.base_url, headers=headers, timeout=30)


def call(
    api: httpx.Client, method: str, template: str, status: int, body: Any = None, **path: str
) -> Any:
    """Make the request; check the status and the body against the OpenAPI document."""
    if body is None and method == "POST":
        body = {}  # a POST is JSON, even with nothing to say (api/guard.py)
    response = api.request(method, template.format(**path), json=body)
    assert response.status_code == status, response.text
    doc = api.get("/api/v2/openapi.json").json()
    operation = doc["paths"][template][method.lower()]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(
        response.json()
    )
    return response.json()


def log_a_request(env: Env, project: str, webhook: str) -> int:
    """A logged request of the webhook, as the worker would leave it (the worker is off)."""
    now = codec.to_micros(env.clock.now())
    with env.store._write.begin() as conn:
        outbox = conn.execute(
            insert(webhook_outbox)
            .values(
                webhook_id=webhook,
                event_id=1,
                project=project,
                status="delivered",
                attempts=1,
                next_attempt_us=now,
                created_us=now,
                body='{"eventType":"Send"}',
            )
            .returning(webhook_outbox.c.id)
        ).scalar_one()
        return int(
            conn.execute(
                insert(webhook_requests)
                .values(
                    webhook_id=webhook,
                    outbox_id=outbox,
                    event_id=1,
                    time_us=now,
                    status_code=200,
                    latency_ms=1.5,
                    request_body='{"eventType":"Send"}',
                    response_body="ok",
                    succeeded=True,
                )
                .returning(webhook_requests.c.id)
            ).scalar_one()
        )


def test_webhooks_through_the_api(private_env: Env) -> None:
    env = private_env
    with client(env, "acme") as api:
        body = {"url": "http://127.0.0.1:9/hook", "types": ["bounce", "complaint"]}
        made = call(api, "POST", WH, 201, body, project="acme")
        secret = made.pop("secret")
        assert secret.startswith("whsec_") and len(secret) > 40
        assert made["types"] == ["bounce", "complaint"] and made["enabled"] is True
        assert made["include_headers"] is False and made["disabled_reason"] is None
        listed = call(api, "GET", WH, 200, project="acme")
        assert listed == {"project": "acme", "webhooks": [made]}
        assert secret not in api.get(WH.format(project="acme")).text
        one = call(api, "GET", ONE, 200, project="acme", webhook=made["id"])
        assert one["outbox"] == {"pending": 0, "delivered": 0, "failed": 0}
        changed = call(
            api, "PATCH", ONE, 200,
            {"types": ["send"], "enabled": False, "include_headers": True, "description": "crm"},
            project="acme", webhook=made["id"],
        )  # fmt: skip
        assert (changed["types"], changed["enabled"], changed["description"]) == (
            ["send"],
            False,
            "crm",
        )
        rotated = call(api, "POST", ONE + "/secret", 200, project="acme", webhook=made["id"])
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret

        request_id = log_a_request(env, "acme", made["id"])
        logged = call(api, "GET", ONE + "/requests", 200, project="acme", webhook=made["id"])
        assert [(r["id"], r["status_code"], r["latency_ms"]) for r in logged["requests"]] == [
            (request_id, 200, 1.5)
        ]
        resent = call(
            api, "POST", ONE + "/requests/{request}/resend", 202,
            project="acme", webhook=made["id"], request=str(request_id),
        )  # fmt: skip
        assert resent["resend_of"] == request_id
        outbox = env.store.webhooks.outbox("acme", made["id"], status="pending")
        assert [i.body for i in outbox] == ['{"eventType":"Send"}']

        for bad, field in (
            ({"types": ["send"]}, "url"),
            ({"url": "ftp://x.example/", "types": ["send"]}, "url"),
            ({"url": "https://x.example/", "types": []}, "types"),
            ({"url": "https://x.example/", "types": ["opened"]}, "types"),
            ({"url": "https://x.example/", "types": ["send"], "enabled": "yes"}, "enabled"),
            ({"url": "https://x.example/", "types": ["send"], "colour": "red"}, "colour"),
        ):
            assert call(api, "POST", WH, 400, bad, project="acme")["Field"] == field
        assert (
            call(api, "PATCH", ONE, 400, {"url": 5}, project="acme", webhook=made["id"])["Field"]
            == "url"
        )
        path = ONE.format(project="acme", webhook=made["id"]) + "/requests"
        assert api.get(path, params={"limit": "0"}).json()["Field"] == "limit"
        assert api.get(path, params={"colour": "1"}).json()["Field"] == "colour"
        not_json = api.post(
            WH.format(project="acme"),
            content=b"url=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert not_json.status_code == 415

        deleted = call(api, "DELETE", ONE, 200, project="acme", webhook=made["id"])
        assert deleted == {"deleted": made["id"]}
        call(api, "GET", ONE, 404, project="acme", webhook=made["id"])


def test_another_projects_webhooks_are_never_reachable(private_env: Env) -> None:
    env = private_env
    with client(env, "acme") as api:
        made = call(
            api, "POST", WH, 201, {"url": "http://127.0.0.1:9/", "types": ["send"]}, project="acme"
        )
    request_id = str(log_a_request(env, "acme", made["id"]))
    hook = made["id"]
    with client(env, "sandbox") as other:
        # The other project's key on acme's paths: refused by the gate.
        for method, path in (
            ("GET", WH.format(project="acme")),
            ("POST", WH.format(project="acme")),
            ("GET", ONE.format(project="acme", webhook=hook)),
            ("DELETE", ONE.format(project="acme", webhook=hook)),
            ("GET", "/api/v2/projects/sandbox/../acme/webhooks"),
            ("GET", "/api/v2/projects/sandbox%2F..%2Facme/webhooks"),
        ):
            response = other.request(method, path, json={} if method == "POST" else None)
            assert response.status_code in (403, 404), (method, path, response.text)
        # Acme's webhook id on the other project's own paths: not found, on every route.
        for method, template, extra in (
            ("GET", ONE, {}),
            ("PATCH", ONE, {}),
            ("DELETE", ONE, {}),
            ("POST", ONE + "/secret", {}),
            ("GET", ONE + "/requests", {}),
            ("POST", ONE + "/requests/{request}/resend", {"request": request_id}),
        ):
            body = {"enabled": False} if method == "PATCH" else None
            found = call(
                other, method, template, 404, body, project="sandbox", webhook=hook, **extra
            )
            assert "not found" in found["Error"]
        assert call(other, "GET", WH, 200, project="sandbox")["webhooks"] == []
    # Nothing changed on acme's side.
    kept = env.store.webhooks.get("acme", hook)
    assert kept.enabled and env.store.webhooks.outbox("acme", hook, status="pending") == []
    with client(env, None) as open_mode:
        refused = open_mode.post(WH.format(project="acme"), json={"url": "http://x.example/"})
        assert refused.status_code == 403 and "webhooks" in refused.json()["Error"]
        call(open_mode, "GET", WH, 404, project="nope")


def test_the_default_server_refuses_loopback_urls(env: Env) -> None:
    with client(env, "acme") as api:
        for url in (
            "http://127.0.0.1:8025/",
            "http://localhost/",
            "http://[::1]/",
            "http://10.0.0.1/",
        ):
            refused = call(api, "POST", WH, 400, {"url": url, "types": ["send"]}, project="acme")
            assert refused["Field"] == "url" and "--webhook-allow-private" in refused["Error"]
        made = call(
            api,
            "POST",
            WH,
            201,
            {"url": "https://hooks.example.com/x", "types": ["send"]},
            project="acme",
        )
        assert made["url"] == "https://hooks.example.com/x"
        assert new_id  # the ids are the platform's (26 characters)
        assert len(made["id"]) == 26
