"""A suspended project on the SES-compatible API, with real boto3 clients (`sesv2`, `ses`)
against a running server on SQLite and PostgreSQL: suspended from another process (the CLI),
the very next SES call is refused (v2 AccountSuspendedException, HTTP 400, as botocore's model
says; v1, whose model has no such error, AccountSendingPausedException), SendBulkEmail's
entries say ACCOUNT_SUSPENDED, GetAccount says sending is off (EnforcementStatus SHUTDOWN), a
capture project is refused too, and another project's key sends on; resuming lifts it. Also
an admin session's send (which no key's counter read refreshes) sees the suspension at once."""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trustme
from sqlalchemy.engine import make_url

from postroom.config import HostPort
from postroom.core.clock import FakeClock
from tests.dnszone import DnsZone
from tests.integration.auth.conftest import Browser
from tests.services import require_postgres

from .conftest import Env, start_env
from .test_ses_api import client, ses_key, simple
from .test_suspension import REFUSED, cli

SUSPENDED = f"{REFUSED[6:]} (chargeback)"
_calls = itertools.count()


def unique(**extra: Any) -> dict[str, Any]:
    """`simple()` with a subject of its own: boto3 signs with whole seconds, and the server
    refuses a signed request it has seen ("already used"), so two equal sends in one second
    would be refused for a reason that is not the one tested."""
    values = simple(**extra)
    values["Content"]["Simple"]["Subject"]["Data"] += f" {next(_calls)}"
    return values


def mime() -> bytes:
    subject = f"raw {next(_calls)}"
    return f"From: app@example.com\r\nTo: raw@example.net\r\nSubject: {subject}\r\n\r\nraw\r\n".encode()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ses_env(
    request: pytest.FixtureRequest, tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone
) -> Iterator[Env]:
    """A server with the SES listener, on SQLite or a PostgreSQL database of its own. Its
    fake clock starts at the real time (boto3 signs with it) and never moves on its own, so
    no project snapshot expires by age: only the change counter can make a send see a
    suspension."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    options: dict[str, Any] = {"ses": HostPort("127.0.0.1", 0)}
    admin = name = None
    if request.param == "postgres":
        url = require_postgres()
        admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        name = f"postroom_t_{secrets.token_hex(6)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        options["database_url"] = (
            make_url(url).set(database=name).render_as_string(hide_password=False)
        )
    try:
        environment = start_env(tmp_path, ca, dns_zone, clock, **options)
        try:
            yield environment
        finally:
            environment.server.stop()
    finally:
        if admin is not None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bulk(v2: Any, source: str = "app@example.com") -> list[str]:
    answer = v2.send_bulk_email(
        FromEmailAddress=source,
        DefaultContent={
            "Template": {
                "TemplateContent": {"Subject": "S {{n}}", "Text": "x"},
                "TemplateData": json.dumps({"n": next(_calls)}),
            }
        },
        BulkEmailEntries=[
            {"Destination": {"ToAddresses": [f"b{i}@example.net"]}} for i in range(3)
        ],
    )
    return [entry["Status"] for entry in answer["BulkEmailEntryResults"]]


def test_ses_refuses_a_suspended_project_from_the_very_next_call(ses_env: Env) -> None:
    env = ses_env
    v2 = client(env, "sesv2", ses_key(env))
    v1 = client(env, "ses", ses_key(env))
    sandbox = client(env, "sesv2", ses_key(env, "sandbox"))
    v2.send_email(**unique())  # the send door's snapshots of both projects are now fresh
    sandbox.send_email(**unique(FromEmailAddress="anyone@unverified.example"))
    account = v2.get_account()
    assert (account["SendingEnabled"], account["EnforcementStatus"]) == (True, "HEALTHY")

    cli(env, "project", "suspend", "acme", "--reason", "chargeback")
    with pytest.raises(v2.exceptions.AccountSuspendedException) as suspended:
        v2.send_email(**unique())
    assert suspended.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert suspended.value.response["Error"]["Message"] == SUSPENDED
    with pytest.raises(v2.exceptions.AccountSuspendedException):
        v2.send_email(FromEmailAddress="app@example.com", Content={"Raw": {"Data": mime()}})
    assert bulk(v2) == ["ACCOUNT_SUSPENDED"] * 3
    with pytest.raises(v1.exceptions.AccountSendingPausedException) as paused:
        v1.send_raw_email(RawMessage={"Data": mime()})
    assert paused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert paused.value.response["Error"]["Message"] == SUSPENDED
    with pytest.raises(v1.exceptions.AccountSendingPausedException):
        v1.send_email(
            Source="app@example.com",
            Destination={"ToAddresses": ["ann@example.net"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}},
        )
    account = v2.get_account()
    assert (account["SendingEnabled"], account["EnforcementStatus"]) == (False, "SHUTDOWN")
    # The other project's key sends on; suspended too, a capture project is refused as well.
    sandbox.send_email(**unique(FromEmailAddress="anyone@unverified.example"))
    cli(env, "project", "suspend", "sandbox")
    with pytest.raises(sandbox.exceptions.AccountSuspendedException) as captured:
        sandbox.send_email(**unique(FromEmailAddress="anyone@unverified.example"))
    assert captured.value.response["Error"]["Message"] == REFUSED[6:]
    assert bulk(sandbox, "anyone@unverified.example") == ["ACCOUNT_SUSPENDED"] * 3
    assert len(env.messages("sandbox")) == 2

    cli(env, "project", "resume", "acme")
    cli(env, "project", "resume", "sandbox")
    v2.send_email(**unique())
    v1.send_raw_email(RawMessage={"Data": mime()})
    assert bulk(v2) == ["SUCCESS"] * 3
    sandbox.send_email(**unique(FromEmailAddress="anyone@unverified.example"))
    account = v2.get_account()
    assert (account["SendingEnabled"], account["EnforcementStatus"]) == (True, "HEALTHY")
    assert len(env.messages("acme")) == 6 and len(env.messages("sandbox")) == 3


def test_an_admin_sessions_send_sees_a_suspension_at_once(ses_env: Env) -> None:
    env = ses_env
    service = env.server.app.platform_service
    assert service is not None
    service.create_admin("root", "correct horse battery staple")
    env.clock.advance(5)  # past the admin list's cache
    browser = Browser(env.server.base_url)
    message = {"project": "acme", "from": "app@example.com", "to": ["a@example.net"]}
    message |= {"subject": "s", "text": "t"}
    try:
        assert browser.login("root", "correct horse battery staple").status_code == 303
        assert browser.api("POST", "/api/v2/messages", json=message).status_code < 300
        cli(env, "project", "suspend", "acme", "--reason", "chargeback")
        refused = browser.api("POST", "/api/v2/messages", json=message)
        assert refused.status_code == 403
        assert refused.json() == {"Error": SUSPENDED, "Field": "account_suspended"}
        cli(env, "project", "resume", "acme")
        assert browser.api("POST", "/api/v2/messages", json=message).status_code < 300
    finally:
        browser.close()
    assert len(env.messages()) == 2
