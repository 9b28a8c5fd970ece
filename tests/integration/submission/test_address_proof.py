"""Address identities are proven by mail, end to end, on SQLite and PostgreSQL.

A manage key adds an address over HTTP; it is pending, and the submission door refuses it as a
sender (554 5.7.1). The verification mail is queued and delivered by the delivery worker,
through MX routing on the test DNS server, to a receiving SMTP server on loopback. The test
reads the link out of the received mail, opens the confirmation page over HTTP (a GET that
changes nothing), confirms with the page's JSON POST, and then the same SMTP submission is
accepted (250). Forged, expired (injected clock), reused and another project's tokens are
refused with 400 naming the field; a project cannot use an address or a domain another project
verified until it proves it itself.
"""

from __future__ import annotations

import secrets
import smtplib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import trustme
from sqlalchemy.engine import make_url

from postroom.core.clock import FakeClock
from postroom.core.platform import SYSTEM_PROJECT, Project, SmtpCredential
from postroom.core.secrets import secret_digest
from postroom.core.types import DELIVERED, IncomingMessage
from postroom.platform.service import PlatformService
from tests.dnszone import DnsZone
from tests.proofmail import code_in, link_in, token_of
from tests.services import require_postgres

from .conftest import CREATED, PASSWORD, Env, start_env
from .test_delivery_e2e import Receiver, receiver, settled

__all__ = ["receiver"]

ADDRESS = "ops@example.net"
UNVERIFIED = b"5.7.1 Message rejected: Email address is not verified."
BETA_PASSWORD = "prs_beta-password-0123456789abcdefgh"


def message(sender: str = ADDRESS) -> bytes:
    return (
        f"From: Ops <{sender}>\r\nTo: reader@example.org\r\nSubject: hi\r\n\r\nHello\r\n"
    ).encode()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def proving(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    ca: trustme.CA,
    dns_zone: DnsZone,
    receiver: Receiver,
) -> Iterator[Env]:
    """A server that delivers (MX of example.net: the receiver on loopback), with the live
    projects acme (conftest) and beta, on SQLite or on a fresh PostgreSQL database (with the
    writer child process, the production default there)."""
    overrides: dict[str, Any] = {}
    drop: str | None = None
    if request.param == "postgres":
        url = require_postgres()
        admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        drop = f"postroom_t_{secrets.token_hex(6)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{drop}"')
        overrides["database_url"] = (
            make_url(url).set(database=drop).render_as_string(hide_password=False)
        )
        overrides["writer_process"] = True
    dns_zone.add_mx("example.net", 10, "mx.example.net")
    dns_zone.add_a("mx.example.net", "127.0.0.1")
    environment = start_env(
        tmp_path,
        ca,
        dns_zone,
        FakeClock(datetime(2026, 1, 1, tzinfo=UTC)),
        delivery=True,
        resolver=dns_zone.nameserver,
        delivery_allow_private=True,
        delivery_mx_port=receiver.port,
        **overrides,
    )
    platform = environment.platform
    platform.create_project(Project("beta", "Beta", "live", CREATED))
    platform.add_smtp_credential(
        SmtpCredential("c-beta", "beta", "beta", secret_digest(BETA_PASSWORD), (), CREATED)
    )
    try:
        yield environment
    finally:
        environment.server.stop()
        if drop is not None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)')


class Http:
    """httpx on the server, with a manage key of each live project."""

    def __init__(self, env: Env) -> None:
        service = env.server.app.platform_service
        assert service is not None
        self.service: PlatformService = service
        self.env = env
        self.client = httpx.Client(base_url=env.server.base_url, timeout=30)
        self.keys = {
            project: service.create_api_key(project, "ops", ["manage"]).token
            for project in ("acme", "beta")
        }

    def api(self, method: str, path: str, project: str, body: Any = None) -> httpx.Response:
        return self.client.request(
            method,
            f"/api/v2/projects/{project}{path}",
            json=body if body is not None else {},
            headers={"Authorization": f"Bearer {self.keys[project]}"},
        )

    def add(self, project: str, address: str = ADDRESS) -> dict[str, Any]:
        response = self.api("POST", "/verified-addresses", project, {"address": address})
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    def status(self, project: str, address: str = ADDRESS) -> str:
        listed = self.api("GET", "/verified-addresses", project).json()["addresses"]
        return next(str(a["status"]) for a in listed if a["address"] == address)

    def confirm_page(self, token: str) -> httpx.Response:
        return self.client.post("/confirm-address", json={"token": token})


