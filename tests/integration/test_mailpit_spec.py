"""Every operation of Mailpit's API document (../shared/specs/mailpit-api-v1.swagger.json),
called with real HTTP on a running server: the served ones answer 200 with the documented
shape (JSON validated against the response schema, the media type among those it
`produces`, request bodies valid against the documented body schema), and the ones Postroom
lists as not served (api/swagger.py NOT_SERVED) are really absent. `/api/v1/swagger.json`
hands out the document with exactly the served operations (issue 12)."""

from __future__ import annotations

import json
import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from postroom.api.swagger import EXTENSIONS, NOT_SERVED, extension_document, mailpit_document
from postroom.checks.screenshot import find_chromium
from tests.dnszone import DnsZone, dns_zone
from tests.harness import ServerThread, load_spec, make_config
from tests.integration.submission.test_delivery_e2e import Receiver

__all__ = ["dns_zone"]

SPEC = load_spec()
pytestmark = pytest.mark.skipif(
    SPEC is None, reason="shared material absent: ../shared/specs/mailpit-api-v1.swagger.json"
)

MESSAGE = (
    "From: Alice <alice@example.com>\r\nTo: Bob <bob@example.com>\r\nSubject: {subject}\r\n"
    "Reply-To: help@example.com\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
    "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello <b>Bob</b></p>\r\n"
    '--b1\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename="r.csv"\r\n'
    "\r\na,b\r\n1,2\r\n--b1--\r\n"
)


# Where Mailpit's document contradicts itself, Mailpit's behaviour wins: DELETE /api/v1/search
# "produces" application/json, yet its 200 is OKResponse, the text "ok", which Mailpit sends
# as text/plain (as for DELETE /api/v1/messages).
MEDIA_QUIRKS = {("delete", "/api/v1/search"): "text/plain"}


@pytest.fixture
def relay() -> Iterator[Receiver]:
    started = Receiver()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def served(tmp_path: Path, relay: Receiver, dns_zone: DnsZone) -> Iterator[ServerThread]:
    server = ServerThread(
        make_config(
            tmp_path / "data",
            resolver=dns_zone.nameserver,  # the headers check's DNS
            relay=f"smtp+plain://127.0.0.1:{relay.port}",
            release_allowed_recipients=r"@example\.net$",
            enable_chaos=True,
            # No spamd there: sa-check answers its documented shape with Error set (the
            # check against a real spamd is tests/integration/test_spamassassin.py).
            spamassassin=f"127.0.0.1:{closed_port()}",
        )
    ).start()
    try:
        yield server
    finally:
        server.stop()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(method, path) for path, ops in document["paths"].items() for method in ops]


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = spec[kind][name]
    return node


def check_schema(
    spec: dict[str, Any], schema: dict[str, Any], instance: Any, what: str, *, every: bool = True
) -> None:
    """`instance` is valid against `schema`; with `every`, it has every documented field."""
    full = {**resolve(spec, schema), "definitions": spec["definitions"]}
    validator = jsonschema.Draft4Validator(full, format_checker=jsonschema.FormatChecker())
    errors = [e.message for e in validator.iter_errors(instance)]
    assert not errors, f"{what}: {errors[:3]}"
    if every:
        _complete(spec, full, instance, what)


def _complete(spec: dict[str, Any], schema: dict[str, Any], instance: Any, where: str) -> None:
    """Every field the schema documents is there, at every depth (Mailpit's document marks
    nothing required, yet its clients read every field)."""
    schema = resolve(spec, schema)
    if isinstance(instance, dict) and "properties" in schema:
        missing = set(schema["properties"]) - set(instance)
        assert not missing, f"{where} lacks {missing}"
        for name, sub in schema["properties"].items():
            _complete(spec, sub, instance[name], f"{where}.{name}")
    elif isinstance(instance, list) and "items" in schema:
        for index, item in enumerate(instance):
            _complete(spec, schema["items"], item, f"{where}[{index}]")


def capture(server: ServerThread, subject: str) -> str:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
        client.sendmail(
            "alice@example.com", ["bob@example.com"], MESSAGE.format(subject=subject).encode()
        )
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        found = http.get("/api/v1/search", params={"query": f'subject:"{subject}"'}).json()
    return str(found["messages"][0]["ID"])


