"""Every refusal of the submission doors, with its exact reply code and enhanced status code."""

from __future__ import annotations

import pytest

from .client import Client
from .conftest import PASSWORD, Env

UNVERIFIED = (
    "554 5.7.1 Message rejected: Email address is not verified. "
    "The following identities failed the check: "
)


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def message(sender: str = "app@example.com", extra: str = "") -> bytes:
    return crlf(f"From: App <{sender}>\nTo: r@example.net\nSubject: test\n{extra}\nHello\n")


async def logged_in(env: Env, user: str = "app", password: str = PASSWORD) -> Client:
    client = await Client.connect(env.submission_port)
    await client.ehlo()
    await client.starttls(env.client_context())
    await client.ehlo()
    reply = await client.login(user, password)
    assert reply == "235 2.7.0 Authentication successful", reply
    return client


async def test_auth_before_starttls_is_refused(env: Env) -> None:
    client = await Client.connect(env.submission_port)
    ehlo = await client.ehlo()
    assert "STARTTLS" in ehlo and "AUTH" not in ehlo
    reply = await client.command("AUTH PLAIN AGFwcABwYXNzd29yZA==")
    assert reply == "530 5.7.0 Must issue a STARTTLS command first"
    await client.starttls(env.client_context())
    assert "AUTH PLAIN LOGIN" in await client.ehlo()
    await client.close()


async def test_mail_before_auth_is_refused(env: Env) -> None:
    client = await Client.connect(env.submission_port)
    await client.ehlo()
    assert (
        await client.command("MAIL FROM:<app@example.com>") == "530 5.7.0 Authentication required"
    )
    await client.starttls(env.client_context())
    await client.ehlo()
    assert (
        await client.command("MAIL FROM:<app@example.com>") == "530 5.7.0 Authentication required"
    )
    await client.close()
    implicit = await Client.connect(env.submissions_port, tls=env.client_context())
    await implicit.ehlo()
    assert (
        await implicit.command("MAIL FROM:<app@example.com>") == "530 5.7.0 Authentication required"
    )
    await implicit.close()
    assert env.messages() == []


async def test_wrong_password_and_unknown_user(env: Env) -> None:
    client = await Client.connect(env.submission_port)
    await client.ehlo()
    await client.starttls(env.client_context())
    await client.ehlo()
    assert await client.login("app", "wrong") == "535 5.7.8 Authentication credentials invalid"
    assert await client.login("nobody", PASSWORD) == "535 5.7.8 Authentication credentials invalid"
    assert await client.login("app", PASSWORD) == "235 2.7.0 Authentication successful"
    await client.close()


async def test_repeated_failures_are_throttled_454_then_421(env: Env) -> None:
    """The environment allows 3 failures per 5 minutes and client."""
    client = await Client.connect(env.submission_port)
    await client.ehlo()
    await client.starttls(env.client_context())
    await client.ehlo()
    for _ in range(3):
        assert await client.login("app", "guess") == "535 5.7.8 Authentication credentials invalid"
    throttled = await client.login("app", PASSWORD)
    assert throttled.startswith("454 4.7.0 Too many failed authentication attempts"), throttled
    closing = await client.login("app", PASSWORD)
    assert closing.startswith("421 4.7.0 "), closing
    assert await client.at_eof()
    await client.close()

    # A new connection from the same client is still throttled, even with the right password.
    again = await Client.connect(env.submissions_port, tls=env.client_context())
    await again.ehlo()
    assert (await again.login("app", PASSWORD)).startswith("454 4.7.0 ")
    await again.close()

    # Another client address is not.
    other = await Client.connect(env.submission_port, local_host="127.0.0.2")
    await other.ehlo()
    await other.starttls(env.client_context())
    await other.ehlo()
    assert await other.login("app", PASSWORD) == "235 2.7.0 Authentication successful"
    await other.close()

    env.clock.advance(300)
    client = await logged_in(env)
    await client.close()


async def test_insecure_auth_switch(tmp_path_factory: pytest.TempPathFactory, ca, dns_zone) -> None:  # type: ignore[no-untyped-def]
    from .conftest import start_env

    insecure = start_env(
        tmp_path_factory.mktemp("insecure"), ca, dns_zone, submission_allow_insecure_auth=True
    )
    try:
        client = await Client.connect(insecure.submission_port)
        assert "AUTH PLAIN LOGIN" in await client.ehlo()
        assert await client.login("app", PASSWORD) == "235 2.7.0 Authentication successful"
        assert (await client.message("app@example.com", ["r@example.net"], message())).startswith(
            "250 "
        )
        await client.close()
    finally:
        insecure.server.stop()


@pytest.mark.parametrize(
    ("mail_from", "from_header", "failed"),
    [
        ("app@example.com", "x@other.example", "x@other.example"),
        ("bounce@other.example", "app@example.com", "bounce@other.example"),
        ("a@pending.example", "b@pending.example", "b@pending.example, a@pending.example"),
        ("app@example.com", "a@example.com, b@sub.example.com", "b@sub.example.com"),
    ],
)
async def test_unverified_identities(
    env: Env, mail_from: str, from_header: str, failed: str
) -> None:
    client = await logged_in(env)
    data = crlf(f"From: {from_header}\nTo: r@example.net\nSubject: x\n\nHello\n")
    assert await client.message(mail_from, ["r@example.net"], data) == UNVERIFIED + failed
    # the session goes on: a verified message is accepted next
    assert (await client.message("app@example.com", ["r@example.net"], message())).startswith(
        "250 "
    )
    await client.close()
    assert len(env.messages()) == 1