@pytest.fixture
def http(proving: Env) -> Iterator[Http]:
    client = Http(proving)
    try:
        yield client
    finally:
        client.client.close()


def smtp_send(
    env: Env, user: str = "app", password: str = PASSWORD, sender: str = ADDRESS
) -> tuple[int, bytes]:
    """Submit one message from `sender` (envelope and From); the refusal (at MAIL FROM or
    after DATA, where the From header is checked), or (250, b"") when it is accepted."""
    with env.smtp(user, password) as client:
        try:
            client.sendmail(sender, ["reader@example.org"], message(sender))
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as refused:
            return refused.smtp_code, refused.smtp_error
    return 250, b""


def settle(env: Env) -> None:
    """Let the pipeline read identities again (its per-project snapshot lives 5 s)."""
    env.clock.advance(6)


def received_by(receiver: Receiver, address: str, count: int = 1) -> list[IncomingMessage]:
    """The mails the receiving MX got for `address` once there are `count` (bounded wait:
    the delivery loop runs every second)."""
    deadline = time.monotonic() + 30
    while True:
        got = [m for m in receiver.messages if address in m.envelope.recipients]
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def queued_mails(env: Env, address: str) -> list[bytes]:
    """The verification mails queued to `address`, oldest first (read from the store)."""
    records = env.store.list(SYSTEM_PROJECT, None, 0, 100).messages
    mine = [r for r in records if r.envelope.recipients == (address,)]
    return [env.store.raw(SYSTEM_PROJECT, r.id) for r in reversed(mine)]


def test_an_address_is_verified_by_the_link_mailed_to_it(
    proving: Env, http: Http, receiver: Receiver
) -> None:
    env = proving
    assert smtp_send(env) == (
        554,
        UNVERIFIED + b" The following identities failed the check: " + ADDRESS.encode(),
    )
    added = http.add("acme")
    assert (added["address"], added["status"]) == (ADDRESS, "pending")
    settle(env)
    code, text = smtp_send(env)
    assert (code, text[:5]) == (554, b"5.7.1")  # pending allows nothing

    # The delivery worker takes the mail to the MX of example.net (the receiver).
    (mail,) = received_by(receiver, ADDRESS)
    assert mail.envelope.mail_from == "postroom@postroom.test"  # postroom@<--hostname>
    (entry,) = settled(env, queued_message_id(env, ADDRESS))  # the worker's report follows
    assert entry.status == DELIVERED
    link = link_in(mail.data)
    assert link.startswith(f"{env.server.base_url}/confirm-address?token=pva_")
    assert code_in(mail.data) == token_of(link)

    # GET shows the page and changes nothing (link scanners open links too).
    for _ in range(2):
        page = http.client.get(link)
        assert page.status_code == 200, page.text
        assert ADDRESS in page.text and 'id="confirm-button"' in page.text
        assert page.headers["cache-control"] == "no-store"
    assert http.status("acme") == "pending"

    # The page's button posts the token as JSON: verified.
    done = http.confirm_page(token_of(link))
    assert done.status_code == 200, done.text
    assert (done.json()["project"], done.json()["status"]) == ("acme", "verified")
    assert http.status("acme") == "verified"
    settle(env)
    assert smtp_send(env) == (250, b"")
    assert http.client.get(link).status_code == 400  # used: the page says so


def queued_message_id(env: Env, address: str) -> str:
    records = env.store.list(SYSTEM_PROJECT, None, 0, 100).messages
    return next(r.id for r in records if r.envelope.recipients == (address,))