def test_every_documented_operation_is_served_with_its_documented_shape(
    served: ServerThread, relay: Receiver
) -> None:
    assert SPEC is not None
    assert mailpit_document() == SPEC  # the shipped copy is the shared one
    kept = capture(served, "kept message")
    gone_by_id = capture(served, "deleted by id")
    capture(served, "deleted by search")
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        view = http.get(f"/api/v1/message/{kept}").json()
        part = view["Attachments"][0]["PartID"]
        # In this order: what reads first, then what changes or deletes.
        calls: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
            ("get", "/api/v1/info"): ("/api/v1/info", {}),
            ("get", "/api/v1/webui"): ("/api/v1/webui", {}),
            ("get", "/api/v1/chaos"): ("/api/v1/chaos", {}),
            ("get", "/api/v1/messages"): ("/api/v1/messages", {"params": {"limit": 10}}),
            ("get", "/api/v1/search"): ("/api/v1/search", {"params": {"query": "bob"}}),
            ("get", "/api/v1/message/{ID}"): (f"/api/v1/message/{kept}", {}),
            ("get", "/api/v1/message/{ID}/headers"): (f"/api/v1/message/{kept}/headers", {}),
            ("get", "/api/v1/message/{ID}/part/{PartID}"): (
                f"/api/v1/message/{kept}/part/{part}",
                {},
            ),
            ("get", "/api/v1/message/{ID}/raw"): (f"/api/v1/message/{kept}/raw", {}),
            ("get", "/api/v1/message/{ID}/part/{PartID}/thumb"): (
                f"/api/v1/message/{kept}/part/{part}/thumb",
                {},
            ),
            ("get", "/api/v1/message/{ID}/html-check"): (f"/api/v1/message/{kept}/html-check", {}),
            ("get", "/api/v1/message/{ID}/sa-check"): (f"/api/v1/message/{kept}/sa-check", {}),
            ("get", "/api/v1/message/{ID}/headers-check"): (
                f"/api/v1/message/{kept}/headers-check",
                {},
            ),
            ("get", "/api/v1/message/{ID}/link-check"): (
                f"/api/v1/message/{kept}/link-check",
                {"params": {"follow": "true"}},
            ),
            ("get", "/api/v1/message/{ID}/body.html"): (f"/api/v1/message/{kept}/body.html", {}),
            ("get", "/api/v1/message/{ID}/body.txt"): (f"/api/v1/message/{kept}/body.txt", {}),
            ("get", "/api/v1/message/{ID}/screenshot.png"): (
                f"/api/v1/message/{kept}/screenshot.png",
                {"params": {"width": 400}},
            ),
            ("get", "/view/{ID}.html"): (f"/view/{kept}.html", {}),
            ("get", "/view/{ID}.txt"): (f"/view/{kept}.txt", {}),
            ("get", "/api/v1/tags"): ("/api/v1/tags", {}),
            ("post", "/api/v1/send"): (
                "/api/v1/send",
                {
                    "json": {
                        "From": {"Email": "app@example.com"},
                        "To": [{"Email": "ann@example.com"}],
                        "Subject": "sent by the API",
                        "Text": "hello",
                    }
                },
            ),
            ("post", "/api/v1/message/{ID}/release"): (
                f"/api/v1/message/{kept}/release",
                {"json": {"To": ["carl@example.net"]}},
            ),
            ("put", "/api/v1/chaos"): (
                "/api/v1/chaos",
                {"json": {"Recipient": {"ErrorCode": 451, "Probability": 0}}},
            ),
            ("put", "/api/v1/messages"): (
                "/api/v1/messages",
                {"json": {"IDs": [kept], "Read": False}},
            ),
            ("put", "/api/v1/tags"): ("/api/v1/tags", {"json": {"IDs": [kept], "Tags": ["one"]}}),
            ("put", "/api/v1/tags/{Tag}"): ("/api/v1/tags/one", {"json": {"Name": "two"}}),
            ("delete", "/api/v1/tags/{Tag}"): ("/api/v1/tags/two", {}),
            ("delete", "/api/v1/search"): (
                "/api/v1/search",
                {"params": {"query": 'subject:"deleted by search"'}},
            ),
            ("delete", "/api/v1/messages"): ("/api/v1/messages", {"json": {"IDs": [gone_by_id]}}),
        }
        documented = operations(SPEC)
        served_ops = [op for op in documented if op not in NOT_SERVED] + sorted(EXTENSIONS)
        assert sorted(calls) == sorted(served_ops), "the test must call every served operation"
        extended = extension_document()
        whole = {
            **SPEC,
            "paths": {**SPEC["paths"], **extended["paths"]},
            "definitions": {**SPEC["definitions"], **extended["definitions"]},
        }
        for (method, path), (url, kwargs) in calls.items():
            operation = whole["paths"][path][method]
            what = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "body" and "json" in kwargs:
                    check_schema(
                        SPEC, parameter["schema"], kwargs["json"], f"{what} body", every=False
                    )
            answer = http.request(method.upper(), url, **kwargs)
            if path.endswith("/screenshot.png") and find_chromium("") is None:
                # No browser on this machine: the documented 503 naming it (CI has one).
                assert answer.status_code == 503, f"{what}: {answer.status_code}"
                assert answer.json()["Field"] == "chromium", answer.text
                continue
            assert answer.status_code == 200, f"{what}: {answer.status_code} {answer.text[:200]}"
            media = answer.headers["content-type"].split(";")[0].strip()
            produces = operation.get("produces", SPEC["produces"])
            if (method, path) in MEDIA_QUIRKS:
                produces = [MEDIA_QUIRKS[(method, path)]]
            assert any(
                media == p or (p.endswith("/*") and media.startswith(p[:-1])) for p in produces
            ), f"{what}: {media} not in {produces}"
            schema = resolve(whole, operation["responses"]["200"]).get("schema")
            if schema is None:
                continue
            if resolve(whole, schema).get("type") == "string" and media != "application/json":
                assert isinstance(answer.text, str)
                continue
            check_schema(whole, schema, answer.json(), what)
        assert len(relay.messages) == 1  # the release went through the relay
        remaining = {m["Subject"] for m in http.get("/api/v1/messages").json()["messages"]}
        assert remaining == {"kept message", "sent by the API"}

        # What Postroom says it does not serve is really not there.
        for method, path in sorted(NOT_SERVED):
            assert (method, path) in documented, f"{method} {path} is not in Mailpit's document"
            url = path.replace("{ID}", kept).replace("{PartID}", part)
            answer = http.request(method.upper(), url, json={} if method == "put" else None)
            assert answer.status_code in (404, 405), f"{method} {path} is served: list it"


