"""Per-project maximums of email templates and sending identities, as SES's (10,000 each by
default; `max_templates`, `max_identities`), driven by real boto3 clients (`sesv2`, `ses`) and
the native API against a running server started with small maximums: one more is SES's
LimitExceededException (HTTP 400; v1 `LimitExceeded`) or a 400 naming the field and the
option on /api/v2, whichever API created the others (they share storage); updating or
re-creating what exists is not refused, and deleting one makes room again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from postroom.config import HostPort
from postroom.core.clock import FakeClock
from tests.dnszone import DnsZone

from .conftest import Env, start_env
from .test_address_proof import queued_mails
from .test_native_send import key
from .test_ses_api import client, ses_key

MAX_TEMPLATES = 3
MAX_IDENTITIES = 11


@pytest.fixture
def env(tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone) -> Iterator[Env]:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))  # boto3 signs with real time
    environment = start_env(
        tmp_path,
        ca,
        dns_zone,
        clock,
        ses=HostPort("127.0.0.1", 0),
        max_templates=MAX_TEMPLATES,
        max_identities=MAX_IDENTITIES,
    )
    try:
        yield environment
    finally:
        environment.server.stop()


def manage(env: Env) -> httpx.Client:
    token = key(env, "acme", scopes=("manage",))
    return httpx.Client(
        base_url=env.server.base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    )


def content(subject: str) -> dict[str, str]:
    return {"Subject": subject, "Text": "Hello {{name}}", "Html": "<p>Hello {{name}}</p>"}


def identity_count(env: Env) -> int:
    platform = env.platform
    return len(platform.list_domains("acme")) + len(platform.list_address_identities("acme"))


def test_templates_past_the_maximum(env: Env) -> None:
    v2 = client(env, "sesv2", ses_key(env))
    v2.create_email_template(TemplateName="one", TemplateContent=content("1"))
    with manage(env) as http:
        made = http.post(
            "/api/v2/projects/acme/templates", json={"name": "two", "subject": "2", "text": "t"}
        )
        assert made.status_code == 201, made.text
        v2.create_email_template(TemplateName="three", TemplateContent=content("3"))

        with pytest.raises(v2.exceptions.LimitExceededException) as refused:
            v2.create_email_template(TemplateName="four", TemplateContent=content("4"))
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert f"at most {MAX_TEMPLATES} email templates" in str(refused.value)
        native = http.post(
            "/api/v2/projects/acme/templates", json={"name": "four", "subject": "4", "text": "t"}
        )
        assert native.status_code == 400, native.text
        assert native.json()["Field"] == "name"
        assert "max_templates" in native.json()["Error"]
        listed = v2.list_email_templates()["TemplatesMetadata"]
        assert sorted(t["TemplateName"] for t in listed) == ["one", "three", "two"]

        # A name that exists: still AlreadyExists; a new version of one: not refused.
        with pytest.raises(v2.exceptions.AlreadyExistsException):
            v2.create_email_template(TemplateName="one", TemplateContent=content("again"))
        v2.update_email_template(TemplateName="one", TemplateContent=content("1b"))
        changed = http.put(
            "/api/v2/projects/acme/templates/two", json={"subject": "2b", "text": "t"}
        )
        assert changed.status_code == 200 and changed.json()["version"] == 2, changed.text
        got = v2.get_email_template(TemplateName="one")["TemplateContent"]
        assert got["Subject"] == "1b"

        # Deleting one makes room; another project has its own count.
        v2.delete_email_template(TemplateName="three")
        v2.create_email_template(TemplateName="four", TemplateContent=content("4"))
        sandbox = client(env, "sesv2", ses_key(env, "sandbox"))
        for name in ("a", "b", "c"):
            sandbox.create_email_template(TemplateName=name, TemplateContent=content(name))
        with pytest.raises(sandbox.exceptions.LimitExceededException):
            sandbox.create_email_template(TemplateName="d", TemplateContent=content("d"))


def test_identities_past_the_maximum(env: Env) -> None:
    start = identity_count(env)
    assert MAX_IDENTITIES - start == 5  # one identity through each path below
    v2 = client(env, "sesv2", ses_key(env))
    v1 = client(env, "ses", ses_key(env))
    with manage(env) as http:
        # Fill up through each path: v2 domain, v1 domain, native domain, v2 and native address.
        paths: list[Any] = [
            lambda i: v2.create_email_identity(EmailIdentity=f"d{i}.example"),
            lambda i: v1.verify_domain_identity(Domain=f"d{i}.example"),
            lambda i: http.post("/api/v2/projects/acme/domains", json={"domain": f"d{i}.example"}),
            lambda i: v2.create_email_identity(EmailIdentity=f"a{i}@unverified.example"),
            lambda i: http.post(
                "/api/v2/projects/acme/verified-addresses",
                json={"address": f"a{i}@unverified.example"},
            ),
        ]
        for i in range(MAX_IDENTITIES - start):
            answer = paths[i % len(paths)](i)
            if isinstance(answer, httpx.Response):
                assert answer.status_code == 201, answer.text
        assert identity_count(env) == MAX_IDENTITIES

        with pytest.raises(v2.exceptions.LimitExceededException) as domain:
            v2.create_email_identity(EmailIdentity="more.example")
        assert domain.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert f"at most {MAX_IDENTITIES} email identities" in str(domain.value)
        before = len(queued_mails(env, "more@unverified.example"))
        with pytest.raises(v2.exceptions.LimitExceededException):
            v2.create_email_identity(EmailIdentity="more@unverified.example")
        assert len(queued_mails(env, "more@unverified.example")) == before  # no proof mailed
        with pytest.raises(v1.exceptions.LimitExceededException) as old:
            v1.verify_domain_identity(Domain="more.example")
        assert old.value.response["Error"]["Code"] == "LimitExceeded"
        assert old.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        with pytest.raises(v1.exceptions.LimitExceededException):
            v1.verify_email_identity(EmailAddress="more@unverified.example")
        for path, field, value in (
            ("domains", "domain", "more.example"),
            ("verified-addresses", "address", "more@unverified.example"),
        ):
            native = http.post(f"/api/v2/projects/acme/{path}", json={field: value})
            assert native.status_code == 400, native.text
            assert native.json()["Field"] == field
            assert "max_identities" in native.json()["Error"]
        assert identity_count(env) == MAX_IDENTITIES

        # What exists is answered as before: an existing domain, a verified address.
        with pytest.raises(v2.exceptions.AlreadyExistsException):
            v2.create_email_identity(EmailIdentity="example.com")
        assert v2.create_email_identity(EmailIdentity="x@example.com")["VerifiedForSendingStatus"]
        v1.verify_domain_identity(Domain="example.com")

        # Deleting one makes room again.
        v2.delete_email_identity(EmailIdentity="d0.example")
        v2.create_email_identity(EmailIdentity="more.example")
        assert identity_count(env) == MAX_IDENTITIES