async def test_allowed_from_restricts_the_credential(env: Env) -> None:
    client = await logged_in(env, "newsletter")
    reply = await client.message("app@example.com", ["r@example.net"], message("app@example.com"))
    assert reply == UNVERIFIED + "app@example.com"
    ok = await client.message(
        "ceo@example.com", ["r@example.net"], message("news@news.example.com")
    )
    assert ok.startswith("250 "), ok
    ok = await client.message("ceo@example.com", ["r@example.net"], message("ceo@example.com"))
    assert ok.startswith("250 "), ok
    await client.close()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b"To: r@example.net\r\nSubject: no from\r\n\r\nHello\r\n",
            "550 5.6.0 The message has no From header field; a submitted message must say who "
            "it is from (RFC 5322 section 3.6)",
        ),
        (
            b"From: just some words\r\nSubject: bad from\r\n\r\nHello\r\n",
            "550 5.6.0 The From header field cannot be parsed: it must hold one or more "
            "addresses like Name <user@example.com>",
        ),
        (
            b"From: a@example.com\r\nFrom: b@example.com\r\n\r\nHello\r\n",
            "550 5.6.0 The message has more than one From header field (RFC 5322 section 3.6)",
        ),
        (
            b"From: a@example.com\r\nX-Long: " + b"x" * 1200 + b"\r\n\r\nHello\r\n",
            "550 5.6.0 A header line is longer than 998 characters and has no space to fold it "
            "at (RFC 5322 section 2.1.1)",
        ),
        (
            b"From: a@example.com\r\n\r\n" + b"y" * 1200 + b"\r\n",
            "550 5.6.0 A body line is longer than 998 characters (RFC 5322 section 2.1.1); "
            "encode long lines with quoted-printable or base64",
        ),
    ],
)
async def test_bad_headers(env: Env, data: bytes, expected: str) -> None:
    client = await logged_in(env)
    assert await client.message("app@example.com", ["r@example.net"], data) == expected
    await client.close()
    assert env.messages() == []


async def test_bare_lf_is_refused(env: Env) -> None:
    client = await logged_in(env)
    for data in (
        b"From: app@example.com\r\n\r\nbare\nline feed\r\n",
        b"From: app@example.com\r\n\r\nbare\rcarriage return\r\n",
    ):
        reply = await client.message("app@example.com", ["r@example.net"], data)
        assert reply == "550 5.6.11 Bare CR or LF line endings are not allowed"
    await client.close()
    assert env.messages() == []


async def test_daily_quota(env: Env) -> None:
    env.set_project(daily_quota=3)
    client = await logged_in(env)
    assert (
        await client.message("app@example.com", ["a@x.example", "b@x.example"], message())
    ).startswith("250 ")
    reply = await client.message("app@example.com", ["c@x.example", "d@x.example"], message())
    assert reply == "454 4.7.0 Throttling failure: Daily message quota exceeded"
    assert (await client.message("app@example.com", ["c@x.example"], message())).startswith("250 ")
    assert await client.message("app@example.com", ["e@x.example"], message()) == (
        "454 4.7.0 Throttling failure: Daily message quota exceeded"
    )
    await client.close()
    # a new session: a day later the open one is past its session lifetime (smtp/deadlines.py)
    env.clock.advance(24 * 3600 + 1)
    client = await logged_in(env)
    assert (await client.message("app@example.com", ["e@x.example"], message())).startswith("250 ")
    await client.close()
    assert len(env.messages()) == 3
    metrics = env.server.app.metrics.exposition().decode()
    assert 'postroom_quota_daily_limit{project="acme"} 3.0' in metrics
    assert 'postroom_quota_daily_used{project="acme"} 1.0' in metrics


async def test_rate_limit(env: Env) -> None:
    env.set_project(rate_limit=2)
    client = await logged_in(env)
    assert (await client.message("app@example.com", ["a@x.example"], message())).startswith("250 ")
    assert (await client.message("app@example.com", ["b@x.example"], message())).startswith("250 ")
    reply = await client.message("app@example.com", ["c@x.example"], message())
    assert reply == "454 4.7.0 Throttling failure: Maximum sending rate exceeded"
    env.clock.advance(1)
    assert (
        await client.message("app@example.com", ["c@x.example", "d@x.example"], message())
    ).startswith("250 ")
    await client.close()
    assert len(env.messages()) == 3
    assert (
        'postroom_quota_rate_limit{project="acme"} 2.0'
        in env.server.app.metrics.exposition().decode()
    )


async def test_ip_credential_accepted_other_ip_refused(env: Env) -> None:
    env.add_ip_credential("127.0.0.2/32")
    allowed = await Client.connect(env.submission_port, local_host="127.0.0.2")
    await allowed.ehlo()
    reply = await allowed.message("app@example.com", ["r@example.net"], message())
    assert reply.startswith("250 2.0.0 Ok: queued as "), reply
    await allowed.close()

    other = await Client.connect(env.submission_port, local_host="127.0.0.3")
    await other.ehlo()
    assert await other.command("MAIL FROM:<app@example.com>") == "530 5.7.0 Authentication required"
    await other.close()

    [record] = env.messages()
    assert record.status == "queued" and record.username is None
    # IP credentials do not lift the identity checks
    again = await Client.connect(env.submission_port, local_host="127.0.0.2")
    await again.ehlo()
    assert await again.message(
        "x@other.example", ["r@example.net"], message("x@other.example")
    ) == (UNVERIFIED + "x@other.example")
    await again.close()