def test_swagger_json_lists_exactly_the_served_operations(served: ServerThread) -> None:
    assert SPEC is not None
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        answer = http.get("/api/v1/swagger.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    document = answer.json()
    assert document["swagger"] == "2.0" and "Postroom" in document["info"]["title"]
    assert document["info"]["license"] == SPEC["info"]["license"]
    assert sorted(operations(document)) == sorted(
        [op for op in operations(SPEC) if op not in NOT_SERVED] + list(EXTENSIONS)
    )
    assert document["definitions"] == {
        **SPEC["definitions"],
        **extension_document()["definitions"],
    }
    for method, path in EXTENSIONS:
        assert document["paths"][path][method]["x-postroom-extension"] is True
    for path in ("/api/v1/messages", "/api/v1/search"):  # Postroom's counts=skip
        (counts,) = [
            p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "counts"
        ]
        assert counts["x-postroom-extension"] is True and counts["enum"] == ["exact", "skip"]
    assert len(document["x-postroom-not-served"]) == len(NOT_SERVED)
    # every $ref of the served document resolves inside it
    for ref in set(_refs(document)):
        kind, name = ref.split("/")[-2:]
        assert name in document[kind], ref
    json.dumps(document)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_webui_tells_whether_release_is_possible(tmp_path: Path, relay: Receiver) -> None:
    """Mailpit's web UI configuration: MessageRelay says whether release works (it said
    Enabled: false even with --relay), and names the relay without its credentials."""
    for name, relay_url, expected in (
        ("none", "", {"Enabled": False, "SMTPServer": ""}),
        (
            "relay",
            f"smtp+plain://user:s3cret@127.0.0.1:{relay.port}",
            {"Enabled": True, "SMTPServer": f"127.0.0.1:{relay.port}"},
        ),
    ):
        server = ServerThread(make_config(tmp_path / name, relay=relay_url)).start()
        try:
            with httpx.Client(base_url=server.base_url, timeout=30) as http:
                answer = http.get("/api/v1/webui")
        finally:
            server.stop()
        assert SPEC is not None
        check_schema(SPEC, {"$ref": "#/definitions/WebUIConfiguration"}, answer.json(), name)
        settings = answer.json()["MessageRelay"]
        assert {k: settings[k] for k in expected} == expected, name
        assert settings["PreserveMessageIDs"] is True
        assert "s3cret" not in answer.text and "user" not in answer.text
