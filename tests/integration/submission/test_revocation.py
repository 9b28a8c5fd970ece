"""Issue 9 item 5: a credential revoked while a session is open stops working at the next MAIL.

The changes go through `postroom.cli.main` (its own store on the same database, as another
process would) or the management API over HTTP, never through the server's objects, so the
door cannot be told about them in-process: it must read the store again at MAIL."""

from __future__ import annotations

import asyncio
import json
import smtplib
import subprocess
import sys

import httpx
import pytest

from postroom.cli import main
from postroom.core.platform import SmtpCredential
from postroom.core.secrets import secret_digest
from postroom.storage.engine import open_platform_store

from .client import Client
from .conftest import CREATED, PASSWORD, Env

MESSAGE = b"From: App <app@example.com>\r\nTo: ann@example.net\r\nSubject: Hi\r\n\r\nHello.\r\n"


def cli(env: Env, capsys: pytest.CaptureFixture[str], *args: str) -> object:
    capsys.readouterr()
    rc = main([*args, "--json", "--data-dir", str(env.server.app.config.data_dir)])
    out = capsys.readouterr().out
    assert rc == 0, out
    return json.loads(out)


def refused_mail(client: smtplib.SMTP) -> tuple[int, bytes]:
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        client.sendmail("app@example.com", ["ann@example.net"], MESSAGE)
    return refused.value.smtp_code, refused.value.smtp_error