def test_forged_expired_reused_and_foreign_tokens_are_refused(proving: Env, http: Http) -> None:
    env = proving
    http.add("acme")
    (first,) = queued_mails(env, ADDRESS)
    token = code_in(first)

    def refused(response: httpx.Response, field: str) -> str:
        assert response.status_code == 400, response.text
        assert response.json()["Field"] == field
        return str(response.json()["Error"])

    # forged: a token of the right shape that was never issued; malformed; missing
    forged = "pva_" + secrets.token_urlsafe(32)
    assert "unknown" in refused(http.confirm_page(forged), "token")
    assert "malformed" in refused(http.confirm_page("pva_short"), "token")
    assert "required" in refused(http.confirm_page(""), "token")
    page = http.client.get("/confirm-address", params={"token": forged})
    assert page.status_code == 400 and "Unknown token" in page.text
    assert 'id="confirm-button"' not in page.text

    # deleting and adding the address again does not get round the throttle (the recipient
    # gets one mail a minute at most, whichever project asks)
    assert http.api("DELETE", f"/verified-addresses/{ADDRESS}", "acme").status_code == 200
    again = http.api("POST", "/verified-addresses", "acme", {"address": ADDRESS})
    assert again.status_code == 429 and again.json()["Field"] == "address"
    assert http.api("POST", "/verified-addresses", "beta", {"address": ADDRESS}).status_code == 429
    env.clock.advance(61)
    http.add("acme")
    token = code_in(queued_mails(env, ADDRESS)[-1])
    assert "unknown" in refused(http.confirm_page(code_in(first)), "token")  # deleted with it

    # another project's token: beta's own mail for the same address does not confirm acme's
    env.clock.advance(61)
    http.add("beta")
    beta_code = code_in(queued_mails(env, ADDRESS)[-1])
    wrong = http.api("POST", f"/verified-addresses/{ADDRESS}/confirm", "acme", {"code": beta_code})
    assert "not issued for" in refused(wrong, "code")
    assert http.status("acme") == "pending"
    # ... and a key of acme cannot reach beta's address at all
    foreign = http.client.post(
        f"/api/v2/projects/beta/verified-addresses/{ADDRESS}/confirm",
        json={"code": token},
        headers={"Authorization": f"Bearer {http.keys['acme']}"},
    )
    assert foreign.status_code == 403

    # expired: 24 h later (the injected clock), the link and the code are refused
    env.clock.advance(24 * 3600)
    assert "expired" in refused(http.confirm_page(token), "token")
    expired_code = http.api(
        "POST", f"/verified-addresses/{ADDRESS}/confirm", "acme", {"code": token}
    )
    assert "expired" in refused(expired_code, "code")
    assert http.client.get("/confirm-address", params={"token": token}).status_code == 400

    # a new mail: the old token is unknown, the new one works once (reuse refused)
    resent = http.api("POST", f"/verified-addresses/{ADDRESS}/resend", "acme")
    assert resent.status_code == 200, resent.text
    again = http.api("POST", f"/verified-addresses/{ADDRESS}/resend", "acme")
    assert again.status_code == 429 and again.json()["Field"] == "address"
    assert int(again.headers["retry-after"]) > 0
    fresh = code_in(queued_mails(env, ADDRESS)[-1])
    assert "unknown" in refused(http.confirm_page(token), "token")
    assert http.confirm_page(fresh).status_code == 200
    assert "used already" in refused(http.confirm_page(fresh), "token")
    assert http.status("acme") == "verified"
    assert http.status("beta") == "pending"  # acme's proof is acme's


def test_a_project_proves_what_another_project_verified(proving: Env, http: Http) -> None:
    env = proving
    # acme proves the address
    http.add("acme")
    assert http.confirm_page(code_in(queued_mails(env, ADDRESS)[0])).status_code == 200
    settle(env)
    assert smtp_send(env)[0] == 250
    # beta cannot send as it, nor as acme's verified domain example.com
    assert smtp_send(env, "beta", BETA_PASSWORD)[0] == 554
    assert smtp_send(env, "beta", BETA_PASSWORD, "app@example.com")[0] == 554
    # adding them gives beta pending identities of its own
    env.clock.advance(61)  # one verification mail a minute to an address
    assert http.add("beta")["status"] == "pending"
    added_domain = http.api("POST", "/domains", "beta", {"domain": "example.com"})
    assert added_domain.status_code == 201, added_domain.text
    checked = http.api("POST", "/domains/example.com/verify", "beta")
    assert checked.status_code == 200 and checked.json()["verified"] is False
    settle(env)
    assert smtp_send(env, "beta", BETA_PASSWORD)[0] == 554
    # beta proves the address with its own mail: now it may
    assert http.confirm_page(code_in(queued_mails(env, ADDRESS)[-1])).status_code == 200
    settle(env)
    assert smtp_send(env, "beta", BETA_PASSWORD) == (250, b"")
