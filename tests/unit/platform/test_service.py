"""The service's rules for projects, credentials, API keys, admin users, address identities,
sender identities and quota usage."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput, NotFound, Refusal, RefusalKind
from postroom.core.secrets import verify_secret
from postroom.pipeline.identity import IpCredentials, check_smtp_credential, sender_allowed
from postroom.pipeline.projects import ProjectDirectory
from postroom.platform import PlatformService
from postroom.storage import open_store
from tests.integration.storage.factory import make_message


def test_projects_rules(service: PlatformService) -> None:
    created = service.create_project("acme-prod", mode="live", daily_quota=100, rate_limit=0)
    assert (created.name, created.mode, created.daily_quota, created.rate_limit) == (
        "acme-prod",
        "live",
        100,
        None,  # 0 is no limit
    )
    assert [p.id for p in service.list_projects()] == ["acme-prod", "default"]
    for bad in ("", "Acme", "-x", "x-", "a_b", "a" * 64, "é"):
        with pytest.raises(InvalidInput) as err:
            service.create_project(bad)
        assert err.value.field == "id"
    with pytest.raises(InvalidInput) as dup:
        service.create_project("acme-prod")
    assert dup.value.field == "id"
    with pytest.raises(InvalidInput) as bad_mode:
        service.create_project("x", mode="relay")
    assert bad_mode.value.field == "mode"
    for field, value in (("daily_quota", -1), ("rate_limit", "5"), ("daily_quota", True)):
        with pytest.raises(InvalidInput) as bad_quota:
            service.create_project("y", **{field: value})  # type: ignore[arg-type]
        assert bad_quota.value.field == field
    with pytest.raises(InvalidInput) as bad_name:
        service.create_project("z", name="  ")
    assert bad_name.value.field == "name"

    updated = service.update_project("acme-prod", name="Acme", mode="capture", daily_quota=None)
    assert (updated.name, updated.mode, updated.daily_quota) == ("Acme", "capture", None)
    assert service.get_project("acme-prod") == updated
    assert service.update_project("acme-prod", rate_limit=7).name == "Acme"  # others kept
    with pytest.raises(NotFound):
        service.update_project("ghost", name="x")


def test_default_project_never_goes_live_nor_away(service: PlatformService) -> None:
    with pytest.raises(InvalidInput) as live:
        service.update_project("default", mode="live")
    assert live.value.field == "mode"
    assert service.get_project("default").mode == "capture"
    with pytest.raises(InvalidInput):
        service.delete_project("default")
    service.update_project("default", name="Inbox", daily_quota=10)  # the rest may change
    service.create_project("gone")
    service.delete_project("gone")
    with pytest.raises(NotFound):
        service.get_project("gone")


def test_smtp_credentials(service: PlatformService, clock: FakeClock) -> None:
    service.create_project("acme")
    issued = service.create_smtp_credential("acme", allowed_from=["Example.COM", "Ops@Example.com"])
    cred = issued.credential
    assert cred.username.startswith("prj-") and len(cred.username) == 16
    assert issued.password.startswith("prs_") and len(issued.password) > 40
    assert issued.password not in repr(issued)
    assert cred.secret_digest != issued.password
    assert verify_secret(issued.password, cred.secret_digest)
    assert cred.allowed_from == ("example.com", "ops@example.com")

    other = service.create_smtp_credential("acme", username="app@acme")
    assert other.password != issued.password
    with pytest.raises(InvalidInput) as taken:
        service.create_smtp_credential("default", username="app@acme")
    assert taken.value.field == "username"
    for bad in ("has space", "colon:", "x" * 256):
        with pytest.raises(InvalidInput):
            service.create_smtp_credential("acme", username=bad)
    with pytest.raises(InvalidInput) as bad_from:
        service.create_smtp_credential("acme", allowed_from=["not a domain"])
    assert bad_from.value.field == "allowed_from"
    with pytest.raises(NotFound):
        service.create_smtp_credential("ghost")

    # the credential works with the one check the submission doors use
    authed = check_smtp_credential(service.store, cred.username, issued.password)
    assert authed is not None and authed.id == cred.id
    for user, password in ((cred.username, "prs_wrong"), ("nobody", issued.password)):
        assert check_smtp_credential(service.store, user, password) is None
    assert [c.username for c in service.list_smtp_credentials("acme")] == [
        "app@acme",
        cred.username,
    ]  # by username
    service.delete_smtp_credential("acme", "app@acme")  # by username
    service.delete_smtp_credential("acme", cred.id)  # or by id
    assert service.list_smtp_credentials("acme") == []
    assert check_smtp_credential(service.store, cred.username, issued.password) is None
    with pytest.raises(NotFound):
        service.delete_smtp_credential("acme", cred.id)


def test_ip_credentials(service: PlatformService) -> None:
    service.create_project("acme")
    wide = service.create_ip_credential("acme", "10.0.0.7/8")
    assert wide.network == "10.0.0.0/8"  # host bits cleared
    host = service.create_ip_credential("default", "10.1.2.3")
    assert host.network == "10.1.2.3/32"
    v6 = service.create_ip_credential("acme", "2001:DB8::/32")
    assert v6.network == "2001:db8::/32"
    for bad in ("10.0.0.0/33", "nonsense", "0.0.0.0/0", "::/0", ""):
        with pytest.raises(InvalidInput) as err:
            service.create_ip_credential("acme", bad)
        assert err.value.field == "network"
    with pytest.raises(InvalidInput):
        service.create_ip_credential("default", "10.0.0.0/8")  # one network, one project

    # matched as the submission doors match them
    table = IpCredentials(service.list_ip_credentials())
    assert table.match("10.1.2.3") == host  # most specific wins
    assert table.match("10.9.9.9") == wide
    assert table.match("::ffff:10.9.9.9") == wide
    assert table.match("2001:db8::1") == v6
    assert table.match("192.0.2.1") is None
    assert table.match("not-an-ip") is None
    assert service.list_ip_credentials("acme") == [wide, v6]  # by network
    with pytest.raises(NotFound):
        service.delete_ip_credential("acme", host.id)  # not acme's
    service.delete_ip_credential("default", "10.1.2.3/32")
    service.delete_ip_credential("acme", wide.id)
    assert service.list_ip_credentials() == [v6]


def test_api_keys(service: PlatformService, clock: FakeClock) -> None:
    service.create_project("acme")
    issued = service.create_api_key("acme", "ci", ["send", "read", "send"])
    key = issued.key
    assert key.scopes == ("send", "read")
    assert issued.token.startswith(f"prk_{key.id}_")
    assert issued.token not in repr(issued)
    assert issued.token not in key.digest
    with pytest.raises(InvalidInput) as bad_scope:
        service.create_api_key("acme", "x", ["admin"])
    assert bad_scope.value.field == "scopes"
    with pytest.raises(InvalidInput):
        service.create_api_key("acme", "x", [])
    with pytest.raises(InvalidInput):
        service.create_api_key("acme", "", ["send"])

    clock.advance(5)
    authed = service.authenticate_api_key(issued.token)
    assert authed.id == key.id and authed.last_used == clock.now()
    assert service.has_scope(authed, "read") and not service.has_scope(authed, "manage")
    forged = issued.token[:-4] + ("AAAA" if not issued.token.endswith("AAAA") else "BBBB")
    with pytest.raises(NotFound) as wrong:
        service.authenticate_api_key(forged)
    assert forged not in str(wrong.value)
    with pytest.raises(InvalidInput) as malformed:
        service.authenticate_api_key("not a key at all")
    assert "not a key" not in str(malformed.value)

    other = service.create_api_key("default", "d", ["manage"])
    with pytest.raises(NotFound):
        service.delete_api_key("acme", other.key.id)  # not acme's
    service.delete_api_key("acme", key.id)
    with pytest.raises(NotFound):
        service.authenticate_api_key(issued.token)
    assert [k.id for k in service.list_api_keys("default")] == [other.key.id]


def test_admins(service: PlatformService) -> None:
    user = service.create_admin("alice", "correct horse battery")
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash
    assert service.authenticate_admin("alice", "correct horse battery") == user
    with pytest.raises(NotFound) as wrong:
        service.authenticate_admin("alice", "wrong password")
    with pytest.raises(NotFound) as unknown:
        service.authenticate_admin("bob", "wrong password")
    assert str(wrong.value) == str(unknown.value)
    with pytest.raises(InvalidInput) as short:
        service.create_admin("bob", "short")
    assert short.value.field == "password"
    with pytest.raises(InvalidInput) as bad_name:
        service.create_admin("bad name", "long enough password")
    assert bad_name.value.field == "username"
    with pytest.raises(InvalidInput):
        service.create_admin("alice", "another password")
    assert [u.username for u in service.list_admins()] == ["alice"]
    service.delete_admin("alice")
    with pytest.raises(NotFound):
        service.delete_admin("alice")


async def test_address_identities_and_sender_identity(
    service: PlatformService, clock: FakeClock
) -> None:
    service.create_project("acme")
    issued = service.add_address("acme", "Ops@Example.ORG")
    entry = issued.identity
    assert (entry.address, entry.status) == ("ops@example.org", "pending")
    assert entry.token_digest is not None and issued.token not in repr(issued)
    assert verify_secret(issued.token, entry.token_digest)  # only the digest is stored
    with pytest.raises(InvalidInput):
        service.add_address("acme", "ops@example.org")
    for bad in ("no-at-sign", "a@b", "@example.org", "a b@example.org"):
        with pytest.raises(InvalidInput):
            service.add_address("acme", bad)
    assert [a.address for a in service.list_addresses("acme")] == ["ops@example.org"]

    # what the identities allow, read as the submission pipeline reads them
    directory = ProjectDirectory(service.store, clock, ttl=0)
    assert not sender_allowed(await directory.get("acme"), "ops@example.org")  # pending
    assert service.address_for_token(issued.token).status == "pending"  # a look changes nothing
    service.confirm_address(issued.token)
    acme, default = await directory.get("acme"), await directory.get("default")
    assert sender_allowed(acme, "OPS@example.org")
    assert not sender_allowed(acme, "other@example.org")
    assert not sender_allowed(default, "ops@example.org")  # another project's
    assert not sender_allowed(acme, "garbage")
    restricted = service.create_smtp_credential("acme", allowed_from=["example.net"]).credential
    assert not sender_allowed(acme, "ops@example.org", restricted.allowed_from)
    pinned = service.create_smtp_credential("acme", allowed_from=["ops@example.org"]).credential
    assert sender_allowed(acme, "ops@example.org", pinned.allowed_from)

    service.delete_address("acme", "OPS@example.org")
    assert not sender_allowed(await directory.get("acme"), "ops@example.org")
    with pytest.raises(NotFound):
        service.delete_address("acme", "ops@example.org")


def test_address_tokens_are_refused_when_forged_expired_reused_or_foreign(
    service: PlatformService, clock: FakeClock
) -> None:
    service.create_project("acme")
    service.create_project("other")
    mine = service.add_address("acme", "ops@example.org")
    theirs = service.add_address("other", "ops@example.org")  # each project its own token
    assert mine.token != theirs.token

    def refused(token: object, **where: str) -> str:
        with pytest.raises(InvalidInput) as err:
            service.confirm_address(token, "code", **where)
        assert err.value.field == "code"
        return str(err.value)

    assert "required" in refused(None)
    assert "must be a string" in refused(5)
    assert "malformed" in refused("not a token")
    forged = "pva_" + mine.token[4:][::-1]
    assert "unknown" in refused(forged)
    # another project's token for the same address does not confirm this project's
    assert "not issued for" in refused(theirs.token, project_id="acme", address="ops@example.org")
    assert service.get_address("acme", "ops@example.org").status == "pending"
    # expired (the injected clock): refused, and a look at it too
    clock.advance(24 * 3600)
    assert "expired" in refused(mine.token)
    with pytest.raises(InvalidInput):
        service.address_for_token(mine.token)
    # a new mail replaces the token: the old one is unknown, the new one works once
    renewed = service.renew_address_token("acme", "ops@example.org")
    assert "unknown" in refused(mine.token)
    service.confirm_address(renewed.token, "code", project_id="acme", address="OPS@example.org")
    assert "used already" in refused(renewed.token)
    assert service.get_address("other", "ops@example.org").status == "pending"  # still theirs
    with pytest.raises(InvalidInput) as verified:
        service.renew_address_token("acme", "ops@example.org")
    assert verified.value.field == "address"


def test_verification_mails_are_throttled(service: PlatformService, clock: FakeClock) -> None:
    service.create_project("acme")
    service.add_address("acme", "ops@example.org")
    with pytest.raises(Refusal) as soon:
        service.renew_address_token("acme", "ops@example.org")
    assert (soon.value.kind, soon.value.field) == (RefusalKind.RATE_LIMIT, "address")
    assert soon.value.retry_after == 60
    for _ in range(4):  # five mails in 24 h (the first one included)
        clock.advance(61)
        service.renew_address_token("acme", "ops@example.org")
    clock.advance(61)
    with pytest.raises(Refusal) as daily:
        service.renew_address_token("acme", "ops@example.org")
    assert daily.value.retry_after is not None and daily.value.retry_after > 3600
    clock.advance(24 * 3600)
    assert service.renew_address_token("acme", "ops@example.org").identity.mails_in_window == 1


async def test_usage_counts_a_rolling_day(
    service: PlatformService, clock: FakeClock, tmp_path: Path
) -> None:
    """Usage reads the sends the message store recorded with each submitted message."""
    service.create_project("acme", mode="live", daily_quota=100, rate_limit=5)
    store = open_store(tmp_path / "data", clock)
    try:
        await store.add(replace(make_message(clock, step=0), project="acme", sends=3))
        clock.advance(3600)
        await store.add(replace(make_message(clock, step=0), project="acme", sends=4))
        await store.add(replace(make_message(clock, step=0), project="acme"))  # not submitted
    finally:
        await store.close()
    assert tuple(service.usage("acme")) == (7, 100, 5)
    clock.advance(23 * 3600 + 1)  # the first message is now older than 24 h
    usage = service.usage("acme")
    assert (usage.sent_24h, usage.daily_quota, usage.rate_limit) == (4, 100, 5)
    clock.advance(timedelta(hours=2).total_seconds())
    assert service.usage("acme").sent_24h == 0
    with pytest.raises(NotFound):
        service.usage("ghost")


def test_api_key_use_is_written_at_most_once_a_minute(
    service: PlatformService, clock: FakeClock
) -> None:
    """Issue 9, item 6: not a database write per API request."""
    issued = service.create_api_key("default", "ci", ["read"])
    writes: list[object] = []
    touch = service.store.touch_api_key

    def counting(key_id: str, when: datetime) -> None:
        writes.append(when)
        touch(key_id, when)

    service.store.touch_api_key = counting  # type: ignore[method-assign]
    first = clock.now()
    for _ in range(50):
        service.authenticate_api_key(issued.token)
        clock.advance(1)  # 50 requests over 50 seconds
    assert writes == [first]
    clock.advance(11)  # a minute after the write
    service.authenticate_api_key(issued.token)
    assert len(writes) == 2
    assert service.list_api_keys("default")[0].last_used == clock.now()
