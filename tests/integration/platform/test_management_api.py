"""/api/v2 against the real server: every response validates against the served OpenAPI
document (whose response schemas forbid unlisted properties), errors are JSON naming the
field, secrets appear only in the response that creates them, DKIM private keys never, and
nothing secret is logged."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from starlette.routing import Route

from postroom.api.capture_routes import routes as capture_route_routes
from postroom.api.deliveries import routes as delivery_routes
from postroom.api.deliveries import settings_routes as delivery_settings_routes
from postroom.api.events import routes as event_routes
from postroom.api.management import ManagementContext, routes
from postroom.api.native_send import SendingContext
from postroom.api.native_send import routes as sending_routes
from postroom.api.openapi_v2 import document
from postroom.api.queue import routes as queue_routes
from postroom.api.reputation import routes as reputation_routes
from postroom.api.ses_setup import key_routes
from postroom.api.suppressions import routes as suppression_routes
from postroom.api.suspension import routes as suspension_routes
from postroom.api.templates_api import routes as template_routes
from postroom.api.tls_reports import routes as tls_report_routes
from postroom.api.webhooks import routes as webhook_routes
from postroom.core.clock import FakeClock
from postroom.core.platform import SYSTEM_PROJECT
from postroom.dns.dkim import dump_private_key, generate_ed25519
from postroom.platform import DomainSettings, PlatformService
from postroom.platform.email_templates import TemplateService
from tests.dnszone import DnsZone
from tests.harness import ServerThread, make_config
from tests.integration.auth.conftest import ADMIN, PASSWORD, create_admin, form_token
from tests.proofmail import code_in


class Api:
    """An httpx client, logged in as an admin (open mode may not manage credentials or live
    projects), that checks each response against the OpenAPI document."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=30)
        token = form_token(self.client.get("/login").text)
        login = {"username": ADMIN, "password": PASSWORD, "csrf_token": token}
        assert self.client.post("/login", data=login).status_code == 303
        self.client.headers["X-CSRF-Token"] = self.client.cookies["postroom_csrf"]
        self.doc: dict[str, Any] = self.client.get("/api/v2/openapi.json").json()
        self.bodies: list[tuple[str, str]] = []  # (request line, response text)

    def call(self, method: str, template: str, status: int, body: Any = None, **params: str) -> Any:
        path = template.format(**params)
        if body is None and method in ("POST", "PUT", "PATCH"):
            # No body, but still JSON: every POST must say so (api/guard.py).
            json_type = {"Content-Type": "application/json"}
            response = self.client.request(method, path, headers=json_type)
        elif body is None:
            response = self.client.request(method, path)
        elif isinstance(body, bytes):
            json_type = {"Content-Type": "application/json"}
            response = self.client.request(method, path, content=body, headers=json_type)
        else:
            response = self.client.request(method, path, json=body)
        self.bodies.append((f"{method} {path}", response.text))
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        data = response.json()
        operation = self.doc["paths"][template][method.lower()]
        assert str(status) in operation["responses"], f"{method} {template}: {status} undocumented"
        schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
        validator = jsonschema.Draft202012Validator(
            {**schema, "components": self.doc["components"]}
        )
        validator.validate(data)
        return data


@pytest.fixture
def server(tmp_path: Path, dns_zone: DnsZone) -> Iterator[ServerThread]:
    config = make_config(tmp_path / "data", resolver=dns_zone.nameserver)
    create_admin(config)
    thread = ServerThread(config).start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def api(server: ServerThread) -> Iterator[Api]:
    client = Api(server.base_url)
    try:
        yield client
    finally:
        client.client.close()


P = "/api/v2/projects"
PJ = "/api/v2/projects/{project}"
DOM = "/api/v2/projects/{project}/domains/{domain}"


