"""The platform commands through `postroom.cli.main`: one JSON object per command with --json,
secrets printed once and never logged, the same database options as the server."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from postroom.cli import build_parser, main
from postroom.config import Config
from postroom.core.platform import SYSTEM_PROJECT
from postroom.core.secrets import verify_secret
from postroom.pipeline.identity import check_smtp_credential
from postroom.platform import actions
from postroom.platform.factory import open_platform
from postroom.storage import open_store
from tests.dnszone import DnsZone
from tests.proofmail import code_in, link_in, token_of


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], *storage: str) -> None:
        self.capsys = capsys
        self.storage = list(storage)
        self.outputs: list[str] = []

    def run(self, *args: str, code: int = 0) -> Any:
        """Run `postroom ARGS --json ...storage`; the one JSON object it printed."""
        self.capsys.readouterr()
        rc = main([*args, "--json", *self.storage])
        out = self.capsys.readouterr().out
        self.outputs.append(out)
        assert rc == code, out
        return json.loads(out)  # exactly one JSON document, or this fails

    def text(self, *args: str, code: int = 0) -> str:
        self.capsys.readouterr()
        rc = main([*args, *self.storage])
        captured = self.capsys.readouterr()
        self.outputs.append(captured.out)
        assert rc == code, captured.err
        return captured.out + captured.err


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], data_dir: Path) -> Cli:
    return Cli(capsys, "--data-dir", str(data_dir))


def test_every_command_has_an_action() -> None:
    parser = build_parser()
    groups = {
        "project",
        "credential",
        "ipcredential",
        "apikey",
        "seskey",
        "domain",
        "address",
        "admin",
    }
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    seen = 0
    for name in groups:
        group = sub.choices[name]
        inner = next(a for a in group._actions if isinstance(a, argparse._SubParsersAction))
        for action_name, command in inner.choices.items():
            run = command.get_default("func")
            assert run is not None, f"{name} {action_name}"
            target = run.__closure__[0].cell_contents  # the action's name
            assert callable(getattr(actions, target)), f"{name} {action_name}: {target}"
            seen += 1
    assert seen >= 25


def test_projects(cli: Cli) -> None:
    created = cli.run(
        "project",
        "create",
        "acme",
        "--name",
        "Acme",
        "--mode",
        "live",
        "--daily-quota",
        "500",
        "--rate-limit",
        "none",
    )
    assert {k: created[k] for k in ("id", "name", "mode", "daily_quota", "rate_limit")} == {
        "id": "acme",
        "name": "Acme",
        "mode": "live",
        "daily_quota": 500,
        "rate_limit": None,
    }
    listed = cli.run("project", "list")
    assert [p["id"] for p in listed["projects"]] == ["acme", "default"]
    updated = cli.run("project", "update", "acme", "--rate-limit", "20")
    assert (updated["rate_limit"], updated["daily_quota"]) == (20, 500)  # the rest kept
    shown = cli.run("project", "show", "acme")
    assert shown["usage"] == {
        "project": "acme",
        "sent_24h": 0,
        "daily_quota": 500,
        "rate_limit": 20,
        "remaining_24h": 500,
    }
    assert cli.run("project", "usage", "acme")["sent_24h"] == 0

    refused = cli.run("project", "update", "default", "--mode", "live", code=2)
    assert refused["Field"] == "mode"
    dup = cli.run("project", "create", "acme", code=2)
    assert dup["Field"] == "id" and "already exists" in dup["Error"]
    unconfirmed = cli.run("project", "delete", "acme", code=2)
    assert "--yes" in unconfirmed["Error"]
    assert cli.run("project", "delete", "acme", "--yes") == {"deleted": "acme"}
    missing = cli.run("project", "show", "acme", code=2)
    assert "no project" in missing["Error"]
    assert "acme" not in cli.text("project", "list")


def test_smtp_credentials_show_the_password_once(cli: Cli, data_dir: Path) -> None:
    cli.run("project", "create", "acme", "--mode", "live")
    created = cli.run(
        "credential",
        "create",
        "--project",
        "acme",
        "--allow-from",
        "example.com",
        "--allow-from",
        "Ops@Example.org",
    )
    username, password = created["username"], created["password"]
    assert username.startswith("prj-") and password.startswith("prs_")
    assert created["allowed_from"] == ["example.com", "ops@example.org"]
    named = cli.run("credential", "create", "--project", "acme", "--username", "billing")
    listed = cli.run("credential", "list", "--project", "acme")
    assert [c["username"] for c in listed["credentials"]] == ["billing", username]
    assert all("password" not in c for c in listed["credentials"])

    service = open_platform(Config(data_dir=data_dir))
    try:
        stored = check_smtp_credential(service.store, username, password)
        assert stored is not None and verify_secret(password, stored.secret_digest)
    finally:
        service.close()

    assert cli.run("credential", "delete", "billing", "--project", "acme") == {"deleted": "billing"}
    assert cli.run("credential", "delete", named["id"], "--project", "acme", code=2)["Error"]
    text = cli.text("credential", "create", "--project", "acme", "--username", "human")
    assert "human" in text and "prs_" in text and "shown this once" in text
    everything = "".join(cli.outputs)
    assert everything.count(password) == 1  # only in the create output


def test_ip_credentials_and_api_keys(cli: Cli) -> None:
    cli.run("project", "create", "acme")
    ip = cli.run("ipcredential", "create", "192.0.2.7/24", "--project", "acme")
    assert ip["network"] == "192.0.2.0/24"
    assert (
        cli.run("ipcredential", "create", "nonsense", "--project", "acme", code=2)["Field"]
        == "network"
    )
    assert [c["network"] for c in cli.run("ipcredential", "list")["credentials"]] == [
        "192.0.2.0/24"
    ]
    assert cli.run("ipcredential", "delete", "192.0.2.0/24", "--project", "acme")["deleted"]

    key = cli.run(
        "apikey",
        "create",
        "--project",
        "acme",
        "--name",
        "ci",
        "--scope",
        "send",
        "--scope",
        "manage",
    )
    assert key["scopes"] == ["send", "manage"] and key["token"].startswith(f"prk_{key['id']}_")
    listed = cli.run("apikey", "list", "--project", "acme")
    assert [k["id"] for k in listed["api_keys"]] == [key["id"]]
    assert "token" not in listed["api_keys"][0]
    assert cli.run("apikey", "delete", key["id"], "--project", "acme") == {"deleted": key["id"]}
    assert cli.run("apikey", "list", "--project", "acme")["api_keys"] == []
    assert "".join(cli.outputs).count(key["token"]) == 1


def test_addresses_are_pending_until_the_mailed_code_is_given(cli: Cli, data_dir: Path) -> None:
    public = ("--public-url", "https://mail.example.org", "--system-sender", "proof@example.org")
    added = cli.run("address", "add", "Ops@Example.com", *public)
    assert (added["address"], added["project"], added["status"]) == (
        "ops@example.com",
        "default",
        "pending",
    )
    listed = cli.run("address", "list")["addresses"]
    assert [(a["address"], a["status"]) for a in listed] == [("ops@example.com", "pending")]
    assert cli.run("address", "add", "not-an-address", code=2)["Field"] == "address"
    assert cli.run("address", "resend", "ops@example.com", code=2)["Field"] == "address"  # 1 min

    # The mail is queued in the database for the server's delivery worker.
    async def queued() -> tuple[bytes, tuple[str, str, tuple[str, ...]]]:
        store = open_store(data_dir)
        try:
            (record,) = store.list(SYSTEM_PROJECT, None, 0, 10).messages
            (entry,) = store.queue.entries(record.id)
            envelope = record.envelope
            return store.raw(SYSTEM_PROJECT, record.id), (
                entry.status,
                envelope.mail_from,
                envelope.recipients,
            )
        finally:
            await store.close()

    raw, state = asyncio.run(queued())
    assert state == ("queued", "proof@example.org", ("ops@example.com",))
    assert link_in(raw).startswith("https://mail.example.org/confirm-address?token=pva_")
    code = code_in(raw)
    assert token_of(link_in(raw)) == code
    wrong = cli.run("address", "confirm", "ops@example.com", "--code", "pva_" + "A" * 43, code=2)
    assert wrong["Field"] == "code"
    confirmed = cli.run("address", "confirm", "OPS@example.com", "--code", code)
    assert confirmed["status"] == "verified"
    assert code not in "".join(cli.outputs)  # the code is in the mail only
    assert cli.run("address", "delete", "ops@example.com") == {"deleted": "ops@example.com"}


def test_identities_past_max_identities(cli: Cli) -> None:
    limit = ("--max-identities", "2")
    cli.run("domain", "add", "one.example", *limit)
    mail = ("--public-url", "https://mail.example.org", "--system-sender", "proof@example.org")
    cli.run("address", "add", "ops@two.example", *mail, *limit)
    refused = cli.run("domain", "add", "three.example", *limit, code=2)
    assert refused["Field"] == "domain" and "at most 2 email identities" in refused["Error"]
    refused = cli.run("address", "add", "ops@three.example", *mail, *limit, code=2)
    assert refused["Field"] == "address" and "max_identities" in refused["Error"]
    assert cli.run("domain", "add", "three.example", "--max-identities", "3")["name"]


def test_admins(cli: Cli, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
    created = cli.run("admin", "create", "alice", "--password-stdin")
    assert created["username"] == "alice" and set(created) == {"id", "username", "created"}
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.run("admin", "create", "bob", "--password-stdin", code=2)["Field"] == "password"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal, no --password-stdin
    assert "--password-stdin" in cli.run("admin", "create", "carol", code=2)["Error"]
    assert [u["username"] for u in cli.run("admin", "list")["admins"]] == ["alice"]
    service = open_platform(Config(data_dir=data_dir))
    try:
        assert service.authenticate_admin("alice", "a long enough secret").username == "alice"
    finally:
        service.close()
    assert "a long enough secret" not in "".join(cli.outputs)
    assert cli.run("admin", "delete", "alice") == {"deleted": "alice"}


def _publish(zone: DnsZone, report: dict[str, Any]) -> None:
    for record in report["records"]:
        if record["type"] == "TXT" and record["required"]:
            zone.add_txt(record["name"], record["value"])


def test_domains_against_dns(
    capsys: pytest.CaptureFixture[str], data_dir: Path, dns_zone: DnsZone
) -> None:
    # --resolver and --hostname are options of the domain commands only.
    Cli(capsys, "--data-dir", str(data_dir)).run("project", "create", "acme", "--mode", "live")
    cli = Cli(
        capsys,
        "--data-dir",
        str(data_dir),
        "--resolver",
        dns_zone.nameserver,
        "--hostname",
        "mail.postroom.test",
    )
    added = cli.run("domain", "add", "Example.com", "--project", "acme", "--algorithm", "ed25519")
    assert added["name"] == "example.com" and added["verified"] is False
    kinds = [r["kind"] for r in added["records"]]
    assert kinds[:2] == ["verification", "dkim"] and "inbound_mx" in kinds
    assert {r["status"] for r in added["records"]} == {"unchecked"}
    assert any(r["value"] == "10 mail.postroom.test" for r in added["records"])

    checked = cli.run("domain", "verify", "example.com", "--project", "acme")
    assert checked["verified"] is False and checked["last_checked"]
    _publish(dns_zone, added)
    checked = cli.run("domain", "verify", "example.com", "--project", "acme")
    assert checked["verified"] is True
    statuses = {r["kind"]: r["status"] for r in checked["records"]}
    assert statuses["verification"] == statuses["dkim"] == "ok"
    records = cli.run("domain", "records", "example.com", "--project", "acme")
    assert records["records"] == checked["records"]
    assert [d["verified"] for d in cli.run("domain", "list")["domains"]] == [True]

    rotation = cli.run("domain", "rotate", "example.com", "--project", "acme")
    key = rotation["key"]
    assert key["status"] == "pending" and key["algorithm"] == "ed25519"
    early = cli.run(
        "domain", "activate", "example.com", key["selector"], "--project", "acme", code=2
    )
    assert early["Field"] == "selector" and key["name"] in early["Error"]
    dns_zone.add_txt(key["name"], key["value"])
    activated = cli.run("domain", "activate", "example.com", key["selector"], "--project", "acme")
    assert {k["selector"]: k["status"] for k in activated["dkim_keys"]} == {
        added["dkim_keys"][0]["selector"]: "retiring",
        key["selector"]: "active",
    }
    text = cli.text("domain", "records", "example.com", "--project", "acme")
    assert "_postroom.example.com" in text and key["selector"] in text
    assert cli.run("domain", "delete", "example.com", "--project", "acme")["deleted"]
    for out in cli.outputs:
        assert "PRIVATE KEY" not in out


def test_own_private_key_file(cli: Cli, tmp_path: Path) -> None:
    from postroom.dns.dkim import dump_private_key, generate_ed25519, public_key_b64

    key = generate_ed25519()
    pem = tmp_path / "dkim.pem"
    pem.write_bytes(dump_private_key(key))
    added = cli.run("domain", "add", "own.example", "--private-key", str(pem), "--selector", "s1")
    assert added["dkim_keys"][0]["selector"] == "s1"
    assert added["dkim_keys"][0]["value"].endswith(public_key_b64(key))
    missing = cli.run("domain", "add", "x.example", "--private-key", str(tmp_path / "nope"), code=2)
    assert missing["Field"] == "private_key"
    assert pem.read_text().splitlines()[1] not in "".join(cli.outputs)


def test_environment_and_text_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("POSTROOM_DATA_DIR", str(tmp_path / "from-env"))
    assert main(["project", "create", "envy"]) == 0
    assert (tmp_path / "from-env" / "postroom.db").exists()
    assert "envy" in capsys.readouterr().out
    assert main(["project", "create", "envy"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["domain", "list", "--resolver", "not-an-ip"]) == 2
    assert "resolver" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # not an option of the project commands
        main(["project", "list", "--resolver", "127.0.0.1"])


def test_secrets_never_logged(cli: Cli, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cli.run("project", "create", "acme")
    cred = cli.run("credential", "create", "--project", "acme")
    key = cli.run("apikey", "create", "--project", "acme", "--name", "n")
    domain = cli.run("domain", "add", "example.com", "--project", "acme", "--algorithm", "ed25519")
    # Every attribute of every record, extras included (what a JSON log line would carry).
    logged = caplog.text + "\n".join(str(vars(r)) for r in caplog.records)
    assert cred["username"] in logged  # the service does log what it does
    assert cred["password"] not in logged
    assert key["token"] not in logged
    assert key["token"].split("_", 2)[2] not in logged
    assert "PRIVATE KEY" not in logged
    assert domain["name"] in logged


@pytest.mark.postgres
def test_database_url(capsys: pytest.CaptureFixture[str], postgres_database: str) -> None:
    cli = Cli(capsys, "--database-url", postgres_database)
    cli.run("project", "create", "pg", "--mode", "live")
    cred = cli.run("credential", "create", "--project", "pg")
    assert [p["id"] for p in cli.run("project", "list")["projects"]] == ["default", "pg"]
    assert [
        c["username"] for c in cli.run("credential", "list", "--project", "pg")["credentials"]
    ] == [cred["username"]]