def test_credential_deleted_by_the_cli_refuses_the_next_mail(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    with env.smtp() as client:
        assert client.sendmail("app@example.com", ["ann@example.net"], MESSAGE) == {}
        assert cli(env, capsys, "credential", "delete", "app", "--project", "acme") == {
            "deleted": "app"
        }
        code, text = refused_mail(client)
        assert (code, text) == (
            535,
            b"5.7.8 The credentials of this session are no longer valid; authenticate again",
        )
        client.rset()
        assert refused_mail(client)[0] == 535  # and every transaction after it
    assert len(env.messages()) == 1


def test_credential_deleted_through_the_api_refuses_the_next_mail(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # Open mode refuses credential changes without a login or a manage key (issue 9 item 1).
    key = cli(
        env, capsys, "apikey", "create", "--project", "acme", "--name", "ops", "--scope", "manage"
    )
    assert isinstance(key, dict)
    base = f"http://127.0.0.1:{env.server.app.http_port}"
    headers = {"Authorization": f"Bearer {key['token']}"}
    with env.smtp() as client, httpx.Client(base_url=base, headers=headers) as http:
        assert client.sendmail("app@example.com", ["ann@example.net"], MESSAGE) == {}
        answer = http.delete("/api/v2/projects/acme/smtp-credentials/app")
        assert answer.status_code in (200, 204), answer.text
        assert refused_mail(client)[0] == 535
    assert len(env.messages()) == 1


def test_credential_replaced_with_a_restriction_refuses_the_old_session(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deleted and created again under the same name, restricted with allowed_from: the open
    session authenticated with the old secret; it may not go on under the new rules."""
    with env.smtp() as client:
        assert client.sendmail("app@example.com", ["ann@example.net"], MESSAGE) == {}
        cli(env, capsys, "credential", "delete", "app", "--project", "acme")
        created = cli(
            env,
            capsys,
            "credential",
            "create",
            "--project",
            "acme",
            "--username",
            "app",
            "--allow-from",
            "news.example.com",
        )
        assert isinstance(created, dict) and created["username"] == "app"
        assert refused_mail(client)[0] == 535
    assert len(env.messages()) == 1


def test_allowed_from_changed_in_the_store_applies_to_the_next_message(env: Env) -> None:
    """The same credential (same id and secret) with a new allowed_from, as an update would
    write it: the next message of the open session is judged by the new restriction."""
    from postroom.storage.platform_store import smtp_credentials

    with env.smtp() as client:
        assert client.sendmail("app@example.com", ["ann@example.net"], MESSAGE) == {}
        store = env.platform
        engine = store._write  # type: ignore[attr-defined]
        with engine.begin() as conn:
            conn.execute(
                smtp_credentials.update()
                .where(smtp_credentials.c.id == "c1")
                .values(allowed_from=json.dumps(["news.example.com"]))
            )
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("app@example.com", ["ann@example.net"], MESSAGE)
        assert refused.value.smtp_code == 554, refused.value
    assert len(env.messages()) == 1


def test_project_deleted_refuses_the_next_mail(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    with env.smtp() as client:
        assert client.sendmail("app@example.com", ["ann@example.net"], MESSAGE) == {}
        cli(env, capsys, "project", "delete", "acme", "--yes")
        code, text = refused_mail(client)
        assert code == 451 and text.startswith(b"4.3.0 The project of these credentials"), text


def test_unchanged_credential_keeps_working(env: Env) -> None:
    """The re-check refuses only what changed: a session sends again and again, and another
    credential of the same project deleted meanwhile changes nothing for it."""
    env.platform.add_smtp_credential(
        SmtpCredential("c9", "acme", "other", secret_digest(PASSWORD), (), CREATED)
    )
    with env.smtp() as client:
        for _ in range(3):
            assert client.sendmail("app@example.com", ["ann@example.net"], MESSAGE) == {}
        env.platform.delete_smtp_credential("c9")
        assert client.sendmail("app@example.com", ["ann@example.net"], MESSAGE) == {}
    assert len(env.messages()) == 4


async def test_ip_credential_removed_refuses_the_next_mail(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env.add_ip_credential("127.0.0.2/32")
    client = await Client.connect(env.submission_port, local_host="127.0.0.2")
    await client.ehlo()
    reply = await client.message("app@example.com", ["r@example.net"], MESSAGE)
    assert reply.startswith("250 2.0.0 Ok: queued as "), reply
    await asyncio.to_thread(
        cli, env, capsys, "ipcredential", "delete", "127.0.0.2/32", "--project", "acme"
    )
    assert await client.command("MAIL FROM:<app@example.com>") == (
        "530 5.7.0 Authentication required"
    )
    await client.close()
    assert len(env.messages()) == 1


def another_process(env: Env, code: str) -> None:
    """Run `code` in a new Python process with `store`, its own PlatformStore on the
    server's database: nothing in the server hears of the change but the database."""
    data_dir = str(env.server.app.config.data_dir)
    program = (
        "from postroom.storage.engine import open_platform_store\n"
        f"store = open_platform_store({data_dir!r})\n"
        f"{code}\n"
        "store.close()\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True, timeout=60)


def test_credential_deleted_by_another_process_through_the_store_refuses_the_next_mail(
    env: Env,
) -> None:
    with env.smtp() as client:
        for _ in range(2):  # sent on what the door holds: nothing changed
            assert client.sendmail("app@example.com", ["ann@example.net"], MESSAGE) == {}
        another_process(env, "store.delete_smtp_credential('c1')")
        code, text = refused_mail(client)
        assert (code, text) == (
            535,
            b"5.7.8 The credentials of this session are no longer valid; authenticate again",
        )
    assert len(env.messages()) == 2


def test_identity_removed_through_another_connection_applies_to_the_next_message(
    env: Env,
) -> None:
    """The pipeline's project snapshot holds the verified domains; the server's clock is a
    FakeClock, so its 5 s expiry never comes: only the change counter read at MAIL can make
    the removal of the domain count for the next message."""
    with env.smtp() as client:
        assert client.sendmail("app@example.com", ["ann@example.net"], MESSAGE) == {}
        other = open_platform_store(str(env.server.app.config.data_dir))
        try:
            other.delete_domain("acme", "example.com")
        finally:
            other.close()
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("app@example.com", ["ann@example.net"], MESSAGE)
        assert refused.value.smtp_code == 554, refused.value
        assert b"not verified" in refused.value.smtp_error, refused.value
        # and another address of the project still goes
        other_identity = MESSAGE.replace(b"app@example.com", b"someone@gmail.example")
        assert client.sendmail("someone@gmail.example", ["ann@example.net"], other_identity) == {}
    assert len(env.messages()) == 2