def test_the_document_lists_every_route() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    jsonschema.Draft202012Validator.check_schema({"components": doc["components"]})
    service = PlatformService(None, FakeClock(), None, DomainSettings("h"))  # type: ignore[arg-type]
    served = set()
    sending = SendingContext(None, FakeClock(), None, None, frozenset(), None)  # type: ignore[arg-type]
    templates = template_routes(TemplateService(None, FakeClock()))  # type: ignore[arg-type]
    served_routes = [
        *routes(ManagementContext(service)),
        *sending_routes(sending),
        *event_routes(service, None),  # type: ignore[arg-type]  # only bound, never called
        *templates,
        *delivery_routes(None, None),  # type: ignore[arg-type]
        *delivery_settings_routes(service, None),  # type: ignore[arg-type]
        *key_routes(None),  # type: ignore[arg-type]  # only bound, never called
        *queue_routes(service, None, FakeClock()),  # type: ignore[arg-type]
        *suppression_routes(service, None),  # type: ignore[arg-type]
        *webhook_routes(None),  # type: ignore[arg-type]  # only bound, never called
        *reputation_routes(service, None),  # type: ignore[arg-type]  # only bound, never called
        *suspension_routes(service),
        *capture_route_routes(None),  # type: ignore[arg-type]  # only bound, never called
        *tls_report_routes(None, FakeClock(), "h", "postmaster@h"),  # type: ignore[arg-type]
    ]
    for route in served_routes:
        assert isinstance(route, Route)
        path = re.sub(r"\{(\w+):path\}", r"{\1}", route.path)
        for method in route.methods or ():
            if method != "HEAD":
                served.add((method.lower(), path))
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    refs = set(re.findall(r"#/components/schemas/(\w+)", str(doc)))
    assert refs <= set(doc["components"]["schemas"])


def test_projects_and_errors(api: Api) -> None:
    listed = api.call("GET", P, 200)
    assert [p["id"] for p in listed["projects"]] == ["default"]
    created = api.call(
        "POST", P, 201, {"id": "acme", "name": "Acme", "mode": "live", "daily_quota": 1000}
    )
    assert created["mode"] == "live" and created["daily_quota"] == 1000
    assert api.call("GET", PJ, 200, project="acme") == created
    patched = api.call("PATCH", PJ, 200, {"rate_limit": 10, "daily_quota": 0}, project="acme")
    assert (patched["rate_limit"], patched["daily_quota"], patched["name"]) == (10, None, "Acme")
    usage = api.call("GET", PJ + "/usage", 200, project="acme")
    assert usage == {
        "project": "acme",
        "sent_24h": 0,
        "daily_quota": None,
        "rate_limit": 10,
        "remaining_24h": None,
    }

    assert api.call("POST", P, 400, {"id": "acme"}) == {
        "Error": "project 'acme' already exists",
        "Field": "id",
    }
    assert api.call("POST", P, 400, {"id": 5})["Field"] == "id"
    assert api.call("POST", P, 400, {})["Field"] == "id"
    assert api.call("POST", P, 400, {"id": "Bad Slug"})["Field"] == "id"
    assert api.call("POST", P, 400, {"id": "x", "daily_quota": "lots"})["Field"] == "daily_quota"
    assert api.call("POST", P, 400, b"{not json")["Field"] == "body"
    assert api.call("POST", P, 400, b"[1, 2]")["Field"] == "body"
    assert api.call("PATCH", PJ, 400, {"mode": "live"}, project="default")["Field"] == "mode"
    assert api.call("PATCH", PJ, 400, {"id": "renamed"}, project="acme")["Field"] == "id"
    assert "no project" in api.call("GET", PJ, 404, project="ghost")["Error"]
    assert api.call("DELETE", PJ, 400, project="default")["Error"]
    assert api.call("DELETE", PJ, 200, project="acme") == {"deleted": "acme"}
    assert api.call("GET", PJ, 404, project="acme")["Error"]
    wrong_method = api.client.put(P, json={})
    assert wrong_method.status_code == 405 and "Error" in wrong_method.json()


def queued_mail(server: ServerThread, to: str) -> bytes:
    """The verification mail queued to `to` (read from the store, as the worker reads it)."""
    store = server.app.store
    assert store is not None
    found = [
        m
        for m in store.list(SYSTEM_PROJECT, None, 0, 100).messages
        if m.envelope.recipients == (to,)
    ]
    assert found, f"no verification mail to {to}"
    return store.raw(SYSTEM_PROJECT, found[0].id)


