"""The Host rule (DNS rebinding) and the content-type rule (cross-site simple requests) as pure
functions; tests/integration/auth/test_request_guard.py drives them through a real server."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.api.guard import HostRule, content_type_refusal, host_name
from postroom.config import Config, HostPort


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost", "localhost"),
        ("LOCALHOST:8025", "localhost"),
        ("127.0.0.1:8025", "127.0.0.1"),
        ("[::1]:8025", "::1"),
        ("[::1]", "::1"),
        ("mail.example.com.", "mail.example.com"),
        ("mail.example.com.:443", "mail.example.com"),
        ("", None),
        ("   ", None),
        ("::1", None),  # IPv6 needs brackets
        ("a b", None),
        ("evil.test/x", None),
        ("user@localhost", None),
        ("localhost:80x", None),
        ("localhost:", None),
        ("[::1", None),
        ("[::1]x", None),
    ],
)
def test_host_name(header: str, name: str | None) -> None:
    assert host_name(header) == name


def test_loopback_names_are_always_allowed_and_nothing_else_by_default() -> None:
    rule = HostRule.build([])
    for name in ("localhost", "postroom.localhost", "127.0.0.1", "127.9.9.9", "::1"):
        assert rule.allows(name), name
    for name in (
        "evil.test",
        "localhost.evil.test",
        "127.0.0.1.nip.io",
        "10.0.0.1",
        "0.0.0.0",
        "::",
        "2130706433",  # 127.0.0.1 as a number: browsers send it as written
        "",
    ):
        assert not rule.allows(name), name


def test_configured_names_wildcards_addresses_and_networks() -> None:
    rule = HostRule.build(["Mail.Example.com.", "*.dev.example", "192.0.2.7", "10.0.0.0/8"])
    assert rule.allows("mail.example.com")
    assert not rule.allows("example.com") and not rule.allows("x.mail.example.com")
    assert rule.allows("a.dev.example") and rule.allows("a.b.dev.example")
    assert not rule.allows("dev.example") and not rule.allows("evildev.example")
    assert rule.allows("192.0.2.7") and not rule.allows("192.0.2.8")
    assert rule.allows("10.1.2.3") and not rule.allows("11.0.0.1")


def test_from_config_adds_the_public_url_and_a_specific_listen_address() -> None:
    config = Config(
        public_url="https://Postroom.Example.org:8443/inbox",
        http=HostPort("192.0.2.10", 8025),
    )
    rule = HostRule.from_config(config)
    assert rule.allows("postroom.example.org")
    assert rule.allows("192.0.2.10")
    assert not rule.allows("example.org")
    # A wildcard listen address names nothing.
    wildcard = HostRule.from_config(Config(http=HostPort("0.0.0.0", 8025)))
    assert not wildcard.allows("0.0.0.0") and not wildcard.allows("192.0.2.10")


def scope(method: str, path: str, **headers: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "application/json-patch+json",
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/send", "/api/v2/projects", "/api/v1/messages", "/x"])
def test_state_changing_requests_must_be_json(
    method: str, content_type: str | None, path: str
) -> None:
    headers = {"content_type": content_type} if content_type else {}
    refusal = content_type_refusal(scope(method, path, content_length="2", **headers))
    assert refusal is not None and "application/json" in refusal


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=utf-8", " application/json "]
)
def test_json_passes(content_type: str) -> None:
    assert (
        content_type_refusal(scope("POST", "/api/v2/projects", content_type=content_type)) is None
    )


def test_reading_and_bare_deletes_and_admin_forms_pass() -> None:
    for method in ("GET", "HEAD", "OPTIONS"):
        assert content_type_refusal(scope(method, "/api/v1/messages")) is None
    # A DELETE without body or type: nothing to type, and no page can send it cross-site.
    assert content_type_refusal(scope("DELETE", "/api/v1/messages")) is None
    assert content_type_refusal(scope("DELETE", "/api/v1/messages", content_length="0")) is None
    # ... but one with a body or a type must be JSON.
    assert content_type_refusal(scope("DELETE", "/api/v1/messages", content_length="9"))
    assert content_type_refusal(scope("DELETE", "/api/v1/messages", transfer_encoding="chunked"))
    assert content_type_refusal(scope("DELETE", "/api/v1/messages", content_type="text/plain"))
    form = "application/x-www-form-urlencoded"
    for path in ("/login", "/logout", "/admin/projects", "/admin/projects/p/credentials"):
        assert content_type_refusal(scope("POST", path, content_type=form)) is None
    # Only the admin tree: a look-alike prefix is an API path like any other.
    assert content_type_refusal(scope("POST", "/administrator", content_type=form))
    assert content_type_refusal(scope("POST", "/login/x", content_type=form))