def test_credentials_keys_and_addresses(
    api: Api, server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.call("POST", P, 201, {"id": "acme", "mode": "live"})
    creds = PJ + "/smtp-credentials"
    issued = api.call("POST", creds, 201, {"allowed_from": ["example.com"]}, project="acme")
    password = issued["password"]
    named = api.call("POST", creds, 201, {"username": "billing"}, project="acme")
    assert api.call("POST", creds, 400, {"username": "billing"}, project="acme")["Field"] == (
        "username"
    )
    assert api.call("POST", creds, 400, {"allowed_from": "x"}, project="acme")["Field"] == (
        "allowed_from"
    )
    listed = api.call("GET", creds, 200, project="acme")
    assert sorted(c["username"] for c in listed["credentials"]) == sorted(
        ["billing", issued["username"]]
    )
    assert api.call(
        "DELETE", creds + "/{credential}", 200, project="acme", credential="billing"
    ) == {"deleted": "billing"}
    assert api.call("DELETE", creds + "/{credential}", 404, project="acme", credential=named["id"])[
        "Error"
    ]
    assert api.call("GET", creds, 404, project="ghost")["Error"]

    ips = PJ + "/ip-credentials"
    ip = api.call("POST", ips, 201, {"network": "198.51.100.9/24"}, project="acme")
    assert ip["network"] == "198.51.100.0/24"
    assert api.call("POST", ips, 400, {"network": "0.0.0.0/0"}, project="acme")["Field"] == (
        "network"
    )
    assert [c["network"] for c in api.call("GET", ips, 200, project="acme")["credentials"]] == [
        "198.51.100.0/24"
    ]
    gone = api.call(
        "DELETE", ips + "/{credential}", 200, project="acme", credential="198.51.100.0/24"
    )
    assert gone == {"deleted": "198.51.100.0/24"}

    keys = PJ + "/api-keys"
    key = api.call("POST", keys, 201, {"name": "deploy", "scopes": ["send"]}, project="acme")
    token = key["token"]
    assert (
        api.call("POST", keys, 400, {"name": "x", "scopes": ["root"]}, project="acme")["Field"]
        == "scopes"
    )
    assert api.call("POST", keys, 400, {"scopes": ["send"]}, project="acme")["Field"] == "name"
    assert [k["id"] for k in api.call("GET", keys, 200, project="acme")["api_keys"]] == [key["id"]]
    assert api.call("DELETE", keys + "/{key_id}", 404, project="default", key_id=key["id"])["Error"]
    assert api.call("DELETE", keys + "/{key_id}", 200, project="acme", key_id=key["id"])["deleted"]

    addresses = PJ + "/verified-addresses"
    added = api.call("POST", addresses, 201, {"address": "Ops@Example.net"}, project="acme")
    assert (added["address"], added["status"]) == ("ops@example.net", "pending")
    assert added["expires"] and added["verified_at"] is None
    assert api.call("POST", addresses, 400, {"address": "nope"}, project="acme")["Field"] == (
        "address"
    )
    assert api.call("POST", addresses, 400, {"address": "OPS@example.net"}, project="acme")[
        "Field"
    ] == ("address")
    listed_addresses = api.call("GET", addresses, 200, project="acme")["addresses"]
    assert [(a["address"], a["status"]) for a in listed_addresses] == [
        ("ops@example.net", "pending")
    ]
    member = addresses + "/{address}"
    again = api.call("POST", member + "/resend", 429, project="acme", address="ops@example.net")
    assert again["Field"] == "address"
    for code, field in (({}, "code"), ({"code": 1}, "code"), ({"code": "pva_" + "x" * 43}, "code")):
        refused = api.call(
            "POST", member + "/confirm", 400, code, project="acme", address="ops@example.net"
        )
        assert refused["Field"] == field
    code = code_in(queued_mail(server, "ops@example.net"))
    # The confirmation page is public even with an admin: whoever reads the mailbox has no login.
    with httpx.Client(base_url=server.base_url, timeout=30) as anonymous:
        page = anonymous.get("/confirm-address", params={"token": code})
        assert page.status_code == 200 and "ops@example.net" in page.text
        forged = anonymous.post("/confirm-address", json={"token": "pva_" + "x" * 43})
        assert (forged.status_code, forged.json()["Field"]) == (400, "token")
        assert anonymous.get(PJ.format(project="acme")).status_code == 401  # the rest is not
    confirmed = api.call(
        "POST", member + "/confirm", 200, {"code": code}, project="acme", address="ops@example.net"
    )
    assert (confirmed["status"], confirmed["expires"]) == ("verified", None)
    assert (
        "used already"
        in api.call(
            "POST",
            member + "/confirm",
            400,
            {"code": code},
            project="acme",
            address="ops@example.net",
        )["Error"]
    )
    assert api.call("POST", member + "/resend", 400, project="acme", address="ops@example.net")[
        "Field"
    ] == ("address")
    assert not [line for line, text in api.bodies if code in text and "confirm" not in line]
    assert api.call(
        "DELETE", addresses + "/{address}", 200, project="acme", address="ops@example.net"
    )
    assert api.call(
        "DELETE", addresses + "/{address}", 404, project="acme", address="ops@example.net"
    )

    # Secrets: each in its create response only; never in the logs.
    for secret, where in ((password, "smtp-credentials"), (token, "api-keys")):
        carrying = [line for line, text in api.bodies if secret in text]
        assert carrying == [f"POST /api/v2/projects/acme/{where}"]
    logged = caplog.text + "\n".join(str(vars(r)) for r in caplog.records)
    assert issued["username"] in logged
    assert password not in logged and token not in logged


def test_domains_records_verify_rotate_activate(
    api: Api, dns_zone: DnsZone, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    domains = PJ + "/domains"
    own_key = dump_private_key(generate_ed25519()).decode()
    added = api.call(
        "POST",
        domains,
        201,
        {"domain": "Example.COM", "private_key": own_key, "selector": "first"},
        project="default",
    )
    assert added["name"] == "example.com" and not added["verified"]
    assert [k["selector"] for k in added["dkim_keys"]] == ["first"]
    bad = {"domain": "b.example", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n"}
    assert api.call("POST", domains, 400, bad, project="default")["Field"] == "private_key"
    assert api.call("POST", domains, 400, {"domain": "no"}, project="default")["Field"] == "domain"
    assert (
        api.call("POST", domains, 400, {"domain": "example.com"}, project="default")["Field"]
        == "domain"
    )

    for record in added["records"]:
        if record["required"]:
            dns_zone.add_txt(record["name"], record["value"])
    verified = api.call("POST", DOM + "/verify", 200, project="default", domain="example.com")
    assert verified["verified"] is True and verified["verified_at"]
    assert (
        api.call("GET", DOM + "/records", 200, project="default", domain="example.com")["records"]
        == verified["records"]
    )
    assert api.call("GET", DOM, 200, project="default", domain="EXAMPLE.com")["verified"]
    listed = api.call("GET", domains, 200, project="default")["domains"]
    assert [(d["name"], d["verified"]) for d in listed] == [("example.com", True)]

    rotation = api.call(
        "POST", DOM + "/rotate", 201, {"algorithm": "rsa"}, project="default", domain="example.com"
    )
    key = rotation["key"]
    assert (key["status"], key["algorithm"]) == ("pending", "rsa")
    early = api.call(
        "POST",
        DOM + "/activate",
        400,
        {"selector": key["selector"]},
        project="default",
        domain="example.com",
    )
    assert early["Field"] == "selector" and key["name"] in early["Error"]
    assert (
        api.call("POST", DOM + "/activate", 400, {}, project="default", domain="example.com")[
            "Field"
        ]
        == "selector"
    )
    assert api.call(
        "POST",
        DOM + "/activate",
        404,
        {"selector": "nosuch"},
        project="default",
        domain="example.com",
    )["Error"]
    dns_zone.add_txt(key["name"], key["value"])
    activated = api.call(
        "POST",
        DOM + "/activate",
        200,
        {"selector": key["selector"]},
        project="default",
        domain="example.com",
    )
    assert {k["selector"]: k["status"] for k in activated["dkim_keys"]} == {
        "first": "retiring",
        key["selector"]: "active",
    }
    retiring = next(k for k in activated["dkim_keys"] if k["status"] == "retiring")
    assert retiring["retire_after"] > retiring["activated"]

    assert api.call("DELETE", DOM, 200, project="default", domain="example.com")["deleted"]
    assert api.call("GET", DOM, 404, project="default", domain="example.com")["Error"]
    assert api.call("POST", DOM + "/verify", 404, project="default", domain="example.com")

    # The private key went in once and never came out; nor was it logged.
    body_lines = own_key.strip().splitlines()[1:-1]
    logged = caplog.text + "\n".join(str(vars(r)) for r in caplog.records)
    for _line, text in api.bodies:
        assert "PRIVATE KEY" not in text
        assert not any(part in text for part in body_lines)
    assert "PRIVATE KEY" not in logged and not any(part in logged for part in body_lines)
